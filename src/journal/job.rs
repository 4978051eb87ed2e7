//! One accepted delivery event and everything the recorder knows about its download.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::timestamp;
use crate::recording::{ExportedRecording, Recording};
use crate::Sha256Digest;

/// A job's identity: the SHA-256 of its event id, in hex (32 characters), so that any event id makes a safe file
/// or object name and a redelivery maps to the same job.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// The id of the job for an event.
    ///
    /// ```
    /// use acs_recording::journal::JobId;
    /// let id = JobId::for_event("7283825e-f8f1-4c61-a9ea-752c56890500");
    /// assert_eq!(id.as_str().len(), 32);
    /// assert_eq!(JobId::parse(id.as_str()), Some(id));
    /// ```
    pub fn for_event(event_id: &str) -> Self {
        let digest = Sha256Digest::from(Sha256::digest(event_id.as_bytes())).to_string();
        Self(digest[..32].to_owned())
    }

    /// Reads an id as [`JobId::as_str`] prints it; `None` unless it is 32 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(text.to_owned()))
    }

    /// The id as 32 lower-case hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobState {
    /// Accepted, waiting for a worker (or for its next attempt).
    Pending,
    /// A worker is on it; a job found running at start was interrupted and resumes.
    Running,
    /// Every chunk is in the sink (and deleted from storage, when asked).
    Done,
    /// Given up, with the reason in [`Job::last_error`]; kept until removed or retried.
    Failed,
    /// The event's data did not fit the schema: nothing to download, kept with the reason.
    Rejected,
    /// A recording known to have started ([`Job::tracked`]) whose `RecordingFileStatusUpdated` event has not come
    /// yet: nothing to download until it does.
    Awaiting,
    /// A tracked recording that stopped and whose event did not come within the recorder's window: reported, and
    /// still linked should the event come late.
    Missing,
    /// A tracked recording whose event came: its download is the job [`TrackedRecording::linked_job`].
    Linked,
}

impl JobState {
    /// The state as the journal and the status view write it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Rejected => "rejected",
            JobState::Awaiting => "awaiting",
            JobState::Missing => "missing",
            JobState::Linked => "linked",
        }
    }

    /// Whether a worker still has something to do.
    pub fn is_open(self) -> bool {
        matches!(self, JobState::Pending | JobState::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one chunk of a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChunkState {
    /// Not in the sink yet.
    Pending,
    /// Committed to the sink.
    Stored,
    /// Committed to the sink and deleted from ACS storage.
    Deleted,
    /// Not downloaded: ACS exported it to the customer's container (see [`Job::exported`]).
    Exported,
}

/// One chunk's progress within a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChunkProgress {
    /// The chunk's index.
    pub index: i64,
    /// The chunk's document id.
    pub document_id: String,
    /// Where it stands.
    pub state: ChunkState,
    /// Media bytes stored, once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// SHA-256 of the stored media (hex in the journal), once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
    /// Where the sink put it, once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Where the sink put its metadata document, once stored (when the sink keeps metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_location: Option<String>,
    /// Why the last step on this chunk failed (never a secret or a query string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A recording known to have started, tracked until its `RecordingFileStatusUpdated` event comes: the
/// [`Job::tracked`] of a record in state `awaiting`, `missing` or `linked` (see [`Job::awaiting`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TrackedRecording {
    /// The recording id, which the event's subject or data carries.
    pub recording_id: String,
    /// The call connection that started it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// The server call id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// When it started.
    #[serde(with = "timestamp")]
    pub started_at: SystemTime,
    /// When it stopped (or paused): the window for its event runs from here. `None` while it records.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timestamp::optional")]
    pub stopped_at: Option<SystemTime>,
    /// The job that downloads it, once its event came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_job: Option<JobId>,
}

impl TrackedRecording {
    /// A recording `recording_id` that started at `started_at`.
    pub fn new(recording_id: impl Into<String>, started_at: SystemTime) -> Self {
        Self {
            recording_id: recording_id.into(),
            call_connection_id: None,
            server_call_id: None,
            started_at,
            stopped_at: None,
            linked_job: None,
        }
    }

    /// The id of the record that tracks recording `recording_id` (see [`Job::awaiting`]).
    pub fn job_id(recording_id: &str) -> JobId {
        JobId::for_event(&Self::key(recording_id))
    }

    /// What stands in the record's `event_id`: no Event Grid event id looks like it.
    pub(crate) fn key(recording_id: &str) -> String {
        format!("recording-started:{recording_id}")
    }
}

/// One accepted event and its download: what the journal stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Job {
    /// The job's id, derived from the event id.
    pub id: JobId,
    /// The Event Grid event id; redeliveries repeat it.
    pub event_id: String,
    /// What to download; `None` for a rejected event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
    /// When the webhook accepted the event.
    #[serde(with = "timestamp")]
    pub received_at: SystemTime,
    /// When ACS deletes the recording (event time + 24 hours by default): retries stop then.
    #[serde(with = "timestamp")]
    pub expires_at: SystemTime,
    /// Where the job stands.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Per-chunk progress, in index order.
    pub chunks: Vec<ChunkProgress>,
    /// Why the last attempt failed, or why the job failed or was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a pending job's next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timestamp::optional")]
    pub next_attempt_at: Option<SystemTime>,
    /// When the job reached `done`, `failed` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "timestamp::optional")]
    pub finished_at: Option<SystemTime>,
    /// Where the recording is, when ACS exported it to the customer's container and the recorder did not download
    /// it (bring your own storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported: Option<ExportedRecording>,
    /// Oddities of the event that did not stop its download, for a person to look at: a known field whose value
    /// did not fit its type (`recordingDurationMs: -1`, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The recording this record tracks from its start until its event comes (states `awaiting`, `missing`,
    /// `linked`); `None` for a job made from an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked: Option<TrackedRecording>,
    /// Where the event came from, as [`Source`](crate::recorder::Source)'s text form (`webhook`,
    /// `queue:acs-events`); `None` for a record written without one (and by versions before sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The text of a message that could not be read as events (state `rejected`), kept so that a person can look
    /// at it: at most [`Job::MESSAGE_LIMIT`] bytes, invalid UTF-8 replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Job {
    /// A pending job for `recording`, announced by event `event_id`.
    pub fn new(event_id: &str, recording: Recording, received_at: SystemTime, expires_at: SystemTime) -> Self {
        let mut chunks: Vec<ChunkProgress> = recording
            .chunks
            .iter()
            .map(|chunk| ChunkProgress {
                index: chunk.index(),
                document_id: chunk.document_id().to_owned(),
                state: ChunkState::Pending,
                bytes: None,
                sha256: None,
                location: None,
                metadata_location: None,
                last_error: None,
            })
            .collect();
        chunks.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.document_id.cmp(&b.document_id)));
        chunks.dedup_by(|a, b| a.index == b.index && a.document_id == b.document_id);
        Self {
            id: JobId::for_event(event_id),
            event_id: event_id.to_owned(),
            recording: Some(recording),
            received_at,
            expires_at,
            state: JobState::Pending,
            attempts: 0,
            chunks,
            last_error: None,
            next_attempt_at: None,
            finished_at: None,
            exported: None,
            notes: Vec::new(),
            tracked: None,
            source: None,
            message: None,
        }
    }

    /// The record of an event that was refused on its own (its data did not fit), with the reason.
    pub fn rejected(event_id: &str, reason: impl Into<String>, received_at: SystemTime) -> Self {
        Self {
            id: JobId::for_event(event_id),
            event_id: event_id.to_owned(),
            recording: None,
            received_at,
            expires_at: received_at,
            state: JobState::Rejected,
            attempts: 0,
            chunks: Vec::new(),
            last_error: Some(reason.into()),
            next_attempt_at: None,
            finished_at: Some(received_at),
            exported: None,
            notes: Vec::new(),
            tracked: None,
            source: None,
            message: None,
        }
    }

    /// The most bytes of a rejected message's text kept in its record (Storage queue messages hold at most 64 KiB).
    pub const MESSAGE_LIMIT: usize = 64 * 1024;

    /// The record of a message from a source that can never be events (not JSON, not an event, not a recording
    /// event's shape), with the reason and the message's text. Its id comes from the text's SHA-256, so the same
    /// message delivered again is recognised as a duplicate.
    ///
    /// ```
    /// use acs_recording::journal::{Job, JobState};
    /// let job = Job::rejected_message(b"not json", "not a JSON document", std::time::SystemTime::UNIX_EPOCH);
    /// assert_eq!(job.state, JobState::Rejected);
    /// assert_eq!(job.message.as_deref(), Some("not json"));
    /// assert_eq!(job.id, Job::rejected_message(b"not json", "other", std::time::SystemTime::UNIX_EPOCH).id);
    /// ```
    pub fn rejected_message(message: &[u8], reason: impl Into<String>, received_at: SystemTime) -> Self {
        let event_id = format!("message-{}", Sha256Digest::of(message));
        // A character cut at the limit reads as U+FFFD, as any other invalid byte does.
        let kept = &message[..message.len().min(Self::MESSAGE_LIMIT)];
        let mut job = Self::rejected(&event_id, reason, received_at);
        job.message = Some(String::from_utf8_lossy(kept).into_owned());
        job
    }

    /// Makes a failed job pending again: attempts start over, the expiry stays. `false` (and no change) for a job
    /// in any other state, and for a tracked recording that did not start (it has nothing to download).
    pub fn reopen(&mut self) -> bool {
        if self.state != JobState::Failed || self.tracked.is_some() {
            return false;
        }
        self.state = JobState::Pending;
        self.attempts = 0;
        self.next_attempt_at = None;
        self.finished_at = None;
        true
    }

    /// The progress of a chunk, by index and document id.
    pub fn chunk_mut(&mut self, index: i64, document_id: &str) -> Option<&mut ChunkProgress> {
        self.chunks.iter_mut().find(|c| c.index == index && c.document_id == document_id)
    }

    /// Chunks already in the sink.
    pub fn chunks_stored(&self) -> usize {
        self.chunks.iter().filter(|c| matches!(c.state, ChunkState::Stored | ChunkState::Deleted)).count()
    }

    /// Media bytes already in the sink.
    pub fn bytes_stored(&self) -> u64 {
        self.chunks.iter().filter_map(|c| c.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recording::RecordingChunk;

    #[test]
    fn a_job_survives_a_round_trip_through_json() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_576_000_123_456);
        let recording = Recording::new("c").chunk(RecordingChunk::new("d1", 1)).chunk(RecordingChunk::new("d0", 0));
        let mut job = Job::new("e1", recording, at, at + Duration::from_secs(86_400));
        job.next_attempt_at = Some(at + Duration::from_secs(5));
        job.chunks[0].state = ChunkState::Stored;
        job.chunks[0].sha256 = Some("ab".repeat(32).parse().unwrap());
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains(r#""receivedAt":"2025-12-01T08:00:00.123456Z""#), "{text}");
        assert!(text.contains(r#""state":"pending""#), "{text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
        let order: Vec<&str> = job.chunks.iter().map(|c| c.document_id.as_str()).collect();
        assert_eq!(order, ["d0", "d1"]);
    }

    #[test]
    fn job_ids_are_stable_and_safe_as_names() {
        assert_eq!(JobId::for_event("../../etc/passwd"), JobId::for_event("../../etc/passwd"));
        assert_ne!(JobId::for_event("a"), JobId::for_event("b"));
        assert!(JobId::for_event("x\0/y").as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(JobId::parse("not-an-id"), None);
        assert_eq!(JobId::parse(&"A".repeat(32)), None);
    }

    #[test]
    fn a_record_written_before_tracking_existed_reads_with_nothing_tracked() {
        let old = r#"{"id":"0123456789abcdef0123456789abcdef","eventId":"e1","recording":{"callId":"c","chunks":[]},
            "receivedAt":"2025-12-01T08:00:00.000000Z","expiresAt":"2025-12-02T08:00:00.000000Z","state":"done",
            "attempts":1,"chunks":[],"finishedAt":"2025-12-01T08:01:00.000000Z"}"#;
        let job: Job = serde_json::from_str(old).unwrap();
        assert_eq!((job.state, job.tracked.as_ref()), (JobState::Done, None));
        assert!(!serde_json::to_string(&job).unwrap().contains("tracked"), "written as before");
    }
}
