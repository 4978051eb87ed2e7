//! The pull source in-process, over a journal put in the situations a process cannot be put in from outside: a
//! journal so slow that the locks must be renewed, and a journal outage.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use acs_recording::eventgrid::namespace::{NamespaceClient, NamespaceKey, ReleaseDelay};
use acs_recording::intake::pull::{PullOptions, PullSource};
use acs_recording::journal::Lease;
use http_body_util::Full;
use tokio::sync::oneshot;

use crate::support::recorder::*;

/// A file journal whose inserts are slow, or fail while it is down.
#[derive(Clone)]
struct Troubled {
    inner: FileJournal,
    slow_insert: Option<Duration>,
    down: Arc<AtomicBool>,
    failed_inserts: Arc<AtomicUsize>,
}

impl Troubled {
    fn new(out: &Path) -> Self {
        Self {
            inner: FileJournal::open(out.join(".journal")).unwrap(),
            slow_insert: None,
            down: Arc::default(),
            failed_inserts: Arc::default(),
        }
    }
}

impl Journal for Troubled {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        if self.down.load(Ordering::SeqCst) {
            self.failed_inserts.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other("the journal's disk is gone"));
        }
        if let Some(slow) = self.slow_insert {
            tokio::time::sleep(slow).await;
        }
        self.inner.insert(jobs).await
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        self.inner.update(job).await
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        self.inner.get(id).await
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        self.inner.list().await
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        self.inner.remove(id).await
    }

    async fn check_writable(&self) -> io::Result<()> {
        self.inner.check_writable().await
    }

    async fn claim(&self, id: &JobId) -> io::Result<Option<Lease>> {
        self.inner.claim(id).await
    }
}

/// Runs a pull source on the emulator's subscription into `running`'s intake until the sender is dropped or sent.
fn pull(
    emulator: &Emulator,
    running: &Running<Troubled>,
    options: PullOptions,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = NamespaceClient::from_url(http, &emulator.namespace_subscription_url())
        .unwrap()
        .with_key(NamespaceKey::new(emulator.namespace().key()).unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let source = PullSource::new(client).options(options);
    let intake = running.intake.clone();
    let task = tokio::spawn(async move {
        source
            .run(intake, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}

/// Publishes a recording's event to the namespace topic as a CloudEvent, as an ACS system topic forwards it.
fn publish(emulator: &Emulator, call: &str) -> (StoredRecording, OutgoingEvent) {
    let recording = emulator.storage().record(RecordingSpec::new(call, 150_000));
    let event = recording_file_status_updated(&recording);
    emulator.namespace().publish(event.to_cloud_event("/acs"));
    (recording, event)
}

#[tokio::test]
async fn a_slow_journal_keeps_the_lock_renewed_and_the_event_comes_once() {
    let emulator = Emulator::builder()
        .chunk_limit(64 * 1024)
        .namespace_lock_duration(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let journal = Troubled { slow_insert: Some(Duration::from_secs(5)), ..Troubled::new(folder.path()) };
    let running = Running::start_with(&emulator, folder.path(), journal, |b| b).await;
    let options = PullOptions {
        lock_duration: Duration::from_secs(2),
        max_wait: Duration::from_secs(1),
        ..PullOptions::default()
    };
    let (stop, task) = pull(&emulator, &running, options);

    let (recording, event) = publish(&emulator, "slow-call");
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    let namespace = emulator.namespace();
    wait_until_acknowledged(namespace, &event.id).await;
    // Five seconds of journaling under a two-second lock: renewed, never handed to anyone again.
    assert_eq!(namespace.deliveries(&event.id), 1);
    assert_eq!(namespace.acknowledgements(&event.id), 1);
    assert!(namespace.dead_letters().is_empty());
    let _ = stop.send(());
    task.await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn a_journal_outage_releases_the_events_and_they_land_after() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let folder = tempfile::tempdir().unwrap();
    let journal = Troubled::new(folder.path());
    let down = journal.down.clone();
    let failed = journal.failed_inserts.clone();
    down.store(true, Ordering::SeqCst);
    let running = Running::start_with(&emulator, folder.path(), journal, |b| b).await;
    let options = PullOptions {
        release_delay: ReleaseDelay::None,
        max_wait: Duration::from_secs(1),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..PullOptions::default()
    };
    let (stop, task) = pull(&emulator, &running, options);

    let published: Vec<_> = (0..3).map(|n| publish(&emulator, &format!("outage-call-{n}"))).collect();
    let namespace = emulator.namespace();
    // Every event came, was refused by the journal and released, and came again.
    let ids: Vec<String> = published.iter().map(|(_, event)| event.id.clone()).collect();
    eventually(Duration::from_secs(30), "each event is delivered twice during the outage", || {
        std::future::ready(ids.iter().all(|id| namespace.deliveries(id) >= 2).then_some(()))
    })
    .await;
    assert!(failed.load(Ordering::SeqCst) >= 6);
    assert!(ids.iter().all(|id| namespace.acknowledgements(id) == 0), "nothing acknowledged while down");

    down.store(false, Ordering::SeqCst);
    for (recording, event) in &published {
        let job = finished(&running.journal, &event.id).await;
        assert_files_right(&job, recording);
        wait_until_acknowledged(namespace, &event.id).await;
        assert_eq!(namespace.acknowledgements(&event.id), 1);
    }
    assert!(namespace.dead_letters().is_empty(), "none lost: {:?}", namespace.dead_letters());
    assert_eq!(namespace.pending(), 0);
    let _ = stop.send(());
    task.await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn a_malformed_event_is_journaled_with_its_text_and_rejected() {
    let emulator = Emulator::start().await.unwrap();
    let folder = tempfile::tempdir().unwrap();
    let running = Running::start_with(&emulator, folder.path(), Troubled::new(folder.path()), |b| b).await;
    let (stop, task) =
        pull(&emulator, &running, PullOptions { max_wait: Duration::from_secs(1), ..PullOptions::default() });

    let malformed = serde_json::json!({"id": "bad-1", "source": "/acs", "specversion": "1.0",
        "type": "Microsoft.Communication.RecordingFileStatusUpdated", "subject": "/recording/call/c/serverCallId/s",
        "data": {"recordingStorageInfo": {"recordingChunks": [{"index": "zero"}]}}});
    let other = serde_json::json!({"id": "other-1", "source": "/acs", "specversion": "1.0", "type": "Contoso.Other"});
    emulator.namespace().publish(malformed.clone());
    emulator.namespace().publish(other);
    let namespace = emulator.namespace();
    eventually(Duration::from_secs(30), "the malformed event is dead-lettered", || {
        std::future::ready(
            (namespace.dead_letters().len() == 1 && namespace.acknowledgements("other-1") == 1).then_some(()),
        )
    })
    .await;
    assert_eq!(namespace.dead_letters()[0].reason, "Rejected");
    assert_eq!(namespace.dead_letters()[0].event, malformed);
    let jobs = running.journal.list().await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Rejected);
    let kept: serde_json::Value = serde_json::from_str(jobs[0].message.as_deref().unwrap()).unwrap();
    assert_eq!(kept, malformed, "the event's text is in the journal");
    assert_eq!(jobs[0].source.as_deref(), Some("pull:recordings/recorder"));
    let _ = stop.send(());
    task.await.unwrap();
    running.stop().await;
}

async fn wait_until_acknowledged(namespace: &acs_recording::emulator::NamespaceTopic, id: &str) {
    eventually(Duration::from_secs(30), format!("event {id} is acknowledged"), || {
        std::future::ready((namespace.acknowledgements(id) > 0).then_some(()))
    })
    .await
}

/// Hands out one token for any scope, remembering the scopes asked for.
#[derive(Debug, Default)]
struct ScopeRecorder {
    scopes: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for ScopeRecorder {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        self.scopes.lock().unwrap().extend(scopes.iter().map(|s| s.to_string()));
        let expires = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
        Ok(azure_core::credentials::AccessToken::new("event-grid-token", expires))
    }
}

#[tokio::test]
async fn an_entra_token_for_event_grid_receives_and_acknowledges() {
    use acs_recording::eventgrid::namespace::EVENTGRID_SCOPE;
    use acs_recording::signing::BearerTokenLayer;
    use tower::Layer;

    let emulator = Emulator::builder().bearer_token("event-grid-token").start().await.unwrap();
    let credential = Arc::new(ScopeRecorder::default());
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let bearer = BearerTokenLayer::new(emulator.endpoint().clone(), credential.clone()).scope(EVENTGRID_SCOPE);
    let client = NamespaceClient::from_url(bearer.layer(http), &emulator.namespace_subscription_url()).unwrap();
    emulator.namespace().publish(serde_json::json!({"id": "e1", "source": "/t", "type": "T", "specversion": "1.0"}));

    let events = client.receive(1, Duration::from_secs(5)).await.unwrap();
    let token = events[0].broker_properties.lock_token.clone();
    assert!(client.acknowledge(&[token]).await.unwrap().is_complete());
    assert_eq!(emulator.namespace().acknowledgements("e1"), 1);
    assert_eq!(*credential.scopes.lock().unwrap(), [EVENTGRID_SCOPE]);
}
