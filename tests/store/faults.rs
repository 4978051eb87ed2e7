//! The shared journal's conditional writes when the network between a replica and the store fails: each test puts
//! a fault-injecting proxy between the journal under test and Azurite, and checks the store directly.
//!
//! The classic case is a lost response: Azurite applied a conditional PUT, the answer never came back, the client
//! sent it again and got "already exists" or "precondition failed" for its own write.

use std::time::Duration;

use crate::support::store::proxy::{Action, FaultProxy, Match};
use crate::support::store::{azurite_url, Backend};
use acs_recording::journal::{Job, JobId, JobState, Journal, ObjectStoreJournal};
use acs_recording::recording::{Recording, RecordingChunk};
use http::Method;
use object_store::path::Path;
use object_store::ObjectStoreExt;

fn job(event: &str) -> Job {
    let now = std::time::SystemTime::now();
    let recording = Recording::new("call").chunk(RecordingChunk::new("doc", 0));
    Job::new(event, recording, now, now + Duration::from_secs(3600))
}

/// A fresh container, a proxy in front of Azurite, and two journals: `a` through the proxy, `b` direct.
async fn setup(test: &str, lease: Duration) -> (Backend, FaultProxy, ObjectStoreJournal, ObjectStoreJournal) {
    let backend = Backend::azurite(test);
    let proxy = FaultProxy::start(azurite_url()).await;
    let proxied = backend.through(&proxy.url());
    let a = ObjectStoreJournal::open(proxied.location.clone()).await.unwrap().owner("replica-a").lease_duration(lease);
    let b = ObjectStoreJournal::open(backend.location.clone()).await.unwrap().owner("replica-b").lease_duration(lease);
    (backend, proxy, a, b)
}

fn lost(path: &str, header: &str) -> Match {
    Match::method(Method::PUT).path(path).header(header)
}

async fn claim_keys(backend: &Backend) -> Vec<String> {
    backend.keys().await.into_iter().filter(|key| key.contains("/claims/")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_was_lost_is_still_the_claimers() {
    let (_backend, proxy, a, b) = setup("a_claim_whose_answer_was_lost", Duration::from_secs(30)).await;
    let id = JobId::for_event("e1");
    let rule = proxy.rule(lost("/claims/", "if-none-match"), Action::LoseResponse, 1);
    let mut lease = a.claim(&id).await.unwrap().expect("a's own claim, applied with its answer lost");
    assert_eq!(proxy.applied(rule), 1);
    assert!(b.claim(&id).await.unwrap().is_none(), "a holds the job");
    assert!(a.renew(&mut lease).await.unwrap(), "a's lease is the one in the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_whose_answer_was_lost_is_still_the_takers() {
    let (_backend, proxy, a, b) = setup("a_takeover_whose_answer_was_lost", Duration::from_secs(1)).await;
    let id = JobId::for_event("e1");
    let _expired = b.claim(&id).await.unwrap().expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rule = proxy.rule(lost("/claims/", "if-match"), Action::LoseResponse, 1);
    let mut lease = a.claim(&id).await.unwrap().expect("a took the expired lease over, its answer lost");
    assert_eq!(proxy.applied(rule), 1);
    assert!(a.renew(&mut lease).await.unwrap());
    assert!(b.claim(&id).await.unwrap().is_none(), "a holds the job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_whose_answer_was_lost_keeps_the_lease() {
    let (_backend, proxy, a, b) = setup("a_renewal_whose_answer_was_lost", Duration::from_secs(30)).await;
    let id = JobId::for_event("e1");
    let mut lease = a.claim(&id).await.unwrap().expect("free");
    let rule = proxy.rule(lost("/claims/", "if-match"), Action::LoseResponse, 1);
    assert!(a.renew(&mut lease).await.unwrap(), "renewed, though its answer was lost");
    assert_eq!(proxy.applied(rule), 1);
    assert!(a.renew(&mut lease).await.unwrap(), "the lease knows the version the lost renewal wrote");
    assert!(b.claim(&id).await.unwrap().is_none(), "a holds the job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_whose_answer_was_lost_still_deletes_the_claim_of_a_finished_job() {
    let (backend, proxy, a, _b) = setup("a_release_whose_answer_was_lost", Duration::from_secs(30)).await;
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let lease = a.claim(&accepted.id).await.unwrap().expect("free");
    let mut done = a.get(&accepted.id).await.unwrap().unwrap();
    done.state = JobState::Done;
    a.update(&done).await.unwrap();
    let rule = proxy.rule(lost("/claims/", "if-match"), Action::LoseResponse, 1);
    a.release(lease).await.unwrap();
    assert_eq!(proxy.applied(rule), 1);
    assert_eq!(claim_keys(&backend).await, Vec::<String>::new(), "a finished job keeps no claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_answer_was_lost_is_not_taken_for_a_lost_race() {
    let (backend, proxy, a, b) = setup("an_update_whose_answer_was_lost", Duration::from_secs(30)).await;
    let accepted = job("e1");
    a.insert(std::slice::from_ref(&accepted)).await.unwrap();
    let mut running = a.get(&accepted.id).await.unwrap().unwrap();
    running.state = JobState::Running;
    running.attempts = 1;
    let rule = proxy.rule(lost("/jobs/", "if-match"), Action::LoseResponse, 1);
    a.update(&running).await.expect("a's own write, applied with its answer lost");
    assert_eq!(proxy.applied(rule), 1);
    // The next checkpoint compares against the version the lost answer carried.
    let mut done = running.clone();
    done.state = JobState::Done;
    a.update(&done).await.expect("a still holds the record");
    let stored = b.get(&accepted.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.attempts), (JobState::Done, 1));
    let key = Path::from(format!("recordings/.acs-recording/jobs/{}.json", accepted.id));
    assert!(backend.store().head(&key).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_answer_was_lost_counts_as_written() {
    let (_backend, proxy, a, b) = setup("an_insert_whose_answer_was_lost", Duration::from_secs(30)).await;
    let accepted = job("e1");
    let rule = proxy.rule(lost("/jobs/", "if-none-match"), Action::LoseResponse, 1);
    assert_eq!(a.insert(std::slice::from_ref(&accepted)).await.unwrap(), [true], "a new job, not a duplicate");
    assert_eq!(proxy.applied(rule), 1);
    // A redelivery (a new delivery of the same event, received later) is still a duplicate.
    let redelivered = job("e1");
    assert_eq!(b.insert(std::slice::from_ref(&redelivered)).await.unwrap(), [false]);
    let open: Vec<String> = b.list_open().await.unwrap().into_iter().map(|job| job.event_id).collect();
    assert_eq!(open, ["e1"]);
}
