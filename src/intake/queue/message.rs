//! A queue message's text into events: plain JSON or base64 of JSON, in the Event Grid or the CloudEvents schema.

use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::eventgrid::{Events, Schema};

/// Why a message can never be an event, as journaled with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable(pub String);

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Undecodable {}

/// The events of a queue message's text.
///
/// 1. Text that starts with `{` or `[` (after white space) is JSON, as older deliveries wrote it; any other text is
///    the standard base64 of JSON, as Event Grid's storage queue delivery writes it today.
/// 2. The schema comes from the event's fields: one with `specversion` is a CloudEvent, any other an Event Grid
///    event. A message holds one event; an array is read too.
///
/// ```
/// use acs_recording::eventgrid::Schema;
/// use acs_recording::intake::queue::decode_message;
///
/// let plain = r#"{"specversion":"1.0","id":"e1","source":"/s","type":"Other.Event","data":{}}"#;
/// let events = decode_message(plain)?;
/// assert_eq!((events.schema(), events.len()), (Schema::CloudEvents, 1));
/// assert_eq!(decode_message("not base64!").unwrap_err().to_string(), "the message is neither JSON nor base64");
/// # Ok::<(), acs_recording::intake::queue::Undecodable>(())
/// ```
pub fn decode_message(text: &str) -> Result<Events, Undecodable> {
    let trimmed = text.trim_start();
    let decoded;
    let json: &[u8] = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        trimmed.as_bytes()
    } else {
        decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| Undecodable("the message is neither JSON nor base64".to_owned()))?;
        &decoded
    };
    let schema = schema_of(json)?;
    Events::from_slice(schema, json).map_err(|error| Undecodable(format!("the message is not an event: {error}")))
}

/// Reads only whether the first event names `specversion`; everything else is skipped unparsed.
fn schema_of(json: &[u8]) -> Result<Schema, Undecodable> {
    #[derive(Deserialize)]
    struct Fields {
        specversion: Option<IgnoredAny>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Probe {
        // First: serde reads a struct from an array too (its fields by position), so `One` would take an array.
        Many(Vec<Fields>),
        One(Fields),
    }
    let probe: Probe = serde_json::from_slice(json)
        .map_err(|_| Undecodable("the message is not a JSON event object or array".to_owned()))?;
    let cloud = match probe {
        Probe::One(fields) => fields.specversion.is_some(),
        Probe::Many(events) => events.first().is_some_and(|fields| fields.specversion.is_some()),
    };
    Ok(if cloud { Schema::CloudEvents } else { Schema::EventGrid })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `RecordingFileStatusUpdated` event in the Event Grid schema, the shape of the ACS documentation's sample.
    const EVENT_GRID: &str = r#"{"id":"e1","topic":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/communicationServices/acs","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1","eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z","dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0,"endReason":"SessionEnded","contentLocation":"https://storage.asm.skype.com/v1/objects/d0/content/video","metadataLocation":"https://storage.asm.skype.com/v1/objects/d0/content/acsmetadata"}]},"recordingStartTime":"2026-11-26T07:59:00Z","recordingDurationMs":1000,"sessionEndReason":"CallEnded"}}"#;

    /// The same event as a CloudEvent.
    const CLOUD_EVENT: &str = r#"{"specversion":"1.0","id":"e2","source":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/communicationServices/acs","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1","type":"Microsoft.Communication.RecordingFileStatusUpdated","time":"2026-11-26T08:00:00Z","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0,"endReason":"SessionEnded","contentLocation":"https://storage.asm.skype.com/v1/objects/d0/content/video","metadataLocation":"https://storage.asm.skype.com/v1/objects/d0/content/acsmetadata"}]},"recordingStartTime":"2026-11-26T07:59:00Z","recordingDurationMs":1000,"sessionEndReason":"CallEnded"}}"#;

    fn base64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn plain_and_base64_in_both_schemas() {
        let table = [
            (EVENT_GRID.to_owned(), Schema::EventGrid, "e1"),
            (base64(EVENT_GRID), Schema::EventGrid, "e1"),
            (CLOUD_EVENT.to_owned(), Schema::CloudEvents, "e2"),
            (base64(CLOUD_EVENT), Schema::CloudEvents, "e2"),
            (format!("  [{EVENT_GRID}]"), Schema::EventGrid, "e1"),
            (base64(&format!("[{CLOUD_EVENT}]")), Schema::CloudEvents, "e2"),
        ];
        for (text, schema, id) in table {
            let events = decode_message(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(events.schema(), schema, "{text}");
            assert_eq!(events.len(), 1);
            let event = &events.as_slice()[0];
            assert_eq!(event.id(), id);
            assert!(event.recording_file_status_updated().is_some(), "{text}");
        }
    }

    #[test]
    fn garbage_says_why() {
        let table = [
            ("%%%", "the message is neither JSON nor base64"),
            ("{oops", "the message is not a JSON event object or array"),
            ("\"a string\"", "the message is neither JSON nor base64"),
        ];
        for (text, reason) in table {
            assert_eq!(decode_message(text).unwrap_err().0, reason, "{text}");
        }
        // Valid base64 of something that is not JSON.
        assert_eq!(decode_message(&base64("hello")).unwrap_err().0, "the message is not a JSON event object or array");
        // JSON that is not an event.
        let reason = decode_message(r#"{"hello":"world"}"#).unwrap_err().0;
        assert!(reason.starts_with("the message is not an event: "), "{reason}");
    }
}
