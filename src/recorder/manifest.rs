//! The manifest of a whole recording, written into the sink once every chunk of it is stored: what a consumer of
//! the sink reads to know a recording is complete, without the journal.
//!
//! It is `<call id>/recording-<recording id>.json` (the first chunk's document id when the event carried no
//! recording id), camelCase JSON:
//!
//! ```json
//! {
//!   "callId": "…", "recordingId": "…", "eventId": "…", "startTime": "…", "format": "Wav",
//!   "completedAt": "2026-12-01T12:00:00.000Z", "bytes": 1048576,
//!   "chunks": [{ "index": 0, "documentId": "…", "bytes": 1048576, "sha256": "…", "location": "…",
//!                "metadataLocation": "…" }]
//! }
//! ```

use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

use crate::journal::{ChunkState, Job};
use crate::recording::{Recording, RecordingFormatType};
use crate::Sha256Digest;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    call_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_id: Option<&'a str>,
    event_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a RecordingFormatType>,
    completed_at: String,
    bytes: u64,
    chunks: Vec<Chunk<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    index: i64,
    document_id: &'a str,
    bytes: u64,
    sha256: Sha256Digest,
    location: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata_location: Option<&'a str>,
}

/// The manifest's name within its call and its bytes, when every chunk of the job is stored (`None` while one is
/// not, or when the recording was exported rather than downloaded).
pub(super) fn recording_manifest(
    job: &Job,
    recording: &Recording,
    now: SystemTime,
) -> io::Result<Option<(String, Bytes)>> {
    let mut chunks = Vec::with_capacity(job.chunks.len());
    for progress in &job.chunks {
        if !matches!(progress.state, ChunkState::Stored | ChunkState::Deleted) {
            return Ok(None);
        }
        let (Some(bytes), Some(sha256), Some(location)) =
            (progress.bytes, progress.sha256, progress.location.as_deref())
        else {
            return Ok(None);
        };
        chunks.push(Chunk {
            index: progress.index,
            document_id: &progress.document_id,
            bytes,
            sha256,
            location,
            metadata_location: progress.metadata_location.as_deref(),
        });
    }
    let Some(name) = recording.recording_id.as_deref().or(chunks.first().map(|c| c.document_id)) else {
        return Ok(None);
    };
    let document = Document {
        call_id: &recording.call_id,
        recording_id: recording.recording_id.as_deref(),
        event_id: &job.event_id,
        start_time: recording.start_time.as_deref(),
        format: recording.format.as_ref(),
        completed_at: crate::time::format_rfc3339(now, 3),
        bytes: chunks.iter().map(|c| c.bytes).sum(),
        chunks,
    };
    let raw = serde_json::to_vec_pretty(&document).map_err(io::Error::other)?;
    Ok(Some((name.to_owned(), Bytes::from(raw))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recording::RecordingChunk;

    fn job() -> (Job, Recording) {
        let recording = Recording::new("call-1")
            .format("Wav")
            .chunk(RecordingChunk::new("doc-1", 1))
            .chunk(RecordingChunk::new("doc-0", 0));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        (Job::new("event-1", recording.clone(), now, now + Duration::from_secs(86_400)), recording)
    }

    fn store(job: &mut Job, index: usize, bytes: u64) {
        let chunk = &mut job.chunks[index];
        chunk.state = ChunkState::Stored;
        chunk.bytes = Some(bytes);
        chunk.sha256 = Some(format!("{index:064}").parse().unwrap());
        chunk.location = Some(format!("call-1/{index}-doc-{index}.wav"));
        chunk.metadata_location = Some(format!("call-1/{index}-doc-{index}.json"));
    }

    #[test]
    fn a_recording_has_no_manifest_until_every_chunk_is_stored() {
        let (mut job, recording) = job();
        store(&mut job, 0, 10);
        assert!(recording_manifest(&job, &recording, SystemTime::now()).unwrap().is_none());
        job.chunks[1].state = ChunkState::Exported;
        assert!(recording_manifest(&job, &recording, SystemTime::now()).unwrap().is_none());
    }

    #[test]
    fn the_manifest_lists_every_chunk_in_index_order_under_the_first_document_id() {
        let (mut job, recording) = job();
        store(&mut job, 0, 10);
        store(&mut job, 1, 5);
        job.chunks[1].state = ChunkState::Deleted;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (name, raw) = recording_manifest(&job, &recording, at).unwrap().unwrap();
        assert_eq!(name, "doc-0");
        let document: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "callId": "call-1", "eventId": "event-1", "format": "Wav",
                "completedAt": "2027-01-15T08:00:00.000Z", "bytes": 15,
                "chunks": [
                    { "index": 0, "documentId": "doc-0", "bytes": 10, "sha256": format!("{:064}", 0),
                      "location": "call-1/0-doc-0.wav", "metadataLocation": "call-1/0-doc-0.json" },
                    { "index": 1, "documentId": "doc-1", "bytes": 5, "sha256": format!("{:064}", 1),
                      "location": "call-1/1-doc-1.wav", "metadataLocation": "call-1/1-doc-1.json" },
                ],
            })
        );
        let with_id = recording.recording_id("rec-9");
        assert_eq!(recording_manifest(&job, &with_id, at).unwrap().unwrap().0, "rec-9");
    }
}
