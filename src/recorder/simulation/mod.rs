//! A deterministic simulation of the recorder: one to three replicas with their intakes, workers, journal,
//! downloader and sink, against ACS storage, Event Grid and a shared journal that are all simulated in process, with
//! faults at every step chosen by a seed.
//!
//! Each run is one seed on a single-threaded runtime with tokio's paused clock: nothing touches the network, the
//! disk or the wall clock, and every choice (faults, delays, crashes, clock skews, backoff jitter) comes from the
//! seed, so a failing seed fails again the same way. `ACS_SIM_SEEDS=n` sets how many seeds the test runs (from
//! `ACS_SIM_FIRST_SEED`), `ACS_SIM_SEED=s` runs one.
//!
//! What a run puts the recorder through: journal calls refused, applied with their answer lost, or slow enough for
//! Event Grid to give up; Event Grid timeouts and redeliveries; storage answering 5xx, 403, 404, cutting bodies,
//! stalling, ignoring `Range`, changing the object; connections reset; the sink failing writes and commits (or
//! losing a commit's answer); replicas crashed or stopped and started again; clocks of replicas apart by up to two
//! seconds; events dated 9999-12-31 or with odd fields.
//!
//! The invariants checked after each run:
//!
//! 1. Every event answered 200 has its job `done`, every chunk in the sink with the storage's SHA-256, or `failed`
//!    with a reason; none is left open.
//! 2. No chunk in the sink holds bytes other than the storage's, and none was committed with a SHA-256 that does
//!    not match its bytes.
//! 3. No replica writes a job while another holds its lease.
//! 4. Every journal record reads back as written.

mod journal;
mod sink;
mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use self::journal::{SimJournal, Store};
use self::sink::{Held, MemorySink};
use self::world::{StorageClient, World};
use super::{Recorder, RecorderHandle, Webhook};
use crate::credential::ConnectionString;
use crate::download::{ParallelPolicy, RetryPolicy};
use crate::emulator::eventgrid::{recording_file_status_updated, OutgoingEvent};
use crate::emulator::{Fault, RecordingSpec, Storage, StoredRecording};
use crate::journal::{JobId, JobState};
use crate::signing::AllowList;
use crate::Sha256Digest;

const STORAGE: &str = "127.0.0.1:9";
const LEASE: Duration = Duration::from_secs(30);

/// One replica while it runs.
struct Replica {
    webhook: Webhook<SimJournal>,
    workers: RecorderHandle,
}

/// A defect planted on purpose, to show that the invariants catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planted {
    None,
    /// The sink commits every chunk without its last byte.
    ShortCommit,
    /// The journal answers that it wrote a job it dropped.
    LostInsert,
}

/// Everything one run shares.
struct Sim {
    world: World,
    storage: Storage,
    journal: Arc<Mutex<Store>>,
    sink: Arc<Mutex<Held>>,
    replicas: Mutex<Vec<Option<Replica>>>,
    /// The journal's poll interval: none when one replica has it to itself half of the time (as a file journal).
    poll: Option<Duration>,
    planted: Planted,
}

impl Sim {
    fn start(&self, replica: usize) {
        let connection = ConnectionString::parse(&format!("endpoint=http://127.0.0.1:8/;accesskey={}", "c2VjcmV0"))
            .expect("a valid connection string");
        let client = StorageClient { storage: self.storage.clone(), world: self.world.clone() };
        let journal = SimJournal::new(self.journal.clone(), self.world.clone(), replica, LEASE, self.poll)
            .losing_inserts(self.planted == Planted::LostInsert);
        let sink =
            MemorySink::new(self.sink.clone(), self.world.clone()).short_commits(self.planted == Planted::ShortCommit);
        let clock_world = self.world.clone();
        let mut parallel = ParallelPolicy::new(2048, 1024 + self.world.below(4096), 1 + self.world.below(4) as usize);
        parallel.fast_stream = None;
        let recorder = Recorder::builder(&connection, client, sink, journal)
            .allow_list(AllowList::azure_defaults().allow_host(STORAGE).expect("a host"))
            .clock(move || clock_world.replica_now(replica))
            .workers(1 + self.world.below(3) as usize)
            .max_pending(2 + self.world.below(8) as usize)
            .recording_lifetime(Duration::from_secs(3600))
            .job_backoff(Duration::from_secs(1), Duration::from_secs(60))
            .fetch_retry(RetryPolicy::default().max_attempts(3).read_timeout(Duration::from_secs(20)))
            .parallel(self.world.chance(700).then_some(parallel))
            .delete_after_download(self.world.chance(300))
            .shutdown_grace(self.world.duration(Duration::from_secs(5)))
            .build();
        let webhook = recorder.webhook();
        let workers = recorder.spawn();
        self.replicas.lock().unwrap_or_else(|p| p.into_inner())[replica] = Some(Replica { webhook, workers });
    }

    /// Takes a replica down: a crash (its tasks dropped where they are) or a graceful stop.
    async fn take_down(&self, replica: usize) {
        let Some(running) = self.replicas.lock().unwrap_or_else(|p| p.into_inner())[replica].take() else { return };
        if self.world.chance(500) {
            running.workers.abort();
        }
        let _ = running.workers.shutdown().await;
    }

    fn webhook(&self) -> Option<Webhook<SimJournal>> {
        let replicas = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let up: Vec<&Replica> = replicas.iter().flatten().collect();
        let pick = self.world.below(up.len() as u64) as usize;
        up.get(pick).map(|replica| replica.webhook.clone())
    }

    /// Delivers `event` as Event Grid does: until a 200 (answers true) or its attempts run out, each attempt timed
    /// out (at 30 s, or sooner now and then) and the next one after a backoff.
    async fn deliver(&self, event: &OutgoingEvent) -> bool {
        let backoff = [1u64, 5, 10, 30, 60, 300, 600, 1800];
        for wait in backoff {
            if let Some(webhook) = self.webhook() {
                let request = Request::post("/api/events")
                    .header("content-type", "application/json")
                    .header("aeg-event-type", "Notification")
                    .body(Full::new(event_grid_body(event)))
                    .expect("a valid request");
                let patience = if self.world.chance(150) { self.world.duration(Duration::from_secs(3)) } else { LEASE };
                if let Ok(Ok(answer)) = tokio::time::timeout(patience, webhook.oneshot(request)).await {
                    if answer.status() == StatusCode::OK {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        false
    }
}

fn event_grid_body(event: &OutgoingEvent) -> Bytes {
    let envelope = serde_json::json!([{
        "id": event.id, "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/CommunicationServices/sim",
        "subject": event.subject, "eventType": event.event_type, "eventTime": event.time,
        "data": event.data, "dataVersion": event.data_version, "metadataVersion": "1",
    }]);
    Bytes::from(serde_json::to_vec(&envelope).expect("JSON values serialize"))
}

/// Faults for one chunk of `size` bytes, each consumed by one request.
fn faults(world: &World, size: u64) -> Vec<Fault> {
    let mut faults = Vec::new();
    while world.chance(450) && faults.len() < 4 {
        let at = world.below(size.max(1));
        faults.push(match world.below(11) {
            9 => Fault::UnknownTotal,
            0 => Fault::DropAfter(at),
            1 => Fault::Status { status: 503, retry_after: Some(world.below(3)) },
            2 => Fault::Status { status: 500, retry_after: None },
            3 => Fault::ShortBody(at),
            4 => Fault::ChangeObject,
            5 => Fault::IgnoreRange,
            6 => Fault::StallAfter(at),
            7 => Fault::Status { status: 429, retry_after: Some(1) },
            8 => Fault::Status { status: 403, retry_after: None },
            _ if world.chance(300) => Fault::Status { status: 404, retry_after: None },
            _ => Fault::Status { status: 408, retry_after: None },
        });
    }
    faults
}

/// What a run ended with: the broken invariants, and a digest of the final state (for determinism).
#[derive(Debug)]
struct Outcome {
    violations: Vec<String>,
    digest: String,
    delivered: usize,
    done: usize,
    failed: usize,
}

/// Runs the simulation of `seed`.
fn run(seed: u64) -> Outcome {
    run_planted(seed, Planted::None)
}

fn run_planted(seed: u64, planted: Planted) -> Outcome {
    crate::random::seed_this_thread(Some(seed));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    let outcome = runtime.block_on(scenario(seed, planted));
    crate::random::seed_this_thread(None);
    outcome
}

async fn scenario(seed: u64, planted: Planted) -> Outcome {
    let replicas = 1 + (crate::random::splitmix(seed) % 3) as usize;
    let world = World::new(seed, replicas, Duration::from_secs(2));
    let storage = Storage::new(format!("http://{STORAGE}"), 4096 + world.below(12_000), "sim".to_owned());
    let sim = Arc::new(Sim {
        world: world.clone(),
        storage: storage.clone(),
        journal: Arc::default(),
        sink: Arc::default(),
        replicas: Mutex::new((0..replicas).map(|_| None).collect()),
        poll: (replicas > 1 || world.chance(500)).then_some(Duration::from_secs(2)),
        planted,
    });
    for replica in 0..replicas {
        sim.start(replica);
    }

    // The recordings, their chunks' faults, and their events (some of them odd).
    let mut recordings: Vec<(StoredRecording, OutgoingEvent)> = Vec::new();
    for n in 0..1 + world.below(4) {
        let recording = storage.record(RecordingSpec::new(format!("call-{seed}-{n}"), 1000 + world.below(40_000)));
        for chunk in &recording.chunks {
            storage.inject(&chunk.document_id, faults(&world, chunk.size));
            if world.chance(100) {
                storage.inject_delete(&chunk.document_id, [500]);
            }
        }
        let mut event = recording_file_status_updated(&recording);
        event.id = format!("event-{seed}-{n}");
        event.time = crate::time::format_rfc3339(world.now(), 3);
        if world.chance(50) {
            event.time = "9999-12-31T23:59:59Z".to_owned();
        }
        if world.chance(50) {
            event.data["recordingDurationMs"] = (-1).into();
        }
        recordings.push((recording, event));
    }

    // Event Grid delivers each event, some of them twice; replicas go down and come back meanwhile.
    let mut deliveries = Vec::new();
    for (n, (_, event)) in recordings.iter().enumerate() {
        let copies = if world.chance(200) { 2 } else { 1 };
        for _ in 0..copies {
            let (sim, event, start) = (sim.clone(), event.clone(), world.duration(Duration::from_secs(20)));
            deliveries.push(tokio::spawn(async move {
                tokio::time::sleep(start).await;
                (n, sim.deliver(&event).await)
            }));
        }
    }
    let chaos = {
        let sim = sim.clone();
        tokio::spawn(async move {
            for _ in 0..sim.world.below(4) {
                tokio::time::sleep(sim.world.duration(Duration::from_secs(120))).await;
                let replica = sim.world.below(replicas as u64) as usize;
                sim.take_down(replica).await;
                tokio::time::sleep(sim.world.duration(Duration::from_secs(40))).await;
                sim.start(replica);
            }
        })
    };
    let mut delivered = vec![false; recordings.len()];
    for delivery in deliveries {
        if let Ok((n, true)) = delivery.await {
            delivered[n] = true;
        }
    }
    let _ = chaos.await;
    // Every replica up; the work goes on until no job is open (or well past every recording's expiry).
    for (replica, slot) in sim.replicas.lock().unwrap_or_else(|p| p.into_inner()).iter().enumerate() {
        assert!(slot.is_some(), "replica {replica} was left down");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4 * 3600);
    while tokio::time::Instant::now() < deadline {
        let open = sim.journal.lock().unwrap_or_else(|p| p.into_inner()).jobs().iter().any(|job| job.state.is_open());
        if !open {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    for replica in 0..replicas {
        sim.take_down(replica).await;
    }
    check(&sim, &recordings, &delivered)
}

/// The invariants, over the final state.
fn check(sim: &Sim, recordings: &[(StoredRecording, OutgoingEvent)], delivered: &[bool]) -> Outcome {
    let journal = sim.journal.lock().unwrap_or_else(|p| p.into_inner());
    let held = sim.sink.lock().unwrap_or_else(|p| p.into_inner());
    let mut violations: Vec<String> = journal.violations.iter().chain(&held.violations).cloned().collect();
    let jobs: BTreeMap<JobId, _> = journal.jobs().into_iter().map(|job| (job.id.clone(), job)).collect();
    let (mut done, mut failed) = (0, 0);
    for ((recording, event), delivered) in recordings.iter().zip(delivered) {
        let job = jobs.get(&JobId::for_event(&event.id));
        if !delivered {
            continue;
        }
        let Some(job) = job else {
            violations.push(format!("event {} was answered 200 but has no job", event.id));
            continue;
        };
        match job.state {
            JobState::Done => {
                done += 1;
                for chunk in &recording.chunks {
                    let current = sim.storage.document(&chunk.document_id).map(|info| info.sha256);
                    let stored = held.finals.get(&chunk.document_id).map(|(bytes, _)| Sha256::digest(bytes).into());
                    if stored.is_none() || stored != current {
                        violations.push(format!(
                            "job {} is done but chunk {} is {:?} in the sink",
                            job.id,
                            chunk.document_id,
                            stored.map(|s: Sha256Digest| s.to_string())
                        ));
                    }
                }
            }
            JobState::Failed if job.last_error.as_deref().is_some_and(|reason| !reason.is_empty()) => failed += 1,
            state => {
                violations.push(format!("event {} was answered 200 and its job ends {state:?}: {job:?}", event.id))
            }
        }
    }
    for (document, (bytes, _)) in &held.finals {
        let actual = Sha256Digest::of(bytes);
        if sim.storage.document(document).map(|info| info.sha256) != Some(actual) {
            violations.push(format!("chunk {document} in the sink holds bytes the storage never had"));
        }
    }
    let mut digest = Sha256::new();
    for job in jobs.values() {
        digest.update(serde_json::to_vec(&(&job.id, job.state, job.attempts, &job.chunks)).unwrap_or_default());
    }
    digest.update(sim.storage.requests().len().to_le_bytes());
    Outcome {
        violations,
        digest: Sha256Digest::from(digest.finalize()).to_string(),
        delivered: delivered.iter().filter(|d| **d).count(),
        done,
        failed,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.trim().parse().ok())
}

#[test]
fn every_seed_keeps_every_invariant() {
    let (first, count) = match env_u64("ACS_SIM_SEED") {
        Some(seed) => (seed, 1),
        None => (env_u64("ACS_SIM_FIRST_SEED").unwrap_or(1), env_u64("ACS_SIM_SEEDS").unwrap_or(2000)),
    };
    let (mut delivered, mut done, mut failed) = (0, 0, 0);
    for seed in first..first + count {
        let outcome = run(seed);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed} broke an invariant (reproduce with ACS_SIM_SEED={seed}):\n{}",
            outcome.violations.join("\n")
        );
        delivered += outcome.delivered;
        done += outcome.done;
        failed += outcome.failed;
    }
    // The runs did something: recordings were delivered and stored.
    assert!(done > 0 && done + failed == delivered, "delivered {delivered}, done {done}, failed {failed}");
    eprintln!(
        "{count} seeds from {first}: {delivered} recordings delivered, {done} stored, {failed} failed with a reason"
    );
}

#[test]
fn seed_369_a_journal_that_cannot_be_listed_at_start_leaves_no_accepted_job_without_workers() {
    // The first defect the simulation found (at seed 360 of its first version; at 369 of this one): `Recorder::run`
    // returned when its first listing failed, while its intake went on accepting jobs.
    let outcome = run(369);
    assert!(outcome.violations.is_empty(), "{}", outcome.violations.join("\n"));
    assert!(outcome.delivered > 0);
}

#[test]
fn a_seed_runs_the_same_way_twice() {
    for seed in [3, 17, 4242] {
        let (first, again) = (run(seed), run(seed));
        assert_eq!(first.digest, again.digest, "seed {seed}");
        assert_eq!(first.violations, again.violations, "seed {seed}");
    }
}

#[test]
fn the_invariants_catch_planted_defects() {
    let short = (1..20).map(|seed| run_planted(seed, Planted::ShortCommit)).find(|o| !o.violations.is_empty());
    let short = short.expect("a sink committing short chunks went unnoticed for 19 seeds");
    assert!(short.violations.iter().any(|v| v.contains("committed with")), "{:?}", short.violations);
    let lost = (1..20).map(|seed| run_planted(seed, Planted::LostInsert)).find(|o| !o.violations.is_empty());
    let lost = lost.expect("a journal losing inserts went unnoticed for 19 seeds");
    assert!(lost.violations.iter().any(|v| v.contains("was answered 200 but has no job")), "{:?}", lost.violations);
}
