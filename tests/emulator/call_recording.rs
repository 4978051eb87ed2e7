//! A recording's whole life through Call Automation on the emulator, driven by the crate's `RecordingClient`:
//! start, pause, resume, state and stop over HTTP, the `RecordingStateChanged` callbacks in order, and on stop
//! the `RecordingFileStatusUpdated` delivered to an Event Grid subscriber, whose chunks download with the SHA-256
//! of what the storage holds.

use std::time::Duration;

use crate::calling::{receiver, signed, states};
use crate::support::{download::signed_client, eventually};
use acs_recording::calling::{
    CallLocator, CommunicationIdentifier, ErrorKind, RecordingClient, RecordingStatus, StartRecording,
};
use acs_recording::download::sink::WriterSink;
use acs_recording::download::ChunkDownloader;
use acs_recording::emulator::eventgrid::EventGridPublisher;
use acs_recording::emulator::Emulator;
use acs_recording::eventgrid::{Events, Schema};
use acs_recording::recording::{
    CallAutomationEvents, Recording, RecordingCallback, RecordingChannelType, RecordingContentType, RecordingEvents,
    RecordingFormatType, RecordingKind, RecordingState,
};
use http::Request;
use http_body_util::Full;

#[tokio::test]
async fn a_recording_started_paused_resumed_and_stopped_calls_back_in_order_and_its_chunks_download_intact() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).call_recording_bytes(150_000).start().await.unwrap();
    let client = RecordingClient::new(signed(&emulator.connection_string()), emulator.endpoint().clone());
    let (callbacks, callback_bodies) = receiver().await;
    let (webhook, event_bodies) = receiver().await;
    emulator.subscribe(EventGridPublisher::new(&webhook.url("/events?code=emulated"), Schema::EventGrid).unwrap());

    let start = StartRecording::call(CallLocator::server_call("aHR0cHM6Ly9jYWxsLzE"))
        .state_callback(callbacks.url("/recording?code=cb"))
        .content(RecordingContentType::Audio)
        .channels(RecordingChannelType::Unmixed)
        .format(RecordingFormatType::Wav)
        .participant_order([
            CommunicationIdentifier::communication_user("8:acs:alice").with_raw_id("8:acs:alice"),
            CommunicationIdentifier::phone_number("+14255550123").with_raw_id("4:+14255550123"),
        ]);
    let status = client.start(&start).await.unwrap();
    let id = status.recording_id.clone().unwrap();
    assert_eq!(status, RecordingStatus::new(&id, RecordingState::Active, RecordingKind::AzureCommunicationServices));

    client.pause(&id).await.unwrap();
    assert_eq!(client.state(&id).await.unwrap().recording_state, Some(RecordingState::Inactive));
    client.resume(&id).await.unwrap();
    assert_eq!(client.state(&id).await.unwrap().recording_state, Some(RecordingState::Active));
    client.stop(&id).await.unwrap();

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

    // Once stopped, the recording is gone for a state read and in conflict with any further operation.
    assert_eq!(client.state(&id).await.unwrap_err().kind(), ErrorKind::NotFound);
    let error = client.pause(&id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.service_error().unwrap().message, "cannot pause a recording that was stopped");
}
