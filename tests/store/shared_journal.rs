//! The object-store journal shared by replicas, against Azurite and against local files: what a worker that lost
//! its job may still write, and the open-job markers that polling replicas find work by.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use crate::support::store::slow::SlowPuts;
use crate::support::store::Backend;
use acs_recording::journal::{Job, JobId, JobState, Journal, Lease, ObjectStoreJournal};
use acs_recording::recording::{Recording, RecordingChunk};
use acs_recording::store::StoreLocation;
use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;

support::store::on_both_stores!(
    a_lease_never_outlasts_its_claim_in_the_store,
    a_late_renewal_never_takes_a_lease_back_from_its_new_holder,
    a_renewal_slower_than_a_takeover_never_takes_the_lease_back,
    a_marker_without_its_record_is_kept_while_the_record_may_be_on_its_way,
    an_insert_whose_record_lands_after_its_marker_was_deleted_puts_it_back,
    a_poll_that_deletes_the_marker_of_a_job_just_written_puts_it_back,
    a_marker_a_poll_puts_back_goes_once_the_job_has_finished,
    a_redelivery_of_a_finished_job_leaves_no_marker,
);

fn job(event: &str) -> Job {
    let now = std::time::SystemTime::now();
    let recording = Recording::new("call").chunk(RecordingChunk::new("doc", 0));
    Job::new(event, recording, now, now + Duration::from_secs(3600))
}

async fn journal(backend: &Backend, owner: &str) -> ObjectStoreJournal {
    ObjectStoreJournal::open(backend.location.clone()).await.unwrap().owner(owner)
}

async fn leased(location: &StoreLocation, owner: &str, lease: Duration) -> ObjectStoreJournal {
    ObjectStoreJournal::open(location.clone()).await.unwrap().owner(owner).lease_duration(lease)
}

/// `2026-12-06T20:12:46.746Z` (UTC, milliseconds) as a time.
fn parse_utc(text: &str) -> SystemTime {
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19);
    UNIX_EPOCH + Duration::from_secs(seconds as u64) + Duration::from_millis(number(20..23) as u64)
}

/// The expiry of a job's newest claim object in the store.
async fn stored_expiry(backend: &Backend, id: &JobId) -> SystemTime {
    let claims = backend.location.prefix().clone().join(".acs-recording").join("claims");
    let listed: Vec<_> = backend.store().list(Some(&claims)).try_collect().await.unwrap();
    let mut keys: Vec<_> = listed.into_iter().map(|meta| meta.location).collect();
    keys.retain(|key| key.as_ref().contains(id.as_str()));
    keys.sort();
    let newest = keys.last().expect("a claim");
    let raw = backend.store().get(newest).await.unwrap().bytes().await.unwrap();
    let claim: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    parse_utc(claim["expiresAt"].as_str().unwrap())
}

async fn a_lease_never_outlasts_its_claim_in_the_store(backend: Backend) {
    let (slow, location) = SlowPuts::over(&backend);
    let a = leased(&location, "replica-a", Duration::from_secs(5)).await;
    // Every claim PUT takes a while to reach the store: the holder cannot know when the store wrote it.
    slow.delay("/claims/", Duration::from_millis(300));
    let id = JobId::for_event("e1");
    let mut lease = a.claim(&id).await.unwrap().expect("free");
    let held = |lease: &Lease| lease.expires_at().expect("timed");
    assert!(held(&lease) <= stored_expiry(&backend, &id).await, "{}: claimed", backend.name);
    assert!(a.renew(&mut lease).await.unwrap());
    assert!(held(&lease) <= stored_expiry(&backend, &id).await, "{}: renewed", backend.name);
}

async fn a_late_renewal_never_takes_a_lease_back_from_its_new_holder(backend: Backend) {
    let lease = Duration::from_secs(1);
    let (a, b) =
        (leased(&backend.location, "replica-a", lease).await, leased(&backend.location, "replica-b", lease).await);
    let id = JobId::for_event("e1");
    let mut stale = a.claim(&id).await.unwrap().expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // b takes the expired lease over and renews it; then a, back from a pause, renews what it held.
    let mut taken = b.claim(&id).await.unwrap().expect("expired");
    assert!(b.renew(&mut taken).await.unwrap());
    assert!(!a.renew(&mut stale).await.unwrap(), "{}: a was taken over", backend.name);
    let c = leased(&backend.location, "replica-c", lease).await;
    assert!(c.claim(&id).await.unwrap().is_none(), "{}: b still holds the job", backend.name);
    assert!(b.renew(&mut taken).await.unwrap(), "{}", backend.name);
}

async fn a_renewal_slower_than_a_takeover_never_takes_the_lease_back(backend: Backend) {
    let lease = Duration::from_secs(1);
    let (slow, location) = SlowPuts::over(&backend);
    let (a, b) = (leased(&location, "replica-a", lease).await, leased(&location, "replica-b", lease).await);
    let id = JobId::for_event("e1");
    let mut stale = a.claim(&id).await.unwrap().expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // a's renewal is sent, and held on its way while b takes the lease over and renews it.
    let mut held = slow.hold_next("/claims/");
    let renewal = tokio::spawn(async move { a.renew(&mut stale).await.unwrap() });
    tokio::time::timeout(Duration::from_secs(10), &mut held.arrived).await.unwrap().unwrap();
    let mut taken = b.claim(&id).await.unwrap().expect("expired");
    assert!(b.renew(&mut taken).await.unwrap());
    held.release();
    let renewed = tokio::time::timeout(Duration::from_secs(10), renewal).await.unwrap().unwrap();
    assert!(!renewed, "{}: a was taken over", backend.name);
    let c = leased(&backend.location, "replica-c", lease).await;
    assert!(c.claim(&id).await.unwrap().is_none(), "{}: b still holds the job", backend.name);
    assert!(b.renew(&mut taken).await.unwrap(), "{}", backend.name);
}

/// Compare-and-swap needs a store that has it: Azurite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_write_lost_writes_nothing_more_until_it_reads_again() {
    let backend = Backend::azurite("a_worker_whose_write_lost");
    let (a, b) = (journal(&backend, "replica-a").await, journal(&backend, "replica-b").await);
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let mut stale = a.get(&accepted.id).await.unwrap().expect("inserted");
    // b took the job over, recorded its progress, and a's checkpoint lost to it.
    let mut current = b.get(&accepted.id).await.unwrap().expect("inserted");
    current.attempts = 5;
    b.update(&current).await.unwrap();
    stale.attempts = 1;
    let lost = a.update(&stale).await.expect_err("b wrote since a read");
    let key = format!("recordings/.acs-recording/jobs/{}.json", accepted.id);
    assert_eq!(
        lost.to_string(),
        format!("journal record `{key}` was changed by another worker since this one read it")
    );

    // b finishes the job; a, still running, writes its final checkpoint: refused, without reaching the store.
    current.state = JobState::Done;
    b.update(&current).await.unwrap();
    stale.state = JobState::Pending;
    let refused = a.update(&stale).await.expect_err("a lost the record and has not read it since");
    assert_eq!(
        refused.to_string(),
        format!("journal record `{key}` was changed by another worker: read it again before writing it")
    );
    let kept = b.get(&accepted.id).await.unwrap().unwrap();
    assert_eq!((kept.state, kept.attempts), (JobState::Done, 5), "b's record stays");

    // Read again, a writes against what it read.
    let mut fresh = a.get(&accepted.id).await.unwrap().unwrap();
    fresh.attempts = 7;
    a.update(&fresh).await.unwrap();
    assert_eq!(b.get(&accepted.id).await.unwrap().unwrap().attempts, 7);
}

/// The keys of the open-job markers.
async fn markers(backend: &Backend) -> Vec<String> {
    backend.keys().await.into_iter().filter(|k| k.contains(".acs-recording/open/")).collect()
}

fn open_ids(jobs: Vec<Job>) -> Vec<String> {
    jobs.into_iter().map(|job| job.event_id).collect()
}

async fn a_marker_without_its_record_is_kept_while_the_record_may_be_on_its_way(backend: Backend) {
    let poller = leased(&backend.location, "replica-b", Duration::from_secs(1)).await;
    let ghost = JobId::for_event("ghost");
    let key = backend.location.prefix().clone().join(".acs-recording").join("open").join(ghost.as_str());
    backend.store().put(&key, object_store::PutPayload::new()).await.unwrap();
    // Older than a lease, younger than the longest PUT: the insert's record may still land.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(poller.list_open().await.unwrap().is_empty());
    assert_eq!(markers(&backend).await.len(), 1, "{}: kept", backend.name);
    // Older than the longest PUT: left behind.
    let poller = poller.longest_put(Duration::from_secs(1));
    assert!(poller.list_open().await.unwrap().is_empty());
    assert!(markers(&backend).await.is_empty(), "{}: deleted", backend.name);
}

async fn an_insert_whose_record_lands_after_its_marker_was_deleted_puts_it_back(backend: Backend) {
    let (slow, location) = SlowPuts::over(&backend);
    let a = leased(&location, "replica-a", Duration::from_secs(30)).await;
    // A poller whose bound on a PUT is shorter than this PUT takes: the marker looks left behind.
    let b = leased(&backend.location, "replica-b", Duration::from_secs(30)).await.longest_put(Duration::ZERO);
    let mut held = slow.hold_next("/jobs/");
    let accepted = job("e1");
    let insert = tokio::spawn(async move { a.insert(std::slice::from_ref(&accepted)).await.unwrap() });
    tokio::time::timeout(Duration::from_secs(10), &mut held.arrived).await.unwrap().unwrap();
    assert!(b.list_open().await.unwrap().is_empty(), "no record yet");
    assert!(markers(&backend).await.is_empty(), "{}: deleted as left behind", backend.name);
    held.release();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), insert).await.unwrap().unwrap(), [true]);
    assert_eq!(open_ids(b.list_open().await.unwrap()), ["e1"], "{}", backend.name);
}

async fn a_poll_that_deletes_the_marker_of_a_job_just_written_puts_it_back(backend: Backend) {
    let (slow, location) = SlowPuts::over(&backend);
    let a = leased(&backend.location, "replica-a", Duration::from_secs(30)).await;
    let b = leased(&location, "replica-b", Duration::from_secs(30)).await.longest_put(Duration::ZERO);
    // A marker with no record yet: b's poll finds it left behind, and its delete is slow.
    let accepted = job("e1");
    let key = backend.location.prefix().clone().join(".acs-recording").join("open").join(accepted.id.as_str());
    backend.store().put(&key, object_store::PutPayload::new()).await.unwrap();
    let mut held = slow.hold_next_delete("/open/");
    let poller = b.clone();
    let poll = tokio::spawn(async move { poller.list_open().await.unwrap() });
    tokio::time::timeout(Duration::from_secs(10), &mut held.arrived).await.unwrap().unwrap();
    // Meanwhile the insert writes its record, and finds its marker still there.
    assert_eq!(a.insert(std::slice::from_ref(&accepted)).await.unwrap(), [true]);
    held.release();
    tokio::time::timeout(Duration::from_secs(10), poll).await.unwrap().unwrap();
    assert_eq!(markers(&backend).await.len(), 1, "{}: the open job keeps its marker", backend.name);
    assert_eq!(open_ids(b.list_open().await.unwrap()), ["e1"], "{}", backend.name);
}

async fn a_marker_a_poll_puts_back_goes_once_the_job_has_finished(backend: Backend) {
    let (slow, location) = SlowPuts::over(&backend);
    let a = leased(&backend.location, "replica-a", Duration::from_secs(30)).await;
    let b = leased(&location, "replica-b", Duration::from_secs(30)).await;
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let mut failed = accepted.clone();
    failed.state = JobState::Failed;
    a.update(&failed).await.unwrap();
    // A marker left beside the failed job (a crash between the two writes); b's poll deletes it, slowly.
    let key = backend.location.prefix().clone().join(".acs-recording").join("open").join(accepted.id.as_str());
    backend.store().put(&key, object_store::PutPayload::new()).await.unwrap();
    let mut deleting = slow.hold_next_delete("/open/");
    let poller = b.clone();
    let poll = tokio::spawn(async move { poller.list_open().await.unwrap() });
    tokio::time::timeout(Duration::from_secs(10), &mut deleting.arrived).await.unwrap().unwrap();
    // Meanwhile the job is retried: b's poll finds it open after its delete, and puts the marker back, slowly.
    let mut retried = failed.clone();
    assert!(retried.reopen());
    a.update(&retried).await.unwrap();
    let mut marking = slow.hold_next("/open/");
    deleting.release();
    tokio::time::timeout(Duration::from_secs(10), &mut marking.arrived).await.unwrap().unwrap();
    // The retry finishes before the marker lands.
    let mut done = a.get(&retried.id).await.unwrap().unwrap();
    done.state = JobState::Done;
    a.update(&done).await.unwrap();
    marking.release();
    tokio::time::timeout(Duration::from_secs(10), poll).await.unwrap().unwrap();
    assert!(markers(&backend).await.is_empty(), "{}: a finished job keeps no marker", backend.name);
}

async fn a_redelivery_of_a_finished_job_leaves_no_marker(backend: Backend) {
    let (a, b) = (journal(&backend, "replica-a").await, journal(&backend, "replica-b").await);
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let mut done = a.get(&accepted.id).await.unwrap().unwrap();
    done.state = JobState::Done;
    a.update(&done).await.unwrap();
    // Event Grid delivers the event again, to another replica, after the job finished.
    assert_eq!(b.insert(std::slice::from_ref(&accepted)).await.unwrap(), [false]);
    assert!(markers(&backend).await.is_empty(), "{}: a finished job keeps no marker", backend.name);
    // A redelivery of an open job keeps its marker. It is received later than the first delivery: a record of the
    // very same bytes is the insert's own, whose answer was lost.
    let open = job("e2");
    a.insert(std::slice::from_ref(&open)).await.unwrap();
    let mut redelivered = open.clone();
    redelivered.received_at += Duration::from_millis(1);
    assert_eq!(b.insert(std::slice::from_ref(&redelivered)).await.unwrap(), [false]);
    assert_eq!(open_ids(b.list_open().await.unwrap()), ["e2"], "{}", backend.name);
    assert_eq!(markers(&backend).await.len(), 1, "{}", backend.name);
}
