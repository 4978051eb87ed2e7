//! `RecordingFileStatusUpdated` data over arbitrary JSON: accepted data gives chunks in index order whose Debug
//! output never shows a query string, and whose serialised form reads back the same.
#![no_main]

use acs_recording::recording::{RecordingChunk, RecordingFileStatusUpdated, RecordingSubject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(subject) = std::str::from_utf8(data) {
        if let Some(parsed) = RecordingSubject::parse(subject) {
            let _ = (parsed.call_id(), parsed.server_call_id(), parsed.recording_id());
        }
    }
    let Ok(event) = serde_json::from_slice::<RecordingFileStatusUpdated>(data) else { return };
    let chunks = event.chunks();
    assert!(chunks.windows(2).all(|pair| pair[0].index() <= pair[1].index()), "chunks come in index order");
    for chunk in chunks {
        let _ = format!("{chunk:?}");
        for location in [chunk.content_location(), chunk.metadata_location(), chunk.delete_location()].into_iter().flatten() {
            let Some((_, query)) = location.split_once('?') else { continue };
            if query.is_empty() || query.starts_with('…') {
                continue;
            }
            // Alone in a chunk, so that no other field can hold the same text.
            let alone = RecordingChunk::new("d", 0).with_content_location(location);
            let shown = format!("{alone:?}");
            assert!(!shown.contains(&format!("?{query}")), "Debug shows no query string: {shown}");
        }
    }
    let again = serde_json::to_vec(&event).expect("event data serialises");
    let read: RecordingFileStatusUpdated = serde_json::from_slice(&again).expect("serialised data reads back");
    assert_eq!(read.chunks().len(), chunks.len());
    assert_eq!(serde_json::to_vec(&read).unwrap(), again, "a second round trip changes nothing");
});
