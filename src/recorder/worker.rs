//! The workers: every open job, chunk by chunk, checkpointed in the journal, retried until the recording expires.

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::builder::{Engine, Recorder};
use super::export::ExportedRecordings;
use super::handle::RecorderHandle;
use super::hold::Hold;
use super::manifest;
use super::metrics;
use crate::clock::Clock as _;
use crate::download::{self, hex, HttpClient, Sink};
use crate::journal::{ChunkState, Job, JobId, JobState, Journal};
use crate::recording::Recording;

/// The first and the longest wait before reading the journal again when it cannot be read at start.
const RESUME_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// How often done jobs past their retention are pruned while running.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

impl<K: Sink, J: Journal> Recorder<K, J> {
    /// Runs the workers until `shutdown` completes: first every job the journal holds open (a previous run's
    /// pending or interrupted jobs), then each job the webhook accepts.
    ///
    /// On shutdown the intake answers 503 from then on, running downloads get the grace period to finish (then
    /// stop where they are: they resume from the journal and the sink's partial files on the next start), and
    /// `run` returns. A journal that cannot be read at start is read again with backoff (100 ms doubling to 30 s)
    /// until it can or the shutdown comes; `/readyz` answers 503 meanwhile. It fails when the recorder already ran.
    /// Share the recorder (an `Arc`) to [`retry`](Recorder::retry) jobs while it runs.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        let receiver = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| io::Error::other("the recorder is already running"))?;
        self.engine.clone().run(receiver, shutdown).await
    }

    /// Runs the workers in a tokio task, as [`run`](Recorder::run) does, until
    /// [`RecorderHandle::shutdown`]. Must be called within a tokio runtime.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use acs_recording::credential::ConnectionString;
    /// use acs_recording::download::DirectorySink;
    /// use acs_recording::journal::MemoryJournal;
    /// use acs_recording::recorder::Recorder;
    /// use bytes::Bytes;
    /// use http_body_util::Empty;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
    /// let workers = recorder.spawn();
    /// // ... serve recorder.webhook() until the process is asked to stop ...
    /// workers.shutdown().await?;
    /// # Ok::<(), acs_recording::BoxError>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn(&self) -> RecorderHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let receiver = self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let engine = self.engine.clone();
        let task = tokio::spawn(async move {
            let receiver = receiver.ok_or_else(|| io::Error::other("the recorder is already running"))?;
            engine
                .run(receiver, async {
                    // A dropped handle stops the workers too.
                    let _ = stopped.await;
                })
                .await
        });
        RecorderHandle::new(stop, task)
    }
}

impl<C, K, J> Engine<C, K, J>
where
    C: HttpClient<Empty<Bytes>>,
    K: Sink,
    J: Journal,
{
    /// The workers' run: see [`Recorder::run`].
    async fn run(
        self: Arc<Self>,
        receiver: mpsc::UnboundedReceiver<JobId>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let engine = self;
        let shared = &engine.shared;
        let mut scheduled = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut wait = RESUME_BACKOFF.0;
        // A journal briefly out at start (a store's outage) must not leave the accepted jobs without workers.
        while let Err(error) = engine.resume(&mut scheduled).await {
            tracing::warn!(%error, retry_ms = wait.as_millis() as u64, "cannot read the journal to resume its open jobs; trying again");
            tokio::select! {
                () = &mut shutdown => {
                    shared.accepting.store(false, Ordering::Release);
                    scheduled.abort_all();
                    return Ok(());
                }
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RESUME_BACKOFF.1);
        }
        shared.working.store(true, Ordering::Release);
        tracing::info!(workers = engine.settings.workers, open = shared.states.open(), "recorder running");

        let receiver = Arc::new(Mutex::new(receiver));
        let (stop, stopped) = watch::channel(false);
        let mut workers = JoinSet::new();
        for _ in 0..engine.settings.workers {
            workers.spawn(engine.clone().work(receiver.clone(), stopped.clone()));
        }
        if let Some(every) = shared.journal.poll_interval() {
            // Other replicas share the journal: the jobs they accepted (and may have died on) are found here.
            let poller = engine.clone();
            scheduled.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(error) = poller.poll_open().await {
                        tracing::warn!(%error, "looking for open jobs in the shared journal failed");
                    }
                }
            });
        }
        let maintenance = engine.clone();
        scheduled.spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                if let Err(error) = maintenance.prune().await {
                    tracing::warn!(%error, "pruning done jobs failed");
                }
            }
        });

        shutdown.await;
        shared.accepting.store(false, Ordering::Release);
        let _ = stop.send(true);
        tracing::info!(grace_ms = engine.settings.shutdown_grace.as_millis() as u64, "shutting down");
        let drained = tokio::time::timeout(engine.settings.shutdown_grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "downloads still running at the end of the grace period stop here and resume on the next start"
            );
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
        scheduled.abort_all();
        shared.working.store(false, Ordering::Release);
        Ok(())
    }

    /// Counts the journal's jobs, prunes old done ones and queues every open job (at its due time).
    async fn resume(self: &Arc<Self>, scheduled: &mut JoinSet<()>) -> io::Result<()> {
        let shared = &self.shared;
        let _counting = shared.counting.write().await;
        shared.states.reset();
        let jobs = shared.journal.list().await?;
        let now = shared.clock.now();
        for job in jobs {
            if self.expired_done(&job, now) {
                shared.journal.remove(&job.id).await?;
                continue;
            }
            shared.states.add(job.state);
            shared.seen.first_delivery(&job.event_id);
            if job.state.is_open() {
                self.schedule(scheduled, job.id.clone(), job.next_attempt_at);
            }
        }
        Ok(())
    }

    fn expired_done(&self, job: &Job, now: SystemTime) -> bool {
        job.state == JobState::Done
            && job
                .finished_at
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age >= self.settings.done_retention)
    }

    async fn prune(&self) -> io::Result<()> {
        let now = self.shared.clock.now();
        for job in self.shared.journal.list().await? {
            if self.expired_done(&job, now) {
                self.shared.journal.remove(&job.id).await?;
                self.shared.states.remove(JobState::Done);
            }
        }
        Ok(())
    }

    /// Queues every open job that is due and not already queued or running here, whoever accepted it, and sets
    /// the open counts behind `max_pending` to the shared journal's: jobs another replica finished, or took over
    /// from this one, leave the count here.
    async fn poll_open(&self) -> io::Result<()> {
        let now = self.shared.clock.now();
        let open = self.shared.journal.list_open().await?;
        let running = open.iter().filter(|job| job.state == JobState::Running).count();
        self.shared.states.set_open(open.len() - running, running);
        for job in open {
            let due = job.next_attempt_at.is_none_or(|at| at <= now);
            if job.state.is_open() && due && self.shared.mark_polled(&job.id) {
                let _ = self.shared.queue.send(job.id);
            }
        }
        Ok(())
    }

    /// Queues a job now, or at `due`.
    fn schedule(self: &Arc<Self>, scheduled: &mut JoinSet<()>, id: JobId, due: Option<SystemTime>) {
        let wait = due.and_then(|due| due.duration_since(self.shared.clock.now()).ok());
        match wait {
            None => {
                let _ = self.shared.queue.send(id);
            }
            Some(wait) => {
                let queue = self.shared.queue.clone();
                scheduled.spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = queue.send(id);
                });
            }
        }
    }

    async fn work(
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
                return Some(shared.clock.now() + self.settings.job_backoff.delay(1, None));
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
                return Some(shared.clock.now() + self.settings.job_backoff.delay(1, None));
            }
        };
        let recording = job.recording.clone()?;
        let previous = job.state;
        if self.settings.exported == ExportedRecordings::Record {
            if let Some(exported) = recording.exported() {
                return match self.record_export(&mut job, previous, exported).await {
                    true => None,
                    false => Some(shared.clock.now() + self.settings.job_backoff.delay(job.attempts.max(1), None)),
                };
            }
        }
        job.state = JobState::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.next_attempt_at = None;
        if let Err(error) = self.checkpoint(&job, hold).await {
            tracing::warn!(job = %id, %error, "cannot record the attempt; trying again later");
            return Some(shared.clock.now() + self.settings.job_backoff.delay(job.attempts, None));
        }
        shared.states.moved(previous, JobState::Running);
        tracing::info!(event_id = %job.event_id, call_id = %recording.call_id, attempt = job.attempts, "attempt started");
        let mut chunks = recording.chunks.clone();
        chunks.sort_by(|a, b| a.index().cmp(&b.index()).then_with(|| a.document_id().cmp(b.document_id())));
        let mut failure: Option<(String, bool)> = None;
        let mut deletes_pending = false;
        for chunk in &chunks {
            let Some(progress) = job.chunk_mut(chunk.index(), chunk.document_id()) else { continue };
            if progress.state == ChunkState::Pending {
                match self.downloader.download_chunk(&recording, chunk.clone()).await {
                    Ok(manifest) => {
                        progress.state = ChunkState::Stored;
                        progress.bytes = Some(manifest.bytes);
                        progress.sha256 = Some(hex(&manifest.sha256));
                        progress.location = Some(manifest.location.clone());
                        progress.metadata_location = manifest.metadata_location.clone();
                        progress.last_error = None;
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
                        let reason = describe(&error);
                        progress.last_error = Some(reason.clone());
                        failure = Some((reason, retryable));
                        break;
                    }
                }
            }
            let Some(progress) = job.chunk_mut(chunk.index(), chunk.document_id()) else { continue };
            if self.settings.delete_after_download && progress.state == ChunkState::Stored {
                match self.downloader.delete_chunk(chunk).await {
                    Ok(_) => {
                        progress.state = ChunkState::Deleted;
                        progress.last_error = None;
                    }
                    Err(error) => {
                        // A failed delete never holds back the other chunks: it is retried with the job.
                        progress.last_error = Some(format!("delete: {}", describe(&error)));
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
        let (next, retry_at) = match failure {
            None if !deletes_pending => {
                job.state = JobState::Done;
                job.last_error = None;
                job.finished_at = Some(now);
                if let Ok(age) = now.duration_since(job.received_at) {
                    metrics::completed(age);
                }
                tracing::info!(job = %id, chunks = job.chunks.len(), bytes = job.bytes_stored(), "recording stored");
                (JobState::Done, None)
            }
            None => self.retry_or_fail(&mut job, now, "a chunk could not be deleted from storage".to_owned(), true),
            Some((reason, retryable)) => self.retry_or_fail(&mut job, now, reason, retryable),
        };
        if let Err(error) = self.checkpoint(&job, hold).await {
            // The journal still says running: the job resumes at the latest on the next start.
            tracing::warn!(job = %id, %error, "cannot record the outcome; trying again later");
            shared.states.moved(JobState::Running, JobState::Pending);
            return Some(now + self.settings.job_backoff.delay(job.attempts, None));
        }
        shared.states.moved(JobState::Running, next);
        if matches!(next, JobState::Done | JobState::Failed) {
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
    ) -> (JobState, Option<SystemTime>) {
        let deletes_only = job.chunks.iter().all(|c| c.state != ChunkState::Pending);
        let due = now.checked_add(self.settings.job_backoff.delay(job.attempts, None));
        match due {
            Some(due) if retryable && due < job.expires_at => {
                tracing::warn!(job = %job.id, attempt = job.attempts, reason = %reason, "attempt failed; retrying");
                job.state = JobState::Pending;
                job.last_error = Some(reason);
                job.next_attempt_at = Some(due);
                (JobState::Pending, Some(due))
            }
            _ if deletes_only => {
                // Every chunk is stored: the recording is safe, only the storage clean-up did not happen.
                job.state = JobState::Done;
                job.last_error = Some(format!("stored; {reason} (not retried: the recording expires)"));
                job.finished_at = Some(now);
                (JobState::Done, None)
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
                job.state = JobState::Failed;
                job.last_error = Some(reason);
                job.finished_at = Some(now);
                (JobState::Failed, None)
            }
        }
    }
}

/// An error and its causes on one line, for the journal (download errors never carry secrets or query strings, and
/// no message along the chain repeats its source).
fn describe(error: &download::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
