use super::serve::{parse_range, route, Route};
use super::*;

#[test]
fn ranges_follow_rfc_9110() {
    let table = [
        ("bytes=0-", 10, Some(Ok((0, 10)))),
        ("bytes=3-", 10, Some(Ok((3, 10)))),
        ("bytes=3-5", 10, Some(Ok((3, 6)))),
        ("bytes=3-50", 10, Some(Ok((3, 10)))),
        ("bytes=-4", 10, Some(Ok((6, 10)))),
        ("bytes=10-", 10, Some(Err(()))),
        ("bytes=0-", 0, Some(Err(()))),
        ("bytes=5-3", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("items=0-1", 10, None),
    ];
    for (value, len, expected) in table {
        assert_eq!(parse_range(value, len), expected, "{value} of {len}");
    }
}

#[test]
fn routes_cover_storage_and_legacy_paths() {
    assert!(matches!(route("/v1/objects/a%2Fb/content/audio"), Some(Route::Content(id)) if id == "a/b"));
    assert!(matches!(route("/v1/objects/x/content/acsmetadata"), Some(Route::Metadata(id)) if id == "x"));
    assert!(matches!(route("/v1/objects/x"), Some(Route::Object(id)) if id == "x"));
    assert!(matches!(route("/recording/download/x"), Some(Route::Content(id)) if id == "x"));
    assert!(matches!(route("/recording/download/x/metadata"), Some(Route::Metadata(id)) if id == "x"));
    assert!(route("/other").is_none());
}

#[test]
fn iso8601_formats_utc() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_649_873_352_123);
    assert_eq!(iso8601(t), "2022-04-13T18:09:12.123Z");
    assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
}

#[test]
fn recordings_split_at_the_chunk_limit() {
    let storage = Storage::new("http://127.0.0.1:1".into(), 1000, "r".into());
    let recording = storage.record(RecordingSpec::new("call", 2500));
    let sizes: Vec<u64> = recording.chunks.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [1000, 1000, 44 + 2500 - 2 * 956]);
    let reasons: Vec<&str> = recording.chunks.iter().map(|c| c.end_reason.as_str()).collect();
    assert_eq!(reasons, ["ChunkMaximumSizeExceeded", "ChunkMaximumSizeExceeded", "SessionEnded"]);
    let metadata = storage.state().metadata[&recording.chunks[1].document_id].content.clone();
    let Content::Bytes(raw) = metadata else { panic!("metadata is bytes") };
    let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    for field in [
        "resourceId",
        "callId",
        "chunkDocumentId",
        "chunkIndex",
        "chunkStartTime",
        "chunkDuration",
        "pauseResumeIntervals",
        "recordingInfo",
        "participants",
    ] {
        assert!(value.get(field).is_some(), "{field}");
    }
    assert_eq!(value["chunkIndex"], 1);
    assert_eq!(value["recordingInfo"]["format"], "wav");
}

#[test]
fn two_recordings_of_one_call_with_their_own_ids_keep_their_chunks_apart() {
    let storage = Storage::new("http://127.0.0.1:1".into(), 1000, "r".into());
    let first = storage.record(RecordingSpec::new("call", 100).recording_id("rec-1"));
    let second = storage.record(RecordingSpec::new("call", 100).recording_id("rec-2"));
    assert_eq!((first.recording_id.as_str(), second.recording_id.as_str()), ("rec-1", "rec-2"));
    assert_ne!(first.chunks[0].document_id, second.chunks[0].document_id);
    assert_eq!(first.call_id, second.call_id);
    let unnamed = storage.record(RecordingSpec::new("call", 100));
    assert_eq!(unnamed.recording_id, storage.record(RecordingSpec::new("call", 100)).recording_id);
}
