use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::memory::InMemory;
use object_store::PutPayload;

use super::*;
use crate::credential::ConnectionString;
use crate::download::sink::DirectorySink;
use crate::journal::{Job, JobState, Lease, MemoryJournal};
use crate::recorder::Recorder;

/// A memory journal whose inserts fail while `down` is set: the journal of an outage.
#[derive(Clone, Default)]
struct Outage {
    inner: MemoryJournal,
    down: Arc<AtomicBool>,
}

impl Journal for Outage {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(io::Error::other("the journal's disk is gone"));
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
    async fn claim(&self, id: &JobId) -> io::Result<Option<Lease>> {
        self.inner.claim(id).await
    }
}

fn recorder(journal: Outage) -> Recorder<DirectorySink, Outage> {
    let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    Recorder::builder(&cs, client, DirectorySink::new("unused"), journal).build()
}

const BLOB: &str = r#"[{"id":"e1","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1",
  "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z",
  "dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]}},
  "deadLetterReason":"TimeToLiveExceeded","deliveryAttempts":7}]"#;

async fn store_with(blobs: &[(&str, &str)]) -> Arc<InMemory> {
    let store = Arc::new(InMemory::new());
    for (name, text) in blobs {
        store.put(&Path::from(*name), PutPayload::from(text.as_bytes().to_vec())).await.unwrap();
    }
    store
}

fn source(store: &Arc<InMemory>) -> DeadLetterSource {
    DeadLetterSource::new(StoreLocation::new(store.clone(), Path::from("dl")), "dl")
}

#[test]
fn markers_sit_beside_the_blobs_under_the_prefix() {
    let source = source(&Arc::new(InMemory::new()));
    let marker = source.marker(&Path::from("dl/SUB/2026/11/27/8/a.json"));
    assert_eq!(marker.as_ref(), "dl/.acs-recording-processed/SUB/2026/11/27/8/a.json");
}

#[tokio::test]
async fn a_journal_outage_leaves_the_blob_unmarked_and_the_next_pass_journals_it() {
    let store = store_with(&[("dl/SUB/2026/11/27/8/a.json", BLOB)]).await;
    let journal = Outage::default();
    let recorder = recorder(journal.clone());
    let dead_letters = source(&store);

    journal.down.store(true, Ordering::SeqCst);
    let error = dead_letters.replay(&recorder.intake()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Admit);
    assert_eq!(
        error.to_string(),
        "the journal did not take the events of dead-letter blob `dl/SUB/2026/11/27/8/a.json`"
    );
    let marker = dead_letters.marker(&Path::from("dl/SUB/2026/11/27/8/a.json"));
    assert!(matches!(store.head(&marker).await, Err(object_store::Error::NotFound { .. })), "not marked");

    journal.down.store(false, Ordering::SeqCst);
    let replayed = dead_letters.replay(&recorder.intake()).await.unwrap();
    assert_eq!((replayed.blobs_read, replayed.events_journaled, replayed.duplicates), (1, 1, 0));
    assert_eq!(replayed.jobs, [JobId::for_event("e1")]);
    store.head(&marker).await.unwrap();
    let jobs = journal.list().await.unwrap();
    assert_eq!(jobs[0].notes, ["dead-lettered by Event Grid: TimeToLiveExceeded after 7 delivery attempts"]);
}

#[tokio::test]
async fn a_blob_over_the_limit_is_rejected_with_its_head_and_marked() {
    let big = format!("[{}]", " ".repeat(2000));
    let store = store_with(&[("dl/SUB/big.json", &big), ("dl/SUB/small.json", BLOB)]).await;
    let journal = Outage::default();
    let recorder = recorder(journal.clone());
    let dead_letters = source(&store).max_blob_bytes(1000);

    let replayed = dead_letters.replay(&recorder.intake()).await.unwrap();
    assert_eq!((replayed.blobs_read, replayed.blobs_unreadable, replayed.rejected), (2, 1, 1));
    let jobs = journal.list().await.unwrap();
    let rejected = jobs.iter().find(|job| job.state == JobState::Rejected).unwrap();
    assert_eq!(
        rejected.last_error.as_deref(),
        Some("dead-letter blob dl/SUB/big.json: 2002 bytes, over the limit of 1000")
    );
    assert_eq!(rejected.message.as_deref(), Some(big.as_str()));
    assert_eq!(rejected.source.as_deref(), Some("dead-letters:dl"));
    store.head(&dead_letters.marker(&Path::from("dl/SUB/big.json"))).await.unwrap();

    let again = dead_letters.replay(&recorder.intake()).await.unwrap();
    assert_eq!((again.blobs_read, again.blobs_skipped, again.rejected), (0, 2, 0), "reported once");
}

#[tokio::test]
async fn run_reads_blobs_as_they_come_and_returns_on_shutdown() {
    let store = store_with(&[]).await;
    let journal = Outage::default();
    let recorder = recorder(journal.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(source(&store).interval(Duration::from_millis(10)).run(recorder.intake(), async {
        let _ = stopped.await;
    }));
    store.put(&Path::from("dl/SUB/a.json"), PutPayload::from(BLOB.as_bytes().to_vec())).await.unwrap();
    // Bounded: 500 looks, 10 ms apart.
    let mut found = false;
    for _ in 0..500 {
        if journal.get(&JobId::for_event("e1")).await.unwrap().is_some() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(found, "the watched blob was journaled");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), watcher).await.unwrap().unwrap().unwrap();
}
