//! What the intake, the workers and the health probes share.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use super::metrics;
use crate::clock::SharedClock;
use crate::eventgrid::Deduplicator;
use crate::journal::{JobId, JobState, Transition};

/// Counts of jobs per open or final state, mirrored into the `acs_recording_jobs` gauge.
#[derive(Debug, Default)]
pub(crate) struct StateCounts {
    counts: [AtomicUsize; 8],
}

fn slot(state: JobState) -> usize {
    match state {
        JobState::Pending => 0,
        JobState::Running => 1,
        JobState::Done => 2,
        JobState::Failed => 3,
        JobState::Awaiting => 5,
        JobState::Missing => 6,
        JobState::Linked => 7,
        _ => 4,
    }
}

const STATES: [JobState; 8] = [
    JobState::Pending,
    JobState::Running,
    JobState::Done,
    JobState::Failed,
    JobState::Rejected,
    JobState::Awaiting,
    JobState::Missing,
    JobState::Linked,
];

impl StateCounts {
    pub(crate) fn add(&self, state: JobState) {
        let n = self.counts[slot(state)].fetch_add(1, Ordering::Relaxed) + 1;
        metrics::jobs(state, n);
    }

    pub(crate) fn remove(&self, state: JobState) {
        let counter = &self.counts[slot(state)];
        let n = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1))).unwrap_or(0);
        metrics::jobs(state, n.saturating_sub(1));
    }

    pub(crate) fn moved(&self, from: JobState, to: JobState) {
        if from != to {
            self.remove(from);
            self.add(to);
        }
    }

    /// Counts a job's transition.
    pub(crate) fn apply(&self, transition: Transition) {
        self.moved(transition.from, transition.to);
    }

    pub(crate) fn get(&self, state: JobState) -> usize {
        self.counts[slot(state)].load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        for (counter, state) in self.counts.iter().zip(STATES) {
            counter.store(0, Ordering::Relaxed);
            metrics::jobs(state, 0);
        }
    }

    /// Sets the open counts to what the journal holds now (other replicas move jobs too).
    pub(crate) fn set_open(&self, pending: usize, running: usize) {
        for (state, n) in [(JobState::Pending, pending), (JobState::Running, running)] {
            self.counts[slot(state)].store(n, Ordering::Relaxed);
            metrics::jobs(state, n);
        }
    }

    /// Jobs a worker still has to finish.
    pub(crate) fn open(&self) -> usize {
        self.get(JobState::Pending) + self.get(JobState::Running)
    }
}

/// The recorder's shared state.
#[derive(Debug)]
pub(crate) struct Shared<J> {
    pub(crate) journal: J,
    pub(crate) seen: Deduplicator,
    pub(crate) states: StateCounts,
    pub(crate) max_pending: usize,
    pub(crate) queue: mpsc::UnboundedSender<JobId>,
    /// Cleared when shutdown starts: the intake answers 503 from then on.
    pub(crate) accepting: AtomicBool,
    /// Set while the workers run.
    pub(crate) working: AtomicBool,
    pub(crate) lifetime: Duration,
    /// How long a stopped recording's event may take before the recording is reported missing.
    pub(crate) missing_window: Duration,
    pub(crate) clock: SharedClock,
    /// Jobs a worker holds now, so that a job queued twice runs once.
    pub(crate) in_flight: Mutex<HashSet<JobId>>,
    /// Jobs the shared-journal poll queued that no worker has taken yet, so that a busy queue gets each once.
    pub(crate) polled: Mutex<HashSet<JobId>>,
    /// The intake holds it to read while it inserts and counts; the count at start holds it to write.
    pub(crate) counting: tokio::sync::RwLock<()>,
    /// Held to read, change and write a tracked recording's record: a callback and the recording's event may
    /// arrive together, and neither may write over what the other wrote.
    pub(crate) tracking: tokio::sync::Mutex<()>,
}

impl<J> Shared<J> {
    /// Whether the journal holds its maximum of open jobs, so that the intake refuses new ones.
    pub(crate) fn is_full(&self) -> bool {
        self.states.open() >= self.max_pending
    }

    pub(crate) fn claim(&self, id: &JobId) -> bool {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone())
    }

    pub(crate) fn release(&self, id: &JobId) {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Marks a job queued by the poll: `false` when it is queued or running already.
    pub(crate) fn mark_polled(&self, id: &JobId) -> bool {
        if self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).contains(id) {
            return false;
        }
        self.polled.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone())
    }

    pub(crate) fn unmark_polled(&self, id: &JobId) {
        self.polled.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Hands a durable job to the workers.
    pub(crate) fn enqueue(&self, id: &JobId) {
        // The workers may not run yet (or any more): the job is durable and resumes when they start.
        let _ = self.queue.send(id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_recordings_are_counted_apart_from_jobs_to_download() {
        let counts = StateCounts::default();
        counts.add(JobState::Awaiting);
        counts.apply(Transition { from: JobState::Awaiting, to: JobState::Missing });
        counts.add(JobState::Rejected);
        counts.add(JobState::Linked);
        let states = [JobState::Awaiting, JobState::Missing, JobState::Rejected, JobState::Linked, JobState::Pending];
        assert_eq!(states.map(|state| counts.get(state)), [0, 1, 1, 1, 0]);
        assert_eq!(counts.open(), 0, "nothing a worker has to do, nothing against max_pending");
    }
}
