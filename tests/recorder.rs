//! The library `Recorder` in-process against the emulator: the webhook journals before answering, the workers
//! download every job, and nothing accepted is lost when the storage, the journal or the process fails.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use acs_recording::download::{ChunkTarget, DirectorySink, RetryPolicy as FetchRetry};
use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, OutgoingEvent, RetryPolicy, Schema,
};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::journal::{ChunkState, FileJournal, Job, JobId, JobState, Journal};
use acs_recording::recorder::{ExportedRecordings, Recorder, RecorderBuilder};
use bytes::Bytes;
use common::{send, TestServer};
use http::{Method, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type Builder = RecorderBuilder<Client<HttpConnector, Empty<Bytes>>, DirectorySink, FileJournal>;

const SECRET: &str = "recorder-test";

/// A recorder serving its webhook and health probes on loopback, its workers running.
struct Running {
    server: TestServer,
    journal: FileJournal,
    stop: Option<oneshot::Sender<()>>,
    workers: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(emulator: &Emulator, out: &Path, configure: impl FnOnce(Builder) -> Builder) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let journal = FileJournal::open(out.join(".journal")).unwrap();
        let builder = Recorder::builder(&emulator.connection_string(), client, DirectorySink::new(out), journal)
            .allow_list(emulator.allow_list())
            .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query(SECRET)))
            .fetch_retry(FetchRetry::default().max_attempts(2).initial_backoff(Duration::from_millis(1)))
            .job_backoff(Duration::from_millis(10), Duration::from_millis(40));
        let recorder = configure(builder).build();
        let journal = recorder.journal().clone();
        let app = axum::Router::new()
            .route_service("/api/events", recorder.webhook())
            .route_service("/readyz", recorder.health())
            .route_service("/healthz", recorder.health());
        let server = TestServer::axum(app).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let workers = tokio::spawn(async move {
            recorder
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        // Ready once the workers counted the journal and run.
        let readyz = server.url("/readyz");
        let deadline = Instant::now() + Duration::from_secs(30);
        while send(Method::GET, &readyz, &[], Bytes::new()).await.status != StatusCode::OK {
            assert!(Instant::now() < deadline, "the recorder did not become ready");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Self { server, journal, stop: Some(stop), workers }
    }

    fn publisher(&self, schema: Schema, retry: RetryPolicy) -> EventGridPublisher {
        EventGridPublisher::new(&self.server.url(&format!("/api/events?code={SECRET}")), schema)
            .unwrap()
            .with_retry(retry)
    }

    /// Stops the workers (after their grace period) and the server.
    async fn stop(mut self) -> FileJournal {
        let _ = self.stop.take().map(|stop| stop.send(()));
        (&mut self.workers).await.unwrap().unwrap();
        self.server.stop().await;
        self.journal
    }
}

fn once() -> RetryPolicy {
    RetryPolicy { delays: vec![Duration::from_millis(5)], max_attempts: 1, response_timeout: Duration::from_secs(10) }
}

/// Waits (bounded) until `accept` holds for the event's job.
async fn wait_for(journal: &FileJournal, event_id: &str, what: &str, accept: impl Fn(&Job) -> bool) -> Job {
    let id = JobId::for_event(event_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(job) = journal.get(&id).await.unwrap() {
            if accept(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "{what}: job is {:?}", job);
        }
        assert!(Instant::now() < deadline, "{what}: no job for event {event_id}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn finished(journal: &FileJournal, event_id: &str) -> Job {
    wait_for(journal, event_id, "finish", |job| !job.state.is_open()).await
}

/// Every chunk's file, read back, has the emulator's SHA-256, and the journal recorded the same.
fn assert_files_right(job: &Job, recording: &StoredRecording) {
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(job.chunks.len(), recording.chunks.len());
    for (progress, chunk) in job.chunks.iter().zip(&recording.chunks) {
        let location = progress.location.as_deref().expect("stored");
        let digest: [u8; 32] = Sha256::digest(std::fs::read(location).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{location}");
        assert_eq!(progress.sha256.as_deref(), Some(hex(&digest).as_str()));
        assert_eq!(progress.bytes, Some(chunk.size));
    }
    // The recording's manifest beside its chunks lists each one as the journal does.
    let folder = Path::new(job.chunks[0].location.as_deref().unwrap()).parent().unwrap();
    let path = folder.join(format!("recording-{}.json", recording.recording_id));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(manifest["callId"], recording.call_id.as_str());
    assert_eq!(manifest["eventId"], job.event_id.as_str());
    assert_eq!(manifest["bytes"], recording.bytes());
    let listed = manifest["chunks"].as_array().unwrap();
    assert_eq!(listed.len(), job.chunks.len(), "{manifest}");
    for (listed, progress) in listed.iter().zip(&job.chunks) {
        assert_eq!(listed["sha256"].as_str(), progress.sha256.as_deref(), "{manifest}");
        assert_eq!(listed["location"].as_str(), progress.location.as_deref(), "{manifest}");
        assert_eq!(listed["metadataLocation"].as_str(), progress.metadata_location.as_deref(), "{manifest}");
        assert!(progress.metadata_location.is_some(), "{progress:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_bytes_served(emulator: &Emulator, recording: &StoredRecording) -> u64 {
    recording.chunks.iter().map(|chunk| common::storage::served(emulator, &chunk.document_id)).sum()
}

#[tokio::test]
async fn every_chunk_reaches_the_sink_once_despite_faults_and_a_redelivery() {
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
        let recording = emulator.storage().record(RecordingSpec::new("call-faults", 900_000));
        emulator.storage().inject(&recording.chunks[0].document_id, [Fault::DropAfter(100_000)]);
        emulator.storage().inject(
            &recording.chunks[1].document_id,
            [Fault::status_times(503, 1, Some(0)), vec![Fault::DropAfter(10)]].concat(),
        );
        let out = tempfile::tempdir().unwrap();
        // Three requests per attempt: the dropped connection, the 503 and the second drop each cost one.
        let three = FetchRetry::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
        let running = Running::start(&emulator, out.path(), |b| b.fetch_retry(three)).await;
        let publisher = running.publisher(schema, once());
        publisher.validate().await.unwrap();
        let event = recording_file_status_updated(&recording);
        for _ in 0..2 {
            assert_eq!(
                publisher.deliver(std::slice::from_ref(&event)).await,
                DeliveryOutcome::Delivered { attempts: 1 }
            );
        }
        let job = finished(&running.journal, &event.id).await;
        assert_files_right(&job, &recording);
        assert_eq!(job.attempts, 1, "{schema:?}: the faults were absorbed by the fetch retries");
        // One job for two deliveries, and every media byte served once: the resumes continued where they stopped.
        assert_eq!(running.journal.list().await.unwrap().len(), 1, "{schema:?}");
        assert_eq!(content_bytes_served(&emulator, &recording), recording.bytes(), "{schema:?}");
        running.stop().await;
    }
}

#[tokio::test]
async fn a_batch_with_one_malformed_event_accepts_the_valid_ones_and_records_the_rejected_one() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-a", 100_000));
    let second = emulator.storage().record(RecordingSpec::new("call-b", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let (a, b) = (recording_file_status_updated(&first), recording_file_status_updated(&second));
    let mut bad = recording_file_status_updated(&first);
    bad.id = "malformed-event".into();
    bad.data["recordingStorageInfo"]["recordingChunks"][0].as_object_mut().unwrap().remove("documentId");
    let envelope = |e: &OutgoingEvent| {
        serde_json::json!({"id": e.id, "subject": e.subject, "eventType": e.event_type, "eventTime": e.time,
            "dataVersion": e.data_version, "data": e.data})
    };
    let body = serde_json::to_vec(&[envelope(&a), envelope(&bad), envelope(&b)]).unwrap();
    let url = running.server.url(&format!("/api/events?code={SECRET}"));
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), r#"{"accepted":2,"duplicates":0,"rejected":1}"#);

    assert_files_right(&finished(&running.journal, &a.id).await, &first);
    assert_files_right(&finished(&running.journal, &b.id).await, &second);
    let rejected = running.journal.get(&JobId::for_event("malformed-event")).await.unwrap().expect("recorded");
    assert_eq!(rejected.state, JobState::Rejected);
    assert_eq!(
        rejected.last_error.as_deref(),
        Some("invalid data for Microsoft.Communication.RecordingFileStatusUpdated: missing field `documentId`")
    );
    // The same batch again: everything is a duplicate, nothing new is journaled.
    let again = send(Method::POST, &url, &[("content-type", "application/json")], body).await;
    assert_eq!(again.text(), r#"{"accepted":0,"duplicates":3,"rejected":0}"#);
    assert_eq!(running.journal.list().await.unwrap().len(), 3);
    running.stop().await;
}

#[tokio::test]
async fn a_journal_that_cannot_write_answers_503_and_loses_nothing() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-disk", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let readyz = running.server.url("/readyz");
    assert_eq!(send(Method::GET, &readyz, &[], Bytes::new()).await.status, StatusCode::OK);

    // The journal's folder replaced by a file: every write fails with a real I/O error.
    let jobs = out.path().join(".journal").join("jobs");
    std::fs::remove_dir(&jobs).unwrap();
    std::fs::write(&jobs, b"").unwrap();
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Exhausted { attempts: 1 });
    assert_eq!(publisher.log().last().unwrap().status, Some(StatusCode::SERVICE_UNAVAILABLE));
    let ready = send(Method::GET, &readyz, &[], Bytes::new()).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().contains("the journal cannot write"), "{}", ready.text());
    assert_eq!(send(Method::GET, &running.server.url("/healthz"), &[], Bytes::new()).await.status, StatusCode::OK);

    // The disk comes back; Event Grid's next attempt is accepted and the recording downloaded.
    std::fs::remove_file(&jobs).unwrap();
    std::fs::create_dir(&jobs).unwrap();
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    assert_files_right(&finished(&running.journal, &event.id).await, &recording);
    running.stop().await;
}

#[tokio::test]
async fn a_full_journal_answers_503_until_a_job_finishes() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-1", 50_000));
    let second = emulator.storage().record(RecordingSpec::new("call-2", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.max_pending(1)).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    emulator.storage().set_outage(true);
    let (a, b) = (recording_file_status_updated(&first), recording_file_status_updated(&second));
    assert!(publisher.deliver(std::slice::from_ref(&a)).await.is_delivered());
    assert_eq!(publisher.deliver(std::slice::from_ref(&b)).await, DeliveryOutcome::Exhausted { attempts: 1 });
    assert_eq!(publisher.log().last().unwrap().status, Some(StatusCode::SERVICE_UNAVAILABLE));
    emulator.storage().set_outage(false);
    assert_files_right(&finished(&running.journal, &a.id).await, &first);
    assert!(publisher.deliver(std::slice::from_ref(&b)).await.is_delivered());
    assert_files_right(&finished(&running.journal, &b.id).await, &second);
    running.stop().await;
}

#[tokio::test]
async fn a_storage_outage_longer_than_one_attempt_budget_then_recovery_completes_without_redelivery() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-outage", 150_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    emulator.storage().set_outage(true);
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    // Several attempts, each outlasting its fetch budget, while the job stays pending with the reason.
    let waiting = wait_for(&running.journal, &event.id, "retry", |job| job.attempts >= 3).await;
    assert!(waiting.state.is_open(), "{waiting:?}");
    let reason = waiting.last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("503 Service Unavailable"), "{reason}");
    emulator.storage().set_outage(false);
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(publisher.log().len(), 1, "no redelivery was needed");
    running.stop().await;
}

#[tokio::test]
async fn a_recording_deleted_from_storage_fails_its_job_with_a_reason_naming_the_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-gone", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let mut event = recording_file_status_updated(&recording);
    let chunk = &mut event.data["recordingStorageInfo"]["recordingChunks"][1];
    let gone = emulator.storage().content_location("no-such-document");
    chunk["contentLocation"] = serde_json::json!(format!("{gone}?sig=SECRET-SAS"));
    let publisher = running.publisher(Schema::EventGrid, once());
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.last_error.clone().unwrap_or_default();
    assert!(reason.starts_with(&format!("chunk 1 (`{}`)", recording.chunks[1].document_id)), "{reason}");
    assert!(reason.contains("404"), "{reason}");
    assert!(!reason.contains("SECRET-SAS"), "{reason}");
    // The chunk before it is stored and stays so; a permanent failure is not retried.
    assert_eq!(job.chunks[0].state, ChunkState::Stored);
    assert_eq!(job.attempts, 1);
    running.stop().await;
}

#[tokio::test]
async fn a_failed_delete_is_retried_without_holding_back_the_other_chunks() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-delete", 150_000));
    let first = recording.chunks[0].document_id.clone();
    emulator.storage().inject_delete(&first, [503; 5]);
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.delete_after_download(true)).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert!(job.chunks.iter().all(|c| c.state == ChunkState::Deleted), "{job:?}");
    assert!(job.attempts >= 2, "{job:?}");
    for chunk in &recording.chunks {
        assert!(emulator.storage().document(&chunk.document_id).unwrap().deleted);
    }
    // The last chunk was deleted before the first chunk's delete finally went through.
    let log = emulator.storage().requests();
    let last_delete = |id: &str| log.iter().rposition(|r| r.method == Method::DELETE && r.path.contains(id)).unwrap();
    assert!(last_delete(&recording.chunks[2].document_id) < last_delete(&first));
    running.stop().await;
}

#[tokio::test]
async fn an_open_job_resumes_when_the_recorder_starts_again() {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-resume", 5_000_000));
    let stalled = recording.chunks[0].document_id.clone();
    emulator.storage().inject(&stalled, [Fault::StallAfter(3 << 20)]);
    let out = tempfile::tempdir().unwrap();
    let event = recording_file_status_updated(&recording);
    let partial = out.path().join("call-resume").join(format!(".0-{stalled}.wav.partial"));
    let kept = {
        let running = Running::start(&emulator, out.path(), |b| b.shutdown_grace(Duration::ZERO)).await;
        let publisher = running.publisher(Schema::EventGrid, once());
        assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
        let job = wait_for(&running.journal, &event.id, "start", |job| job.state == JobState::Running).await;
        assert_eq!(job.attempts, 1);
        // The stalled chunk has written part of its bytes to its partial file when the recorder stops.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < 2 << 20 {
            assert!(Instant::now() < deadline, "the partial file did not fill");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let journal = running.stop().await;
        let interrupted = journal.get(&JobId::for_event(&event.id)).await.unwrap().unwrap();
        assert_eq!(interrupted.state, JobState::Running);
        // The stopped download's writing thread syncs the partial file and its record before it lets the file go
        // (a process that ends lets it go at once): the next recorder starts once it has.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::File::open(&partial).unwrap().try_lock().is_err() {
            assert!(Instant::now() < deadline, "the partial file stayed locked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::fs::metadata(&partial).unwrap().len()
    };
    // A new recorder on the same folders, no redelivery: the job resumes from the partial file.
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.attempts, 2, "{job:?}");
    let requests = emulator.storage().requests_for(&stalled);
    let ranges: Vec<Option<&str>> =
        requests.iter().filter(|r| !r.path.ends_with("acsmetadata")).map(|r| r.range.as_deref()).collect();
    assert_eq!(ranges.last().copied().flatten(), Some(format!("bytes={kept}-").as_str()), "{ranges:?}");
    running.stop().await;
}

#[tokio::test]
async fn a_retryable_failure_past_the_recording_expiry_fails_the_job() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-late", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.recording_lifetime(Duration::from_millis(200))).await;
    emulator.storage().set_outage(true);
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.last_error.unwrap_or_default();
    assert!(reason.starts_with("gave up: the recording expires at "), "{reason}");
    assert!(reason.contains("503 Service Unavailable"), "{reason}");
    running.stop().await;
}

#[tokio::test]
async fn a_failed_job_retried_by_hand_completes() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-again", 50_000));
    emulator.storage().inject(&recording.chunks[0].document_id, Fault::status_times(404, 1, None));
    let out = tempfile::tempdir().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let journal = FileJournal::open(out.path().join(".journal")).unwrap();
    let recorder = Recorder::builder(&emulator.connection_string(), client, DirectorySink::new(out.path()), journal)
        .allow_list(emulator.allow_list())
        .build();
    let recorder = std::sync::Arc::new(recorder);
    let server = TestServer::axum(axum::Router::new().route_service("/e", recorder.webhook())).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let workers = tokio::spawn({
        let recorder = recorder.clone();
        async move {
            recorder
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let publisher = EventGridPublisher::new(&server.url("/e"), Schema::EventGrid).unwrap().with_retry(once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let failed = finished(recorder.journal(), &event.id).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("404"), "{reason}");

    let id = JobId::for_event(&event.id);
    assert!(recorder.retry(&id).await.unwrap());
    assert!(!recorder.retry(&JobId::for_event("unknown")).await.unwrap());
    let job = finished(recorder.journal(), &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.attempts, 1, "attempts start over");
    let _ = stop.send(());
    workers.await.unwrap().unwrap();
}

#[tokio::test]
async fn done_jobs_are_pruned_after_their_retention_and_failed_ones_are_kept() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let good = emulator.storage().record(RecordingSpec::new("call-good", 50_000));
    let bad = emulator.storage().record(RecordingSpec::new("call-bad", 50_000));
    emulator.storage().inject(&bad.chunks[0].document_id, Fault::status_times(404, 1, None));
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (recording_file_status_updated(&good), recording_file_status_updated(&bad));
    {
        let running = Running::start(&emulator, out.path(), |b| b).await;
        let publisher = running.publisher(Schema::EventGrid, once());
        assert!(publisher.deliver(&[a.clone(), b.clone()]).await.is_delivered());
        assert_eq!(finished(&running.journal, &a.id).await.state, JobState::Done);
        assert_eq!(finished(&running.journal, &b.id).await.state, JobState::Failed);
        running.stop().await;
    }
    // Kept for the default 48 hours, a done job still answers a redelivery as a duplicate across a restart.
    let running = Running::start(&emulator, out.path(), |b| b).await;
    assert_eq!(running.journal.list().await.unwrap().len(), 2);
    let url = running.server.url(&format!("/api/events?code={SECRET}"));
    let redelivery = serde_json::to_vec(&[serde_json::json!({"id": a.id, "subject": a.subject,
        "eventType": a.event_type, "eventTime": a.time, "dataVersion": a.data_version, "data": a.data})])
    .unwrap();
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], redelivery).await;
    assert_eq!(reply.text(), r#"{"accepted":0,"duplicates":1,"rejected":0}"#);
    running.stop().await;
    // With no retention, the next start prunes the done job and keeps the failed one with its reason.
    let running = Running::start(&emulator, out.path(), |b| b.done_retention(Duration::ZERO)).await;
    let left = running.journal.list().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].event_id.as_str(), left[0].state), (b.id.as_str(), JobState::Failed));
    assert!(left[0].last_error.as_deref().unwrap_or_default().contains("404"));
    running.stop().await;
}

#[tokio::test]
async fn an_event_older_than_the_recording_lifetime_still_gets_its_first_attempt() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-skew", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    // A sender whose clock is days behind ours: by our clock the recording has already expired.
    let mut event = recording_file_status_updated(&recording);
    event.time = "2020-01-01T00:00:00Z".into();
    let publisher = running.publisher(Schema::EventGrid, once());
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.expires_at, std::time::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + 86_400));
    running.stop().await;
}

#[tokio::test]
async fn an_unmixed_recording_has_its_channel_map_written_beside_each_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let participants = ["8:acs:caller", "8:acs:customer", "4:+15551234567"];
    let recording = emulator.storage().record(RecordingSpec::new("call-unmixed", 100_000).unmixed(participants));
    assert_eq!(recording.channel_type, "Unmixed");
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    let sink = DirectorySink::new(out.path());
    for chunk in &recording.chunks {
        let target = ChunkTarget::new("call-unmixed", &chunk.document_id, chunk.index, "wav");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sink.manifest_path(&target)).unwrap()).unwrap();
        assert_eq!(manifest["sha256"], hex(&chunk.sha256));
        assert_eq!(
            manifest["channels"],
            serde_json::json!([
                {"channel": 0, "participantId": "8:acs:caller"},
                {"channel": 1, "participantId": "8:acs:customer"},
                {"channel": 2, "participantId": "4:+15551234567"},
            ]),
            "chunk {}",
            chunk.index
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn a_recording_exported_to_the_customer_storage_is_recorded_and_not_downloaded() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-byos", 150_000).storage_type("AzureBlob"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    assert_eq!(event.data["storageType"], "AzureBlob");
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert!(job.chunks.iter().all(|c| c.state == ChunkState::Exported && c.location.is_none()), "{job:?}");
    let exported = job.exported.as_ref().expect("where the recording is");
    assert_eq!(exported.storage_type.as_str(), "AzureBlob");
    assert_eq!(exported.recording_id.as_deref(), Some(recording.recording_id.as_str()));
    let date: String = recording.start_time[..10].chars().filter(char::is_ascii_digit).collect();
    assert_eq!(
        exported.folder_prefix.as_deref(),
        Some(format!("{date}/call-byos/{}-", &recording.recording_id[..8]).as_str())
    );
    // Not one request reached the storage, and nothing was written.
    let requests: usize = recording.chunks.iter().map(|c| emulator.storage().requests_for(&c.document_id).len()).sum();
    assert_eq!(requests, 0);
    assert!(!out.path().join("call-byos").exists());
    running.stop().await;
}

#[tokio::test]
async fn a_failed_export_is_downloaded_from_acs_as_usual() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording =
        emulator.storage().record(RecordingSpec::new("call-export-failed", 150_000).storage_type("acsstorage"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.exported, None);
    assert_eq!(content_bytes_served(&emulator, &recording), recording.bytes());
    running.stop().await;
}

#[tokio::test]
async fn an_exported_recording_is_downloaded_too_when_the_builder_asks() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-byos-copy", 100_000).storage_type("AzureBlob"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.exported_recordings(ExportedRecordings::Download)).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::CloudEvents, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.exported, None);
    running.stop().await;
}
