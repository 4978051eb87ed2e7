//! The journal in memory: a map of jobs that lives as long as the process.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Job, JobId, Journal};

/// A [`Journal`] in memory, with the [`FileJournal`](super::FileJournal)'s semantics: a create-only
/// [`insert`](Journal::insert), an [`update`](Journal::update) that replaces the record, and a
/// [`list`](Journal::list) in the order jobs were received.
///
/// **It loses its jobs when the process stops or crashes**: Event Grid got its 200 for them and delivers them no
/// more. Use it for demos, tests, and deployments that accept losing the recordings accepted but not yet
/// downloaded; use the `FileJournal` (or a shared journal) wherever a recording must not be lost. Clones share
/// the jobs.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::{Duration, SystemTime};
/// use acs_recording::journal::{Job, Journal, MemoryJournal};
/// use acs_recording::recording::Recording;
///
/// let journal = MemoryJournal::new();
/// let now = SystemTime::now();
/// let job = Job::new("event-1", Recording::new("call-1"), now, now + Duration::from_secs(86_400));
/// assert_eq!(journal.insert(std::slice::from_ref(&job)).await?, [true]);
/// assert_eq!(journal.insert(std::slice::from_ref(&job)).await?, [false], "a redelivery finds the job");
/// assert_eq!(journal.list().await?, [job]);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    jobs: Arc<Mutex<BTreeMap<JobId, Job>>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn jobs(&self) -> MutexGuard<'_, BTreeMap<JobId, Job>> {
        // A panic while the lock was held cannot leave a record half written: each write is one map operation.
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Journal for MemoryJournal {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        let mut records = self.jobs();
        let written = jobs
            .iter()
            .map(|job| match records.contains_key(&job.id) {
                true => false,
                false => {
                    records.insert(job.id.clone(), job.clone());
                    true
                }
            })
            .collect();
        Ok(written)
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        self.jobs().insert(job.id.clone(), job.clone());
        Ok(())
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        Ok(self.jobs().get(id).cloned())
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        let mut jobs: Vec<Job> = self.jobs().values().cloned().collect();
        jobs.sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        self.jobs().remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::contract;

    #[tokio::test]
    async fn the_memory_journal_keeps_the_journal_contract() {
        contract::check(&MemoryJournal::new()).await;
    }

    #[tokio::test]
    async fn clones_share_the_jobs() {
        let journal = MemoryJournal::new();
        let clone = journal.clone();
        journal.insert(&[contract::job("a", 0)]).await.unwrap();
        assert_eq!(clone.list().await.unwrap().len(), 1);
    }
}
