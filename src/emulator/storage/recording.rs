//! Synthetic recordings in the storage: what to store ([`RecordingSpec`]) and what was stored.

use crate::recording::{ChunkEndReason, Recording, RecordingChunk, RecordingStorageType};
use crate::Sha256Digest;

use super::short_hash;

/// One stored chunk of a recording, with everything a `RecordingFileStatusUpdated` event says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredChunk {
    /// `documentId`.
    pub document_id: String,
    /// `index`.
    pub index: i64,
    /// `endReason`: `ChunkMaximumSizeExceeded` for all but the last chunk, then `SessionEnded`.
    pub end_reason: String,
    /// `contentLocation`.
    pub content_location: String,
    /// `metadataLocation`.
    pub metadata_location: String,
    /// `deleteLocation`.
    pub delete_location: String,
    /// Media size in bytes.
    pub size: u64,
    /// SHA-256 of the media.
    pub sha256: Sha256Digest,
}

/// A recording stored by [`Storage::record`](super::Storage::record).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRecording {
    /// The call id.
    pub call_id: String,
    /// The server call id.
    pub server_call_id: String,
    /// The recording id.
    pub recording_id: String,
    /// `recordingStartTime`, ISO 8601.
    pub start_time: String,
    /// `recordingDurationMs`.
    pub duration_ms: u64,
    /// `recordingFormatType` (`Wav`).
    pub format: String,
    /// `recordingContentType` (`Audio`).
    pub content_type: String,
    /// `recordingChannelType` (`Mixed`, or `Unmixed` with [`RecordingSpec::unmixed`]).
    pub channel_type: String,
    /// `storageType`, when the recording is announced as exported (or not) to the customer's storage.
    pub storage_type: Option<String>,
    /// The participants' raw ids, in channel order for an unmixed recording.
    pub participants: Vec<String>,
    /// The chunks, in index order.
    pub chunks: Vec<StoredChunk>,
}

impl StoredRecording {
    /// Total media bytes.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    /// What a `RecordingFileStatusUpdated` event for this recording asks to download.
    pub fn to_recording(&self) -> Recording {
        let recording = Recording::new(&self.call_id)
            .recording_id(&self.recording_id)
            .start_time(&self.start_time)
            .format(self.format.as_str())
            .chunks(self.chunks.iter().map(StoredChunk::to_recording_chunk));
        match &self.storage_type {
            Some(storage_type) => recording.storage_type(RecordingStorageType::parse(storage_type)),
            None => recording,
        }
    }
}

impl StoredChunk {
    /// The chunk as a `RecordingFileStatusUpdated` event lists it, every location included.
    pub fn to_recording_chunk(&self) -> RecordingChunk {
        RecordingChunk::new(&self.document_id, self.index)
            .with_end_reason(ChunkEndReason::parse(&self.end_reason))
            .with_locations(&self.content_location, &self.metadata_location, &self.delete_location)
    }
}

/// The synthetic recording to store: a WAV tone of `bytes` audio bytes, split at the storage's chunk limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingSpec {
    /// The call id.
    pub call_id: String,
    /// Audio bytes in all (16-bit mono at 48 kHz: 96,000 bytes a second).
    pub bytes: u64,
    /// The participants of an unmixed recording, one channel each in this order; `None` for a mixed recording
    /// with one participant.
    pub participants: Option<Vec<String>>,
    /// The `storageType` the event announces (`AzureBlob` for a recording exported to the customer's storage,
    /// `acsstorage` when the export failed); `None` leaves it out, as before bring your own storage.
    pub storage_type: Option<String>,
    /// The recording id the event names, which also keeps the chunks of two recordings of one call apart; `None`
    /// derives one from the call id.
    pub recording_id: Option<String>,
}

impl RecordingSpec {
    /// A mixed recording of `call_id` with `bytes` of audio.
    pub fn new(call_id: impl Into<String>, bytes: u64) -> Self {
        Self { call_id: call_id.into(), bytes, participants: None, storage_type: None, recording_id: None }
    }

    /// Makes the recording unmixed: participant `i` of `participants` on channel `i` (ACS allows up to 5).
    pub fn unmixed(mut self, participants: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.participants = Some(participants.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the `storageType` of the event (`AzureBlob`, `acsstorage`, ...).
    pub fn storage_type(mut self, storage_type: impl Into<String>) -> Self {
        self.storage_type = Some(storage_type.into());
        self
    }

    /// Sets the recording id (default: one derived from the call id); its chunks get document ids of their own.
    pub fn recording_id(mut self, recording_id: impl Into<String>) -> Self {
        self.recording_id = Some(recording_id.into());
        self
    }
}

/// A made-up ACS raw id for participant `n` of a call.
pub(in crate::emulator) fn participant_id(call_id: &str, n: u64) -> String {
    format!("8:acs:{:016x}", short_hash(call_id.as_bytes()) ^ n)
}
