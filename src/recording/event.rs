//! The typed `Microsoft.Communication.RecordingFileStatusUpdated` event data: the recording's chunks and, for a
//! recording exported to the customer's own storage, where it went.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::chunk::{chunks_in_index_order, storage_info, RecordingChunk};
use super::lenient::{Lenient, LenientSeed};
use super::values::{
    RecordingChannelType, RecordingContentType, RecordingFormatType, RecordingStorageType, SessionEndReason,
};

/// The data of a `Microsoft.Communication.RecordingFileStatusUpdated` event: the recording's chunks, ready to
/// download.
///
/// Only the chunk list is required: `recordingStartTime` and the content, channel and format types, which recent
/// API versions call required, stay optional so that the 2021 payload parses. Fields this version does not know
/// are kept in [`other`](Self::other), in one pass.
///
/// ```
/// use acs_recording::recording::{RecordingFileStatusUpdated, RecordingStorageType};
///
/// let data: RecordingFileStatusUpdated = serde_json::from_str(r#"{
///     "storageType": "AzureBlob", "recordingId": "r1", "futureField": [1],
///     "recordingStorageInfo": {"recordingChunks": [{"documentId": "d", "index": 0}]}}"#)?;
/// assert_eq!(data.storage_type(), Some(&RecordingStorageType::AzureBlob));
/// assert_eq!(data.recording_id(), Some("r1"));
/// assert_eq!(data.recording_start_time(), None);
/// assert_eq!(data.other()["futureField"], serde_json::json!([1]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFileStatusUpdated {
    #[serde(rename = "recordingStorageInfo", serialize_with = "storage_info")]
    chunks: Vec<RecordingChunk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_content_type: Option<RecordingContentType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_channel_type: Option<RecordingChannelType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_format_type: Option<RecordingFormatType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_end_reason: Option<SessionEndReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_type: Option<RecordingStorageType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_id: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
    /// Known fields whose value did not fit their type, one bit per [`OPTIONAL_FIELDS`] entry; their values are in
    /// `other`, as sent.
    #[serde(skip)]
    malformed: u16,
}

impl RecordingFileStatusUpdated {
    /// Builds event data by hand (for tests and for replaying stored events); chunks are sorted by index.
    pub fn new(recording_start_time: impl Into<String>, mut chunks: Vec<RecordingChunk>) -> Self {
        chunks.sort_by_key(|chunk| chunk.index());
        Self {
            chunks,
            recording_start_time: Some(recording_start_time.into()),
            recording_duration_ms: None,
            recording_content_type: None,
            recording_channel_type: None,
            recording_format_type: None,
            session_end_reason: None,
            storage_type: None,
            recording_id: None,
            other: Map::new(),
            malformed: 0,
        }
    }

    /// Sets where ACS put the recording (`storageType`) and its id (`recordingId`), as a bring-your-own-storage
    /// event carries them.
    pub fn with_storage(mut self, storage_type: RecordingStorageType, recording_id: impl Into<String>) -> Self {
        self.storage_type = Some(storage_type);
        self.recording_id = Some(recording_id.into());
        self
    }

    /// The recording's chunks, in `index` order: a recording is all of them, in this order.
    pub fn chunks(&self) -> &[RecordingChunk] {
        &self.chunks
    }

    /// When the recording started, as the ISO 8601 string the service sent (absent in some older payloads).
    pub fn recording_start_time(&self) -> Option<&str> {
        self.recording_start_time.as_deref()
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

    /// Where ACS put the recording (`storageType`), when sent: a bring-your-own-storage recording names the
    /// customer's container ([`RecordingStorageType::is_external`]).
    pub fn storage_type(&self) -> Option<&RecordingStorageType> {
        self.storage_type.as_ref()
    }

    /// The recording id (`recordingId`), when sent in the data; the subject may carry it too.
    pub fn recording_id(&self) -> Option<&str> {
        self.recording_id.as_deref()
    }

    /// The fields this version does not know, as sent; also the known fields whose value did not fit their type
    /// (see [`malformed_fields`](Self::malformed_fields)).
    pub fn other(&self) -> &Map<String, Value> {
        &self.other
    }

    /// The known fields whose value did not fit their type (`recordingDurationMs: -1`, say): the event is still a
    /// recording to download (only the chunk list is essential), and each such value is kept in
    /// [`other`](Self::other) as sent.
    pub fn malformed_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        OPTIONAL_FIELDS.iter().enumerate().filter(|(bit, _)| self.malformed & (1 << bit) != 0).map(|(_, name)| *name)
    }
}

/// The known keys of the data, read without allocating.
enum Key<'de> {
    StorageInfo,
    StartTime,
    DurationMs,
    ContentType,
    ChannelType,
    FormatType,
    SessionEndReason,
    StorageType,
    RecordingId,
    Other(Cow<'de, str>),
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::known(value).unwrap_or(Key::Other(Cow::Borrowed(value))))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key::known(value).unwrap_or_else(|| Key::Other(Cow::Owned(value.to_owned()))))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl Key<'_> {
    fn known(name: &str) -> Option<Self> {
        Some(match name {
            "recordingStorageInfo" => Key::StorageInfo,
            "recordingStartTime" => Key::StartTime,
            "recordingDurationMs" => Key::DurationMs,
            "recordingContentType" => Key::ContentType,
            "recordingChannelType" => Key::ChannelType,
            "recordingFormatType" => Key::FormatType,
            "sessionEndReason" => Key::SessionEndReason,
            "storageType" => Key::StorageType,
            "recordingId" => Key::RecordingId,
            _ => return None,
        })
    }
}

/// Reads the chunk list with [`chunks_in_index_order`].
struct ChunksSeed;

impl<'de> DeserializeSeed<'de> for ChunksSeed {
    type Value = Vec<RecordingChunk>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        chunks_in_index_order(deserializer)
    }
}

/// The known fields besides the chunk list, in the order of their bits in `malformed`.
const OPTIONAL_FIELDS: [&str; 8] = [
    "recordingStartTime",
    "recordingDurationMs",
    "recordingContentType",
    "recordingChannelType",
    "recordingFormatType",
    "sessionEndReason",
    "storageType",
    "recordingId",
];

/// Reads a non-essential known field straight into its type: a value that does not fit it is kept in `other` as
/// sent and the field noted as malformed, so that an odd field never costs the recording its download.
fn once<'de, A: MapAccess<'de>, T: serde::de::DeserializeOwned>(
    slot: &mut Option<T>,
    field: usize,
    map: &mut A,
    (other, malformed): (&mut Map<String, Value>, &mut u16),
) -> Result<(), A::Error> {
    let (name, bit) = (OPTIONAL_FIELDS[field], 1u16 << field);
    if slot.is_some() || *malformed & bit != 0 {
        return Err(de::Error::duplicate_field(name));
    }
    match map.next_value_seed(LenientSeed::<T>::new())? {
        Lenient::Typed(typed) => *slot = typed,
        Lenient::Kept(value) => {
            *malformed |= bit;
            other.insert(name.to_owned(), value);
        }
    }
    Ok(())
}

// Hand-written rather than derived: serde's `flatten` would buffer the whole data before typing it, where this
// visitor types the known fields as they come and keeps only the unknown ones as JSON values.
impl<'de> Deserialize<'de> for RecordingFileStatusUpdated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = RecordingFileStatusUpdated;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("recording event data")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut chunks = None;
                let mut data = RecordingFileStatusUpdated {
                    chunks: Vec::new(),
                    recording_start_time: None,
                    recording_duration_ms: None,
                    recording_content_type: None,
                    recording_channel_type: None,
                    recording_format_type: None,
                    session_end_reason: None,
                    storage_type: None,
                    recording_id: None,
                    other: Map::new(),
                    malformed: 0,
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key {
                        Key::StorageInfo => {
                            if chunks.is_some() {
                                return Err(de::Error::duplicate_field("recordingStorageInfo"));
                            }
                            chunks = Some(map.next_value_seed(ChunksSeed)?);
                        }
                        Key::StartTime => {
                            once(&mut data.recording_start_time, 0, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::DurationMs => {
                            once(&mut data.recording_duration_ms, 1, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::ContentType => {
                            once(&mut data.recording_content_type, 2, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::ChannelType => {
                            once(&mut data.recording_channel_type, 3, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::FormatType => {
                            once(&mut data.recording_format_type, 4, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::SessionEndReason => {
                            once(&mut data.session_end_reason, 5, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::StorageType => {
                            once(&mut data.storage_type, 6, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::RecordingId => {
                            once(&mut data.recording_id, 7, &mut map, (&mut data.other, &mut data.malformed))?
                        }
                        Key::Other(name) => {
                            let value = map.next_value::<Value>()?;
                            data.other.insert(name.into_owned(), value);
                        }
                    }
                }
                data.chunks = chunks.ok_or_else(|| de::Error::missing_field("recordingStorageInfo"))?;
                Ok(data)
            }
        }
        deserializer.deserialize_map(DataVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::ChunkEndReason;

    #[test]
    fn chunks_come_out_in_index_order_and_unknown_fields_are_kept() {
        let data: RecordingFileStatusUpdated = serde_json::from_str(
            r#"{"recordingStorageInfo":{"recordingChunks":[
                {"documentId":"c","index":2},{"documentId":"a","index":0},{"documentId":"b","index":1}]},
                "recordingStartTime":"2021-07-27T15:20:23.6089755Z","unknownField":[1,2]}"#,
        )
        .unwrap();
        let ids: Vec<_> = data.chunks().iter().map(RecordingChunk::document_id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(data.content_type(), None);
        assert_eq!(data.other().get("unknownField"), Some(&serde_json::json!([1, 2])));
        let again: RecordingFileStatusUpdated = serde_json::from_str(&serde_json::to_string(&data).unwrap()).unwrap();
        assert_eq!(again, data);
    }

    #[test]
    fn only_the_chunk_list_is_required() {
        let data: RecordingFileStatusUpdated =
            serde_json::from_str(r#"{"recordingStorageInfo":{"recordingChunks":[]},"recordingFormatType":null}"#)
                .unwrap();
        assert_eq!((data.recording_start_time(), data.format_type()), (None, None));
        let error = serde_json::from_str::<RecordingFileStatusUpdated>(r#"{"recordingStartTime":"t"}"#).unwrap_err();
        assert!(error.to_string().starts_with("missing field `recordingStorageInfo`"), "{error}");
        let twice = r#"{"recordingId":"a","recordingId":"b","recordingStorageInfo":{"recordingChunks":[]}}"#;
        let error = serde_json::from_str::<RecordingFileStatusUpdated>(twice).unwrap_err();
        assert!(error.to_string().starts_with("duplicate field `recordingId`"), "{error}");
    }

    /// Every non-essential field against every JSON kind: the typed value when the kind fits the field, `None` for
    /// `null`, and otherwise the value kept in `other` as sent with the field noted as malformed. Each case is read
    /// from text (borrowed and escaped strings) and from a `Value` (owned strings), as both reach this type.
    #[test]
    fn every_known_field_keeps_a_value_of_any_other_kind_as_sent_and_notes_it() {
        type Typed = fn(&RecordingFileStatusUpdated) -> Option<String>;
        let fields: [(&str, Typed); 8] = [
            ("recordingStartTime", |d| d.recording_start_time().map(str::to_owned)),
            ("recordingDurationMs", |d| d.recording_duration_ms().map(|v| v.to_string())),
            ("recordingContentType", |d| d.content_type().map(|v| v.as_str().to_owned())),
            ("recordingChannelType", |d| d.channel_type().map(|v| v.as_str().to_owned())),
            ("recordingFormatType", |d| d.format_type().map(|v| v.as_str().to_owned())),
            ("sessionEndReason", |d| d.session_end_reason().map(|v| v.as_str().to_owned())),
            ("storageType", |d| d.storage_type().map(|v| v.as_str().to_owned())),
            ("recordingId", |d| d.recording_id().map(str::to_owned)),
        ];
        // (JSON text, whether it is a string, whether it is a `u64`)
        let kinds = [
            ("null", false, false),
            (r#""Mixed""#, true, false),
            (r#""esc\"aped\u00e9""#, true, false),
            (r#""12""#, true, false),
            ("12", false, true),
            ("0", false, true),
            ("18446744073709551615", false, true),
            ("18446744073709551616", false, false),
            ("-1", false, false),
            ("1.5", false, false),
            ("12.0", false, false),
            ("true", false, false),
            ("[1,\"a\"]", false, false),
            ("[]", false, false),
            (r#"{"a":{"b":[null]}}"#, false, false),
            ("{}", false, false),
        ];
        for (bit, (field, typed)) in fields.iter().enumerate() {
            for (text, is_string, is_u64) in kinds {
                let sent: Value = serde_json::from_str(text).unwrap();
                let json = format!(r#"{{"recordingStorageInfo":{{"recordingChunks":[]}},"{field}":{text}}}"#);
                let from_text: RecordingFileStatusUpdated = serde_json::from_str(&json).unwrap();
                let from_value: RecordingFileStatusUpdated =
                    serde_json::from_value(serde_json::from_str(&json).unwrap()).unwrap();
                for data in [from_text, from_value] {
                    let case = format!("{field}: {text}");
                    let fits = if bit == 1 { is_u64 } else { is_string };
                    if sent.is_null() {
                        assert_eq!(typed(&data), None, "{case}");
                        assert!(data.other().is_empty() && data.malformed_fields().next().is_none(), "{case}");
                    } else if fits {
                        let expected = sent.as_str().map_or_else(|| sent.to_string(), str::to_owned);
                        assert_eq!(typed(&data), Some(expected), "{case}");
                        assert!(data.other().is_empty() && data.malformed_fields().next().is_none(), "{case}");
                    } else {
                        assert_eq!(typed(&data), None, "{case}");
                        assert_eq!(data.other().get(*field), Some(&sent), "{case}");
                        assert_eq!(data.other().len(), 1, "{case}");
                        assert_eq!(data.malformed_fields().collect::<Vec<_>>(), [*field], "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_field_sent_twice_is_refused_even_when_its_first_value_did_not_fit() {
        for twice in [r#""recordingDurationMs":-1,"recordingDurationMs":5"#, r#""storageType":1,"storageType":"x""#] {
            let json = format!(r#"{{{twice},"recordingStorageInfo":{{"recordingChunks":[]}}}}"#);
            let error = serde_json::from_str::<RecordingFileStatusUpdated>(&json).unwrap_err();
            assert!(error.to_string().starts_with("duplicate field `"), "{error}");
        }
        // A syntax error inside a value of the wrong kind is still an error, not a malformed field.
        let broken = r#"{"recordingId":{"a":tru},"recordingStorageInfo":{"recordingChunks":[]}}"#;
        let error = serde_json::from_str::<RecordingFileStatusUpdated>(broken).unwrap_err();
        assert!(error.is_syntax(), "{error}");
    }

    #[test]
    fn a_number_too_large_for_its_field_is_kept_and_writes_back_the_same_twice() {
        // Past u64, so kept as sent (a float); its text must not drift from one round trip to the next.
        let text = r#"{"recordingStorageInfo":{"recordingChunks":[]},"recordingDurationMs":662018446744073709552018446744073709551615}"#;
        let data: RecordingFileStatusUpdated = serde_json::from_str(text).unwrap();
        assert_eq!(data.malformed_fields().collect::<Vec<_>>(), ["recordingDurationMs"]);
        let once = serde_json::to_string(&data).unwrap();
        let twice = serde_json::to_string(&serde_json::from_str::<RecordingFileStatusUpdated>(&once).unwrap()).unwrap();
        assert_eq!(once, twice);
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
