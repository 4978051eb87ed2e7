//! Recordings that ACS exported to the customer's own storage (bring your own storage, `SPEC.md` §6).

use super::builder::Engine;
use crate::clock::Clock as _;
use crate::journal::{ChunkState, Job, JobState, Journal};
use crate::recording::ExportedRecording;

/// What the recorder does with a recording whose event says ACS exported it to the customer's container
/// ([`Recording::exported`](crate::recording::Recording::exported)); set with
/// [`RecorderBuilder::exported_recordings`](super::RecorderBuilder::exported_recordings). A failed export names ACS
/// storage in its event and is always downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExportedRecordings {
    /// Download nothing: the job is done at once, with where the recording is in [`Job::exported`] and every
    /// chunk [`ChunkState::Exported`] (the default).
    #[default]
    Record,
    /// Download it from ACS storage as well, as any other recording (ACS keeps it for 24 hours).
    Download,
}

impl<C, K, J: Journal> Engine<C, K, J> {
    /// Finishes a job whose recording is in the customer's container without downloading it: records where it is.
    /// Answers `false` when the journal could not record it (the job stays open and is tried again).
    pub(super) async fn record_export(&self, job: &mut Job, previous: JobState, exported: ExportedRecording) -> bool {
        let shared = &self.shared;
        let now = shared.clock.now();
        job.state = JobState::Done;
        job.last_error = None;
        job.next_attempt_at = None;
        job.finished_at = Some(now);
        for chunk in &mut job.chunks {
            chunk.state = ChunkState::Exported;
        }
        tracing::info!(
            job = %job.id,
            storage_type = %exported.storage_type,
            folder = exported.folder_prefix.as_deref().unwrap_or("unknown"),
            "recording exported to the customer's storage: nothing to download"
        );
        job.exported = Some(exported);
        if let Err(error) = shared.journal.update(job).await {
            tracing::warn!(job = %job.id, %error, "cannot record the exported recording; trying again later");
            return false;
        }
        shared.states.moved(previous, JobState::Done);
        if let Some(report) = &self.settings.on_job {
            report(job);
        }
        true
    }
}
