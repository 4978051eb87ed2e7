//! The typed `Microsoft.Communication.RecordingFileStatusUpdated` event data (`SPEC.md` §3).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Declares an open string enum: known values as unit variants, anything else kept verbatim in `Other`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(other) => other,
                }
            }

            /// Reads a wire value; unknown values become `Other`. Matching is exact, as the service sends them.
            pub fn parse(value: &str) -> Self {
                match value {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Other(other) => write!(f, "{}::Other({:?})", stringify!($name), other),
                    known => write!(f, "{}::{}", stringify!($name), known.as_str()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct OpenVisitor;
                impl Visitor<'_> for OpenVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::parse(value))
                    }
                }
                deserializer.deserialize_str(OpenVisitor)
            }
        }
    };
}

open_enum! {
    /// What a recording holds (`recordingContentType`).
    RecordingContentType {
        /// Audio and video.
        AudioVideo => "AudioVideo",
        /// Audio only.
        Audio => "Audio",
    }
}

open_enum! {
    /// How the audio channels are laid out (`recordingChannelType`).
    RecordingChannelType {
        /// All participants mixed into one channel.
        Mixed => "Mixed",
        /// One channel per participant.
        Unmixed => "Unmixed",
    }
}

open_enum! {
    /// The container format of the media (`recordingFormatType`).
    RecordingFormatType {
        /// WAV audio.
        Wav => "Wav",
        /// MP3 audio.
        Mp3 => "Mp3",
        /// MP4 audio and video.
        Mp4 => "Mp4",
    }
}

open_enum! {
    /// Why a chunk ended (`endReason`).
    ChunkEndReason {
        /// The recording session ended.
        SessionEnded => "SessionEnded",
        /// The chunk reached the maximum size; the recording continues in the next chunk.
        ChunkMaximumSizeExceeded => "ChunkMaximumSizeExceeded",
        /// The chunk reached the maximum duration; the recording continues in the next chunk.
        ChunkMaximumTimeExceeded => "ChunkMaximumTimeExceeded",
        /// The chunk could not be uploaded.
        ChunkUploadFailure => "ChunkUploadFailure",
    }
}

open_enum! {
    /// Why the recorded call session ended (`sessionEndReason`).
    SessionEndReason {
        /// The call ended.
        CallEnded => "CallEnded",
        /// The participant who started the recording left.
        InitiatorLeft => "InitiatorLeft",
    }
}

/// The data of a `Microsoft.Communication.RecordingFileStatusUpdated` event: the recording's chunks, ready to
/// download.
///
/// Unknown fields are ignored. Only the chunk list and `recordingStartTime` are required, so the 2021 payload (no
/// locations, no formats) parses too.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFileStatusUpdated {
    #[serde(
        rename = "recordingStorageInfo",
        deserialize_with = "chunks_in_index_order",
        serialize_with = "storage_info"
    )]
    chunks: Vec<RecordingChunk>,
    recording_start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording_duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording_content_type: Option<RecordingContentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording_channel_type: Option<RecordingChannelType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording_format_type: Option<RecordingFormatType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_end_reason: Option<SessionEndReason>,
}

impl RecordingFileStatusUpdated {
    /// Builds event data by hand (for tests and for replaying stored events); chunks are sorted by index.
    pub fn new(recording_start_time: impl Into<String>, mut chunks: Vec<RecordingChunk>) -> Self {
        chunks.sort_by_key(|chunk| chunk.index);
        Self {
            chunks,
            recording_start_time: recording_start_time.into(),
            recording_duration_ms: None,
            recording_content_type: None,
            recording_channel_type: None,
            recording_format_type: None,
            session_end_reason: None,
        }
    }

    /// The recording's chunks, in `index` order: download all of them, in this order (`SPEC.md` §3).
    pub fn chunks(&self) -> &[RecordingChunk] {
        &self.chunks
    }

    /// When the recording started, as the ISO 8601 string the service sent.
    pub fn recording_start_time(&self) -> &str {
        &self.recording_start_time
    }

    /// The recording's duration in milliseconds, when sent.
    pub fn recording_duration_ms(&self) -> Option<u64> {
        self.recording_duration_ms
    }

    /// The recording's duration, when sent.
    pub fn recording_duration(&self) -> Option<Duration> {
        self.recording_duration_ms.map(Duration::from_millis)
    }

    /// Audio only, or audio and video, when sent.
    pub fn content_type(&self) -> Option<&RecordingContentType> {
        self.recording_content_type.as_ref()
    }

    /// Mixed or unmixed channels, when sent.
    pub fn channel_type(&self) -> Option<&RecordingChannelType> {
        self.recording_channel_type.as_ref()
    }

    /// The media format, when sent.
    pub fn format_type(&self) -> Option<&RecordingFormatType> {
        self.recording_format_type.as_ref()
    }

    /// Why the call session ended, when sent.
    pub fn session_end_reason(&self) -> Option<&SessionEndReason> {
        self.session_end_reason.as_ref()
    }
}

/// One stored piece of a recording. Recordings over 1.5 GB arrive as several chunks (`SPEC.md` §3).
///
/// `Debug` shows the locations without their query, which may carry a signature.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingChunk {
    document_id: String,
    index: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_reason: Option<ChunkEndReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete_location: Option<String>,
}

impl RecordingChunk {
    /// A chunk with only its document id and index, as in the 2021 payload.
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

    /// Sets why the chunk ended.
    pub fn with_end_reason(mut self, reason: ChunkEndReason) -> Self {
        self.end_reason = Some(reason);
        self
    }

    /// Sets the media URL (`contentLocation`).
    pub fn with_content_location(mut self, url: impl Into<String>) -> Self {
        self.content_location = Some(url.into());
        self
    }

    /// Sets the metadata document URL (`metadataLocation`).
    pub fn with_metadata_location(mut self, url: impl Into<String>) -> Self {
        self.metadata_location = Some(url.into());
        self
    }

    /// Sets the URL that deletes the chunk (`deleteLocation`).
    pub fn with_delete_location(mut self, url: impl Into<String>) -> Self {
        self.delete_location = Some(url.into());
        self
    }

    /// Sets the media, metadata and delete URLs.
    pub fn with_locations(
        mut self,
        content: impl Into<String>,
        metadata: impl Into<String>,
        delete: impl Into<String>,
    ) -> Self {
        self.content_location = Some(content.into());
        self.metadata_location = Some(metadata.into());
        self.delete_location = Some(delete.into());
        self
    }

    /// The storage document id (an opaque string: never use it in a path unsanitised).
    pub fn document_id(&self) -> &str {
        &self.document_id
    }

    /// The chunk's position in the whole recording (`int64` on the wire).
    pub fn index(&self) -> i64 {
        self.index
    }

    /// Why the chunk ended, when sent.
    pub fn end_reason(&self) -> Option<&ChunkEndReason> {
        self.end_reason.as_ref()
    }

    /// The media URL; absent in the 2021 payload, where it is built from the endpoint (`SPEC.md` §3).
    pub fn content_location(&self) -> Option<&str> {
        self.content_location.as_deref()
    }

    /// The metadata document URL, when sent.
    pub fn metadata_location(&self) -> Option<&str> {
        self.metadata_location.as_deref()
    }

    /// The URL that deletes the chunk's storage, when sent. It may be on another host: never derive it.
    pub fn delete_location(&self) -> Option<&str> {
        self.delete_location.as_deref()
    }
}

impl fmt::Debug for RecordingChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |url: &Option<String>| url.as_deref().map(crate::redact::redact_url);
        f.debug_struct("RecordingChunk")
            .field("document_id", &self.document_id)
            .field("index", &self.index)
            .field("end_reason", &self.end_reason)
            .field("content_location", &shown(&self.content_location))
            .field("metadata_location", &shown(&self.metadata_location))
            .field("delete_location", &shown(&self.delete_location))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageInfo {
    recording_chunks: Vec<RecordingChunk>,
}

fn chunks_in_index_order<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<RecordingChunk>, D::Error> {
    let mut chunks = StorageInfo::deserialize(deserializer)?.recording_chunks;
    // Chunks must be downloaded in `index` order (SPEC.md §3); the service usually sends them sorted already,
    // and a stable sort of a sorted list is one linear pass.
    chunks.sort_by_key(|chunk| chunk.index);
    Ok(chunks)
}

fn storage_info<S: Serializer>(chunks: &[RecordingChunk], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct StorageInfoRef<'a> {
        recording_chunks: &'a [RecordingChunk],
    }
    StorageInfoRef { recording_chunks: chunks }.serialize(serializer)
}

/// The ids in a recording event's subject.
///
/// Three forms exist (`SPEC.md` §3): `/recording/call/{callId}/serverCallId/{serverCallId}/recordingId/{recordingId}`,
/// the older `/recording/call/{callId}/recordingId/{recordingId}`, and the 2021 `/recording/call/{callId}`.
///
/// ```
/// use acs_recording::recording::RecordingSubject;
///
/// let s = RecordingSubject::parse("/recording/call/c1/serverCallId/aGk/recordingId/r1").unwrap();
/// assert_eq!((s.call_id(), s.server_call_id(), s.recording_id()), ("c1", Some("aGk"), Some("r1")));
/// assert!(RecordingSubject::parse("/chat/thread/1").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordingSubject {
    call_id: String,
    server_call_id: Option<String>,
    recording_id: Option<String>,
}

impl RecordingSubject {
    /// Parses a subject; `None` when it is not a recording subject or an id is empty.
    pub fn parse(subject: &str) -> Option<Self> {
        const SERVER_CALL: &str = "/serverCallId/";
        const RECORDING: &str = "/recordingId/";
        let rest = subject.strip_prefix("/recording/call/")?;
        // Server call ids are base64 and may hold `/`, so split on the markers rather than on every `/`.
        let (before_recording, recording_id) = match rest.rfind(RECORDING) {
            Some(at) => (&rest[..at], Some(&rest[at + RECORDING.len()..])),
            None => (rest, None),
        };
        let (call_id, server_call_id) = match before_recording.find(SERVER_CALL) {
            Some(at) => (&before_recording[..at], Some(&before_recording[at + SERVER_CALL.len()..])),
            None => (before_recording, None),
        };
        let non_empty = |id: &str| !id.is_empty();
        if !non_empty(call_id) || call_id.contains('/') || !server_call_id.is_none_or(non_empty) {
            return None;
        }
        if !recording_id.is_none_or(|id| non_empty(id) && !id.contains('/')) {
            return None;
        }
        Some(Self {
            call_id: call_id.to_owned(),
            server_call_id: server_call_id.map(str::to_owned),
            recording_id: recording_id.map(str::to_owned),
        })
    }

    /// The call id.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The server call id, in the newest subject form.
    pub fn server_call_id(&self) -> Option<&str> {
        self.server_call_id.as_deref()
    }

    /// The recording id, absent in the 2021 form.
    pub fn recording_id(&self) -> Option<&str> {
        self.recording_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_forms_parse_into_their_ids() {
        type Ids<'a> = (&'a str, Option<&'a str>, Option<&'a str>);
        let cases: [(&str, Option<Ids<'_>>); 9] = [
            ("/recording/call/c1/serverCallId/s1/recordingId/r1", Some(("c1", Some("s1"), Some("r1")))),
            ("/recording/call/c1/serverCallId/a/b+c=/recordingId/r1", Some(("c1", Some("a/b+c="), Some("r1")))),
            ("/recording/call/c1/recordingId/r1", Some(("c1", None, Some("r1")))),
            ("/recording/call/c1", Some(("c1", None, None))),
            ("/recording/call/", None),
            ("/recording/call/c1/recordingId/", None),
            ("/recording/call/c1/serverCallId//recordingId/r1", None),
            ("/recording/call/c1/extra", None),
            ("/chat/thread/1", None),
        ];
        for (subject, expected) in cases {
            let parsed = RecordingSubject::parse(subject);
            let got = parsed.as_ref().map(|s| (s.call_id(), s.server_call_id(), s.recording_id()));
            assert_eq!(got, expected, "{subject}");
        }
    }

    #[test]
    fn open_enums_keep_unknown_values_verbatim() {
        let format: RecordingFormatType = serde_json::from_str(r#""Ogg""#).unwrap();
        assert_eq!(format, RecordingFormatType::Other("Ogg".into()));
        assert_eq!(format.as_str(), "Ogg");
        assert_eq!(serde_json::to_string(&format).unwrap(), r#""Ogg""#);
        let known: RecordingFormatType = serde_json::from_str(r#""Mp4""#).unwrap();
        assert_eq!(known, RecordingFormatType::Mp4);
        assert_eq!(format!("{known:?}"), "RecordingFormatType::Mp4");
    }

    #[test]
    fn chunks_come_out_in_index_order() {
        let data: RecordingFileStatusUpdated = serde_json::from_str(
            r#"{"recordingStorageInfo":{"recordingChunks":[
                {"documentId":"c","index":2},{"documentId":"a","index":0},{"documentId":"b","index":1}]},
                "recordingStartTime":"2021-07-27T15:20:23.6089755Z","unknownField":[1,2]}"#,
        )
        .unwrap();
        let ids: Vec<_> = data.chunks().iter().map(RecordingChunk::document_id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(data.content_type(), None);
    }

    #[test]
    fn a_chunk_debug_never_shows_the_query_of_its_locations() {
        let chunk = RecordingChunk::new("d", 0).with_locations(
            "https://a.blob.core.windows.net/c/d?sv=1&sig=SECRET",
            "https://a.blob.core.windows.net/c/d.json?sig=SECRET",
            "https://a.blob.core.windows.net/c/d?sig=SECRET",
        );
        let shown = format!("{:?}", crate::recording::Recording::new("call").chunk(chunk));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#"content_location: Some("https://a.blob.core.windows.net/c/d?…")"#), "{shown}");
    }

    #[test]
    fn serialized_data_parses_back_to_the_same_value() {
        let data = RecordingFileStatusUpdated::new(
            "2021-07-27T15:20:23Z",
            vec![RecordingChunk::new("d1", 0).with_end_reason(ChunkEndReason::SessionEnded)],
        );
        let text = serde_json::to_string(&data).unwrap();
        assert_eq!(
            text,
            r#"{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d1","index":0,"endReason":"SessionEnded"}]},"recordingStartTime":"2021-07-27T15:20:23Z"}"#
        );
        assert_eq!(serde_json::from_str::<RecordingFileStatusUpdated>(&text).unwrap(), data);
    }
}
