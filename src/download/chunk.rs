//! The downloader's input (a recording and its chunks) and output (a manifest per chunk), plus progress reports.

use std::fmt;

use super::location::redact_url;
use crate::recording::RecordingEvent;

/// One chunk of a recording, as listed in a `RecordingFileStatusUpdated` event (`SPEC.md` §3).
///
/// The locations are optional because the original 2021 events carry only `documentId`, `index` and `endReason`;
/// the downloader then builds the legacy URLs from the endpoint. `Debug` shows the locations without their query,
/// which may carry a signature.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunk {
    /// The storage document id (`documentId`).
    pub document_id: String,
    /// The chunk's position in the whole recording (`index`).
    pub index: i64,
    /// Why the chunk ended (`endReason`), e.g. `SessionEnded` or `ChunkMaximumSizeExceeded`.
    pub end_reason: Option<String>,
    /// The media URL (`contentLocation`).
    pub content_location: Option<String>,
    /// The metadata JSON URL (`metadataLocation`).
    pub metadata_location: Option<String>,
    /// The URL that deletes the chunk (`deleteLocation`); never derived from the others.
    pub delete_location: Option<String>,
}

impl Chunk {
    /// A chunk with only its document id and index (the legacy event form).
    pub fn new(document_id: impl Into<String>, index: i64) -> Self {
        Self {
            document_id: document_id.into(),
            index,
            end_reason: None,
            content_location: None,
            metadata_location: None,
            delete_location: None,
        }
    }

    /// Sets `endReason`.
    pub fn end_reason(mut self, reason: impl Into<String>) -> Self {
        self.end_reason = Some(reason.into());
        self
    }

    /// Sets `contentLocation`.
    pub fn content_location(mut self, url: impl Into<String>) -> Self {
        self.content_location = Some(url.into());
        self
    }

    /// Sets `metadataLocation`.
    pub fn metadata_location(mut self, url: impl Into<String>) -> Self {
        self.metadata_location = Some(url.into());
        self
    }

    /// Sets `deleteLocation`.
    pub fn delete_location(mut self, url: impl Into<String>) -> Self {
        self.delete_location = Some(url.into());
        self
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |url: &Option<String>| url.as_deref().map(redact_url);
        f.debug_struct("Chunk")
            .field("document_id", &self.document_id)
            .field("index", &self.index)
            .field("end_reason", &self.end_reason)
            .field("content_location", &shown(&self.content_location))
            .field("metadata_location", &shown(&self.metadata_location))
            .field("delete_location", &shown(&self.delete_location))
            .finish()
    }
}

/// A recording to download: the call it belongs to, its format and its chunks (in any order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingRef {
    /// The call id, used as the recording's folder name by the [`DirectorySink`](super::DirectorySink).
    pub call_id: String,
    /// The recording id, when the event's subject carries one.
    pub recording_id: Option<String>,
    /// `recordingFormatType` (`Wav`, `Mp3`, `Mp4`, ...): picks the file extension. When absent, the format named in
    /// each chunk's metadata document is used.
    pub format: Option<String>,
    /// The chunks, in any order; they are downloaded in `index` order.
    pub chunks: Vec<Chunk>,
}

impl RecordingRef {
    /// A recording of `call_id` with no chunks yet.
    pub fn new(call_id: impl Into<String>) -> Self {
        Self { call_id: call_id.into(), recording_id: None, format: None, chunks: Vec::new() }
    }

    /// Sets the recording id.
    pub fn recording_id(mut self, id: impl Into<String>) -> Self {
        self.recording_id = Some(id.into());
        self
    }

    /// Sets the format type (`recordingFormatType`).
    pub fn format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }

    /// Adds a chunk.
    pub fn chunk(mut self, chunk: Chunk) -> Self {
        self.chunks.push(chunk);
        self
    }

    /// Adds chunks.
    pub fn chunks(mut self, chunks: impl IntoIterator<Item = Chunk>) -> Self {
        self.chunks.extend(chunks);
        self
    }
}

impl RecordingRef {
    /// The recording announced by a typed `RecordingFileStatusUpdated` event: the call and recording ids from its
    /// subject, its format type and all its chunks. An event whose subject does not parse is filed under its event
    /// id, so that nothing is lost.
    pub fn from_event(event: &RecordingEvent<'_>) -> Self {
        event.to_recording_ref().unwrap_or_else(|| {
            let data = event.data();
            let recording = Self::new(event.id()).chunks(data.chunks().iter().map(Chunk::from));
            match data.format_type() {
                Some(format) => recording.format(format.as_str()),
                None => recording,
            }
        })
    }
}

/// How a chunk's media ended up in the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Downloaded from the start in this run.
    Downloaded,
    /// Continued from bytes a previous run left in the sink.
    Resumed,
    /// Already complete in the sink; nothing was downloaded.
    Skipped,
}

/// What was stored for one chunk.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkManifest {
    /// The storage document id.
    pub document_id: String,
    /// The chunk's index in the recording.
    pub index: i64,
    /// Media bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored media bytes.
    pub sha256: [u8; 32],
    /// Where the sink put the media (a file path for the [`DirectorySink`](super::DirectorySink)).
    pub location: String,
    /// Where the sink put the metadata document, when it stores metadata.
    pub metadata_location: Option<String>,
    /// Whether the media was downloaded, resumed or skipped.
    pub outcome: Outcome,
    /// HTTP requests made for the media (0 when skipped).
    pub attempts: u32,
    /// Whether the chunk was deleted from storage after it was stored.
    pub deleted: bool,
}

impl ChunkManifest {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

impl fmt::Debug for ChunkManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkManifest")
            .field("document_id", &self.document_id)
            .field("index", &self.index)
            .field("bytes", &self.bytes)
            .field("sha256", &self.sha256_hex())
            .field("location", &self.location)
            .field("metadata_location", &self.metadata_location)
            .field("outcome", &self.outcome)
            .field("attempts", &self.attempts)
            .field("deleted", &self.deleted)
            .finish()
    }
}

/// What was stored for a recording: one manifest per chunk, in `index` order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingManifest {
    /// The call id.
    pub call_id: String,
    /// The chunks, in `index` order.
    pub chunks: Vec<ChunkManifest>,
}

impl RecordingManifest {
    /// Total media bytes stored.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum()
    }
}

/// A progress report, given to the callback set with
/// [`ChunkDownloader::on_progress`](super::ChunkDownloader::on_progress) as bytes arrive.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// The call id.
    pub call_id: &'a str,
    /// The chunk's document id.
    pub document_id: &'a str,
    /// The chunk's index.
    pub index: i64,
    /// Media bytes of this chunk stored so far (it can go back to 0 when the object changed and the chunk
    /// restarted).
    pub chunk_bytes: u64,
    /// The chunk's size, once the server has told it.
    pub chunk_total: Option<u64>,
    /// Media bytes of the whole recording stored so far.
    pub recording_bytes: u64,
    /// Chunks of the recording finished so far.
    pub chunks_done: usize,
    /// Chunks in the recording.
    pub chunks_total: usize,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_debug_never_shows_the_query_of_its_locations() {
        let chunk = Chunk::new("d", 0)
            .content_location("https://a.blob.core.windows.net/c/d?sv=1&sig=SECRET")
            .metadata_location("https://a.blob.core.windows.net/c/d.json?sig=SECRET")
            .delete_location("https://a.blob.core.windows.net/c/d?sig=SECRET");
        let shown = format!("{:?}", RecordingRef::new("call").chunk(chunk));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#"content_location: Some("https://a.blob.core.windows.net/c/d?…")"#), "{shown}");
    }
}
