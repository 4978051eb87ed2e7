//! A recording's whole life through Call Automation on the emulator: start, pause, resume, state and stop over
//! HTTP, the `RecordingStateChanged` callbacks in order, and on stop the `RecordingFileStatusUpdated` delivered to
//! an Event Grid subscriber, whose chunks download with the SHA-256 of what the storage holds.

use std::time::Duration;

use crate::calling::{call, receiver, signed, states, API};
use crate::support::{download::signed_client, eventually};
use acs_recording::download::sink::WriterSink;
use acs_recording::download::ChunkDownloader;
use acs_recording::emulator::eventgrid::EventGridPublisher;
use acs_recording::emulator::Emulator;
use acs_recording::eventgrid::{Events, Schema};
use acs_recording::recording::{
    CallAutomationEvents, Recording, RecordingCallback, RecordingChannelType, RecordingEvents, RecordingKind,
    RecordingState,
};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

#[tokio::test]
async fn a_recording_started_paused_resumed_and_stopped_calls_back_in_order_and_its_chunks_download_intact() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).call_recording_bytes(150_000).start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let (callbacks, callback_bodies) = receiver().await;
    let (webhook, event_bodies) = receiver().await;
    emulator.subscribe(EventGridPublisher::new(&webhook.url("/events?code=emulated"), Schema::EventGrid).unwrap());

    let start = json!({
        "callLocator": { "kind": "serverCallLocator", "serverCallId": "aHR0cHM6Ly9jYWxsLzE" },
        "recordingStateCallbackUri": callbacks.url("/recording?code=cb"),
        "recordingContentType": "audio",
        "recordingChannelType": "unmixed",
        "recordingFormatType": "wav",
        "audioChannelParticipantOrdering": [
            { "kind": "communicationUser", "rawId": "8:acs:alice", "communicationUser": { "id": "8:acs:alice" } },
            { "kind": "phoneNumber", "rawId": "4:+14255550123", "phoneNumber": { "value": "+14255550123" } },
        ],
    });
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let (status, _, answer) = call(&client, Method::POST, &url, &[], start).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let id = answer["recordingId"].as_str().unwrap().to_owned();
    assert_eq!(
        answer,
        json!({ "recordingId": id, "recordingState": "active", "recordingKind": "azureCommunicationServices" })
    );

    let recording = format!("{}calling/recordings/{id}", emulator.endpoint());
    let none = Value::Null;
    assert_eq!(call(&client, Method::POST, &format!("{recording}:pause?{API}"), &[], none.clone()).await.0, 202);
    let (_, _, state) = call(&client, Method::GET, &format!("{recording}?{API}"), &[], none.clone()).await;
    assert_eq!(serde_json::from_slice::<Value>(&state).unwrap()["recordingState"], "inactive");
    assert_eq!(call(&client, Method::POST, &format!("{recording}:resume?{API}"), &[], none.clone()).await.0, 202);
    let (status, _, state) = call(&client, Method::GET, &format!("{recording}?{API}"), &[], none.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&state).unwrap()["recordingState"], "active");
    let (status, _, body) = call(&client, Method::DELETE, &format!("{recording}?{API}"), &[], none).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());

    // The callbacks: four state changes, in order, each parsed by the crate's callback extractor.
    eventually(Duration::from_secs(5), "four callbacks arrived", || async {
        (callback_bodies.lock().unwrap().len() >= 4).then_some(())
    })
    .await;
    let expected = [RecordingState::Active, RecordingState::Inactive, RecordingState::Active, RecordingState::Inactive];
    assert_eq!(states(&callback_bodies).await, expected);
    let first = callback_bodies.lock().unwrap()[0].clone();
    let request = Request::post("/recording").header("content-type", "application/json").body(Full::new(first));
    let parsed = CallAutomationEvents::extract(request.unwrap()).await.unwrap();
    let callback = parsed.iter().next().unwrap();
    assert_eq!(callback.source(), Some(format!("calling/recordings/{id}/recordingStateChanged").as_str()));
    let RecordingCallback::StateChanged(changed) = callback.callback() else { panic!("a state change") };
    assert_eq!(changed.recording_id.as_deref(), Some(id.as_str()));
    assert_eq!(changed.recording_kind, Some(RecordingKind::AzureCommunicationServices));
    assert_eq!(changed.server_call_id.as_deref(), Some("aHR0cHM6Ly9jYWxsLzE"));
    assert!(changed.start_date_time.as_deref().is_some_and(|time| time.ends_with('Z')));
    assert_eq!(changed.correlation_id.as_ref().map(String::len), Some(36));

    // The Event Grid subscriber: one RecordingFileStatusUpdated naming three chunks of the unmixed recording.
    eventually(Duration::from_secs(5), "the recording was announced", || async {
        (!event_bodies.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    let body = event_bodies.lock().unwrap()[0].clone();
    let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, &body).unwrap());
    assert_eq!(events.len(), 1);
    let event = events.iter().next().unwrap();
    let subject = event.recording_subject().unwrap();
    assert_eq!(subject.recording_id(), Some(id.as_str()));
    assert_eq!(subject.server_call_id(), Some("aHR0cHM6Ly9jYWxsLzE"));
    assert_eq!(event.data().channel_type(), Some(&RecordingChannelType::Unmixed));
    assert_eq!(event.data().chunks().len(), 3);

    // The chunks download with the SHA-256 of what the storage holds.
    let downloader = ChunkDownloader::new(signed_client(&emulator), WriterSink::new(Vec::new()))
        .endpoint(emulator.endpoint().clone())
        .allow_list(emulator.allow_list());
    let manifest = downloader.download(Recording::from_event(&event)).await.unwrap();
    assert_eq!(manifest.chunks.len(), 3);
    for chunk in &manifest.chunks {
        let stored = emulator.storage().document(&chunk.document_id).unwrap();
        assert_eq!(chunk.sha256, stored.sha256, "chunk {}", chunk.index);
        assert_eq!(chunk.bytes, stored.size);
    }
    assert_eq!(manifest.bytes(), 150_000 + 3 * 44);
}
