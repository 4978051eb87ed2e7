//! What every [`Journal`] promises, as one check that each implementation's tests run.

use std::time::{Duration, SystemTime};

use super::{Job, JobId, JobState, Journal, TrackedRecording};
use crate::recording::{Recording, RecordingChunk};

/// A pending job for `event`, received `second` seconds after a fixed instant.
pub(crate) fn job(event: &str, second: u64) -> Job {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_576_000 + second);
    Job::new(event, Recording::new("c").chunk(RecordingChunk::new("d", 0)), at, at + Duration::from_secs(86_400))
}

/// Runs the contract against an empty journal: create-only insert, update, get, list in received order, remove.
pub(crate) async fn check(journal: &impl Journal) {
    assert!(journal.list().await.unwrap().is_empty());
    assert_eq!(journal.get(&JobId::for_event("a")).await.unwrap(), None);

    // Create-only, per job and in order; a redelivery within the same batch (received a moment later) finds the
    // record. (A shared journal answers `true` for a record identical byte for byte: its own write, retried.)
    let (a, b) = (job("a", 2), job("b", 1));
    assert_eq!(journal.insert(&[a.clone(), b.clone(), job("a", 3)]).await.unwrap(), [true, true, false]);
    let mut changed = a.clone();
    changed.attempts = 7;
    assert_eq!(journal.insert(std::slice::from_ref(&changed)).await.unwrap(), [false]);
    assert_eq!(journal.get(&a.id).await.unwrap().as_ref(), Some(&a), "an insert never overwrites");

    // Listed in the order received (then by id), whatever the order inserted.
    assert_eq!(journal.list().await.unwrap(), [b.clone(), a.clone()]);

    // An update replaces the record.
    changed.state = JobState::Done;
    journal.update(&changed).await.unwrap();
    assert_eq!(journal.get(&a.id).await.unwrap(), Some(changed.clone()));
    assert_eq!(journal.list_open().await.unwrap(), std::slice::from_ref(&b));

    // Removal, twice: absent is not an error.
    journal.remove(&b.id).await.unwrap();
    journal.remove(&b.id).await.unwrap();
    assert_eq!(journal.get(&b.id).await.unwrap(), None);
    assert_eq!(journal.list().await.unwrap(), std::slice::from_ref(&changed));

    // A tracked recording is a record like any other, and no worker's work.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_576_100);
    let mut tracked = Job::awaiting(TrackedRecording::new("r1", at), at);
    assert_eq!(journal.insert(std::slice::from_ref(&tracked)).await.unwrap(), [true]);
    assert_eq!(journal.get(&TrackedRecording::job_id("r1")).await.unwrap().as_ref(), Some(&tracked));
    assert_eq!(journal.list_open().await.unwrap(), []);
    tracked.mark_missing("no event");
    journal.update(&tracked).await.unwrap();
    assert_eq!(journal.list().await.unwrap(), [changed, tracked]);
    journal.check_writable().await.unwrap();
}
