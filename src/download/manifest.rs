//! The downloader's output (a manifest per chunk) and its progress reports; its input is a
//! [`Recording`](crate::recording::Recording).

use crate::recording::RecordingMetadata;
use crate::Sha256Digest;

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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkManifest {
    /// The storage document id.
    pub document_id: String,
    /// The chunk's index in the recording.
    pub index: i64,
    /// Media bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored media bytes.
    pub sha256: Sha256Digest,
    /// Where the sink put the media (a file path for the [`DirectorySink`](super::sink::DirectorySink)).
    pub location: String,
    /// Where the sink put the metadata document, when it stores metadata.
    pub metadata_location: Option<String>,
    /// Whether the media was downloaded, resumed or skipped.
    pub outcome: Outcome,
    /// HTTP requests made for the media (0 when skipped).
    pub attempts: u32,
    /// Whether the chunk was deleted from storage after it was stored.
    pub deleted: bool,
    /// The chunk's metadata document, typed (`None` when the chunk was skipped, or when the document did not fit
    /// the known schema): participants and their channels, the audio and video configuration, pauses.
    pub metadata: Option<RecordingMetadata>,
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
