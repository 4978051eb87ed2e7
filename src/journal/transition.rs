//! A job's lifecycle, as methods of the [`Job`]: each moves the job (or one of its chunks) and answers the
//! [`Transition`] it made, which the recorder feeds to its gauges of jobs per state. The workers only
//! orchestrate: download, call the transition, checkpoint the record.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use acs_recording::journal::{Job, JobState, Transition};
//! use acs_recording::recording::{Recording, RecordingChunk};
//!
//! let now = SystemTime::now();
//! let recording = Recording::new("call-1").chunk(RecordingChunk::new("doc-0", 0));
//! let mut job = Job::new("event-1", recording, now, now + Duration::from_secs(86_400));
//! assert_eq!(job.begin_attempt(), Transition { from: JobState::Pending, to: JobState::Running });
//! assert_eq!(job.retry_at(now + Duration::from_secs(5), "503 from storage"), Transition {
//!     from: JobState::Running,
//!     to: JobState::Pending,
//! });
//! assert_eq!((job.attempts, job.last_error.as_deref()), (1, Some("503 from storage")));
//! ```

use std::time::SystemTime;

use super::{ChunkProgress, ChunkState, Job, JobState};
use crate::recording::ExportedRecording;
use crate::Sha256Digest;

/// A move from one state to another: of a job ([`JobState`], the default) or of one of its chunks
/// ([`ChunkState`]). `from` and `to` are equal when only the details changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S = JobState> {
    /// The state before.
    pub from: S,
    /// The state after.
    pub to: S,
}

impl<S: PartialEq> Transition<S> {
    /// Whether the state changed.
    pub fn is_change(&self) -> bool {
        self.from != self.to
    }
}

impl Job {
    /// Moves the job to `to`, answering the transition.
    fn enter(&mut self, to: JobState) -> Transition {
        let from = std::mem::replace(&mut self.state, to);
        Transition { from, to }
    }

    /// Starts an attempt: `running`, one more attempt, no attempt due any more.
    pub fn begin_attempt(&mut self) -> Transition {
        self.attempts = self.attempts.saturating_add(1);
        self.next_attempt_at = None;
        self.enter(JobState::Running)
    }

    /// Records that a chunk is in the sink, with what the sink reported (size, SHA-256, locations); clears its
    /// last error. `None` when the job has no such chunk.
    pub fn chunk_stored(
        &mut self,
        index: i64,
        document_id: &str,
        stored: &StoredMedia,
    ) -> Option<Transition<ChunkState>> {
        let progress = self.chunk_mut(index, document_id)?;
        progress.bytes = Some(stored.bytes);
        progress.sha256 = Some(stored.sha256);
        progress.location = Some(stored.location.clone());
        progress.metadata_location = stored.metadata_location.clone();
        progress.last_error = None;
        Some(chunk_enter(progress, ChunkState::Stored))
    }

    /// Records that a stored chunk was deleted from ACS storage; clears its last error. `None` when the job has no
    /// such chunk.
    pub fn chunk_deleted(&mut self, index: i64, document_id: &str) -> Option<Transition<ChunkState>> {
        let progress = self.chunk_mut(index, document_id)?;
        progress.last_error = None;
        Some(chunk_enter(progress, ChunkState::Deleted))
    }

    /// Records why a step on a chunk failed (never a secret or a query string); the chunk stays where it was.
    /// `None` when the job has no such chunk.
    pub fn chunk_failed(
        &mut self,
        index: i64,
        document_id: &str,
        reason: impl Into<String>,
    ) -> Option<Transition<ChunkState>> {
        let progress = self.chunk_mut(index, document_id)?;
        progress.last_error = Some(reason.into());
        Some(Transition { from: progress.state, to: progress.state })
    }

    /// Finishes the job: `done` at `now`, with no error.
    pub fn finish(&mut self, now: SystemTime) -> Transition {
        self.last_error = None;
        self.finished_at = Some(now);
        self.enter(JobState::Done)
    }

    /// Finishes the job although a step after storing its chunks did not happen (deleting them from storage):
    /// `done` at `now`, with `note` kept as its last error.
    pub fn finish_with_note(&mut self, now: SystemTime, note: impl Into<String>) -> Transition {
        self.last_error = Some(note.into());
        self.finished_at = Some(now);
        self.enter(JobState::Done)
    }

    /// Schedules another attempt: `pending` until `due`, with the reason the last one failed.
    pub fn retry_at(&mut self, due: SystemTime, reason: impl Into<String>) -> Transition {
        self.last_error = Some(reason.into());
        self.next_attempt_at = Some(due);
        self.enter(JobState::Pending)
    }

    /// Gives the job up: `failed` at `now`, with the reason.
    pub fn fail(&mut self, now: SystemTime, reason: impl Into<String>) -> Transition {
        self.last_error = Some(reason.into());
        self.finished_at = Some(now);
        self.enter(JobState::Failed)
    }

    /// Finishes a job whose recording ACS exported to the customer's container, downloading nothing: `done` at
    /// `now`, every chunk `exported`, and where the recording is in [`Job::exported`].
    pub fn mark_exported(&mut self, now: SystemTime, exported: ExportedRecording) -> Transition {
        self.last_error = None;
        self.next_attempt_at = None;
        self.finished_at = Some(now);
        for chunk in &mut self.chunks {
            chunk.state = ChunkState::Exported;
        }
        self.exported = Some(exported);
        self.enter(JobState::Done)
    }
}

fn chunk_enter(progress: &mut ChunkProgress, to: ChunkState) -> Transition<ChunkState> {
    let from = std::mem::replace(&mut progress.state, to);
    Transition { from, to }
}

/// What the sink reported for a stored chunk, as the journal keeps it ([`Job::chunk_stored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// Media bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored media.
    pub sha256: Sha256Digest,
    /// Where the sink put the media.
    pub location: String,
    /// Where the sink put the chunk's metadata document, if it wrote one.
    pub metadata_location: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recording::{Recording, RecordingChunk};
    use crate::Sha256Digest;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_576_000 + seconds)
    }

    fn job() -> Job {
        let recording = Recording::new("c").chunk(RecordingChunk::new("d0", 0)).chunk(RecordingChunk::new("d1", 1));
        Job::new("e", recording, at(0), at(86_400))
    }

    fn manifest() -> StoredMedia {
        StoredMedia {
            bytes: 42,
            sha256: Sha256Digest::new([0xab; 32]),
            location: "out/c/0-d0.wav".to_owned(),
            metadata_location: Some("out/c/0-d0.json".to_owned()),
        }
    }

    fn moved(from: JobState, to: JobState) -> Transition {
        Transition { from, to }
    }

    #[test]
    fn an_attempt_begins_running_counted_and_no_longer_due() {
        let mut job = job();
        job.next_attempt_at = Some(at(5));
        assert_eq!(job.begin_attempt(), moved(JobState::Pending, JobState::Running));
        assert_eq!((job.attempts, job.next_attempt_at), (1, None));
        assert_eq!(job.begin_attempt(), moved(JobState::Running, JobState::Running));
        assert_eq!(job.attempts, 2);
    }

    #[test]
    fn a_stored_chunk_keeps_what_the_sink_reported_and_forgets_its_error() {
        let mut job = job();
        job.chunk_failed(0, "d0", "reset").unwrap();
        let stored = job.chunk_stored(0, "d0", &manifest()).unwrap();
        assert_eq!(stored, Transition { from: ChunkState::Pending, to: ChunkState::Stored });
        let chunk = &job.chunks[0];
        assert_eq!(chunk.bytes, Some(42));
        assert_eq!(chunk.sha256.map(|digest| digest.to_string()), Some("ab".repeat(32)));
        assert_eq!(chunk.location.as_deref(), Some("out/c/0-d0.wav"));
        assert_eq!(chunk.metadata_location.as_deref(), Some("out/c/0-d0.json"));
        assert_eq!(chunk.last_error, None);
        assert_eq!(job.chunks[1].state, ChunkState::Pending, "the other chunk is untouched");
        assert_eq!(job.chunks_stored(), 1);
        assert!(job.chunk_stored(9, "d9", &manifest()).is_none(), "no such chunk");
    }

    #[test]
    fn a_deleted_chunk_moves_from_stored_and_forgets_its_error() {
        let mut job = job();
        job.chunk_stored(0, "d0", &manifest()).unwrap();
        job.chunk_failed(0, "d0", "delete: 503").unwrap();
        assert_eq!(job.chunks[0].last_error.as_deref(), Some("delete: 503"));
        let deleted = job.chunk_deleted(0, "d0").unwrap();
        assert_eq!(deleted, Transition { from: ChunkState::Stored, to: ChunkState::Deleted });
        assert_eq!(job.chunks[0].last_error, None);
        assert!(job.chunk_deleted(0, "other").is_none());
    }

    #[test]
    fn a_failed_step_on_a_chunk_leaves_it_where_it_was() {
        let mut job = job();
        let failed = job.chunk_failed(1, "d1", "404").unwrap();
        assert!(!failed.is_change());
        assert_eq!((job.chunks[1].state, job.chunks[1].last_error.as_deref()), (ChunkState::Pending, Some("404")));
    }

    #[test]
    fn a_finished_job_is_done_without_error() {
        let mut job = job();
        job.begin_attempt();
        job.last_error = Some("earlier".to_owned());
        assert_eq!(job.finish(at(60)), moved(JobState::Running, JobState::Done));
        assert_eq!((job.last_error, job.finished_at), (None, Some(at(60))));
    }

    #[test]
    fn a_job_finished_with_a_note_keeps_it() {
        let mut job = job();
        job.begin_attempt();
        assert_eq!(job.finish_with_note(at(60), "stored; delete failed"), moved(JobState::Running, JobState::Done));
        assert_eq!((job.last_error.as_deref(), job.finished_at), (Some("stored; delete failed"), Some(at(60))));
    }

    #[test]
    fn a_retried_job_is_pending_until_due_with_its_reason() {
        let mut job = job();
        job.begin_attempt();
        assert_eq!(job.retry_at(at(10), "503"), moved(JobState::Running, JobState::Pending));
        assert_eq!((job.next_attempt_at, job.last_error.as_deref()), (Some(at(10)), Some("503")));
        assert_eq!((job.attempts, job.finished_at), (1, None));
    }

    #[test]
    fn a_failed_job_keeps_its_reason_and_when() {
        let mut job = job();
        job.begin_attempt();
        assert_eq!(job.fail(at(70), "404"), moved(JobState::Running, JobState::Failed));
        assert_eq!((job.last_error.as_deref(), job.finished_at), (Some("404"), Some(at(70))));
        assert!(job.reopen(), "a failed job can be retried");
    }

    #[test]
    fn an_exported_job_is_done_with_every_chunk_exported() {
        let mut job = job();
        job.next_attempt_at = Some(at(5));
        job.last_error = Some("earlier".to_owned());
        let exported: ExportedRecording =
            serde_json::from_value(serde_json::json!({"callId": "c", "storageType": "azureBlob"})).unwrap();
        assert_eq!(job.mark_exported(at(1), exported.clone()), moved(JobState::Pending, JobState::Done));
        assert!(job.chunks.iter().all(|chunk| chunk.state == ChunkState::Exported));
        assert_eq!((job.next_attempt_at, job.last_error, job.finished_at), (None, None, Some(at(1))));
        assert_eq!(job.exported, Some(exported));
    }
}
