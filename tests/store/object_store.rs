//! The object-store sink and journal against Azurite and against local files, the same suite for both: staging
//! keys, create-only commits, claims, takeovers and renewals.

use std::time::Duration;

use crate::support;
use crate::support::store::Backend;
use acs_recording::download::sink::{ChunkTarget, Existing, ObjectStoreSink, ObjectVersion, Sink, SinkWriter};
use acs_recording::journal::{Job, JobId, JobState, Journal, ObjectStoreJournal};
use acs_recording::recording::{Recording, RecordingChunk};
use acs_recording::Sha256Digest;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

support::store::on_both_stores!(
    a_committed_chunk_is_final_with_its_manifest_and_no_staging_object,
    a_second_writer_of_a_committed_chunk_succeeds_without_replacing_it,
    a_writer_dropped_without_commit_leaves_no_final_object,
    a_stale_staging_object_is_swept_and_a_fresh_one_kept,
    a_redelivered_job_is_written_once_across_replicas,
    an_unreadable_record_is_skipped_by_listing_and_polling,
    a_held_lease_is_refused_and_an_expired_one_taken_over_once,
    a_renewed_lease_is_never_taken_over,
    released_leases_leave_only_job_records,
    releasing_a_lease_taken_over_leaves_the_new_owner_in_charge,
    polling_reads_only_open_jobs_and_cleans_markers_left_behind,
    a_worker_that_lost_its_job_cannot_overwrite_the_new_owners_record,
    an_upload_given_up_goes_on_from_its_committed_parts,
    a_download_cut_mid_chunk_resumes_after_the_uploaded_parts,
);

fn target<'a>() -> ChunkTarget<'a> {
    ChunkTarget::new("call-1", "doc-0", 0, "wav")
}

fn version() -> ObjectVersion {
    ObjectVersion::new(Some("\"0x1\"".into()), None, None)
}

/// `size` bytes that differ from block to block.
fn media(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + i / 4096) as u8).collect()
}

async fn write_chunk(sink: &ObjectStoreSink, bytes: &[u8]) -> String {
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    writer.begin(&version()).await.unwrap();
    for piece in bytes.chunks(1 << 20) {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    writer.commit(bytes.len() as u64, Sha256::digest(bytes).into()).await.unwrap()
}

async fn a_committed_chunk_is_final_with_its_manifest_and_no_staging_object(backend: Backend) {
    let sink = ObjectStoreSink::new(backend.location.clone());
    // More than two 8 MiB parts: the upload is a real multipart one.
    let bytes = media(20 << 20);
    let location = write_chunk(&sink, &bytes).await;
    assert_eq!(location, "recordings/call-1/0-doc-0.wav".trim_start_matches(prefix_less(&backend)));
    let stored = backend.store().get(&sink.media_key(&target())).await.unwrap().bytes().await.unwrap();
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&bytes));
    sink.put_metadata(&target(), Bytes::from_static(br#"{"a":1}"#)).await.unwrap();
    // The metadata is create-only: a second document does not replace the first.
    sink.put_metadata(&target(), Bytes::from_static(br#"{"a":2}"#)).await.unwrap();
    let metadata = backend.store().get(&sink.metadata_key(&target())).await.unwrap().bytes().await.unwrap();
    assert_eq!(&metadata[..], br#"{"a":1}"#);

    let base = backend.location.prefix().as_ref().to_owned();
    let join = |name: &str| if base.is_empty() { name.to_owned() } else { format!("{base}/{name}") };
    assert_eq!(
        backend.keys().await,
        [join("call-1/.0-doc-0.wav.json"), join("call-1/0-doc-0.json"), join("call-1/0-doc-0.wav")],
        "{}",
        backend.name
    );
    let Existing::Complete(found) = sink.open(&target()).await.unwrap() else { panic!("committed") };
    assert_eq!((found.bytes, found.sha256), (bytes.len() as u64, Sha256::digest(&bytes).into()));
}

/// The local backend keeps no prefix: its keys start at the folder's root.
fn prefix_less(backend: &Backend) -> &'static str {
    if backend.location.prefix().as_ref().is_empty() {
        "recordings/"
    } else {
        ""
    }
}

async fn a_second_writer_of_a_committed_chunk_succeeds_without_replacing_it(backend: Backend) {
    let sink = ObjectStoreSink::new(backend.location.clone());
    let bytes = media(300_000);
    // Two replicas open the chunk before either commits: both stream to staging keys of their own.
    let Existing::Absent(mut first) = sink.open(&target()).await.unwrap() else { panic!("nothing stored") };
    let Existing::Absent(mut second) = sink.open(&target()).await.unwrap() else { panic!("nothing stored") };
    assert_ne!(first.staging_key(), second.staging_key());
    for writer in [&mut first, &mut second] {
        writer.begin(&version()).await.unwrap();
        writer.write(Bytes::from(bytes.clone())).await.unwrap();
    }
    let sha = Sha256Digest::from(Sha256::digest(&bytes));
    let a = first.commit(bytes.len() as u64, sha).await.unwrap();
    let b = second.commit(bytes.len() as u64, sha).await.unwrap();
    assert_eq!(a, b);
    let keys = backend.keys().await;
    assert_eq!(keys.len(), 2, "media and manifest only: {keys:?}");
    assert!(keys.iter().all(|k| !k.ends_with(".partial")), "{keys:?}");
}

async fn a_writer_dropped_without_commit_leaves_no_final_object(backend: Backend) {
    let sink = ObjectStoreSink::new(backend.location.clone()).stale_after(Duration::ZERO);
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored") };
    writer.begin(&version()).await.unwrap();
    writer.write(Bytes::from(media(9 << 20))).await.unwrap();
    drop(writer);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(sink.open(&target()).await.unwrap(), Existing::Absent(_)));
    let keys = backend.keys().await;
    assert!(keys.is_empty(), "{}: {keys:?}", backend.name);
}

async fn a_stale_staging_object_is_swept_and_a_fresh_one_kept(backend: Backend) {
    // What a crash between completing the upload and copying it leaves behind.
    let folder = backend.location.prefix().clone().join("call-1");
    let left = folder.clone().join(".0-doc-0.wav.0123456789abcdef0000.partial");
    backend.store().put(&left, Bytes::from_static(b"partial bytes").into()).await.unwrap();
    let fresh = ObjectStoreSink::new(backend.location.clone());
    drop(fresh.open(&target()).await.unwrap());
    assert!(backend.store().head(&left).await.is_ok(), "younger than the stale age: kept");

    let sweeping = ObjectStoreSink::new(backend.location.clone()).stale_after(Duration::ZERO);
    drop(sweeping.open(&target()).await.unwrap());
    assert!(backend.store().head(&left).await.is_err(), "stale: swept");
    assert!(backend.keys().await.is_empty());
}

fn job(event: &str) -> Job {
    let now = std::time::SystemTime::now();
    let recording = Recording::new("call").chunk(RecordingChunk::new("doc", 0));
    Job::new(event, recording, now, now + Duration::from_secs(3600))
}

async fn replicas(backend: &Backend, lease: Duration) -> (ObjectStoreJournal, ObjectStoreJournal) {
    let a = ObjectStoreJournal::open(backend.location.clone()).await.unwrap().lease_duration(lease).owner("replica-a");
    let b = ObjectStoreJournal::open(backend.location.clone()).await.unwrap().lease_duration(lease).owner("replica-b");
    assert_eq!(a.uses_compare_and_swap(), backend.name == "azurite");
    (a, b)
}

async fn a_redelivered_job_is_written_once_across_replicas(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(30)).await;
    assert_eq!(a.insert(&[job("e1"), job("e2")]).await.unwrap(), [true, true]);
    assert_eq!(b.insert(&[job("e2"), job("e3")]).await.unwrap(), [false, true]);
    let listed: Vec<String> = b.list().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(listed, ["e1", "e2", "e3"]);
    let mut done = job("e1");
    done.state = JobState::Done;
    a.update(&done).await.unwrap();
    assert_eq!(b.get(&done.id).await.unwrap().unwrap().state, JobState::Done);
    b.remove(&done.id).await.unwrap();
    b.remove(&done.id).await.unwrap();
    assert_eq!(a.get(&done.id).await.unwrap(), None);
    a.check_writable().await.unwrap();
}

async fn an_unreadable_record_is_skipped_by_listing_and_polling(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(30)).await;
    assert_eq!(a.insert(&[job("damaged"), job("newer"), job("fine")]).await.unwrap(), [true, true, true]);
    let store = backend.location.store();
    let key = |event: &str| {
        let id = JobId::for_event(event);
        let root = backend.location.prefix().clone().join(acs_recording::journal::JOURNAL_FOLDER);
        root.join("jobs").join(format!("{id}.json"))
    };
    store.put(&key("damaged"), Bytes::from_static(b"{\"id\": ").into()).await.unwrap();
    let mut newer = serde_json::to_value(job("newer")).unwrap();
    newer["state"] = "archived".into();
    store.put(&key("newer"), Bytes::from(serde_json::to_vec(&newer).unwrap()).into()).await.unwrap();
    // Every replica still lists and polls the jobs it can read; the bad records stay for a person to look at.
    let listed: Vec<String> = b.list().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(listed, ["fine"]);
    let open: Vec<String> = b.list_open().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(open, ["fine"]);
    assert!(store.head(&key("damaged")).await.is_ok());
}

async fn a_held_lease_is_refused_and_an_expired_one_taken_over_once(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(1)).await;
    let id = JobId::for_event("e1");
    let mut held = a.claim(&id).await.unwrap().expect("free");
    assert_eq!(held.owner(), "replica-a");
    assert!(b.claim(&id).await.unwrap().is_none(), "held by a");
    // a stops renewing (as if it had crashed): once expired, b takes over, and only once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = ObjectStoreJournal::open(backend.location.clone()).await.unwrap().owner("replica-c");
    let (taken, raced) = tokio::join!(b.claim(&id), c.claim(&id));
    let winners = [taken.unwrap(), raced.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1, "exactly one replica takes an expired lease over");
    // The old holder learns it on its next renewal and must stop.
    assert!(!a.renew(&mut held).await.unwrap(), "a was taken over");
}

async fn a_renewed_lease_is_never_taken_over(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(1)).await;
    let id = JobId::for_event("slow");
    let mut lease = a.claim(&id).await.unwrap().expect("free");
    // Three lease lengths of work, renewed every third of a lease; b tries all along.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(330)).await;
        assert!(a.renew(&mut lease).await.unwrap(), "still a's");
        assert!(b.claim(&id).await.unwrap().is_none(), "b never gets a renewed lease");
    }
    a.release(lease).await.unwrap();
    assert!(b.claim(&id).await.unwrap().is_some(), "free once released");
}

async fn released_leases_leave_only_job_records(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(1)).await;
    let jobs = [job("e1"), job("e2")];
    a.insert(&jobs).await.unwrap();
    for (journal, job) in [(&a, &jobs[0]), (&b, &jobs[1])] {
        let mut lease = journal.claim(&job.id).await.unwrap().expect("free");
        assert!(journal.renew(&mut lease).await.unwrap());
        let mut done = job.clone();
        done.state = JobState::Done;
        journal.update(&done).await.unwrap();
        journal.release(lease).await.unwrap();
    }
    // b takes an expired lease of a's over, then releases it.
    let stale = a.claim(&jobs[0].id).await.unwrap().expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let taken = b.claim(&jobs[0].id).await.unwrap().expect("expired");
    b.release(taken).await.unwrap();
    a.release(stale).await.unwrap();
    let keys = backend.keys().await;
    let records: Vec<&String> = keys.iter().filter(|k| !k.contains("/jobs/")).collect();
    assert!(records.is_empty(), "{}: {keys:?}", backend.name);
    assert_eq!(keys.len(), 2, "{keys:?}");
}

async fn releasing_a_lease_taken_over_leaves_the_new_owner_in_charge(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(1)).await;
    let open = job("e1");
    a.insert(std::slice::from_ref(&open)).await.unwrap();
    let stale = a.claim(&open.id).await.unwrap().expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut taken = b.claim(&open.id).await.unwrap().expect("expired");
    // a wakes up and releases what it thinks it holds: b's lease stays, renewable, and nobody else gets the job.
    a.release(stale).await.unwrap();
    let c = ObjectStoreJournal::open(backend.location.clone()).await.unwrap().owner("replica-c");
    assert!(c.claim(&open.id).await.unwrap().is_none(), "{}: b still holds the job", backend.name);
    assert!(b.renew(&mut taken).await.unwrap(), "{}", backend.name);
    // An open job's released lease is free for the next taker at once.
    b.release(taken).await.unwrap();
    assert!(c.claim(&open.id).await.unwrap().is_some(), "{}", backend.name);
}

/// The keys of the open-job markers.
async fn markers(backend: &Backend) -> Vec<String> {
    backend.keys().await.into_iter().filter(|k| k.contains(".acs-recording/open/")).collect()
}

async fn polling_reads_only_open_jobs_and_cleans_markers_left_behind(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(2)).await;
    let b = b.longest_put(Duration::from_secs(2));
    let jobs = [job("e1"), job("e2"), job("e3")];
    a.insert(&jobs).await.unwrap();
    assert_eq!(markers(&backend).await.len(), 3);
    let mut done = jobs[0].clone();
    done.state = JobState::Done;
    a.update(&done).await.unwrap();
    let mut failed = jobs[1].clone();
    failed.state = JobState::Failed;
    a.update(&failed).await.unwrap();
    let open: Vec<String> = b.list_open().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(open, ["e3"]);
    assert_eq!(markers(&backend).await.len(), 1, "finished jobs have no marker");

    // A redelivery of the done job finds it finished and leaves no marker behind.
    assert_eq!(b.insert(&jobs[..1]).await.unwrap(), [false]);
    assert_eq!(markers(&backend).await.len(), 1);
    let open: Vec<String> = b.list_open().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(open, ["e3"]);
    assert_eq!(markers(&backend).await.len(), 1);

    // A failed job retried by hand is open again.
    assert!(failed.reopen());
    a.update(&failed).await.unwrap();
    let open: Vec<String> = b.list_open().await.unwrap().into_iter().map(|j| j.event_id).collect();
    assert_eq!(open, ["e2", "e3"]);

    // A marker without a record (an insert that died in between) is kept while young, deleted once old.
    let ghost = JobId::for_event("ghost");
    let key = backend.location.prefix().clone().join(".acs-recording").join("open").join(ghost.as_str());
    backend.store().put(&key, object_store::PutPayload::new()).await.unwrap();
    assert_eq!(b.list_open().await.unwrap().len(), 2);
    assert_eq!(markers(&backend).await.len(), 3, "a young marker may be an insert in progress");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(b.list_open().await.unwrap().len(), 2);
    assert_eq!(markers(&backend).await.len(), 2, "{}", backend.name);

    // Pruning a job removes its record, marker and claim.
    let lease = a.claim(&jobs[2].id).await.unwrap().expect("free");
    drop(lease);
    a.remove(&jobs[2].id).await.unwrap();
    let keys = backend.keys().await;
    assert!(keys.iter().all(|k| !k.contains(jobs[2].id.as_str())), "{keys:?}");
}

async fn a_worker_that_lost_its_job_cannot_overwrite_the_new_owners_record(backend: Backend) {
    let (a, b) = replicas(&backend, Duration::from_secs(30)).await;
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let mut stale = a.get(&accepted.id).await.unwrap().expect("inserted");
    // b took the job over and recorded its progress.
    let mut current = b.get(&accepted.id).await.unwrap().expect("inserted");
    current.attempts = 5;
    b.update(&current).await.unwrap();
    // a wakes up with what it read before.
    stale.attempts = 1;
    let overwritten = a.update(&stale).await;
    let kept = b.get(&accepted.id).await.unwrap().unwrap().attempts;
    if backend.name == "azurite" {
        let error = overwritten.expect_err("the record changed since a read it");
        assert!(error.to_string().contains("was changed by another worker since this one read it"), "{error}");
        assert_eq!(kept, 5, "b's record stays");
    } else {
        // Local files have no compare-and-swap: the lease alone keeps a stale worker out.
        overwritten.unwrap();
        assert_eq!(kept, 1);
    }
    // Read again, a's next update goes through.
    let mut fresh = a.get(&accepted.id).await.unwrap().unwrap();
    fresh.attempts = 7;
    a.update(&fresh).await.unwrap();
    assert_eq!(b.get(&accepted.id).await.unwrap().unwrap().attempts, 7);
}

async fn an_upload_given_up_goes_on_from_its_committed_parts(backend: Backend) {
    let sink = ObjectStoreSink::new(backend.location.clone());
    let part = acs_recording::download::sink::PART_SIZE;
    let bytes = media(2 * part + 3 * (1 << 20));
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    writer.begin(&version()).await.unwrap();
    for piece in bytes[..2 * part + (1 << 20)].chunks(1 << 20) {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    // The download failed here: what was sent in whole parts stays.
    writer.abandon().await.unwrap();
    // A sink told not to resume uploads starts over.
    let streaming = sink.clone().resume_uploads(false);
    assert!(matches!(streaming.open(&target()).await.unwrap(), Existing::Absent(_)));
    let mut writer = match sink.open(&target()).await.unwrap() {
        Existing::Partial { writer, offset, version: kept } if backend.location.parts().is_some() => {
            assert_eq!(offset, 2 * part as u64, "the last whole part");
            assert_eq!(kept, version());
            writer
        }
        Existing::Absent(writer) if backend.location.parts().is_none() => {
            // Local files take no parts one by one: the chunk starts over.
            assert_eq!(backend.name, "local");
            writer.abandon().await.unwrap();
            return;
        }
        other => panic!("{}: {other:?}", backend.name),
    };
    // The kept hash state is the SHA-256 of the stored prefix: going on from it gives the whole object's.
    let kept = writer.stored_digest().expect("kept with the parts");
    assert_eq!(kept.bytes(), 2 * part as u64);
    let mut resumed = acs_recording::download::ResumableSha256::from_state(kept);
    resumed.update(&bytes[2 * part..]);
    assert_eq!(resumed.finalize(), <[u8; 32]>::from(Sha256::digest(&bytes)));
    for piece in bytes[2 * part..].chunks(1 << 20) {
        writer.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    writer.commit(bytes.len() as u64, Sha256::digest(&bytes).into()).await.unwrap();
    let stored = backend.store().get(&sink.media_key(&target())).await.unwrap().bytes().await.unwrap();
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&bytes));
    let keys = backend.keys().await;
    assert!(keys.iter().all(|k| !k.contains(".partial")), "no staging object or upload record stays: {keys:?}");
}

async fn a_download_cut_mid_chunk_resumes_after_the_uploaded_parts(backend: Backend) {
    use acs_recording::download::{sink::PART_SIZE, ChunkDownloader, Outcome};
    use acs_recording::emulator::{Emulator, Fault};

    let emulator = Emulator::builder().start().await.unwrap();
    let size = 2 * PART_SIZE + 5 * (1 << 20);
    let bytes = support::download::pattern(size, 7);
    emulator.storage().put_document("big", bytes.clone());
    // The first response is cut after two and a half parts; one attempt only, so the download fails there.
    emulator.storage().inject("big", [Fault::DropAfter((2 * PART_SIZE + PART_SIZE / 2) as u64)]);
    let recording = support::download::single(&emulator, "call-1", "big");
    let sink = ObjectStoreSink::new(backend.location.clone());
    let downloader = |attempts: u32| {
        ChunkDownloader::new(support::download::signed_client(&emulator), sink.clone())
            .endpoint(emulator.endpoint().clone())
            .allow_list(emulator.allow_list())
            .parallel(None)
            .retry_policy(support::download::fast_retries().max_attempts(attempts))
    };
    downloader(1).download(recording.clone()).await.expect_err("cut, with no attempt left");
    let manifest = downloader(3).download(recording).await.unwrap();
    let chunk = &manifest.chunks[0];
    assert_eq!(chunk.sha256, support::download::sha256(&bytes));
    let stored = backend.store().get(&Path::from(chunk.location.as_str())).await.unwrap().bytes().await.unwrap();
    assert_eq!(support::download::sha256(&stored), support::download::sha256(&bytes));
    let ranges: Vec<Option<String>> = emulator
        .storage()
        .requests_for("big")
        .into_iter()
        .filter(|r| r.method == http::Method::GET && !r.path.ends_with("acsmetadata"))
        .map(|r| r.range)
        .collect();
    if backend.location.parts().is_some() {
        // The second run asked only for what follows the two parts in the store.
        assert_eq!(chunk.outcome, Outcome::Resumed, "{ranges:?}");
        assert_eq!(ranges.last().cloned().flatten(), Some(format!("bytes={}-", 2 * PART_SIZE)), "{ranges:?}");
    } else {
        // Local files keep no parts: the second run starts over.
        assert_eq!(chunk.outcome, Outcome::Downloaded, "{ranges:?}");
        assert_eq!(ranges.last().cloned().flatten().as_deref(), Some("bytes=0-"), "{ranges:?}");
    }
}
