//! "Nothing accepted is lost", tried where it used to break: a caller that goes away during the insert, an insert
//! that fails after writing, an event dated in year 9999, an unreadable record, a count of open jobs that another
//! replica moved, batches larger than the intake, odd event fields, and a journal that cannot link.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use acs_recording::journal::Lease;
use acs_recording::recorder::DEFAULT_RECORDING_LIFETIME;
use http_body_util::Full;
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::support::recorder::*;

/// What the test journal does around the file journal's own work.
#[derive(Default)]
struct Faults {
    /// After the first insert wrote its records: wait for this before answering.
    gate_after_first_insert: Option<Arc<Notify>>,
    /// After the first insert wrote its records: sleep this long before answering.
    slow_first_insert: Option<Duration>,
    /// The first insert writes its records, then fails.
    fail_after_first_insert: bool,
    /// Every claim waits this long (another replica gets there first).
    slow_claim: Option<Duration>,
    /// Shared with other replicas: look for open jobs this often.
    poll: Option<Duration>,
    /// The first this many listings fail (a store's outage as the recorder starts).
    failing_lists: usize,
}

/// A [`FileJournal`] with [`Faults`]: a real journal on disk, its callers put in the situations of a real outage.
#[derive(Clone)]
struct Faulty {
    inner: FileJournal,
    faults: Arc<Faults>,
    inserts: Arc<AtomicUsize>,
    lists: Arc<AtomicUsize>,
}

impl Faulty {
    fn new(inner: FileJournal, faults: Faults) -> Self {
        Self { inner, faults: Arc::new(faults), inserts: Arc::default(), lists: Arc::default() }
    }
}

impl Journal for Faulty {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        let first = self.inserts.fetch_add(1, Ordering::SeqCst) == 0;
        let written = self.inner.insert(jobs).await?;
        if first {
            if let Some(gate) = &self.faults.gate_after_first_insert {
                gate.notified().await;
            }
            if let Some(slow) = self.faults.slow_first_insert {
                tokio::time::sleep(slow).await;
            }
            if self.faults.fail_after_first_insert {
                return Err(io::Error::other("the folder could not be synced"));
            }
        }
        Ok(written)
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        self.inner.update(job).await
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        self.inner.get(id).await
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        if self.lists.fetch_add(1, Ordering::SeqCst) < self.faults.failing_lists {
            return Err(io::Error::other("the journal cannot be listed"));
        }
        self.inner.list().await
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        self.inner.remove(id).await
    }

    async fn check_writable(&self) -> io::Result<()> {
        self.inner.check_writable().await
    }

    async fn claim(&self, id: &JobId) -> io::Result<Option<Lease>> {
        if let Some(slow) = self.faults.slow_claim {
            tokio::time::sleep(slow).await;
        }
        self.inner.claim(id).await
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.faults.poll
    }
}

/// A recorder on `out` over a [`Faulty`] journal in `out/.journal`.
async fn start(emulator: &Emulator, out: &Path, faults: Faults, max_pending: usize) -> Running<Faulty> {
    start_on(emulator, out, FileJournal::open(out.join(".journal")).unwrap(), faults, max_pending).await
}

async fn start_on(
    emulator: &Emulator,
    out: &Path,
    journal: FileJournal,
    faults: Faults,
    max_pending: usize,
) -> Running<Faulty> {
    Running::start_with(emulator, out, Faulty::new(journal, faults), |b| b.max_pending(max_pending)).await
}

/// The job is done and every chunk's file has the emulator's SHA-256.
async fn stored(journal: &impl Journal, event: &OutgoingEvent, recording: &StoredRecording) -> Job {
    let job = wait_for(journal, &event.id, "downloaded", |job| job.state == JobState::Done).await;
    assert_eq!(job.chunks.len(), recording.chunks.len());
    for (progress, chunk) in job.chunks.iter().zip(&recording.chunks) {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(progress.location.as_deref().unwrap()).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{progress:?}");
    }
    job
}

/// `events` in the Event Grid schema.
fn event_grid_body(events: &[OutgoingEvent]) -> Bytes {
    let array: Vec<serde_json::Value> = events
        .iter()
        .map(|event| {
            serde_json::json!({
                "id": event.id, "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/CommunicationServices/acs",
                "subject": event.subject, "eventType": event.event_type, "eventTime": event.time,
                "data": event.data, "dataVersion": event.data_version, "metadataVersion": "1",
            })
        })
        .collect();
    Bytes::from(serde_json::to_vec(&array).unwrap())
}

/// Posts `events` as Event Grid does (its schema, the secret in the query) and answers the status and the body.
async fn post(running: &Running<Faulty>, events: &[OutgoingEvent]) -> (StatusCode, serde_json::Value) {
    let url = running.server.url(&format!("/api/events?code={SECRET}"));
    let headers = [("content-type", "application/json"), ("aeg-event-type", "Notification")];
    let reply = send(Method::POST, &url, &headers, event_grid_body(events)).await;
    (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
}

#[tokio::test]
async fn a_delivery_whose_caller_went_away_during_the_insert_is_still_downloaded() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-dropped", 100_000));
    let out = tempfile::tempdir().unwrap();
    let gate = Arc::new(Notify::new());
    let faults = Faults { gate_after_first_insert: Some(gate.clone()), ..Faults::default() };
    let running = start(&emulator, out.path(), faults, 100).await;

    // Event Grid gives up on the answer and closes the connection while the record is already on disk; the
    // server drops the webhook's future (here: the webhook called as a tower service, dropped by a timeout).
    let event = recording_file_status_updated(&recording);
    let request = http::Request::post(format!("/api/events?code={SECRET}"))
        .header("content-type", "application/json")
        .body(Full::new(event_grid_body(std::slice::from_ref(&event))))
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_millis(300), running.webhook.clone().oneshot(request)).await;
    assert!(answered.is_err(), "the insert waits for its gate: {answered:?}");
    // The insert then finishes; nobody waits for its answer any more.
    gate.notify_one();
    stored(&running.journal, &event, &recording).await;
    running.stop().await;
}

#[tokio::test]
async fn a_redelivery_queues_the_job_an_insert_wrote_before_it_failed() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-failed-insert", 100_000));
    let out = tempfile::tempdir().unwrap();
    let faults = Faults { fail_after_first_insert: true, ..Faults::default() };
    let running = start(&emulator, out.path(), faults, 100).await;

    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Exhausted { attempts: 1 });
    assert_eq!(publisher.log().last().unwrap().status, Some(StatusCode::SERVICE_UNAVAILABLE));
    // The record is on disk, pending, and nothing works on it.
    let job = running.journal.get(&JobId::for_event(&event.id)).await.unwrap().expect("written before the failure");
    assert_eq!(job.state, JobState::Pending);

    // Event Grid delivers again: the record is found, answered as a duplicate, and queued.
    let answer = post(&running, std::slice::from_ref(&event)).await;
    assert_eq!(answer, (StatusCode::OK, serde_json::json!({"accepted": 0, "duplicates": 1, "rejected": 0})));
    stored(&running.journal, &event, &recording).await;
    running.stop().await;
}

#[tokio::test]
async fn a_publisher_that_times_out_during_a_slow_insert_gets_its_recording_downloaded_over_http() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-slow-insert", 100_000));
    let out = tempfile::tempdir().unwrap();
    let faults = Faults { slow_first_insert: Some(Duration::from_secs(2)), ..Faults::default() };
    let running = start(&emulator, out.path(), faults, 100).await;

    // Event Grid's schedule, fast: the first attempt times out mid-insert, a later one is answered.
    let retry = RetryPolicy {
        delays: vec![Duration::from_millis(50)],
        max_attempts: 5,
        response_timeout: Duration::from_millis(400),
    };
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, retry);
    let outcome = publisher.deliver(std::slice::from_ref(&event)).await;
    assert!(matches!(outcome, DeliveryOutcome::Delivered { attempts } if attempts >= 2), "{outcome:?}");
    assert_eq!(publisher.log()[0].status, None, "the first attempt timed out: {:?}", publisher.log());
    stored(&running.journal, &event, &recording).await;
    running.stop().await;
}

#[tokio::test]
async fn an_event_dated_in_year_9999_cannot_extend_its_retention_nor_break_the_journal() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-9999", 50_000));
    let later = emulator.storage().record(RecordingSpec::new("call-after", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = start(&emulator, out.path(), Faults::default(), 100).await;

    let mut event = recording_file_status_updated(&recording);
    event.time = "9999-12-31T23:59:59Z".to_owned();
    let publisher = running.publisher(Schema::EventGrid, once());
    let before = SystemTime::now();
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = stored(&running.journal, &event, &recording).await;
    assert!(job.expires_at <= SystemTime::now() + DEFAULT_RECORDING_LIFETIME, "{:?}", job.expires_at);
    assert!(job.expires_at >= before + DEFAULT_RECORDING_LIFETIME, "{:?}", job.expires_at);

    // The recorder starts again on the same journal, and takes the next recording.
    let journal = running.stop().await;
    assert_eq!(journal.list().await.unwrap().len(), 1);
    drop(journal);
    let running = start(&emulator, out.path(), Faults::default(), 100).await;
    let next = recording_file_status_updated(&later);
    assert!(running.publisher(Schema::EventGrid, once()).deliver(std::slice::from_ref(&next)).await.is_delivered());
    stored(&running.journal, &next, &later).await;
    running.stop().await;
}

#[tokio::test]
async fn an_unreadable_record_is_skipped_and_every_other_job_resumes() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-resumes", 100_000));
    let out = tempfile::tempdir().unwrap();
    let event = recording_file_status_updated(&recording);
    {
        // An open job from an earlier run, beside a damaged record and one a newer version wrote.
        let journal = FileJournal::open(out.path().join(".journal")).unwrap();
        let running = start_on(&emulator, out.path(), journal, Faults::default(), 100).await;
        emulator.storage().set_outage(true);
        assert!(running
            .publisher(Schema::EventGrid, once())
            .deliver(std::slice::from_ref(&event))
            .await
            .is_delivered());
        let journal = running.stop().await;
        emulator.storage().set_outage(false);
        let jobs = out.path().join(".journal").join("jobs");
        std::fs::write(jobs.join("damaged.json"), b"{\"id\": \"damaged\", \"state\": ").unwrap();
        let newer = journal.get(&JobId::for_event(&event.id)).await.unwrap().unwrap();
        let mut text = serde_json::to_value(&newer).unwrap();
        text["id"] = "from-a-newer-version".into();
        text["state"] = "archived".into();
        std::fs::write(jobs.join("from-a-newer-version.json"), serde_json::to_vec(&text).unwrap()).unwrap();
        assert_eq!(journal.list().await.unwrap().len(), 1, "the two bad records are skipped");
    }
    let running = start(&emulator, out.path(), Faults::default(), 100).await;
    stored(&running.journal, &event, &recording).await;
    running.stop().await;
    // The bad records stay where they are, for a person to look at.
    assert!(out.path().join(".journal/jobs/damaged.json").exists());
}

#[tokio::test]
async fn a_replica_whose_open_jobs_another_replica_finished_accepts_deliveries_again() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-elsewhere", 50_000));
    let second = emulator.storage().record(RecordingSpec::new("call-next", 50_000));
    let out = tempfile::tempdir().unwrap();
    // This replica's workers are slow to claim: another replica finishes the job first.
    let faults = Faults {
        slow_claim: Some(Duration::from_millis(1500)),
        poll: Some(Duration::from_millis(100)),
        ..Faults::default()
    };
    let running = start(&emulator, out.path(), faults, 1).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&first);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    assert_eq!(
        running.ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"intake full: the journal holds its maximum of 1 open jobs"}"#.to_owned()
        )
    );

    // The other replica: it records the job done in the shared journal.
    let id = JobId::for_event(&event.id);
    let mut job = running.journal.get(&id).await.unwrap().unwrap();
    job.state = JobState::Done;
    job.finished_at = Some(SystemTime::now());
    running.journal.update(&job).await.unwrap();

    // This replica's count follows the journal: its intake takes the next recording.
    let retry = RetryPolicy {
        delays: vec![Duration::from_millis(100)],
        max_attempts: 50,
        response_timeout: Duration::from_secs(10),
    };
    let next = recording_file_status_updated(&second);
    let outcome = running.publisher(Schema::EventGrid, retry).deliver(std::slice::from_ref(&next)).await;
    assert!(outcome.is_delivered(), "{outcome:?}");
    stored(&running.journal, &next, &second).await;
    // Ready again once a poll has counted the journal after the last job finished.
    let recorder = &running;
    eventually(Duration::from_secs(5), "the recorder is ready again", || async move {
        (recorder.ready().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_batch_larger_than_the_intake_maximum_is_taken_when_nothing_is_open() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recordings: Vec<_> =
        (0..3).map(|n| emulator.storage().record(RecordingSpec::new(format!("call-batch-{n}"), 30_000))).collect();
    let out = tempfile::tempdir().unwrap();
    let running = start(&emulator, out.path(), Faults::default(), 2).await;
    let events: Vec<_> = recordings.iter().map(recording_file_status_updated).collect();
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(&events).await, DeliveryOutcome::Delivered { attempts: 1 });
    for (event, recording) in events.iter().zip(&recordings) {
        stored(&running.journal, event, recording).await;
    }
    running.stop().await;
}

#[tokio::test]
async fn a_recording_with_a_negative_duration_is_downloaded_and_the_oddity_noted() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-odd", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = start(&emulator, out.path(), Faults::default(), 100).await;
    let mut event = recording_file_status_updated(&recording);
    event.data["recordingDurationMs"] = (-1).into();
    let answer = post(&running, std::slice::from_ref(&event)).await;
    assert_eq!(answer, (StatusCode::OK, serde_json::json!({"accepted": 1, "duplicates": 0, "rejected": 0})));
    let job = stored(&running.journal, &event, &recording).await;
    assert_eq!(job.notes, ["`recordingDurationMs` does not fit its type: -1"]);
    running.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_journal_cannot_link_a_record() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let running = start(&emulator, out.path(), Faults::default(), 100).await;
    // A directory where readiness links its probe: the link an insert makes fails the same way.
    let blocked = out.path().join(".journal/jobs/.probe.link");
    std::fs::create_dir(&blocked).unwrap();
    let (status, text) = running.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("the journal cannot write"), "{text}");
    std::fs::remove_dir(&blocked).unwrap();
    assert_eq!(running.ready().await.0, StatusCode::OK);
    running.stop().await;
}

#[tokio::test]
async fn a_journal_that_cannot_be_listed_at_start_is_read_again_and_its_open_jobs_run() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-listed-late", 100_000));
    let out = tempfile::tempdir().unwrap();
    let event = recording_file_status_updated(&recording);
    // An open job from an earlier run.
    let running = start(&emulator, out.path(), Faults::default(), 100).await;
    emulator.storage().set_outage(true);
    assert!(running.publisher(Schema::EventGrid, once()).deliver(std::slice::from_ref(&event)).await.is_delivered());
    drop(running.stop().await);
    emulator.storage().set_outage(false);

    // The journal cannot be listed for the first three tries: the recorder reads it again (it used to return, and
    // its intake went on accepting jobs no worker would run), becomes ready, and finishes the job.
    let faults = Faults { failing_lists: 3, ..Faults::default() };
    let running = start(&emulator, out.path(), faults, 100).await;
    assert!(running.journal.lists.load(Ordering::SeqCst) >= 4);
    stored(&running.journal, &event, &recording).await;
    running.stop().await;
}
