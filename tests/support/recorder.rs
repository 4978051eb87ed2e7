//! What every recorder test uses: a recorder serving its webhook on loopback, waiting for a job, checking the files.
// A prelude for the recorder binary's modules, which glob-import it; the other binaries mount it unused.
#![allow(unused_imports)]

pub(crate) use std::path::Path;
pub(crate) use std::time::{Duration, Instant};

pub(crate) use acs_recording::download::{
    sink::{ChunkTarget, DirectorySink},
    RetryPolicy as FetchRetry,
};
pub(crate) use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, OutgoingEvent, RetryPolicy,
};
pub(crate) use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
pub(crate) use acs_recording::eventgrid::Schema;
pub(crate) use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
pub(crate) use acs_recording::journal::{ChunkState, FileJournal, Job, JobId, JobState, Journal, TrackedRecording};
pub(crate) use acs_recording::recorder::{
    ExportedRecordings, Intake, Recorder, RecorderBuilder, RecorderHandle, Webhook,
};
pub(crate) use acs_recording::Sha256Digest;
pub(crate) use bytes::Bytes;
pub(crate) use http::{Method, StatusCode};
pub(crate) use http_body_util::Empty;
pub(crate) use hyper_util::client::legacy::Client;
pub(crate) use hyper_util::rt::TokioExecutor;
pub(crate) use sha2::{Digest, Sha256};

pub(crate) use super::{eventually, send, TestServer};

pub(crate) type Builder<J = FileJournal> = RecorderBuilder<DirectorySink, J>;

pub(crate) const SECRET: &str = "recorder-test";

/// A recorder serving its webhook and health probes on loopback, its workers running.
pub(crate) struct Running<J: Journal + Clone = FileJournal> {
    pub(crate) server: TestServer,
    /// The webhook itself, to call as a tower service.
    pub(crate) webhook: Webhook<J>,
    /// The intake without HTTP, as another source of events would use it.
    pub(crate) intake: Intake<J>,
    pub(crate) journal: J,
    /// The recorder, for the calls an application makes ([`Recorder::track_started`], ...).
    pub(crate) recorder: Recorder<DirectorySink, J>,
    workers: RecorderHandle,
}

impl Running {
    /// A recorder on `out` with its journal in `out/.journal`.
    pub(crate) async fn start(emulator: &Emulator, out: &Path, configure: impl FnOnce(Builder) -> Builder) -> Self {
        Running::start_with(emulator, out, FileJournal::open(out.join(".journal")).unwrap(), configure).await
    }
}

impl<J: Journal + Clone> Running<J> {
    /// A recorder on `out` over `journal`: quick retries and backoff, the delivery secret required, then whatever
    /// `configure` sets; answers once `/readyz` does.
    pub(crate) async fn start_with(
        emulator: &Emulator,
        out: &Path,
        journal: J,
        configure: impl FnOnce(Builder<J>) -> Builder<J>,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let builder = Recorder::builder(&emulator.connection_string(), client, DirectorySink::new(out), journal)
            .allow_list(emulator.allow_list())
            .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query(SECRET)))
            .fetch_retry(FetchRetry::default().max_attempts(2).initial_backoff(Duration::from_millis(1)))
            .job_backoff(Duration::from_millis(10), Duration::from_millis(40));
        let recorder = configure(builder).build();
        let journal = recorder.journal().clone();
        let webhook = recorder.webhook();
        let app = axum::Router::new()
            .route_service("/api/events", recorder.webhook())
            .route_service("/api/callbacks", recorder.callbacks())
            .route_service("/readyz", recorder.health())
            .route_service("/healthz", recorder.health());
        let server = TestServer::axum(app).await;
        let workers = recorder.spawn();
        let intake = recorder.intake();
        let running = Self { server, webhook, intake, journal, recorder, workers };
        // Ready once the workers counted the journal and run.
        let ready = &running;
        eventually(Duration::from_secs(30), "the recorder becomes ready", || async move {
            let (status, text) = ready.ready().await;
            assert!(status == StatusCode::OK || !ready.workers.is_finished(), "the recorder stopped: {text}");
            (status == StatusCode::OK).then_some(())
        })
        .await;
        running
    }

    /// `/readyz`: its status and body.
    pub(crate) async fn ready(&self) -> (StatusCode, String) {
        let reply = send(Method::GET, &self.server.url("/readyz"), &[], Bytes::new()).await;
        (reply.status, reply.text().to_owned())
    }

    pub(crate) fn publisher(&self, schema: Schema, retry: RetryPolicy) -> EventGridPublisher {
        EventGridPublisher::new(&self.server.url(&format!("/api/events?code={SECRET}")), schema)
            .unwrap()
            .with_retry(retry)
    }

    /// The callback route's URL, with the delivery secret.
    pub(crate) fn callback_url(&self) -> String {
        self.server.url(&format!("/api/callbacks?code={SECRET}"))
    }

    /// Stops the workers (after their grace period) and the server.
    pub(crate) async fn stop(self) -> J {
        self.workers.shutdown().await.unwrap();
        self.server.stop().await;
        self.journal
    }
}

pub(crate) fn once() -> RetryPolicy {
    once_within(Duration::from_secs(10))
}

/// One attempt, answered within `timeout`.
pub(crate) fn once_within(timeout: Duration) -> RetryPolicy {
    RetryPolicy { delays: vec![Duration::from_millis(5)], max_attempts: 1, response_timeout: timeout }
}

/// Waits (bounded) until `accept` holds for the event's job.
pub(crate) async fn wait_for(journal: &impl Journal, event_id: &str, what: &str, accept: impl Fn(&Job) -> bool) -> Job {
    let id = JobId::for_event(event_id);
    let (id, accept) = (&id, &accept);
    eventually(Duration::from_secs(30), format!("{what} (event {event_id})"), || async move {
        journal.get(id).await.unwrap().filter(|job| accept(job))
    })
    .await
}

pub(crate) async fn finished(journal: &impl Journal, event_id: &str) -> Job {
    wait_for(journal, event_id, "finish", |job| !job.state.is_open()).await
}

/// Every chunk's file, read back, has the emulator's SHA-256, and the journal recorded the same.
pub(crate) fn assert_files_right(job: &Job, recording: &StoredRecording) {
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(job.chunks.len(), recording.chunks.len());
    for (progress, chunk) in job.chunks.iter().zip(&recording.chunks) {
        let location = progress.location.as_deref().expect("stored");
        let digest: [u8; 32] = Sha256::digest(std::fs::read(location).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{location}");
        assert_eq!(progress.sha256, Some(Sha256Digest::from(digest)));
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
        assert_eq!(listed["sha256"].as_str(), progress.sha256.map(|d| d.to_string()).as_deref(), "{manifest}");
        assert_eq!(listed["location"].as_str(), progress.location.as_deref(), "{manifest}");
        assert_eq!(listed["metadataLocation"].as_str(), progress.metadata_location.as_deref(), "{manifest}");
        assert!(progress.metadata_location.is_some(), "{progress:?}");
    }
}

pub(crate) fn content_bytes_served(emulator: &Emulator, recording: &StoredRecording) -> u64 {
    recording.chunks.iter().map(|chunk| super::emulator::served(emulator, &chunk.document_id)).sum()
}
