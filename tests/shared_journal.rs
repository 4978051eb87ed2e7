//! The object-store journal shared by replicas, against Azurite and against local files: what a worker that lost
//! its job may still write, and the open-job markers that polling replicas find work by.

mod common;
mod store_support;

use std::time::Duration;

use acs_recording::journal::{Job, JobState, Journal, ObjectStoreJournal};
use acs_recording::recording::{Recording, RecordingChunk};
use store_support::Backend;

fn job(event: &str) -> Job {
    let now = std::time::SystemTime::now();
    let recording = Recording::new("call").chunk(RecordingChunk::new("doc", 0));
    Job::new(event, recording, now, now + Duration::from_secs(3600))
}

async fn journal(backend: &Backend, owner: &str) -> ObjectStoreJournal {
    ObjectStoreJournal::open(backend.location.clone()).await.unwrap().owner(owner)
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
