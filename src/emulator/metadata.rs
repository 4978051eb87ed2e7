//! The metadata document (`acsmetadata`) the emulator serves for each chunk, mixed or unmixed, in the shape ACS
//! serves it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{json, Value};

use super::iso8601;
use super::media::SAMPLE_RATE;

/// What one chunk's metadata document says.
pub(super) struct ChunkMetadata<'a> {
    pub(super) resource_id: &'a str,
    pub(super) call_id: &'a str,
    pub(super) document_id: &'a str,
    pub(super) index: i64,
    pub(super) start: SystemTime,
    pub(super) duration_ms: u64,
    /// The participants' raw ids; in an unmixed recording participant `i` is on channel `i`.
    pub(super) participants: &'a [String],
    pub(super) unmixed: bool,
}

impl ChunkMetadata<'_> {
    /// The document as ACS writes it: `recordingInfo` in lower case, `sampleRate` as a string.
    pub(super) fn to_bytes(&self) -> Bytes {
        let participants: Vec<Value> = self
            .participants
            .iter()
            .enumerate()
            .map(|(channel, id)| match self.unmixed {
                true => json!({ "participantId": id, "channel": channel }),
                false => json!({ "participantId": id }),
            })
            .collect();
        let channels = if self.unmixed { self.participants.len().max(1) } else { 1 };
        let value = json!({
            "resourceId": self.resource_id,
            "callId": self.call_id,
            "chunkDocumentId": self.document_id,
            "chunkIndex": self.index,
            "chunkStartTime": iso8601(self.start),
            "chunkDuration": self.duration_ms as f64,
            "pauseResumeIntervals": [],
            "recordingInfo": {
                "contentType": "audio",
                "channelType": if self.unmixed { "unmixed" } else { "mixed" },
                "format": "wav",
                "audioConfiguration": {
                    "sampleRate": SAMPLE_RATE.to_string(),
                    "bitRate": SAMPLE_RATE * 16,
                    "channels": channels
                },
                "videoConfiguration": null
            },
            "participants": participants
        });
        Bytes::from(serde_json::to_vec(&value).expect("json values serialise"))
    }
}

/// `start` plus `ms` milliseconds.
pub(super) fn after(start: SystemTime, ms: u64) -> SystemTime {
    start + Duration::from_millis(ms)
}
