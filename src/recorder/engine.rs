//! The engine: what the workers share (the recorder's shared state, the downloader, the settings) and the run
//! that drives them: resume the journal's open jobs, start the workers, look for the jobs of other replicas,
//! prune old done jobs, and stop within the grace period.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinSet;

use super::export::ExportedRecordings;
use super::shared::Shared;
use super::tracking;
use crate::clock::Clock as _;
use crate::download::{sink::Sink, Backoff, ChunkDownloader};
use crate::journal::{Job, JobId, JobState, Journal};
use crate::HttpClient;

/// The first and the longest wait before reading the journal again when it cannot be read at start.
const RESUME_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// How often done jobs past their retention are pruned while running.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

pub(crate) type JobFn = Arc<dyn Fn(&Job) + Send + Sync>;

/// How the workers behave; set through [`RecorderBuilder`](super::RecorderBuilder).
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) delete_after_download: bool,
    pub(crate) done_retention: Duration,
    pub(crate) job_backoff: Backoff,
    pub(crate) shutdown_grace: Duration,
    pub(crate) on_job: Option<JobFn>,
    pub(crate) exported: ExportedRecordings,
}

/// What the workers share. Generic over the client `C` (always the recorder's signed client), so that the worker
/// futures are proven `Send` from the client's bounds where they are spawned.
pub(crate) struct Engine<C, K, J> {
    pub(crate) shared: Arc<Shared<J>>,
    pub(crate) downloader: ChunkDownloader<C, K>,
    pub(crate) settings: Settings,
}

impl<C, K, J> Engine<C, K, J>
where
    C: HttpClient<Empty<Bytes>>,
    K: Sink,
    J: Journal,
{
    /// The workers' run: see [`Recorder::run`](super::Recorder::run).
    pub(super) async fn run(
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
        let sweeper = engine.clone();
        scheduled.spawn(async move {
            // Half the window, so that a recording is reported at most half a window late; at most a minute apart
            // so that a long window still reports soon after it ends.
            let every = (sweeper.shared.missing_window / 2).clamp(Duration::from_millis(10), Duration::from_secs(60));
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = tracking::sweep(&sweeper.shared).await {
                    tracing::warn!(%error, "looking for recordings whose event did not come failed");
                }
            }
        });
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
        matches!(job.state, JobState::Done | JobState::Linked)
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
                self.shared.states.remove(job.state);
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
    pub(super) fn schedule(self: &Arc<Self>, scheduled: &mut JoinSet<()>, id: JobId, due: Option<SystemTime>) {
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
}
