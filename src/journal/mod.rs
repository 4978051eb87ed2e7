//! The journal: every accepted recording event, written durably before the webhook answers 200, and the state of
//! its download until it is done or has failed with a reason (feature `recorder`).
//!
//! Event Grid never delivers an event again once it got a 200, and ACS deletes a recording 24 hours after it was
//! made. The [`Recorder`](crate::recorder::Recorder) therefore writes each delivery's jobs to a [`Journal`] first
//! and answers 200 only once they are durable; its workers then move each [`Job`] from `pending` to `done` (or
//! `failed`, with its reason), checkpointing every chunk, so that a crash at any point loses nothing: the next
//! start resumes every open job.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::time::{Duration, SystemTime};
//! use acs_recording::journal::{FileJournal, Job, JobState, Journal};
//! use acs_recording::recording::{Recording, RecordingChunk};
//!
//! let folder = tempfile::tempdir()?;
//! let journal = FileJournal::open(folder.path())?;
//! let now = SystemTime::now();
//! let job = Job::new("event-1", Recording::new("call-1").chunk(RecordingChunk::new("doc-0", 0)), now, now + Duration::from_secs(86_400));
//!
//! // Create-only: the first insert writes the job, a redelivery of the same event finds it.
//! assert_eq!(journal.insert(std::slice::from_ref(&job)).await?, [true]);
//! assert_eq!(journal.insert(std::slice::from_ref(&job)).await?, [false]);
//!
//! // It survives the process: another journal on the same folder (after this one is dropped) lists it.
//! drop(journal);
//! let reopened = FileJournal::open(folder.path())?;
//! let jobs = reopened.list().await?;
//! assert_eq!((jobs.len(), jobs[0].state, jobs[0].event_id.as_str()), (1, JobState::Pending, "event-1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. A job is keyed by [`JobId::for_event`]: a redelivered event maps to the job it already has, so
//!    deduplication holds across restarts for as long as the job is kept.
//! 2. A job moves through its states by the methods of [`Job`] ([`Job::begin_attempt`], [`Job::chunk_stored`],
//!    [`Job::retry_at`], [`Job::finish`], [`Job::fail`], ...), each answering the [`Transition`] it made.
//! 3. [`Journal::insert`] is create-only and returns only once every new job is durable; [`Journal::update`]
//!    replaces a record atomically. A reader never sees half a record.
//! 4. The [`FileJournal`] writes each record to a temporary name, fsyncs it, links or renames it into place and
//!    fsyncs the folder. One process at a time holds a folder (an OS lock, released when the process dies).
//! 5. Before working on a job a worker takes its [`Lease`] ([`Journal::claim`]), renews it while it works and
//!    stops when a renewal finds it taken over. The [`FileJournal`] belongs to one process, so its leases are
//!    exclusive and never expire; the `ObjectStoreJournal` (feature `object-store`) shares jobs between replicas
//!    with timed leases in the store.
//! 6. The [`MemoryJournal`] keeps jobs in memory only: a crash loses the jobs accepted but not yet done, which
//!    Event Grid will not deliver again. It is for demos, tests and deployments that accept that.
//! 7. Implement [`Journal`] to keep jobs elsewhere (a database): the recorder needs nothing more.
//! 8. A recording known to have started before its event came is a record too ([`Job::awaiting`], keyed by
//!    [`TrackedRecording::job_id`]), in states of its own (`awaiting`, `missing`, `linked`) that no worker
//!    downloads; a record written before these existed reads as before.

#[cfg(feature = "object-store")]
mod claim;
#[cfg(test)]
mod contract;
mod file;
mod job;
mod lease;
mod memory;
#[cfg(feature = "object-store")]
mod store;
mod timestamp;
mod transition;

use std::future::Future;
use std::io;
use std::time::Duration;

pub use file::FileJournal;
pub use job::{ChunkProgress, ChunkState, Job, JobId, JobState, TrackedRecording};
pub use lease::Lease;
#[cfg(test)]
pub(crate) use lease::LeaseVersion;
pub use memory::MemoryJournal;
#[cfg(feature = "object-store")]
pub use store::{ObjectStoreJournal, JOURNAL_FOLDER};
pub use transition::{StoredMedia, Transition};

/// Reports a record that [`Journal::list`] skips because it cannot be read: a damaged record, or one written by a
/// newer version (an unknown state). Listing goes on with the others; the record stays where it is, for a person
/// to look at.
pub(crate) fn unreadable(error: &io::Error) {
    tracing::error!(%error, "journal record skipped: it cannot be read");
    metrics::counter!(UNREADABLE_RECORDS).increment(1);
}

/// The `metrics` counter of journal records skipped because they cannot be read.
pub const UNREADABLE_RECORDS: &str = "acs_recording_journal_unreadable_records_total";

/// Whether a write failed because another worker wrote the job's record since this process read it: the writer
/// lost the job and must stop writing it.
#[cfg(feature = "object-store")]
pub(crate) use store::is_superseded;

/// Whether a write failed because another worker wrote the job's record since this process read it (only a shared
/// journal's writes can).
#[cfg(not(feature = "object-store"))]
pub(crate) fn is_superseded(_error: &io::Error) -> bool {
    false
}

/// Durable storage for [`Job`]s.
///
/// Every method returns only once its effect is durable (or failed): the recorder answers Event Grid's 200 on the
/// strength of [`insert`](Journal::insert).
pub trait Journal: Send + Sync + 'static {
    /// Writes each job that has no record yet; answers, per job and in order, whether it was written (`false`: a
    /// record with its id exists). All new records are durable when this returns `Ok`.
    fn insert(&self, jobs: &[Job]) -> impl Future<Output = io::Result<Vec<bool>>> + Send;

    /// Replaces a job's record.
    fn update(&self, job: &Job) -> impl Future<Output = io::Result<()>> + Send;

    /// A job's record, if any.
    fn get(&self, id: &JobId) -> impl Future<Output = io::Result<Option<Job>>> + Send;

    /// Every record.
    fn list(&self) -> impl Future<Output = io::Result<Vec<Job>>> + Send;

    /// Every open job (pending or running), for workers looking for work other processes accepted. The default
    /// filters [`list`](Journal::list); a shared journal keeps an index of open jobs so that this does not grow with
    /// the done ones.
    fn list_open(&self) -> impl Future<Output = io::Result<Vec<Job>>> + Send {
        async {
            let mut jobs = self.list().await?;
            jobs.retain(|job| job.state.is_open());
            Ok(jobs)
        }
    }

    /// Removes a job's record (absent is not an error).
    fn remove(&self, id: &JobId) -> impl Future<Output = io::Result<()>> + Send;

    /// Whether the journal can write now (for readiness probes); the default says yes.
    fn check_writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Takes the lease on a job before working on it: `None` while another worker holds it. The default, for a
    /// journal only this process uses, is an [exclusive](Lease::exclusive) lease.
    fn claim(&self, id: &JobId) -> impl Future<Output = io::Result<Option<Lease>>> + Send {
        let lease = Lease::exclusive(id.clone());
        async move { Ok(Some(lease)) }
    }

    /// Extends a lease by its duration: `Ok(false)` when another worker took it over (the holder must stop).
    fn renew(&self, lease: &mut Lease) -> impl Future<Output = io::Result<bool>> + Send {
        let _ = lease;
        async { Ok(true) }
    }

    /// Gives a lease up once the work is done or stopped.
    fn release(&self, lease: Lease) -> impl Future<Output = io::Result<()>> + Send {
        drop(lease);
        async { Ok(()) }
    }

    /// How often workers look for open jobs that other processes accepted, when other processes share this
    /// journal; `None` (the default) when the jobs of this process are all it has.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}
