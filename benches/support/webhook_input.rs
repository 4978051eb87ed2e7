//! The webhook benches' input and floor, shared by the criterion and the instruction-count benches: a compact
//! delivery built from the official three-chunk fixture, and the envelope typed as a user who knows the event type
//! would write it.

use bytes::Bytes;
use serde::Deserialize;

use acs_recording::recording::RecordingFileStatusUpdated;

/// The Event Grid envelope as a user who knows the event type would write it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct FloorEvent {
    id: String,
    #[serde(default)]
    topic: Option<String>,
    subject: String,
    event_type: String,
    event_time: String,
    data: RecordingFileStatusUpdated,
    data_version: String,
    #[serde(default)]
    metadata_version: Option<String>,
}

/// The floor: one UTF-8 check, then `serde_json::from_str` into [`FloorEvent`]s; answers the number of events
/// (dropped here, as the webhook's handler drops its events).
pub(crate) fn floor_parse(body: &[u8]) -> usize {
    let text = std::str::from_utf8(body).expect("utf-8");
    let events: Vec<FloorEvent> = serde_json::from_str(text).expect("events");
    std::hint::black_box(&events).len()
}

/// A compact batch of `count` copies of the three-chunk event, each with its own id, fields in the order Event Grid
/// sends them (`data` before `eventType`). The `&` in one URL stays escaped as `\u0026`, as Event Grid may send it.
pub(crate) fn batch(count: usize) -> Bytes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/recording_three_chunks.eventgrid.json");
    let fixture = minify(&std::fs::read_to_string(path).expect("fixture"));
    let event = fixture.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).expect("a one-event array");
    let template_id = "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01";
    assert!(event.contains(template_id));
    let events: Vec<String> =
        (0..count).map(|n| event.replace(template_id, &format!("1f6cf0b4-4b4e-4a36-9d5e-{n:012}"))).collect();
    Bytes::from(format!("[{}]", events.join(",")))
}

/// Drops the whitespace outside JSON strings, keeping everything else byte for byte.
fn minify(json: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(json.len()), false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}
