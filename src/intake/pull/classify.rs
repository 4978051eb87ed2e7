//! What a received event is to the recorder, decided from its text alone.

use crate::eventgrid::{Events, Schema};
use crate::recording::RecordingEvents;

/// A received event, classified.
#[derive(Debug)]
pub(super) enum Classified {
    /// Recording events to admit.
    Recording(RecordingEvents),
    /// Another event type: nothing to record, acknowledge it.
    Other,
    /// Never a recording event: not a CloudEvent, or a recording event whose data does not fit. The reason.
    Malformed(String),
}

/// Parses one CloudEvent once and classifies it.
pub(super) fn classify(text: &[u8]) -> Classified {
    let events = match Events::from_slice(Schema::CloudEvents, text) {
        Ok(events) => events,
        Err(error) => return Classified::Malformed(format!("not a CloudEvent: {error}")),
    };
    let recording = RecordingEvents::from_events(events);
    if let Some((_, rejected)) = recording.rejected().next() {
        return Classified::Malformed(rejected.reason().to_owned());
    }
    match recording.is_empty() {
        true => Classified::Other,
        false => Classified::Recording(recording),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDING: &str = r#"{"id":"e1","source":"/acs","specversion":"1.0",
        "type":"Microsoft.Communication.RecordingFileStatusUpdated",
        "subject":"/recording/call/c1/serverCallId/s1/recordingId/r1","time":"2026-11-26T08:00:00Z",
        "data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]},
        "recordingStartTime":"2026-11-26T07:59:00Z"}}"#;

    #[test]
    fn each_kind_of_event_is_told_apart() {
        assert!(matches!(classify(RECORDING.as_bytes()), Classified::Recording(events) if events.len() == 1));
        let other = r#"{"id":"e2","source":"/acs","specversion":"1.0","type":"Contoso.Other","data":{}}"#;
        assert!(matches!(classify(other.as_bytes()), Classified::Other));
        let bad_data = RECORDING.replace(r#"{"documentId":"d0","index":0}"#, r#"{"index":"zero"}"#);
        assert!(
            matches!(classify(bad_data.as_bytes()), Classified::Malformed(reason) if reason.contains("RecordingFileStatusUpdated"))
        );
        assert!(matches!(classify(b"[1,2"), Classified::Malformed(reason) if reason.starts_with("not a CloudEvent")));
        assert!(matches!(classify(b"\"text\""), Classified::Malformed(_)));
    }
}
