//! The Event Grid and CloudEvents envelope parser over arbitrary bodies. What it accepts is JSON with one event
//! per array element, and every recording event converts to a recording that
//! survives the journal's JSON round trip.
#![no_main]

use acs_recording::eventgrid::{EventData, Events, Schema};
use acs_recording::recording::{Recording, RecordingEvents};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let schema = if first & 1 == 0 { Schema::EventGrid } else { Schema::CloudEvents };
    let Ok(events) = Events::from_slice(schema, body) else { return };
    // serde_json's own skipping is the yardstick: it lets a lone surrogate escape (`"\udfff"`) through in a value
    // that is never read, as the envelope parser does for fields it does not know.
    let expected = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<IgnoredAny>>(body).expect("an accepted batch is a JSON array").len(),
        _ => {
            serde_json::from_slice::<IgnoredAny>(body).expect("an accepted body is JSON");
            1
        }
    };
    assert_eq!(events.len(), expected, "one event per array element");
    for event in events.iter() {
        let _ = (event.id(), event.event_type(), event.subject(), event.time(), event.data_version());
        match event.data() {
            EventData::RecordingFileStatusUpdated(data) => {
                for chunk in data.chunks() {
                    let _ = format!("{chunk:?}");
                }
            }
            EventData::Rejected(rejected) => assert!(!rejected.reason().is_empty(), "a rejection says why"),
            _ => {}
        }
    }
    let recordings = RecordingEvents::from_events(events);
    for event in &recordings {
        let recording = Recording::from_event(&event);
        assert_eq!(recording.chunks.len(), event.data().chunks().len());
        // The journal stores recordings as JSON: what it writes must read back as the same recording.
        let stored = serde_json::to_vec(&recording).expect("a recording serialises");
        let read: Recording = serde_json::from_slice(&stored).expect("a stored recording reads back");
        assert_eq!(read, recording);
    }
    let _ = recordings.rejected().count();
});
