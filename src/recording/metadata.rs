//! [`RecordingMetadata`]: a chunk's metadata document (`acsmetadata`), typed.
//!
//! ```
//! use acs_recording::recording::{ChannelAssignment, RecordingChannelType, RecordingMetadata};
//!
//! let document = br#"{"chunkIndex": 0, "chunkDuration": 15000.0,
//!     "recordingInfo": {"channelType": "unmixed", "format": "wav",
//!                       "audioConfiguration": {"sampleRate": "16000", "channels": 2}},
//!     "participants": [{"participantId": "8:acs:b", "channel": 1}, {"participantId": "8:acs:a", "channel": 0}]}"#;
//! let metadata: RecordingMetadata = serde_json::from_slice(document)?;
//! let info = metadata.recording_info.as_ref().unwrap();
//! assert_eq!(info.channel_type, Some(RecordingChannelType::Unmixed));
//! assert_eq!(info.audio_configuration.as_ref().unwrap().sample_rate, Some(16_000));
//! assert_eq!(metadata.chunk_duration(), Some(std::time::Duration::from_secs(15)));
//! assert_eq!(metadata.channels(), [ChannelAssignment::new(0, "8:acs:a"), ChannelAssignment::new(1, "8:acs:b")]);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Every field is optional and every enum open, so that any version of the document parses; fields this version
//! does not know are kept in each struct's `other`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use super::values::{RecordingChannelType, RecordingContentType, RecordingFormatType};

/// A chunk's metadata document: which call, when, how it was recorded, and who is on which channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordingMetadata {
    /// The ACS resource's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The document id of the chunk this document describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_document_id: Option<String>,
    /// The chunk's index in the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_index: Option<i64>,
    /// When the chunk starts, ISO 8601 as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_start_time: Option<String>,
    /// The chunk's duration in milliseconds (`chunkDuration`, at most 4 hours), as sent; see
    /// [`chunk_duration`](Self::chunk_duration).
    #[serde(default, rename = "chunkDuration", skip_serializing_if = "Option::is_none")]
    pub chunk_duration_ms: Option<Number>,
    /// When the recording was paused within the chunk, and for how long.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_resume_intervals: Vec<PauseResumeInterval>,
    /// How the chunk was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_info: Option<RecordingInfo>,
    /// The participants recorded in the chunk, with their channel in an unmixed recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<MetadataParticipant>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RecordingMetadata {
    /// The chunk's duration, when the document gives a non-negative one.
    pub fn chunk_duration(&self) -> Option<Duration> {
        milliseconds(self.chunk_duration_ms.as_ref())
    }

    /// The media format the document names (`recordingInfo.format`).
    pub fn format(&self) -> Option<&RecordingFormatType> {
        self.recording_info.as_ref().and_then(|info| info.format.as_ref())
    }

    /// The channel → participant map of an unmixed recording (one participant per channel, up to 5 channels), in
    /// channel order; empty when no participant names a channel (a mixed recording).
    pub fn channels(&self) -> Vec<ChannelAssignment> {
        let mut channels: Vec<ChannelAssignment> = self
            .participants
            .iter()
            .filter_map(|p| Some(ChannelAssignment::new(p.channel?, p.participant_id.clone()?)))
            .collect();
        channels.sort_by(|a, b| a.channel.cmp(&b.channel).then_with(|| a.participant_id.cmp(&b.participant_id)));
        channels
    }
}

/// How a chunk was recorded (`recordingInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordingInfo {
    /// Audio, or audio and video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<RecordingContentType>,
    /// Mixed, or one channel per participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_type: Option<RecordingChannelType>,
    /// The media format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<RecordingFormatType>,
    /// The audio configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_configuration: Option<AudioConfiguration>,
    /// The video configuration, for audio and video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_configuration: Option<VideoConfiguration>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The audio of a chunk (`recordingInfo.audioConfiguration`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AudioConfiguration {
    /// Samples per second (sent as a number or as a string holding one).
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u64>,
    /// Bits per second.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// Audio channels in the file: one per participant when unmixed.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub channels: Option<u64>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The video of a chunk (`recordingInfo.videoConfiguration`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VideoConfiguration {
    /// The frame's longer side, in pixels.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub longer_side_length: Option<u64>,
    /// The frame's shorter side, in pixels.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub shorter_side_length: Option<u64>,
    /// Frames per second.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub framerate: Option<u64>,
    /// Bits per second.
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A pause within a chunk (`pauseResumeIntervals[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PauseResumeInterval {
    /// When the recording was paused, ISO 8601 as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// How long it stayed paused, in milliseconds, as sent; see [`duration`](Self::duration).
    #[serde(default, rename = "duration", skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<Number>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl PauseResumeInterval {
    /// How long the recording stayed paused, when the document gives a non-negative duration.
    pub fn duration(&self) -> Option<Duration> {
        milliseconds(self.duration_ms.as_ref())
    }
}

/// A participant recorded in a chunk (`participants[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MetadataParticipant {
    /// The participant's identifier (raw id, such as `8:acs:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    /// The participant's channel in an unmixed recording (0 to 4).
    #[serde(default, with = "lenient_u64", skip_serializing_if = "Option::is_none")]
    pub channel: Option<u64>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One channel of an unmixed recording and the participant on it; what the
/// [`DirectorySink`](crate::download::sink::DirectorySink) records in a chunk's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChannelAssignment {
    /// The channel, from 0.
    pub channel: u64,
    /// The participant's identifier.
    pub participant_id: String,
}

impl ChannelAssignment {
    /// Participant `participant_id` on `channel`.
    pub fn new(channel: u64, participant_id: impl Into<String>) -> Self {
        Self { channel, participant_id: participant_id.into() }
    }
}

fn milliseconds(value: Option<&Number>) -> Option<Duration> {
    let ms = value?.as_f64()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// A whole number sent as a JSON number or as a string holding one (`"sampleRate": "16000"`), written back as a
/// number.
mod lenient_u64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_u64(*value),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        struct Lenient;
        impl Visitor<'_> for Lenient {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number, or a string holding one")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(Some(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                u64::try_from(value).map(Some).map_err(|_| E::custom(format_args!("{value} is negative")))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                if value.fract() == 0.0 && value >= 0.0 && value < u64::MAX as f64 {
                    Ok(Some(value as u64))
                } else {
                    Err(E::custom(format_args!("{value} is not a whole number")))
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                value.trim().parse().map(Some).map_err(|_| E::custom(format_args!("`{value}` is not a whole number")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        deserializer.deserialize_any(Lenient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_with_every_field() {
        // The example of MicrosoftDocs/azure-docs
        // articles/communication-services/concepts/voice-video-calling/call-recording.md (2021), as published.
        let document = br#"{"resourceId":"29bd5ea9-e0fc-4d00-8f6f-339b1f0ee2e2","callId":"43563209-4ec6-4119-be5b-88398cda2caf",
          "chunkDocumentId":"0-eus-d11-05bf22b166dfb2119e3ff85d98906121","chunkIndex":0,
          "chunkStartTime":"2021-03-24T18:52:14.1321393Z","chunkDuration":15000.0,"pauseResumeIntervals":[],
          "recordingInfo":{"contentType":"mixed","channelType":"audioVideo","format":"mp4",
            "audioConfiguration":{"sampleRate":"16000","bitRate":128000,"channels":1},
            "videoConfiguration":{"longerSideLength":1920,"shorterSideLength":1080,"framerate":8,"bitRate":1000000}},
          "participants":[{"participantId":"8:acs:29bd5ea9-e0fc-4d00-8f6f-339b1f0ee2e2_00000008-6ad3-6540-99c6-593a0d00c367"},
            {"participantId":"8:acs:29bd5ea9-e0fc-4d00-8f6f-339b1f0ee2e2_31d5c120-90a9-409d-8f48-a3463c35f58e"}]}"#;
        let metadata: RecordingMetadata = serde_json::from_slice(document).unwrap();
        assert_eq!(metadata.chunk_index, Some(0));
        assert_eq!(metadata.chunk_duration(), Some(Duration::from_secs(15)));
        let info = metadata.recording_info.as_ref().unwrap();
        // The example swaps the content and channel types; open enums keep what was sent.
        assert_eq!(info.content_type, Some(RecordingContentType::Other("mixed".into())));
        assert_eq!(metadata.format(), Some(&RecordingFormatType::Mp4));
        let video = info.video_configuration.as_ref().unwrap();
        assert_eq!(
            (video.longer_side_length, video.shorter_side_length, video.framerate),
            (Some(1920), Some(1080), Some(8))
        );
        assert_eq!(metadata.participants.len(), 2);
        assert!(metadata.channels().is_empty(), "a mixed recording has no channel map");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let document = r#"{"chunkIndex":1,"newTopLevel":{"a":1},"recordingInfo":{"format":"wav","codec":"pcm"},
            "participants":[{"participantId":"p","channel":"3","role":"presenter"}]}"#;
        let metadata: RecordingMetadata = serde_json::from_str(document).unwrap();
        assert_eq!(metadata.other["newTopLevel"], serde_json::json!({"a": 1}));
        assert_eq!(metadata.recording_info.as_ref().unwrap().other["codec"], "pcm");
        assert_eq!(metadata.participants[0].other["role"], "presenter");
        assert_eq!(metadata.channels(), [ChannelAssignment::new(3, "p")]);
        let again: RecordingMetadata = serde_json::from_str(&serde_json::to_string(&metadata).unwrap()).unwrap();
        assert_eq!(again, metadata);
    }

    #[test]
    fn pauses_give_their_durations() {
        let metadata: RecordingMetadata = serde_json::from_str(
            r#"{"pauseResumeIntervals":[{"startTime":"2024-05-01T10:00:05Z","duration":2500},{"duration":-1}]}"#,
        )
        .unwrap();
        let durations: Vec<_> = metadata.pause_resume_intervals.iter().map(PauseResumeInterval::duration).collect();
        assert_eq!(durations, [Some(Duration::from_millis(2500)), None]);
    }
}
