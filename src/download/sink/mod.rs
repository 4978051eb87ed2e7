//! Where downloaded chunks go: the [`Sink`] trait, the [`DirectorySink`], the [`WriterSink`] and (feature
//! `object-store`) the `ObjectStoreSink`.
//!
//! A sink stores one chunk at a time through a [`SinkWriter`]. The downloader owns the protocol (requests, resume,
//! verification); a sink owns durability: it says what it already holds ([`Existing`]), takes the bytes in order,
//! forgets them when the object changed ([`SinkWriter::restart`]) and makes them final only in
//! [`SinkWriter::commit`], after every check passed. Bytes that were not committed must never be visible under the
//! chunk's final name.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//!
//! use acs_recording::download::sink::{ChunkTarget, DirectorySink};
//!
//! // Where the directory sink keeps chunk 0 (`doc`) of call `call-1`, and the hidden manifest beside it.
//! let sink = DirectorySink::new("/recordings");
//! let target = ChunkTarget::new("call-1", "doc", 0, "wav");
//! assert_eq!(sink.media_path(&target), Path::new("/recordings/call-1/0-doc.wav"));
//! assert_eq!(sink.manifest_path(&target), Path::new("/recordings/call-1/.0-doc.wav.json"));
//! ```

mod directory;
#[cfg(feature = "object-store")]
mod object;
mod record;
mod writer;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Sha256State;
use crate::recording::RecordingMetadata;
use crate::Sha256Digest;

/// Names are sanitised alike in every sink and in the journal: the one function lives at the crate root.
pub use crate::name::sanitize_name;

pub use directory::{DirectorySink, DirectoryWriter};
#[cfg(feature = "object-store")]
pub use object::{ObjectStoreSink, ObjectStoreWriter, PART_SIZE};
pub use writer::{WriterSink, WriterSinkWriter};

/// The version of an object, as its first response described it: used to pin resumed requests (`If-Match`, or
/// `If-Unmodified-Since` when there is no ETag) and stored by sinks so a later run can resume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectVersion {
    /// The `ETag`, quotes included.
    pub etag: Option<String>,
    /// The `Last-Modified` date.
    pub last_modified: Option<String>,
    /// The object's size in bytes, when announced.
    pub total: Option<u64>,
    /// The whole object's MD5 (base64), when the server announced it in `x-ms-blob-content-md5`. A resume replays
    /// the stored bytes into an MD5 too, so that the object is still checked against it at the end; state saved
    /// before this field existed reads as `None`.
    #[serde(default)]
    pub content_md5: Option<String>,
}

impl ObjectVersion {
    /// A version with the given ETag and size.
    pub fn new(etag: Option<String>, last_modified: Option<String>, total: Option<u64>) -> Self {
        Self { etag, last_modified, total, content_md5: None }
    }

    /// Sets the whole object's MD5 (base64, as in `x-ms-blob-content-md5`).
    pub fn with_content_md5(mut self, content_md5: Option<String>) -> Self {
        self.content_md5 = content_md5;
        self
    }

    /// Whether requests can be pinned to this version.
    pub fn is_pinnable(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// Which chunk a sink is asked about, and the names the downloader derived for it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ChunkTarget<'a> {
    /// The call id (unsanitised).
    pub call_id: &'a str,
    /// The recording id, when known.
    pub recording_id: Option<&'a str>,
    /// The storage document id (unsanitised).
    pub document_id: &'a str,
    /// The chunk's index.
    pub index: i64,
    /// The file extension for the media: `wav`, `mp3`, `mp4` or `bin`.
    pub extension: &'a str,
}

impl<'a> ChunkTarget<'a> {
    /// Chunk `index` (`document_id`) of call `call_id`, its media stored with `extension`, without a recording id
    /// (set the field when known): for asking a sink where it keeps a chunk ([`DirectorySink::media_path`],
    /// [`DirectorySink::manifest_path`]).
    pub fn new(call_id: &'a str, document_id: &'a str, index: i64, extension: &'a str) -> Self {
        Self { call_id, recording_id: None, document_id, index, extension }
    }
}

/// A chunk that is already stored completely.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stored {
    /// Where it is (a path for the [`DirectorySink`]).
    pub location: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: Sha256Digest,
}

impl Stored {
    /// Describes a stored chunk.
    pub fn new(location: String, bytes: u64, sha256: Sha256Digest) -> Self {
        Self { location, bytes, sha256 }
    }
}

/// What a sink holds for a chunk when asked.
#[derive(Debug)]
pub enum Existing<W> {
    /// Nothing: download from byte 0 into the writer.
    Absent(W),
    /// The first `offset` bytes of `version` from an earlier run: resume with `Range: bytes=<offset>-`.
    Partial {
        /// Continues after the stored bytes.
        writer: W,
        /// Bytes already stored.
        offset: u64,
        /// The version they belong to.
        version: ObjectVersion,
    },
    /// Everything: nothing to download.
    Complete(Stored),
}

/// Storage for downloaded chunks: the seam where any storage plugs in without changing the downloader.
///
/// The downloader owns the protocol (requests, resume, verification); a sink owns durability: it says what it
/// already holds ([`Existing`]), takes the bytes in order through a [`SinkWriter`], forgets them when the object
/// changed ([`SinkWriter::restart`]) and makes them final only in [`SinkWriter::commit`], after every check
/// passed. Bytes that were not committed must never be visible under the chunk's final name.
///
/// # How the object-storage sink fits
///
/// The `ObjectStoreSink` (feature `object-store`) shows the shape for any store without rename:
///
/// 1. [`Sink::open`] looks for the final key and its manifest: both there means [`Existing::Complete`]; otherwise
///    [`Existing::Absent`], with a writer on a staging key unique to the attempt. Who works on a chunk is decided
///    before, by the journal's leases, not by the sink.
/// 2. [`SinkWriter::write`] feeds a multipart upload to the staging key in fixed parts; [`SinkWriter::restart`]
///    aborts it and starts another under a new staging key.
/// 3. [`SinkWriter::commit`] completes the upload, writes the manifest create-only, copies the staging object to the
///    final key create-only (an existing final key is another writer's identical commit) and deletes the staging
///    object. Only then does the downloader send the optional DELETE to ACS.
/// 4. Where the store takes parts one by one (`MultipartStore`: Azure, S3, GCS), a record beside the staging key
///    keeps the parts uploaded so far and the SHA-256 state after them. A later attempt finds it in
///    [`Sink::open`] as [`Existing::Partial`] and gives the state back through [`SinkWriter::stored_digest`]: the
///    download goes on from the last whole part instead of byte 0. Elsewhere (local files) a lost upload restarts.
pub trait Sink: Send + Sync + 'static {
    /// Writes one chunk.
    type Writer: SinkWriter;

    /// Says what is already stored for `target`, and prepares a writer when more is needed.
    fn open(&self, target: &ChunkTarget<'_>) -> impl Future<Output = io::Result<Existing<Self::Writer>>> + Send;

    /// Stores a chunk's metadata document (valid JSON); returns where, or `None` when this sink drops metadata.
    fn put_metadata(
        &self,
        target: &ChunkTarget<'_>,
        document: Bytes,
    ) -> impl Future<Output = io::Result<Option<String>>> + Send;

    /// Stores the manifest of a whole recording (valid JSON), once every chunk of it is stored: `recording` names
    /// it within its call (its recording id, or its first chunk's document id). Returns where, or `None` when this
    /// sink keeps no recording manifests (the default). Called again for the same recording (a retry, another
    /// replica), a sink keeps one copy: the [`DirectorySink`] replaces it atomically, the `ObjectStoreSink` keeps
    /// the first.
    fn put_recording_manifest(
        &self,
        call_id: &str,
        recording: &str,
        document: Bytes,
    ) -> impl Future<Output = io::Result<Option<String>>> + Send {
        let _ = (call_id, recording, document);
        async { Ok(None) }
    }
}

/// The name a chunk's files start with in every sink: `<index>-<document id>`, the id [sanitised](sanitize_name).
/// When sanitising changed the id, a short hash of the raw id follows (`<index>-<sanitised>-<16 hex>`): two ids
/// that sanitise alike (`a/b`, `a:b`) never share a name, so one chunk is never taken for another. Ids that need
/// no sanitising keep the names they always had.
pub(crate) fn chunk_base_name(target: &ChunkTarget<'_>) -> String {
    let sanitised = sanitize_name(target.document_id);
    if sanitised == target.document_id {
        return format!("{}-{sanitised}", target.index);
    }
    let digest = Sha256Digest::of(target.document_id).to_string();
    format!("{}-{sanitised}-{}", target.index, &digest[..16])
}

/// The error of a sink that finds another chunk's committed files under a chunk's name: never taken as this chunk,
/// and never overwritten.
pub(crate) fn another_chunk(location: &str, stored: &str, wanted: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("`{location}` holds chunk `{stored}`, not `{wanted}`: left as it is"),
    )
}

/// The file name of a recording's manifest within its call's folder: `recording-<name>.json`, sanitised (no chunk's
/// name can take it: those start with their index).
pub(crate) fn recording_manifest_name(recording: &str) -> String {
    format!("recording-{}.json", sanitize_name(recording))
}

/// Writes one chunk's media. Dropping a writer without [`commit`](SinkWriter::commit) must leave nothing under the
/// final name (a sink may keep the bytes to resume later).
pub trait SinkWriter: Send + 'static {
    /// The object's version is known (first response, or after a restart): keep it to resume later.
    fn begin(&mut self, version: &ObjectVersion) -> impl Future<Output = io::Result<()>> + Send;

    /// Appends the next bytes.
    fn write(&mut self, data: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Discards everything written: the object changed and the chunk restarts from byte 0. A sink that cannot
    /// rewind answers [`io::ErrorKind::Unsupported`].
    fn restart(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Feeds back the bytes of an [`Existing::Partial`], in order, so the downloader can hash them. The default
    /// answers [`io::ErrorKind::Unsupported`]; the downloader then restarts the chunk from byte 0.
    fn replay(&mut self, each: &mut (dyn FnMut(&[u8]) + Send)) -> impl Future<Output = io::Result<()>> + Send {
        let _ = each;
        async { Err(io::Error::new(io::ErrorKind::Unsupported, "this sink cannot replay stored bytes")) }
    }

    /// The SHA-256 state of the bytes of an [`Existing::Partial`], for a sink that cannot read them back (an object
    /// store's uncommitted parts) and kept it instead: when it covers exactly the stored `offset` bytes, the
    /// downloader goes on hashing from it rather than calling [`replay`](SinkWriter::replay). The default is
    /// `None`. Kept state cannot stand in for an MD5: an object announced with one is replayed or restarted.
    fn stored_digest(&self) -> Option<Sha256State> {
        None
    }

    /// Positional writes for a parallel ranged download of this chunk, once [`begin`](SinkWriter::begin) gave its
    /// version; `None` (the default) keeps the chunk to one stream written with [`write`](SinkWriter::write).
    fn positional(&mut self) -> Option<Arc<dyn PositionalWriter>> {
        None
    }

    /// The byte ranges of an [`Existing::Partial`] that an earlier parallel download completed, as
    /// [`PositionalWriter::complete`] recorded them; empty (the default) when only the contiguous `offset` bytes
    /// count.
    fn stored_extents(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// The chunk's metadata document, typed, once fetched and before [`commit`](SinkWriter::commit): a sink may
    /// record what it needs of it beside the media (the [`DirectorySink`] and the `ObjectStoreSink` write the
    /// channel → participant map of an unmixed recording into the chunk's manifest). The default ignores it.
    fn describe(&mut self, metadata: &RecordingMetadata) {
        let _ = metadata;
    }

    /// The download failed: keep what was written so a later run can resume (the default does nothing).
    fn abandon(self) -> impl Future<Output = io::Result<()>> + Send
    where
        Self: Sized,
    {
        async { Ok(()) }
    }

    /// Makes the chunk durable under its final name, once all `bytes` (with this SHA-256) were written and
    /// verified; returns where it is.
    fn commit(self, bytes: u64, sha256: Sha256Digest) -> impl Future<Output = io::Result<String>> + Send;
}

/// The future of a [`PositionalWriter`] call, boxed because the writer is shared as a trait object.
pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// Writes any range of one chunk's media, from several tasks at once: what the parts of a parallel ranged
/// download write through (from [`SinkWriter::positional`]). Nothing becomes final before
/// [`SinkWriter::commit`].
pub trait PositionalWriter: Send + Sync + 'static {
    /// Writes `data`, in order, from byte `offset` on.
    fn write_at(&self, offset: u64, data: Vec<Bytes>) -> WriteFuture<'_>;

    /// Bytes `start..end` are all written: makes them durable and records them, so that a later run only fetches
    /// the ranges still missing ([`SinkWriter::stored_extents`]).
    fn complete(&self, start: u64, end: u64) -> WriteFuture<'_>;

    /// Whether [`read_at`](PositionalWriter::read_at) reads back what was written. When it does, bytes that
    /// arrive ahead of the in-order hash and do not fit the [`MemoryBudget`](crate::download::MemoryBudget) are
    /// read back from here in their turn instead of waiting in memory. The default is `false`.
    fn readable(&self) -> bool {
        false
    }

    /// Reads `len` bytes from byte `offset`, of a range [`complete`](PositionalWriter::complete) recorded. The
    /// default answers [`io::ErrorKind::Unsupported`].
    fn read_at(&self, offset: u64, len: usize) -> ReadFuture<'_> {
        let _ = (offset, len);
        Box::pin(async { Err(io::Error::new(io::ErrorKind::Unsupported, "this sink cannot read back its parts")) })
    }
}

/// The future of [`PositionalWriter::read_at`].
pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Bytes>> + Send + 'a>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_sanitise_alike_get_names_of_their_own() {
        let name = |id| chunk_base_name(&ChunkTarget::new("call", id, 3, "wav"));
        // Ids that need no sanitising keep the layout they always had.
        assert_eq!(name("0-eus-d2-3cca2175891f21c6c9a5975a12c0141c"), "3-0-eus-d2-3cca2175891f21c6c9a5975a12c0141c");
        let (slash, colon) = (name("a/b"), name("a:b"));
        assert!(slash.starts_with("3-a_b-") && colon.starts_with("3-a_b-"), "{slash} {colon}");
        assert_eq!((slash.len(), colon.len()), (22, 22));
        assert_ne!(slash, colon);
        assert_ne!(name("a_b"), slash);
        assert_eq!(name(&"x".repeat(200)).len(), 2 + 128 + 17);
    }

    #[test]
    fn an_object_version_saved_before_content_md5_existed_still_reads() {
        let old = br#"{"etag":"\"0x1\"","last_modified":null,"total":5}"#;
        let version: ObjectVersion = serde_json::from_slice(old).unwrap();
        assert_eq!(version, ObjectVersion::new(Some("\"0x1\"".to_owned()), None, Some(5)));
        assert_eq!(version.content_md5, None);
    }
}
