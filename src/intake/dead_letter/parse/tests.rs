use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/dead_letter/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn events(name: &str) -> Vec<DeadLetteredEvent> {
    parse_blob(&fixture(name)).unwrap().into_iter().map(Result::unwrap).collect()
}

fn only(event: &DeadLetteredEvent) -> &crate::eventgrid::Event {
    assert_eq!(event.events.len(), 1);
    &event.events.as_slice()[0]
}

#[test]
fn official_basic_event_grid_example_keeps_its_properties() {
    let parsed = events("official_basic.eventgrid.json");
    assert_eq!(parsed.len(), 1);
    let event = only(&parsed[0]);
    assert_eq!(
        (event.id(), event.event_type()),
        ("93902694-901e-008f-6f95-7153a806873c", "Microsoft.Storage.BlobCreated")
    );
    assert_eq!(parsed[0].tier, Tier::Basic);
    assert_eq!(parsed[0].events.schema(), Schema::EventGrid);
    assert_eq!(
        parsed[0].properties,
        DeadLetterProperties {
            reason: Some("MaxDeliveryAttemptsExceeded".into()),
            delivery_attempts: Some(1),
            last_outcome: Some("NotFound".into()),
            last_http_status: None,
            published: Some("2020-08-13T17:18:14.0265758Z".into()),
            last_attempt: Some("2020-08-13T17:18:14.0465788Z".into()),
        }
    );
    assert_eq!(
        parsed[0].properties.note(),
        "dead-lettered by Event Grid: MaxDeliveryAttemptsExceeded after 1 delivery attempt; last outcome NotFound \
         at 2020-08-13T17:18:14.0465788Z; published 2020-08-13T17:18:14.0265758Z"
    );
}

#[test]
fn official_basic_cloudevents_example_is_not_json() {
    let error = parse_blob(&fixture("official_basic.cloudevents.json")).unwrap_err();
    assert_eq!(error.to_string(), "not JSON: key must be a string at line 17 column 1");
}

#[test]
fn official_namespace_example_unwraps_the_event() {
    let parsed = events("official_namespace.binary.json");
    let event = only(&parsed[0]);
    assert_eq!((event.id(), event.event_type()), ("A234-1234-1234", "com.example.someevent"));
    assert_eq!((parsed[0].tier, parsed[0].events.schema()), (Tier::Namespace, Schema::CloudEvents));
    assert_eq!(
        parsed[0].properties.note(),
        "dead-lettered by Event Grid: Undeliverable due to client error after 3 delivery attempts; last outcome \
         Unauthorized at 2023-06-09T23:28:08.3220145Z; published 2023-06-19T23:28:08.3063899Z"
    );
}

#[test]
fn basic_event_grid_blob_holds_each_event_with_its_properties() {
    let parsed = events("recordings.basic.eventgrid.json");
    let ids: Vec<_> = parsed.iter().map(|event| only(event).id().to_owned()).collect();
    assert_eq!(
        ids,
        [
            "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a11",
            "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a12",
            "6d5a1e40-0c58-4a4e-9f0b-3c1f1f0f2b13"
        ]
    );
    let recording = only(&parsed[0]).recording_file_status_updated().expect("a recording event");
    assert_eq!(recording.chunks()[0].document_id(), "0-eus-d2-3cca2175891f21c6c9a5975a12c0141c");
    assert!(only(&parsed[2]).recording_file_status_updated().is_none());
    assert_eq!(
        parsed[0].properties.note(),
        "dead-lettered by Event Grid: MaxDeliveryAttemptsExceeded after 30 delivery attempts; last outcome Probation \
         (HTTP 503) at 2026-11-27T08:40:02.0000000Z; published 2026-11-26T08:43:11.0000000Z"
    );
    assert_eq!(parsed[1].properties.reason.as_deref(), Some("TimeToLiveExceeded"));
}

#[test]
fn basic_cloudevents_blob_reads_lower_case_properties() {
    let parsed = events("recordings.basic.cloudevents.json");
    assert_eq!((parsed[0].tier, parsed[0].events.schema()), (Tier::Basic, Schema::CloudEvents));
    assert!(only(&parsed[0]).recording_file_status_updated().is_some());
    assert_eq!(parsed[0].properties.last_http_status.as_deref(), Some("401"));
    assert_eq!(parsed[0].properties.delivery_attempts, Some(30));
}

#[test]
fn namespace_blob_reads_wrapped_and_structured_entries() {
    let parsed = events("recordings.namespace.json");
    let ids: Vec<_> = parsed.iter().map(|event| only(event).id().to_owned()).collect();
    assert_eq!(ids, ["1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a31", "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a32"]);
    for event in &parsed {
        assert_eq!((event.tier, event.events.schema()), (Tier::Namespace, Schema::CloudEvents));
        assert!(only(event).recording_file_status_updated().is_some());
    }
    assert_eq!(parsed[0].properties.last_outcome.as_deref(), Some("Unauthorized"));
    assert_eq!(
        (parsed[1].properties.reason.as_deref(), parsed[1].properties.delivery_attempts),
        (Some("TimeToLiveExceeded"), Some(3))
    );
}

#[test]
fn entries_one_after_another_are_read_too() {
    let one = String::from_utf8(fixture("official_basic.eventgrid.json")).unwrap();
    let parsed = parse_blob(format!("{one}\n{one}").as_bytes()).unwrap();
    assert_eq!(parsed.len(), 2);
    assert!(parsed.iter().all(Result::is_ok));
}

#[test]
fn an_entry_no_schema_reads_is_unreadable_alone() {
    let blob = br#"[{"id":"x","deadLetterReason":"MaxDeliveryAttemptsExceeded"}, 7,
        {"id":"e","eventType":"Microsoft.Communication.RecordingFileStatusUpdated","subject":"/recording/call/c",
         "eventTime":"2026-11-26T08:00:00Z","dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d","index":0}]}}}]"#;
    let parsed = parse_blob(blob).unwrap();
    let first = parsed[0].as_ref().unwrap_err();
    assert_eq!(first.position, 0);
    assert_eq!(first.raw, r#"{"id":"x","deadLetterReason":"MaxDeliveryAttemptsExceeded"}"#);
    assert_eq!(first.reason, "neither an Event Grid event (`eventType`) nor a CloudEvent (`type`)");
    assert_eq!(parsed[1].as_ref().unwrap_err().reason, "not a JSON object");
    assert!(parsed[2].is_ok());
}

#[test]
fn blobs_that_are_not_json_are_unreadable() {
    for (blob, reason) in [
        (&b"\xff\xfe"[..], "not UTF-8 text (byte 0)"),
        (b"[{\"id\":", "not a JSON array of events: EOF while parsing a value at line 1 column 7"),
        (b"hello", "not JSON: expected value at line 1 column 1"),
    ] {
        assert_eq!(parse_blob(blob).unwrap_err().to_string(), reason);
    }
}
