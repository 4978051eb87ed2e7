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

use super::{ChunkProgress, ChunkState, Job, JobId, JobState, TrackedRecording};
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

/// A tracked recording's lifecycle: `awaiting` its event, `missing` once it stopped and the event did not come in
/// time, `linked` to the job that downloads it once the event came (late ones too).
impl Job {
    /// The record that tracks a recording known to have started, `awaiting` its event. Its id is
    /// [`TrackedRecording::job_id`]: tracking the same recording again finds this record. It has nothing to
    /// download and no expiry of its own.
    pub fn awaiting(recording: TrackedRecording, received_at: SystemTime) -> Self {
        let mut job = Job::rejected(&TrackedRecording::key(&recording.recording_id), "", received_at);
        job.state = JobState::Awaiting;
        job.last_error = None;
        job.finished_at = None;
        job.tracked = Some(recording);
        job
    }

    /// Records what a later report of the same recording adds: the call ids not known yet, and whether it records.
    /// A recording that stopped keeps when it first stopped; one that records again (resumed after a pause) is
    /// `awaiting` again with no stop time. No change for a record that tracks nothing or is `linked`.
    pub fn recording_seen(&mut self, seen: &TrackedRecording) -> Transition {
        let unchanged = Transition { from: self.state, to: self.state };
        if !matches!(self.state, JobState::Awaiting | JobState::Missing) {
            return unchanged;
        }
        let Some(tracked) = self.tracked.as_mut() else { return unchanged };
        if tracked.call_connection_id.is_none() {
            tracked.call_connection_id.clone_from(&seen.call_connection_id);
        }
        if tracked.server_call_id.is_none() {
            tracked.server_call_id.clone_from(&seen.server_call_id);
        }
        match seen.stopped_at {
            Some(at) => {
                tracked.stopped_at.get_or_insert(at);
                unchanged
            }
            None => {
                tracked.stopped_at = None;
                self.last_error = None;
                self.enter(JobState::Awaiting)
            }
        }
    }

    /// Links a tracked recording to the job that downloads it, its event having come: `linked` at `now`. No
    /// change for a record that is not `awaiting` or `missing`.
    pub fn link(&mut self, download: JobId, now: SystemTime) -> Transition {
        if !matches!(self.state, JobState::Awaiting | JobState::Missing) {
            return Transition { from: self.state, to: self.state };
        }
        let Some(tracked) = self.tracked.as_mut() else { return Transition { from: self.state, to: self.state } };
        tracked.linked_job = Some(download);
        self.last_error = None;
        self.finished_at = Some(now);
        self.enter(JobState::Linked)
    }

    /// Whether a tracked recording stopped at least `window` before `now` and is still `awaiting` its event.
    pub fn event_overdue(&self, now: SystemTime, window: std::time::Duration) -> bool {
        let stopped = self.tracked.as_ref().and_then(|tracked| tracked.stopped_at);
        self.state == JobState::Awaiting
            && stopped.and_then(|at| now.duration_since(at).ok()).is_some_and(|waited| waited >= window)
    }

    /// Reports a tracked recording whose event did not come in time: `missing`, with the reason.
    pub fn mark_missing(&mut self, reason: impl Into<String>) -> Transition {
        self.last_error = Some(reason.into());
        self.enter(JobState::Missing)
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

    fn tracked(seconds: u64) -> Job {
        Job::awaiting(TrackedRecording::new("r1", at(seconds)), at(seconds))
    }

    #[test]
    fn a_started_recording_awaits_its_event_under_an_id_of_its_own() {
        let job = tracked(0);
        assert_eq!((job.state, job.id.clone()), (JobState::Awaiting, TrackedRecording::job_id("r1")));
        assert_eq!((job.recording.as_ref(), job.chunks.len(), job.finished_at), (None, 0, None));
        assert!(!job.state.is_open(), "no worker downloads a recording whose event has not come");
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains(r#""state":"awaiting""#) && text.contains(r#""recordingId":"r1""#), "{text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }

    #[test]
    fn a_stopped_recording_is_overdue_only_once_the_window_passed() {
        let mut job = tracked(0);
        let window = Duration::from_secs(1800);
        assert!(!job.event_overdue(at(10_000), window), "still recording");
        let mut stopped = TrackedRecording::new("r1", at(0));
        stopped.stopped_at = Some(at(100));
        stopped.server_call_id = Some("s1".to_owned());
        assert!(!job.recording_seen(&stopped).is_change());
        assert_eq!(job.tracked.as_ref().unwrap().server_call_id.as_deref(), Some("s1"));
        assert!(!job.event_overdue(at(1899), window));
        assert!(job.event_overdue(at(1900), window));
        assert_eq!(job.mark_missing("no event"), moved(JobState::Awaiting, JobState::Missing));
        assert!(!job.event_overdue(at(5000), window), "reported once");
    }

    #[test]
    fn a_recording_that_records_again_awaits_again_without_a_stop_time() {
        let mut job = tracked(0);
        let mut stopped = TrackedRecording::new("r1", at(0));
        stopped.stopped_at = Some(at(100));
        job.recording_seen(&stopped);
        job.mark_missing("no event");
        assert_eq!(
            job.recording_seen(&TrackedRecording::new("r1", at(0))),
            moved(JobState::Missing, JobState::Awaiting)
        );
        assert_eq!((job.tracked.as_ref().unwrap().stopped_at, job.last_error), (None, None));
    }

    #[test]
    fn an_event_links_an_awaiting_or_missing_recording_once() {
        let download = JobId::for_event("event-1");
        let mut job = tracked(0);
        job.mark_missing("no event");
        assert_eq!(job.link(download.clone(), at(5)), moved(JobState::Missing, JobState::Linked));
        assert_eq!(job.tracked.as_ref().unwrap().linked_job.as_ref(), Some(&download));
        assert_eq!((job.finished_at, job.last_error.as_deref()), (Some(at(5)), None));
        assert!(!job.link(JobId::for_event("event-2"), at(6)).is_change());
        assert_eq!(job.tracked.as_ref().unwrap().linked_job.as_ref(), Some(&download));
        assert!(!self::job().link(download, at(7)).is_change(), "a download job links to nothing");
        let mut failed = tracked(0);
        failed.fail(at(8), "the recording did not start");
        assert!(!failed.reopen(), "a recording that did not start has nothing to download");
    }
}
