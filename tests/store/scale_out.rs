//! Three recorder replicas (processes) on one store, against Azurite and against local files: the same deliveries
//! and duplicates reach every replica and each chunk is downloaded once; a replica killed in the middle of a chunk
//! leaves no final object and its job is finished by another one once the lease expires, without a redelivery; a
//! slow owner that renews keeps its job; an owner that was taken over stops; the parts a killed replica uploaded
//! are kept by its successor where the store takes parts one by one.
#![cfg(unix)]

use std::time::{Duration, Instant};

use crate::support::emulator::served;
use crate::support::store::checks::{assert_stored, media_key, media_requests_answered, wait_for_done, wait_until};
use crate::support::store::replica::Replica;
use crate::support::store::Backend;
use crate::support::{self, at_timeout, eventually};
use acs_recording::emulator::eventgrid::{recording_file_status_updated, DeliveryOutcome};
use acs_recording::emulator::{Emulator, Fault, Link, RecordingSpec};
use acs_recording::journal::{JobId, Journal, ObjectStoreJournal};
use http::Method;
use object_store::path::Path;
use object_store::ObjectStoreExt;

/// Leases short enough for the takeover tests to run in seconds.
const LEASE_SECONDS: u64 = 2;

support::store::on_both_stores!(
    three_replicas_given_the_same_deliveries_download_each_chunk_once,
    a_replica_killed_mid_chunk_is_replaced_once_its_lease_expires,
    a_slow_owner_that_renews_keeps_its_job,
    an_owner_that_was_taken_over_stops_writing,
    a_replica_killed_after_some_parts_leaves_them_to_its_successor,
);

async fn start_replicas(emulator: &Emulator, backend: &Backend, names: &[&str]) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for name in names {
        replicas.push(Replica::start(name, emulator, backend, LEASE_SECONDS).await);
    }
    replicas
}

async fn three_replicas_given_the_same_deliveries_download_each_chunk_once(backend: Backend) {
    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-a", 700_000));
    let second = emulator.storage().record(RecordingSpec::new("call-b", 600_000));
    let replicas = start_replicas(&emulator, &backend, &["r0", "r1", "r2"]).await;
    let events = [recording_file_status_updated(&first), recording_file_status_updated(&second)];
    // Every replica gets both events, in a different order each, and the first one gets them twice.
    for (n, replica) in replicas.iter().enumerate() {
        let mut order = events.to_vec();
        if n % 2 == 1 {
            order.reverse();
        }
        for event in &order {
            let outcome = replica.publisher().deliver(std::slice::from_ref(event)).await;
            assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 }, "{}", replica.name);
        }
    }
    let outcome = replicas[0].publisher().deliver(&events).await;
    assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 });

    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    for event in &events {
        wait_for_done(&backend, event, &replicas).await;
    }
    for chunk in first.chunks.iter().chain(&second.chunks) {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{} downloaded once", chunk.document_id);
    }
    assert_eq!(journal.list().await.unwrap().len(), 2, "one job per event");
    assert_stored(&backend, &[&first, &second]).await;

    // The shared journal seen from the command line.
    let output = std::process::Command::new(support::store::replica::recorder_binary())
        .args(["status", "--all", "--store", &backend.url])
        .envs(backend.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{listed}{}", String::from_utf8_lossy(&output.stderr));
    assert!(listed.starts_with(&format!("2 jobs in {} (2 shown)", backend.url)), "{listed}");
    for event in &events {
        assert!(listed.contains(&format!("{}  done", JobId::for_event(&event.id))), "{listed}");
    }
}

async fn a_replica_killed_mid_chunk_is_replaced_once_its_lease_expires(backend: Backend) {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-killed", 6_000_000));
    let first = recording.chunks[0].document_id.clone();
    emulator.storage().inject(&first, [Fault::StallAfter(1 << 20)]);
    // The owner starts alone, so that the stalled download is certainly its own.
    let owner = Replica::start("owner", &emulator, &backend, LEASE_SECONDS).await;
    let event = recording_file_status_updated(&recording);
    assert!(owner.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    wait_until("the owner is in the middle of the first chunk", || media_requests_answered(&emulator, &first)).await;
    let others = start_replicas(&emulator, &backend, &["r1", "r2"]).await;
    let killed_at = Instant::now();
    owner.kill();
    assert!(backend.store().head(&media_key(&backend, &recording, 0)).await.is_err(), "no final object");

    // No redelivery: another replica finds the job in the shared journal once the owner's lease expired.
    wait_for_done(&backend, &event, &others).await;
    assert!(killed_at.elapsed() >= Duration::from_secs(1), "taken over only after the lease");
    assert_eq!(served(&emulator, &first), (1 << 20) + recording.chunks[0].size);
    assert_eq!(served(&emulator, &recording.chunks[1].document_id), recording.chunks[1].size);
    let took_over = others.iter().filter(|r| r.stderr().contains("expired lease")).count();
    assert_eq!(took_over, 1, "one replica took the job over");
    assert_stored(&backend, &[&recording]).await;
}

async fn a_slow_owner_that_renews_keeps_its_job(backend: Backend) {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-slow", 1_500_000));
    let document = recording.chunks[0].document_id.clone();
    // Three lease lengths for the one chunk: the owner must renew to keep it.
    emulator.storage().set_document_link(&document, Link::unlimited().bandwidth(250_000));
    let owner = Replica::start("owner", &emulator, &backend, LEASE_SECONDS).await;
    let event = recording_file_status_updated(&recording);
    assert!(owner.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    wait_until("the owner downloads", || media_requests_answered(&emulator, &document)).await;
    let others = start_replicas(&emulator, &backend, &["r1", "r2"]).await;
    // The others see the job as soon as they start, and keep trying while it runs.
    let mut all = vec![owner];
    all.extend(others);
    let started = Instant::now();
    wait_for_done(&backend, &event, &all).await;
    assert!(started.elapsed() >= Duration::from_secs(LEASE_SECONDS), "the chunk outlasted a lease");
    assert_eq!(served(&emulator, &document), recording.chunks[0].size, "downloaded once");
    for replica in &all {
        let log = replica.stderr();
        assert!(!log.contains("expired lease") && !log.contains("lease lost"), "{}: {log}", replica.name);
    }
    assert!(all[0].stdout().contains("recording of call call-slow"), "the owner finished it");
    assert_stored(&backend, &[&recording]).await;
}

async fn an_owner_that_was_taken_over_stops_writing(backend: Backend) {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-paused", 3_000_000));
    let document = recording.chunks[0].document_id.clone();
    emulator.storage().inject(&document, [Fault::StallAfter(512 * 1024)]);
    let owner = Replica::start("owner", &emulator, &backend, LEASE_SECONDS).await;
    let event = recording_file_status_updated(&recording);
    assert!(owner.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    wait_until("the owner is in the middle of the chunk", || media_requests_answered(&emulator, &document)).await;
    let others = start_replicas(&emulator, &backend, &["r1", "r2"]).await;
    // Stopped past its lease (a long pause, a partition): the job is taken over and finished elsewhere.
    owner.signal("STOP");
    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    let done = wait_for_done(&backend, &event, &others).await;
    let mut keys = backend.keys().await;
    owner.signal("CONT");
    let noticed = at_timeout(|| format!("the owner notices: {}", owner.stderr()));
    eventually(Duration::from_secs(30), noticed, || {
        std::future::ready(owner.stderr().contains("lease lost: stopping").then_some(()))
    })
    .await;
    // It wrote nothing after it woke up: the journal and the objects are as the new owner left them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(journal.get(&done.id).await.unwrap().as_ref(), Some(&done));
    keys.sort();
    assert_eq!(backend.keys().await, keys);
    assert!(!owner.stdout().contains("recording of call call-paused"), "{}", owner.stdout());
    assert_eq!(served(&emulator, &document), 512 * 1024 + recording.chunks[0].size);
    assert_stored(&backend, &[&recording]).await;
}

async fn a_replica_killed_after_some_parts_leaves_them_to_its_successor(backend: Backend) {
    use acs_recording::download::sink::PART_SIZE;
    let part = PART_SIZE as u64;
    let emulator = Emulator::builder().chunk_limit(64 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-parts", 40 << 20));
    let chunk = recording.chunks[0].clone();
    assert_eq!(recording.chunks.len(), 1);
    // The owner receives four and a half parts, then nothing more: it is killed there.
    emulator.storage().inject(&chunk.document_id, [Fault::StallAfter(4 * part + part / 2)]);
    let owner = Replica::start("owner", &emulator, &backend, LEASE_SECONDS).await;
    let event = recording_file_status_updated(&recording);
    assert!(owner.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    let resumable = backend.location.parts().is_some();
    let (store, storage, chunk) = (&backend, &emulator, &chunk);
    let far_enough = format!("{}: the owner gets far enough", backend.name);
    eventually(Duration::from_secs(60), far_enough, || async move {
        // Where parts are kept: until the upload's record lists two of them; elsewhere, until the stall.
        let keys = store.keys().await;
        let record = keys.iter().find(|k| k.ends_with(".partial.json"));
        let ready = match record {
            Some(key) if resumable => {
                let raw = store.store().get(&Path::from(key.as_str())).await.unwrap().bytes().await.unwrap();
                let record: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                record["parts"].as_array().is_some_and(|parts| parts.len() >= 2)
            }
            _ => !resumable && media_requests_answered(storage, &chunk.document_id),
        };
        ready.then_some(())
    })
    .await;
    owner.kill();
    let others = start_replicas(&emulator, &backend, &["r1"]).await;
    let job = wait_for_done(&backend, &event, &others).await;
    assert_eq!(job.chunks[0].sha256, Some(chunk.sha256));
    let ranges: Vec<String> = emulator
        .storage()
        .requests_for(&chunk.document_id)
        .into_iter()
        .filter(|r| r.method == Method::GET && r.path.ends_with("/content/audio"))
        .filter_map(|r| r.range)
        .collect();
    let resumed_at: u64 = ranges
        .last()
        .and_then(|range| range.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or_else(|| panic!("{ranges:?}"));
    if resumable {
        // Two to four whole parts were in the store: the successor asked only for what follows them.
        assert!((2 * part..=4 * part).contains(&resumed_at) && resumed_at.is_multiple_of(part), "{ranges:?}");
    } else {
        assert_eq!(resumed_at, 0, "local files keep no parts: {ranges:?}");
    }
    assert_stored(&backend, &[&recording]).await;
}
