//! The recorder example reading a Storage queue on Azurite: every message shape lands byte-identical, garbage is
//! rejected with its text, nothing is deleted before it is journaled, messages that keep failing move to the
//! poison queue, two replicas share one queue and download each chunk once, and a replica killed while it holds
//! messages loses none of them.

use std::path::Path;
use std::time::Duration;

use acs_recording::emulator::eventgrid::{recording_file_status_updated, OutgoingEvent};
use acs_recording::emulator::{Emulator, RecordingSpec, StoredRecording};
use acs_recording::journal::{FileJournal, JobId, JobState, Journal, ObjectStoreJournal};
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::support::azurite::url as azurite_url;
use crate::support::emulator::served;
use crate::support::queue::{
    assert_drained, base64, cloud_event, event_grid, new_queue, start_recorder, wait_for_message,
};
use crate::support::recorder_process::{free_port, journal_dir, media_path, wait_for_job};
use crate::support::store::checks::{assert_stored, wait_for_done};
use crate::support::store::proxy::{FaultProxy, Partition};
use crate::support::store::Backend;
use crate::support::{eventually, send};

/// Short, so that a message left undeleted comes back within the test.
const VISIBILITY: Duration = Duration::from_secs(2);
const VISIBILITY_ARG: &str = "2";

async fn emulator() -> Emulator {
    Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap()
}

/// Every chunk of `recording` on disk under `out` has the emulator's SHA-256, and was served once.
fn assert_files(emulator: &Emulator, out: &Path, recording: &StoredRecording) {
    for (index, chunk) in recording.chunks.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(media_path(out, recording, index)).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{} chunk {index}", recording.call_id);
        assert_eq!(served(emulator, &chunk.document_id), chunk.size, "{} downloaded once", chunk.document_id);
    }
}

/// Makes the file journal under `out` fail every write and read of a job (as root too: its `jobs` folder becomes
/// a file); answers the guard that puts it back.
fn break_journal(out: &Path) -> impl FnOnce() {
    let jobs = journal_dir(out).join("jobs");
    let away = journal_dir(out).join("jobs.away");
    std::fs::rename(&jobs, &away).unwrap();
    std::fs::write(&jobs, b"not a folder").unwrap();
    move || {
        std::fs::remove_file(&jobs).unwrap();
        std::fs::rename(&away, &jobs).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_in_every_shape_land_byte_identical_and_garbage_is_rejected_with_its_text() {
    let emulator = emulator().await;
    let queue = new_queue("shapes").await;
    let recordings: Vec<StoredRecording> = ["call-eg-base64", "call-eg-plain", "call-ce-base64", "call-ce-plain"]
        .iter()
        .map(|call| emulator.storage().record(RecordingSpec::new(*call, 300_000)))
        .collect();
    let events: Vec<OutgoingEvent> = recordings.iter().map(recording_file_status_updated).collect();
    let texts = [
        base64(&event_grid(&events[0])),
        event_grid(&events[1]),
        base64(&cloud_event(&events[2])),
        cloud_event(&events[3]),
    ];
    for text in &texts {
        queue.put(text).await.unwrap();
    }
    queue.put("%% not an event %%").await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let extra = ["--queue-visibility-timeout", VISIBILITY_ARG, "--metrics", &metrics];
    let recorder = start_recorder(&emulator, &queue, out.path(), None, &extra).await;
    for (recording, event) in recordings.iter().zip(&events) {
        let job =
            wait_for_job(out.path(), event, "the queued recording is downloaded", |job| job.state == JobState::Done)
                .await;
        assert_eq!(job.source.as_deref(), Some(format!("queue:{}", queue.url().queue()).as_str()));
        assert_files(&emulator, out.path(), recording);
    }
    assert_drained(&queue, VISIBILITY).await;

    let jobs = FileJournal::open_read_only(journal_dir(out.path())).unwrap().list().await.unwrap();
    assert_eq!(jobs.len(), 5, "four recordings and the rejected message: {jobs:?}");
    let rejected = jobs.iter().find(|job| job.state == JobState::Rejected).expect("the garbage is journaled");
    assert_eq!(rejected.message.as_deref(), Some("%% not an event %%"));
    let status = std::process::Command::new(crate::support::process::recorder_binary())
        .args(["status", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(listed.contains(&format!("from queue:{}", queue.url().queue())), "{listed}");
    assert!(listed.contains("    message: %% not an event %%"), "{listed}");
    assert!(listed.contains("the message is neither JSON nor base64"), "{listed}");

    // Only a pull source and no delivery check: no webhook route, the probes stay.
    let base = format!("http://{}", recorder.addr);
    assert_eq!(send(Method::POST, &format!("{base}/api/events"), &[], "[]").await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(Method::GET, &format!("{base}/healthz"), &[], "").await.status, StatusCode::OK);

    // What the source did, per outcome, in the metrics.
    let scraped = send(Method::GET, &format!("http://{metrics}/metrics"), &[], "").await;
    let name = format!("name=\"{}\"", queue.url().queue());
    for (outcome, count) in [("received", 5), ("acknowledged", 5), ("journaled", 4), ("rejected", 1)] {
        let found = scraped.text().lines().any(|line| {
            line.starts_with("acs_recording_source_messages_total{")
                && line.contains("source=\"queue\"")
                && line.contains(&name)
                && line.contains(&format!("outcome=\"{outcome}\""))
                && line.ends_with(&format!(" {count}"))
        });
        assert!(found, "{outcome} {count} missing from:\n{}", scraped.text());
    }
    assert!(scraped.text().contains("acs_recording_source_oldest_message_seconds{"), "{}", scraped.text());

    // SIGTERM: the queue source stops with the recorder, which exits 0.
    recorder.signal("TERM");
    let (status, _, stderr) = recorder.exited().await;
    assert!(status.success(), "exit {status}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stays_while_the_journal_fails_and_lands_when_it_is_back() {
    let emulator = emulator().await;
    let queue = new_queue("outage").await;
    let recording = emulator.storage().record(RecordingSpec::new("call-outage", 300_000));
    let event = recording_file_status_updated(&recording);
    let out = tempfile::tempdir().unwrap();
    let extra = ["--queue-visibility-timeout", "1", "--queue-max-dequeue", "1000"];
    let recorder = start_recorder(&emulator, &queue, out.path(), None, &extra).await;
    let restore = break_journal(out.path());
    queue.put(&base64(&event_grid(&event))).await.unwrap();
    // Received, not admitted, not deleted: it comes back, counted again.
    let again = wait_for_message(&queue, "the message comes back", |message| message.dequeue_count >= 2).await;
    assert_eq!(again.text, base64(&event_grid(&event)));
    assert_eq!(served(&emulator, &recording.chunks[0].document_id), 0);
    restore();
    let job =
        wait_for_job(out.path(), &event, "the job is done once the journal is back", |job| job.state == JobState::Done)
            .await;
    assert_eq!(job.id, JobId::for_event(&event.id));
    assert_files(&emulator, out.path(), &recording);
    assert_drained(&queue, Duration::from_secs(1)).await;
    assert!(recorder.stderr.lock().unwrap().contains("message not admitted"));
    assert!(queue.poison_queue().peek().await.is_err(), "no poison queue was needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_moves_to_the_poison_queue_with_its_text() {
    let emulator = emulator().await;
    let queue = new_queue("poisoned").await;
    let recording = emulator.storage().record(RecordingSpec::new("call-poison", 100_000));
    let text = base64(&cloud_event(&recording_file_status_updated(&recording)));
    let out = tempfile::tempdir().unwrap();
    let extra = ["--queue-visibility-timeout", "1", "--queue-max-dequeue", "2"];
    let recorder = start_recorder(&emulator, &queue, out.path(), None, &extra).await;
    let restore = break_journal(out.path());
    queue.put(&text).await.unwrap();
    let poison = queue.poison_queue();
    let moved = eventually(Duration::from_secs(60), "the message is in the poison queue", || async {
        poison.peek().await.ok().flatten()
    })
    .await;
    assert_eq!(moved.text, text);
    assert_drained(&queue, Duration::from_secs(1)).await;
    restore();
    assert!(recorder.stderr.lock().unwrap().contains("moved to the poison queue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_queue_and_one_store_download_each_chunk_once() {
    let emulator = emulator().await;
    let backend = Backend::azurite("queue-two-replicas");
    let queue = new_queue("two-replicas").await;
    let first = emulator.storage().record(RecordingSpec::new("call-a", 700_000));
    let second = emulator.storage().record(RecordingSpec::new("call-b", 600_000));
    let events = [recording_file_status_updated(&first), recording_file_status_updated(&second)];
    // Each event twice, as an at-least-once delivery may put it.
    for event in events.iter().chain(&events) {
        queue.put(&base64(&event_grid(event))).await.unwrap();
    }
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Some((backend.url.as_str(), backend.env.as_slice()));
    let extra = ["--queue-visibility-timeout", VISIBILITY_ARG, "--lease-seconds", "2"];
    let _a = start_recorder(&emulator, &queue, one.path(), store, &extra).await;
    let _b = start_recorder(&emulator, &queue, two.path(), store, &extra).await;
    for event in &events {
        wait_for_done(&backend, event, &[]).await;
    }
    for chunk in first.chunks.iter().chain(&second.chunks) {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{} downloaded once", chunk.document_id);
    }
    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    assert_eq!(journal.list().await.unwrap().len(), 2, "one job per event");
    assert_stored(&backend, &[&first, &second]).await;
    assert_drained(&queue, VISIBILITY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_it_holds_a_message_loses_nothing() {
    let emulator = emulator().await;
    let backend = Backend::azurite("queue-killed");
    let proxy = FaultProxy::start(azurite_url()).await;
    let through = backend.through(&proxy.url());
    let queue = new_queue("killed").await;
    let recording = emulator.storage().record(RecordingSpec::new("call-killed", 500_000));
    let event = recording_file_status_updated(&recording);
    let a_out = tempfile::tempdir().unwrap();
    let held = ["--queue-visibility-timeout", "3", "--lease-seconds", "2"];
    let a = start_recorder(&emulator, &queue, a_out.path(), Some((&through.url, &through.env)), &held).await;
    // Replica A's journal writes hang: it receives the message and holds it, hidden, without deleting it.
    proxy.partition(Duration::from_secs(120), Partition::Hang);
    queue.put(&base64(&event_grid(&event))).await.unwrap();
    eventually(Duration::from_secs(60), "replica A holds the message", || async {
        queue.peek().await.unwrap().is_none().then_some(())
    })
    .await;
    a.kill();
    proxy.partition(Duration::ZERO, Partition::Hang);

    let b_out = tempfile::tempdir().unwrap();
    let extra = ["--queue-visibility-timeout", VISIBILITY_ARG, "--lease-seconds", "2"];
    let _b = start_recorder(&emulator, &queue, b_out.path(), Some((&backend.url, &backend.env)), &extra).await;
    let job = wait_for_done(&backend, &event, &[]).await;
    assert_eq!(job.source.as_deref(), Some(format!("queue:{}", queue.url().queue()).as_str()));
    for chunk in &recording.chunks {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{} downloaded once", chunk.document_id);
    }
    assert_stored(&backend, &[&recording]).await;
    assert_drained(&queue, VISIBILITY).await;
}
