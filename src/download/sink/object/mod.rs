//! The object-store sink: `<prefix>/<call id>/<index>-<document id>.<ext>` in any `object_store` backend, each
//! chunk streamed into a staging object and copied create-only to its final key.

mod multipart;
mod writer;

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

pub use writer::ObjectStoreWriter;

use super::record::ChunkRecord;
use super::{
    another_chunk, chunk_base_name as base_name, recording_manifest_name, sanitize_name, ChunkTarget, Existing, Sink,
    Stored,
};
use crate::store::{io_error, put_create, StoreLocation};
use crate::Sha256Digest;

/// Parts of a multipart upload: 8 MiB, a multiple of what every store accepts (S3's 5 MiB minimum, Azure blocks).
pub const PART_SIZE: usize = 8 << 20;

/// Writes each chunk to `<prefix>/<call id>/<index>-<document id>.<ext>` and its metadata to
/// `<prefix>/<call id>/<index>-<document id>.json`, in object storage; several replicas may share one prefix.
///
/// 1. Names are [sanitised](crate::download::sink::sanitize_name), as in the [`DirectorySink`](crate::download::sink::DirectorySink).
/// 2. Media streams into a multipart upload to a staging key unique to the attempt,
///    `<call id>/.<index>-<document id>.<ext>.<token>.partial`, in parts of [`PART_SIZE`] with at most two parts in
///    flight: memory stays constant whatever the chunk's size. A partial upload never carries the final key.
/// 3. On commit the upload completes, the manifest `<call id>/.<index>-<document id>.<ext>.json` (size,
///    SHA-256, document id and, for an unmixed recording, the channel → participant map, as the directory sink
///    records it) is written create-only, the staging object is copied create-only to the final key and deleted. A
///    final key that already exists means another replica finished first: the commit succeeds.
/// 4. A final key with its manifest is [`Existing::Complete`]: the chunk is never downloaded again. Staging objects
///    older than [`stale_after`](ObjectStoreSink::stale_after) are swept when their call's folder is next opened.
/// 5. Where the store takes parts one by one (`MultipartStore`: Azure, S3, GCS; see
///    [`StoreLocation::with_parts`]), each committed part is recorded in `<staging key>.json` with the SHA-256
///    state after it and the object's version. A later attempt (after a crash, on another replica) opens the chunk
///    as [`Existing::Partial`] at the last whole part and gives the hash state back
///    ([`SinkWriter::stored_digest`](super::SinkWriter::stored_digest)): only the rest is downloaded. Local files
///    start over.
/// 6. The metadata document is written create-only: the first replica's copy stays.
/// 7. Once every chunk of a recording is in, its manifest `<call id>/recording-<recording>.json` (what the
///    recorder stored: each chunk's key, size and SHA-256) is written create-only too.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use acs_recording::download::sink::{ChunkTarget, Existing, ObjectStoreSink, ObjectVersion, Sink, SinkWriter};
/// use acs_recording::store::StoreLocation;
/// use bytes::Bytes;
/// use sha2::{Digest, Sha256};
///
/// let folder = tempfile::tempdir()?;
/// let sink = ObjectStoreSink::new(StoreLocation::parse(&format!("file://{}", folder.path().display()))?);
/// let target = ChunkTarget::new("call-1", "doc-0", 0, "wav");
///
/// let Existing::Absent(mut writer) = sink.open(&target).await? else { unreachable!() };
/// writer.begin(&ObjectVersion::default()).await?;
/// writer.write(Bytes::from_static(b"RIFF....WAVE")).await?;
/// let key = writer.commit(12, Sha256::digest(b"RIFF....WAVE").into()).await?;
/// assert_eq!(key, "call-1/0-doc-0.wav");
///
/// // Final with its manifest: no replica downloads it again.
/// let Existing::Complete(stored) = sink.open(&target).await? else { unreachable!() };
/// assert_eq!(stored.bytes, 12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ObjectStoreSink {
    location: StoreLocation,
    stale_after: Duration,
    resume_uploads: bool,
}

impl ObjectStoreSink {
    /// A sink under `location`'s prefix.
    pub fn new(location: StoreLocation) -> Self {
        Self { location, stale_after: Duration::from_secs(15 * 60), resume_uploads: true }
    }

    /// Whether uploads are made part by part, resumable, where the store allows it (the default). Keeping them
    /// resumable costs a second SHA-256 pass over the bytes (the sink's own, for the state it records): turn it off
    /// where the CPU is scarcer than the bandwidth to download a chunk again.
    pub fn resume_uploads(mut self, resume: bool) -> Self {
        self.resume_uploads = resume;
        self
    }

    fn parts(&self) -> Option<&Arc<dyn object_store::multipart::MultipartStore>> {
        self.location.parts().filter(|_| self.resume_uploads)
    }

    /// Sets the age past which a staging object is left over from a dead attempt and deleted (default 15 minutes;
    /// keep it well above the longest chunk upload).
    pub fn stale_after(mut self, age: Duration) -> Self {
        self.stale_after = age;
        self
    }

    /// Where the sink writes.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The final key of a chunk's media.
    pub fn media_key(&self, target: &ChunkTarget<'_>) -> Path {
        self.location.key(&[&sanitize_name(target.call_id), &format!("{}.{}", base_name(target), target.extension)])
    }

    /// The key of a chunk's metadata document.
    pub fn metadata_key(&self, target: &ChunkTarget<'_>) -> Path {
        self.location.key(&[&sanitize_name(target.call_id), &format!("{}.json", base_name(target))])
    }

    /// The key of a recording's manifest, in its call's folder: `<prefix>/<call id>/recording-<recording>.json`.
    pub fn recording_manifest_key(&self, call_id: &str, recording: &str) -> Path {
        self.location.key(&[&sanitize_name(call_id), &recording_manifest_name(recording)])
    }

    fn manifest_key(&self, target: &ChunkTarget<'_>) -> Path {
        self.location
            .key(&[&sanitize_name(target.call_id), &format!(".{}.{}.json", base_name(target), target.extension)])
    }

    fn folder(&self, target: &ChunkTarget<'_>) -> Path {
        self.location.key(&[&sanitize_name(target.call_id)])
    }

    /// Deletes the staging objects (and upload records) in `folder` older than the stale age (best effort: another
    /// replica may race), and answers the newest upload record of the chunk whose staging names start with
    /// `staging_stem`.
    async fn sweep(&self, folder: &Path, staging_stem: &str) -> io::Result<Option<ObjectMeta>> {
        let store = self.location.store();
        let listed = store.list_with_delimiter(Some(folder)).await.map_err(io_error)?;
        let now = SystemTime::now();
        let mut newest: Option<ObjectMeta> = None;
        for object in listed.objects {
            let Some(name) = object.location.filename() else { continue };
            let record = name.ends_with(".partial.json");
            let staging_name = name.starts_with('.') && (name.ends_with(".partial") || record);
            let modified = SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(object.last_modified.timestamp_millis()).unwrap_or_default());
            let old = now.duration_since(modified).is_ok_and(|age| age >= self.stale_after);
            if staging_name && old {
                tracing::info!(key = %object.location, "deleting a staging object left by a dead attempt");
                match store.delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(io_error(error)),
                }
            } else if record
                && name.starts_with(&format!("{staging_stem}."))
                && newest.as_ref().is_none_or(|n| n.last_modified < object.last_modified)
            {
                newest = Some(object);
            }
        }
        Ok(newest)
    }

    /// The upload an earlier attempt left, when it can go on: read from its record.
    async fn resumable(&self, record: &ObjectMeta) -> Option<multipart::Record> {
        let raw = self.location.store().get(&record.location).await.ok()?.bytes().await.ok()?;
        let parsed: multipart::Record = serde_json::from_slice(&raw).ok()?;
        let usable = parsed.is_consistent() && parsed.sha256.bytes() > 0 && parsed.version.is_pinnable();
        usable.then_some(parsed)
    }
}

/// The SHA-256 of an object, streamed (for a final object whose manifest is missing or does not match).
async fn hash_object(store: &dyn ObjectStore, key: &Path) -> io::Result<(u64, Sha256Digest)> {
    let mut stream = store.get(key).await.map_err(io_error)?.into_stream();
    let (mut sha, mut bytes) = (Sha256::new(), 0u64);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(io_error)?;
        sha.update(&piece);
        bytes += piece.len() as u64;
    }
    Ok((bytes, sha.finalize().into()))
}

impl Sink for ObjectStoreSink {
    type Writer = ObjectStoreWriter;

    async fn open(&self, target: &ChunkTarget<'_>) -> io::Result<Existing<ObjectStoreWriter>> {
        let store = self.location.store().clone();
        let media = self.media_key(target);
        match store.head(&media).await {
            Ok(meta) => {
                let manifest = match store.get(&self.manifest_key(target)).await {
                    Ok(found) => found.bytes().await.ok(),
                    Err(_) => None,
                };
                let (committed, owner) = manifest.map_or((None, None), |raw| ChunkRecord::read(&raw));
                if let Some(stored) = owner.as_deref() {
                    if stored != target.document_id {
                        return Err(another_chunk(media.as_ref(), stored, target.document_id));
                    }
                }
                let recorded = committed.filter(|c| c.bytes == meta.size).map(|c| (c.bytes, c.sha256));
                let (bytes, sha256) = match recorded {
                    Some(recorded) => recorded,
                    None => {
                        tracing::warn!(key = %media, "final object without a matching manifest: hashing it");
                        hash_object(store.as_ref(), &media).await?
                    }
                };
                return Ok(Existing::Complete(Stored::new(media.to_string(), bytes, sha256)));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(io_error(error)),
        }
        let folder = self.folder(target);
        let staging_stem = format!(".{}.{}", base_name(target), target.extension);
        let record = match self.sweep(&folder, &staging_stem).await {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(%error, folder = %folder, "sweeping stale staging objects failed");
                None
            }
        };
        let manifest = self.manifest_key(target);
        let document_id = target.document_id.to_owned();
        let keys = writer::Keys { folder, staging_stem, media, manifest, document_id };
        if let (Some(parts), Some(record)) = (self.parts(), record) {
            if let Some(record) = self.resumable(&record).await {
                let (offset, version) = (record.sha256.bytes(), record.version.clone());
                tracing::info!(offset, staging = %record.staging, "an earlier upload of the chunk goes on");
                let writer = ObjectStoreWriter::resumed(store, parts.clone(), keys, record);
                return Ok(Existing::Partial { writer, offset, version });
            }
        }
        Ok(Existing::Absent(ObjectStoreWriter::new(store, self.parts().cloned(), keys)))
    }

    async fn put_metadata(&self, target: &ChunkTarget<'_>, document: Bytes) -> io::Result<Option<String>> {
        let key = self.metadata_key(target);
        // Create-only: a replica that finds the document there already leaves the first copy.
        put_create(self.location.store().as_ref(), &key, document).await?;
        Ok(Some(key.to_string()))
    }

    async fn put_recording_manifest(
        &self,
        call_id: &str,
        recording: &str,
        document: Bytes,
    ) -> io::Result<Option<String>> {
        let key = self.recording_manifest_key(call_id, recording);
        // Create-only, as for metadata: of replicas finishing the same recording, the first one's copy stays.
        put_create(self.location.store().as_ref(), &key, document).await?;
        Ok(Some(key.to_string()))
    }
}

/// The store of a sink, shared by its writers.
type SharedStore = Arc<dyn ObjectStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_read_back() {
        let raw = ChunkRecord::new(3, Sha256Digest::new([7u8; 32]), "d", Vec::new()).to_bytes().unwrap();
        let (committed, _) = ChunkRecord::read(&raw);
        let committed = committed.unwrap();
        assert_eq!((committed.bytes, Some(committed.sha256)), (3, Some(Sha256Digest::new([7u8; 32]))));
        assert_eq!("xyz".parse::<Sha256Digest>().ok(), None);
    }

    #[tokio::test]
    async fn the_channel_map_of_the_metadata_lands_in_the_record() {
        use crate::download::sink::{ObjectVersion, SinkWriter};
        use crate::recording::RecordingMetadata;

        let folder = tempfile::tempdir().unwrap();
        let location = StoreLocation::parse(&format!("file://{}", folder.path().display())).unwrap();
        let sink = ObjectStoreSink::new(location);
        let target = ChunkTarget::new("call", "doc", 0, "wav");
        let Existing::Absent(mut writer) = sink.open(&target).await.unwrap() else { panic!("nothing stored yet") };
        let metadata: RecordingMetadata = serde_json::from_str(
            r#"{"participants":[{"participantId":"8:acs:b","channel":1},{"participantId":"8:acs:a","channel":0}]}"#,
        )
        .unwrap();
        writer.describe(&metadata);
        writer.begin(&ObjectVersion::new(Some("\"0x1\"".to_owned()), None, Some(11))).await.unwrap();
        writer.write(Bytes::from_static(b"hello world")).await.unwrap();
        writer.commit(11, Sha256Digest::of(b"hello world")).await.unwrap();
        let raw = sink.location.store().get(&sink.manifest_key(&target)).await.unwrap().bytes().await.unwrap();
        let record: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            record,
            serde_json::json!({
                "bytes": 11,
                "sha256": Sha256Digest::of(b"hello world").to_string(),
                "documentId": "doc",
                "channels": [{"channel": 0, "participantId": "8:acs:a"}, {"channel": 1, "participantId": "8:acs:b"}],
            })
        );
        // A record with a channel map still marks the chunk complete.
        let Existing::Complete(stored) = sink.open(&target).await.unwrap() else { panic!("committed") };
        assert_eq!((stored.bytes, stored.sha256), (11, Sha256Digest::of(b"hello world")));
    }
}
