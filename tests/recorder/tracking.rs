//! Every started recording accounted for: a recording the recorder knows was started (from the application or a
//! `RecordingStateChanged` callback) is tracked in the journal until its `RecordingFileStatusUpdated` event comes
//! and links it to its download, or is reported `missing` once it stopped and the event did not come in time.

use std::time::SystemTime;

use crate::support::recorder::*;
use acs_recording::calling::{CallLocator, RecordingClient, StartRecording};
use acs_recording::signing::HmacSigningLayer;
use http_body_util::Full;
use tower::Layer;

const SERVER_CALL: &str = "aHR0cHM6Ly9jYWxsLzE";

fn calling_client(emulator: &Emulator) -> RecordingClient<impl acs_recording::HttpClient<Full<Bytes>>> {
    let signed = HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    RecordingClient::new(signed, emulator.endpoint().clone())
}

/// Waits (bounded) until the record tracking `recording_id` satisfies `accept`.
async fn tracked(journal: &impl Journal, recording_id: &str, what: &str, accept: impl Fn(&Job) -> bool) -> Job {
    let id = TrackedRecording::job_id(recording_id);
    let (id, accept) = (&id, &accept);
    eventually(Duration::from_secs(30), format!("{what} (recording {recording_id})"), || async move {
        journal.get(id).await.unwrap().filter(|job| accept(job))
    })
    .await
}

/// Every chunk of a done job is the storage's document, byte for byte (SHA-256 of the file and of the journal).
fn assert_stored_as_served(emulator: &Emulator, job: &Job) {
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert!(!job.chunks.is_empty());
    for chunk in &job.chunks {
        let served = emulator.storage().document(&chunk.document_id).expect("a stored document");
        let location = chunk.location.as_deref().expect("stored");
        let digest: [u8; 32] = Sha256::digest(std::fs::read(location).unwrap()).into();
        assert_eq!(Sha256Digest::from(digest), served.sha256, "{location}");
        assert_eq!(chunk.sha256, Some(served.sha256));
    }
}

#[tokio::test]
async fn a_started_recording_is_tracked_until_its_event_comes_then_linked_and_stored_intact() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).call_recording_bytes(150_000).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    emulator.subscribe(running.publisher(Schema::EventGrid, once()));
    let client = calling_client(&emulator);

    let start = StartRecording::call(CallLocator::server_call(SERVER_CALL)).state_callback(running.callback_url());
    let status = client.start(&start).await.unwrap();
    let recording_id = status.recording_id.clone().unwrap();
    let started = TrackedRecording::from_status(&status, SystemTime::now()).unwrap().server_call(SERVER_CALL);
    running.recorder.track_started(started).await.unwrap();
    let awaiting = running.journal.get(&TrackedRecording::job_id(&recording_id)).await.unwrap().unwrap();
    assert_eq!(awaiting.state, JobState::Awaiting, "durable as soon as track_started returned");

    client.stop(&recording_id).await.unwrap();
    let linked = tracked(&running.journal, &recording_id, "linked", |job| job.state == JobState::Linked).await;
    let record = linked.tracked.as_ref().unwrap();
    assert_eq!(record.server_call_id.as_deref(), Some(SERVER_CALL));
    let download = record.linked_job.clone().expect("the download job");
    let job = eventually(Duration::from_secs(30), "the linked download is done", || async {
        running.journal.get(&download).await.unwrap().filter(|job| job.state == JobState::Done)
    })
    .await;
    assert_eq!(job.recording.as_ref().unwrap().recording_id.as_deref(), Some(recording_id.as_str()));
    assert_eq!(job.chunks.len(), 3);
    assert_stored_as_served(&emulator, &job);
    running.stop().await;
}

#[tokio::test]
async fn a_stopped_recording_whose_event_never_comes_is_reported_missing_after_the_window() {
    // No Event Grid subscriber: the recording's event goes nowhere.
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let window = Duration::from_millis(300);
    let running = Running::start(&emulator, out.path(), |builder| builder.missing_event_window(window)).await;
    let client = calling_client(&emulator);

    let start = StartRecording::call(CallLocator::server_call(SERVER_CALL)).state_callback(running.callback_url());
    let recording_id = client.start(&start).await.unwrap().recording_id.unwrap();
    // Known from the callback alone: the application does not call track_started here.
    tracked(&running.journal, &recording_id, "tracked from its callback", |job| job.state == JobState::Awaiting).await;
    let stopped_at = Instant::now();
    client.stop(&recording_id).await.unwrap();

    let missing =
        tracked(&running.journal, &recording_id, "reported missing", |job| job.state == JobState::Missing).await;
    assert!(stopped_at.elapsed() >= window, "not before the window passed");
    let record = missing.tracked.as_ref().unwrap();
    assert_eq!(record.server_call_id.as_deref(), Some(SERVER_CALL));
    assert!(record.stopped_at.is_some() && record.linked_job.is_none(), "{record:?}");
    let reason = missing.last_error.as_deref().unwrap();
    assert!(reason.contains("no RecordingFileStatusUpdated event"), "{reason}");
    running.stop().await;
}

#[tokio::test]
async fn a_tracked_recording_survives_a_restart_and_links_to_its_event_after_it() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    let started = TrackedRecording::new("rec-restart", SystemTime::now()).server_call("call-restart");
    running.recorder.track_started(started).await.unwrap();
    assert!(running.recorder.track_stopped("rec-restart").await.unwrap());
    assert!(!running.recorder.track_stopped("rec-never-started").await.unwrap(), "not tracked, not invented");
    drop(running.stop().await);

    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    let record = running.journal.get(&TrackedRecording::job_id("rec-restart")).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Awaiting, "still tracked after the restart");
    assert!(record.tracked.as_ref().unwrap().stopped_at.is_some());

    let stored = emulator.storage().record(RecordingSpec::new("call-restart", 150_000).recording_id("rec-restart"));
    let event = recording_file_status_updated(&stored);
    assert!(running.publisher(Schema::EventGrid, once()).deliver(std::slice::from_ref(&event)).await.is_delivered());
    let linked = tracked(&running.journal, "rec-restart", "linked", |job| job.state == JobState::Linked).await;
    assert_eq!(linked.tracked.unwrap().linked_job, Some(JobId::for_event(&event.id)));
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &stored);
    running.stop().await;
}

#[tokio::test]
async fn a_callback_for_a_call_the_recorder_never_heard_of_is_tracked_and_needs_the_delivery_secret() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    let body = r#"[{"id":"cb-1","source":"calling/recordings/rec-x/recordingStateChanged","specversion":"1.0",
        "type":"Microsoft.Communication.RecordingStateChanged","time":"2026-12-01T08:00:00Z",
        "data":{"recordingId":"rec-x","state":"active","startDateTime":"2026-12-01T08:00:00Z",
        "callConnectionId":"conn-x","serverCallId":"server-x"}},
        {"id":"cb-2","source":"calling/callConnections/conn-x","specversion":"1.0",
        "type":"Microsoft.Communication.CallConnected","data":{"callConnectionId":"conn-x"}}]"#;
    let json = [("content-type", "application/json")];

    let refused = send(Method::POST, &running.server.url("/api/callbacks"), &json, body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text());
    assert_eq!(running.journal.list().await.unwrap(), [], "nothing kept from an unauthenticated callback");

    let reply = send(Method::POST, &running.callback_url(), &json, body).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, r#"{"tracked":1}"#));
    let record = running.journal.get(&TrackedRecording::job_id("rec-x")).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Awaiting);
    let tracked = record.tracked.unwrap();
    assert_eq!(
        (tracked.call_connection_id.as_deref(), tracked.server_call_id.as_deref()),
        (Some("conn-x"), Some("server-x"))
    );
    assert_eq!(
        tracked.started_at,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_112_000),
        "the callback's start time"
    );
    assert_eq!(running.journal.list().await.unwrap().len(), 1, "the other callback is kept nowhere");
    running.stop().await;
}

#[tokio::test]
async fn an_event_for_a_recording_never_started_through_the_recorder_is_downloaded_as_before() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    let stored = emulator.storage().record(RecordingSpec::new("call-plain", 150_000).recording_id("rec-plain"));
    let event = recording_file_status_updated(&stored);
    assert!(running.publisher(Schema::EventGrid, once()).deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &stored);
    assert!(job.tracked.is_none());
    let jobs = running.journal.list().await.unwrap();
    assert_eq!(jobs, [job], "no tracking record is made for it");
    running.stop().await;
}

#[tokio::test]
async fn a_tracked_recording_that_did_not_start_is_failed_with_the_reason() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |builder| builder).await;
    running.recorder.track_started(TrackedRecording::new("rec-failed", SystemTime::now())).await.unwrap();
    let body = r#"[{"id":"cb-9","source":"calling/callConnections/conn-9","specversion":"1.0",
        "type":"Microsoft.Communication.StartRecordingFailed",
        "data":{"recordingId":"rec-failed","callConnectionId":"conn-9",
        "resultInformation":{"code":400,"subCode":8583,"message":"the call is not established"}}}]"#;
    let reply = send(Method::POST, &running.callback_url(), &[("content-type", "application/json")], body).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, r#"{"tracked":1}"#));
    let record = running.journal.get(&TrackedRecording::job_id("rec-failed")).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.last_error.as_deref(), Some("the recording did not start: the call is not established"));
    running.stop().await;
}
