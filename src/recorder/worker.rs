//! The workers: every open job, chunk by chunk, checkpointed in the journal, retried until the recording expires.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::engine::Engine;
use super::export::ExportedRecordings;
use super::hold::Hold;
use super::manifest;
use super::metrics;
use crate::clock::Clock as _;
use crate::download::{self, sink::Sink};
use crate::journal::{ChunkState, Job, JobId, JobState, Journal, StoredMedia, Transition};
use crate::recording::{ExportedRecording, Recording};
use crate::HttpClient;

impl<C, K, J> Engine<C, K, J>
where
    C: HttpClient<Empty<Bytes>>,
    K: Sink,
    J: Journal,
{
    pub(super) async fn work(
        self: Arc<Self>,
        receiver: Arc<Mutex<mpsc::UnboundedReceiver<JobId>>>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut retries = JoinSet::new();
        loop {
            let next = async {
                let mut receiver = receiver.lock().await;
                receiver.recv().await
            };
            let id = tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => break,
                id = next => match id {
                    Some(id) => id,
                    None => break,
                },
            };
            self.shared.unmark_polled(&id);
            if !self.shared.claim(&id) {
                continue;
            }
            let retry_at = self.run_leased(&id).instrument(tracing::info_span!("job", job = %id)).await;
            self.shared.release(&id);
            if let Some(due) = retry_at {
                metrics::retry();
                self.schedule(&mut retries, id, Some(due));
            }
            while retries.try_join_next().is_some() {}
        }
        // Scheduled retries belong to this run: the journal keeps them pending for the next one.
        retries.detach_all();
    }

    /// One attempt at a job under its lease: renewed every third of its duration while the attempt runs, which
    /// stops (nothing more is written) as soon as a renewal finds the lease taken over or lapsed.
    async fn run_leased(&self, id: &JobId) -> Option<SystemTime> {
        let shared = &self.shared;
        let mut lease = match shared.journal.claim(id).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::debug!(job = %id, "another worker holds the job's lease");
                return None;
            }
            Err(error) => {
                tracing::warn!(job = %id, %error, "cannot claim the job; trying again later");
                return Some(shared.clock.now() + self.settings.job_backoff.delay(1));
            }
        };
        let hold = Hold::new(&lease, shared.clock.clone());
        let outcome = match lease.duration() {
            None => Ok(self.run_job(id, &hold).await),
            Some(duration) => hold.keep_while(&shared.journal, &mut lease, duration / 3, self.run_job(id, &hold)).await,
        };
        match outcome {
            Ok(retry_at) => {
                if let Err(error) = shared.journal.release(lease).await {
                    tracing::warn!(job = %id, %error, "cannot release the job's lease; it lapses by itself");
                }
                retry_at
            }
            Err(reason) => {
                tracing::warn!(job = %id, owner = lease.owner(), reason, "lease lost: stopping; another replica has the job");
                // The job is no longer this replica's to count as running; the next poll counts it where it is.
                shared.states.remove(JobState::Running);
                None
            }
        }
    }

    /// Writes the job's record, unless the lease on it was lost (taken over, or lapsed by the wall clock).
    async fn checkpoint(&self, job: &Job, hold: &Hold) -> io::Result<()> {
        if !hold.is_held_now() {
            return Err(io::Error::other("the lease on the job was lost"));
        }
        let written = self.shared.journal.update(job).await;
        if written.as_ref().is_err_and(crate::journal::is_superseded) {
            // Another worker wrote the record: it has the job, and this attempt writes nothing more.
            hold.lose();
        }
        written
    }

    /// One attempt at a job; answers when to try again, if at all.
    async fn run_job(&self, id: &JobId, hold: &Hold) -> Option<SystemTime> {
        let shared = &self.shared;
        let mut job = match shared.journal.get(id).await {
            Ok(Some(job)) if job.state.is_open() => job,
            Ok(found) => {
                // Counted open here, finished elsewhere (another replica, or a run before a redelivery queued it).
                match found {
                    Some(job) => shared.states.moved(JobState::Pending, job.state),
                    None => shared.states.remove(JobState::Pending),
                }
                return None;
            }
            Err(error) => {
                tracing::warn!(job = %id, %error, "cannot read the job; trying again later");
                return Some(shared.clock.now() + self.settings.job_backoff.delay(1));
            }
        };
        let recording = job.recording.clone()?;
        if self.settings.exported == ExportedRecordings::Record {
            if let Some(exported) = recording.exported() {
                return match self.record_export(&mut job, exported).await {
                    true => None,
                    false => Some(shared.clock.now() + self.settings.job_backoff.delay(job.attempts.max(1))),
                };
            }
        }
        let started = job.begin_attempt();
        if let Err(error) = self.checkpoint(&job, hold).await {
            tracing::warn!(job = %id, %error, "cannot record the attempt; trying again later");
            return Some(shared.clock.now() + self.settings.job_backoff.delay(job.attempts));
        }
        shared.states.apply(started);
        tracing::info!(event_id = %job.event_id, call_id = %recording.call_id, attempt = job.attempts, "attempt started");
        let mut chunks = recording.chunks.clone();
        chunks.sort_by(|a, b| a.index().cmp(&b.index()).then_with(|| a.document_id().cmp(b.document_id())));
        let mut failure: Option<(String, bool)> = None;
        let mut deletes_pending = false;
        for chunk in &chunks {
            let (index, document_id) = (chunk.index(), chunk.document_id());
            let Some(state) = chunk_state(&job, index, document_id) else { continue };
            if state == ChunkState::Pending {
                match self.downloader.download_chunk(&recording, chunk.clone()).await {
                    Ok(manifest) => {
                        job.chunk_stored(index, document_id, &stored_media(&manifest));
                        if manifest.outcome != download::Outcome::Skipped {
                            metrics::downloaded(manifest.bytes);
                        }
                        // A checkpoint per chunk: a crash after this never downloads the chunk again.
                        if let Err(error) = self.checkpoint(&job, hold).await {
                            failure = Some((format!("the journal cannot write: {error}"), true));
                            break;
                        }
                    }
                    Err(error) => {
                        let retryable = error.is_retryable();
                        let reason = crate::chain::one_line(&error);
                        job.chunk_failed(index, document_id, reason.clone());
                        failure = Some((reason, retryable));
                        break;
                    }
                }
            }
            let Some(state) = chunk_state(&job, index, document_id) else { continue };
            if self.settings.delete_after_download && state == ChunkState::Stored {
                match self.downloader.delete_chunk(chunk).await {
                    Ok(_) => {
                        job.chunk_deleted(index, document_id);
                    }
                    Err(error) => {
                        // A failed delete never holds back the other chunks: it is retried with the job.
                        job.chunk_failed(index, document_id, format!("delete: {}", crate::chain::one_line(&error)));
                        deletes_pending = true;
                    }
                }
                if let Err(error) = self.checkpoint(&job, hold).await {
                    failure = Some((format!("the journal cannot write: {error}"), true));
                    break;
                }
            }
        }

        if failure.is_none() && !deletes_pending {
            if let Err(error) = self.put_recording_manifest(&job, &recording).await {
                failure = Some((format!("the recording manifest cannot be written: {error}"), true));
            }
        }
        let now = shared.clock.now();
        let (outcome, retry_at) = match failure {
            None if !deletes_pending => {
                let done = job.finish(now);
                if let Ok(age) = now.duration_since(job.received_at) {
                    metrics::completed(age);
                }
                tracing::info!(job = %id, chunks = job.chunks.len(), bytes = job.bytes_stored(), "recording stored");
                (done, None)
            }
            None => self.retry_or_fail(&mut job, now, "a chunk could not be deleted from storage".to_owned(), true),
            Some((reason, retryable)) => self.retry_or_fail(&mut job, now, reason, retryable),
        };
        if let Err(error) = self.checkpoint(&job, hold).await {
            // The journal still says running: the job resumes at the latest on the next start.
            tracing::warn!(job = %id, %error, "cannot record the outcome; trying again later");
            shared.states.moved(JobState::Running, JobState::Pending);
            return Some(now + self.settings.job_backoff.delay(job.attempts));
        }
        shared.states.apply(outcome);
        if matches!(outcome.to, JobState::Done | JobState::Failed) {
            if let Some(report) = &self.settings.on_job {
                report(&job);
            }
        }
        retry_at
    }

    /// Writes the recording's manifest into the sink, once every chunk is stored (create-only or atomic per sink).
    async fn put_recording_manifest(&self, job: &Job, recording: &Recording) -> io::Result<()> {
        let Some((name, document)) = manifest::recording_manifest(job, recording, self.shared.clock.now())? else {
            return Ok(());
        };
        let location = self.downloader.sink().put_recording_manifest(&recording.call_id, &name, document).await?;
        if let Some(location) = location {
            tracing::debug!(%location, "recording manifest written");
        }
        Ok(())
    }

    fn retry_or_fail(
        &self,
        job: &mut Job,
        now: SystemTime,
        reason: String,
        retryable: bool,
    ) -> (Transition, Option<SystemTime>) {
        let deletes_only = job.chunks.iter().all(|c| c.state != ChunkState::Pending);
        let due = now.checked_add(self.settings.job_backoff.delay(job.attempts));
        match due {
            Some(due) if retryable && due < job.expires_at => {
                tracing::warn!(job = %job.id, attempt = job.attempts, reason = %reason, "attempt failed; retrying");
                (job.retry_at(due, reason), Some(due))
            }
            _ if deletes_only => {
                // Every chunk is stored: the recording is safe, only the storage clean-up did not happen.
                (job.finish_with_note(now, format!("stored; {reason} (not retried: the recording expires)")), None)
            }
            _ => {
                let reason = if retryable {
                    format!(
                        "gave up: the recording expires at {}; last failure: {reason}",
                        crate::time::format_rfc3339(job.expires_at, 0)
                    )
                } else {
                    reason
                };
                tracing::error!(job = %job.id, reason = %reason, "recording failed");
                (job.fail(now, reason), None)
            }
        }
    }

    /// Finishes a job whose recording is in the customer's container without downloading it: records where it is.
    /// Answers `false` when the journal could not record it (the job stays open and is tried again).
    async fn record_export(&self, job: &mut Job, exported: ExportedRecording) -> bool {
        let shared = &self.shared;
        tracing::info!(
            job = %job.id,
            storage_type = %exported.storage_type,
            folder = exported.folder_prefix.as_deref().unwrap_or("unknown"),
            "recording exported to the customer's storage: nothing to download"
        );
        let done = job.mark_exported(shared.clock.now(), exported);
        if let Err(error) = shared.journal.update(job).await {
            tracing::warn!(job = %job.id, %error, "cannot record the exported recording; trying again later");
            return false;
        }
        shared.states.apply(done);
        if let Some(report) = &self.settings.on_job {
            report(job);
        }
        true
    }
}

/// Where a job's chunk stands, if the job has it.
fn chunk_state(job: &Job, index: i64, document_id: &str) -> Option<ChunkState> {
    job.chunks.iter().find(|c| c.index == index && c.document_id == document_id).map(|c| c.state)
}

/// What the journal keeps of a stored chunk's manifest.
fn stored_media(manifest: &download::ChunkManifest) -> StoredMedia {
    StoredMedia {
        bytes: manifest.bytes,
        sha256: manifest.sha256,
        location: manifest.location.clone(),
        metadata_location: manifest.metadata_location.clone(),
    }
}
