//! Faults at every phase of a recorder replica's work in object storage: a replica (a process) reaches Azurite
//! through a fault-injecting proxy, the checks read Azurite directly. Each test ends with the promise: the job is
//! `done`, every chunk's final object has the emulator's SHA-256, the recording's manifest lists them, and the store
//! holds nothing else (no staging object, no claim, no marker).
#![cfg(unix)]

use std::time::{Duration, Instant};

use crate::support::emulator::served;
use crate::support::store::checks::{assert_stored, media_requests_answered, wait_for_done, wait_until};
use crate::support::store::proxy::{Action, FaultProxy, Match, Partition};
use crate::support::store::replica::Replica;
use crate::support::store::{azurite_url, Backend};
use acs_recording::emulator::eventgrid::{recording_file_status_updated, OutgoingEvent};
use acs_recording::emulator::{Emulator, Link, RecordingSpec, StoredRecording};
use acs_recording::journal::Job;
use http::Method;

/// Leases short enough for the takeover tests to run in seconds.
const LEASE_SECONDS: u64 = 2;
const LEASE: Duration = Duration::from_secs(LEASE_SECONDS);

/// One replica behind a proxy, on a fresh container.
struct Faulty {
    backend: Backend,
    proxy: FaultProxy,
    emulator: Emulator,
}

impl Faulty {
    async fn new(test: &str, chunk_limit: u64) -> Self {
        let backend = Backend::azurite(test);
        let proxy = FaultProxy::start(azurite_url()).await;
        let emulator = Emulator::builder().chunk_limit(chunk_limit).start().await.unwrap();
        Self { backend, proxy, emulator }
    }

    /// A replica whose every store request goes through the proxy.
    async fn replica(&self, name: &str) -> Replica {
        Replica::start(name, &self.emulator, &self.backend.through(&self.proxy.url()), LEASE_SECONDS).await
    }

    /// A replica that reaches Azurite directly.
    async fn direct(&self, name: &str) -> Replica {
        Replica::start(name, &self.emulator, &self.backend, LEASE_SECONDS).await
    }

    async fn deliver(&self, replica: &Replica, recording: &StoredRecording) -> OutgoingEvent {
        let event = recording_file_status_updated(recording);
        assert!(replica.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
        event
    }

    /// The promise, checked in Azurite: done, every chunk's SHA-256 recorded and stored, nothing left behind.
    async fn assert_done(&self, event: &OutgoingEvent, recording: &StoredRecording, replicas: &[Replica]) -> Job {
        let job = wait_for_done(&self.backend, event, replicas).await;
        for (progress, chunk) in job.chunks.iter().zip(&recording.chunks) {
            assert_eq!(progress.sha256, Some(chunk.sha256), "{job:?}");
        }
        assert_stored(&self.backend, &[recording]).await;
        job
    }

    /// Every chunk was downloaded exactly once.
    fn assert_downloaded_once(&self, recording: &StoredRecording) {
        for chunk in &recording.chunks {
            assert_eq!(served(&self.emulator, &chunk.document_id), chunk.size, "{}", chunk.document_id);
        }
    }
}

fn put(path: &str) -> Match {
    Match::method(Method::PUT).path(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_claim_starts_the_job_without_waiting_for_the_lease() {
    let faulty = Faulty::new("lost-claim", 4 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-claim", 300_000));
    let rule = faulty.proxy.rule(put("/claims/").header("if-none-match"), Action::LoseResponse, 1);
    let replica = faulty.replica("r0").await;
    let event = faulty.deliver(&replica, &recording).await;
    let job = faulty.assert_done(&event, &recording, std::slice::from_ref(&replica)).await;
    assert_eq!(faulty.proxy.applied(rule), 1);
    assert_eq!(job.attempts, 1, "{job:?}");
    let log = replica.stderr();
    assert!(!log.contains("expired lease"), "the replica's own claim was not left to lapse: {log}");
    faulty.assert_downloaded_once(&recording);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_checkpoint_ends_done_in_one_attempt() {
    let faulty = Faulty::new("lost-checkpoint", 256 * 1024).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-checkpoint", 700_000));
    // The attempt's start and the first chunk's checkpoint are applied, their answers lost.
    let rule = faulty.proxy.rule(put("/jobs/").header("if-match"), Action::LoseResponse, 2);
    let replica = faulty.replica("r0").await;
    let event = faulty.deliver(&replica, &recording).await;
    let job = faulty.assert_done(&event, &recording, std::slice::from_ref(&replica)).await;
    assert_eq!(faulty.proxy.applied(rule), 2);
    assert_eq!(job.attempts, 1, "{job:?}");
    let log = replica.stderr();
    assert!(!log.contains("changed by another worker") && !log.contains("lease lost"), "{log}");
    faulty.assert_downloaded_once(&recording);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_upload_reset_midway_is_sent_again_and_the_bytes_are_whole() {
    let faulty = Faulty::new("reset-part", 64 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-parts", 20 << 20));
    let rule = faulty.proxy.rule(put("").query("comp=block&"), Action::ResetAfter(1 << 20), 2);
    let replica = faulty.replica("r0").await;
    let event = faulty.deliver(&replica, &recording).await;
    faulty.assert_done(&event, &recording, std::slice::from_ref(&replica)).await;
    assert_eq!(faulty.proxy.applied(rule), 2);
    faulty.assert_downloaded_once(&recording);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_on_the_commit_copy_is_waited_out() {
    let faulty = Faulty::new("copy-storm", 4 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-copy", 300_000));
    let copy = || put("").header("x-ms-copy-source");
    let with_retry_after = faulty.proxy.rule(copy(), Action::Unavailable { retry_after: Some(1) }, 2);
    let without = faulty.proxy.rule(copy(), Action::Unavailable { retry_after: None }, 3);
    let replica = faulty.replica("r0").await;
    let event = faulty.deliver(&replica, &recording).await;
    faulty.assert_done(&event, &recording, std::slice::from_ref(&replica)).await;
    assert_eq!((faulty.proxy.applied(with_retry_after), faulty.proxy.applied(without)), (2, 3));
    faulty.assert_downloaded_once(&recording);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_manifest_put_still_commits_the_recording() {
    let faulty = Faulty::new("lost-manifest", 4 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-manifest", 300_000));
    let chunk = faulty.proxy.rule(put(".wav.json").header("if-none-match"), Action::LoseResponse, 1);
    let whole = faulty.proxy.rule(put("/recording-").header("if-none-match"), Action::LoseResponse, 1);
    let replica = faulty.replica("r0").await;
    let event = faulty.deliver(&replica, &recording).await;
    let job = faulty.assert_done(&event, &recording, std::slice::from_ref(&replica)).await;
    assert_eq!((faulty.proxy.applied(chunk), faulty.proxy.applied(whole)), (1, 1));
    assert_eq!(job.attempts, 1, "{job:?}");
    faulty.assert_downloaded_once(&recording);
}

/// The owner's store requests as Azurite applied them after `since`: none may be writes.
fn assert_wrote_nothing_after(proxy: &FaultProxy, since: Instant, owner: &Replica) {
    let late: Vec<String> =
        proxy.writes_applied_since(since).iter().map(|seen| format!("{} {}", seen.method, seen.uri)).collect();
    assert!(late.is_empty(), "the owner wrote after its lease lapsed: {late:?}\n{}", owner.stderr());
}

/// When the owner's claim was written: its lease ends at most a lease later.
fn claimed_at(proxy: &FaultProxy) -> Instant {
    let claims = proxy.seen().into_iter().filter(|seen| seen.uri.contains("/claims/") && seen.forwarded);
    claims.map(|seen| seen.at).next().expect("the owner claimed the job")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_hangs_past_the_lease_stops_the_owner_at_its_expiry() {
    let faulty = Faulty::new("renewal-hangs", 4 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-renewal", 1_500_000));
    let document = recording.chunks[0].document_id.clone();
    // Three lease lengths for the one chunk; every renewal of the owner's takes ten.
    faulty.emulator.storage().set_document_link(&document, Link::unlimited().bandwidth(250_000));
    faulty.proxy.rule(put("/claims/").header("if-match"), Action::Delay(10 * LEASE), 100);
    let owner = faulty.replica("owner").await;
    let event = faulty.deliver(&owner, &recording).await;
    wait_until("the owner downloads", || media_requests_answered(&faulty.emulator, &document)).await;
    let other = faulty.direct("r1").await;
    wait_until("the owner stops", || owner.stderr().contains("lease lost: stopping")).await;
    let lapsed = claimed_at(&faulty.proxy) + LEASE;
    assert!(Instant::now() < lapsed + LEASE, "stopped by its lease's expiry, not by the renewal's answer");
    faulty.assert_done(&event, &recording, std::slice::from_ref(&other)).await;
    assert!(other.stderr().contains("expired lease"), "r1 took the job over: {}", other.stderr());
    assert!(!owner.stdout().contains("recording of call call-renewal"), "{}", owner.stdout());
    assert_wrote_nothing_after(&faulty.proxy, lapsed, &owner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_partitioned_past_its_lease_writes_nothing_once_back() {
    let faulty = Faulty::new("partitioned", 4 << 20).await;
    let recording = faulty.emulator.storage().record(RecordingSpec::new("call-partitioned", 1_500_000));
    let document = recording.chunks[0].document_id.clone();
    faulty.emulator.storage().set_document_link(&document, Link::unlimited().bandwidth(250_000));
    let owner = faulty.replica("owner").await;
    let event = faulty.deliver(&owner, &recording).await;
    wait_until("the owner downloads", || media_requests_answered(&faulty.emulator, &document)).await;
    let other = faulty.direct("r1").await;
    // Cut off for five leases, longer than its download: its requests wait in the network, and go on if it still
    // sends them after.
    let cut = Instant::now();
    faulty.proxy.partition(5 * LEASE, Partition::Hang);
    faulty.assert_done(&event, &recording, std::slice::from_ref(&other)).await;
    wait_until("the owner stops", || owner.stderr().contains("lease lost: stopping")).await;
    let keys = faulty.backend.keys().await;
    tokio::time::sleep(LEASE).await;
    assert_eq!(faulty.backend.keys().await, keys, "nothing more in the store");
    assert!(!owner.stdout().contains("recording of call call-partitioned"), "{}", owner.stdout());
    assert_wrote_nothing_after(&faulty.proxy, cut, &owner);
    assert_stored(&faulty.backend, &[&recording]).await;
}
