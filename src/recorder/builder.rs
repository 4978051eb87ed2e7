//! [`RecorderBuilder`]: the pieces composed once, into a [`Recorder`].

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::mpsc;

use super::engine::{Engine, Settings};
use super::export::ExportedRecordings;
use super::shared::{Shared, StateCounts};
use super::signed::{Connect, SignedClient};
use super::Recorder;
use crate::clock::{Clock, SharedClock};
use crate::cloud::AzureCloud;
use crate::credential::Credential;
use crate::download::{sink::Sink, Backoff, ChunkDownloader, MemoryBudget, ParallelPolicy, Progress, RetryPolicy};
use crate::eventgrid::{Deduplicator, EventGridWebhookLayer};
use crate::journal::{Job, Journal};
use crate::signing::AllowList;

/// How long ACS keeps a recording after it was made: 24 hours. Event Grid may deliver its event late, so a
/// recording's retries stop at its event's time plus this lifetime.
pub const DEFAULT_RECORDING_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How long after a tracked recording stopped its `RecordingFileStatusUpdated` event may take before the recording
/// is reported missing: 30 minutes.
pub const DEFAULT_MISSING_EVENT_WINDOW: Duration = Duration::from_secs(30 * 60);

type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Builds a [`Recorder`]; from [`Recorder::builder`].
#[must_use]
pub struct RecorderBuilder<K, J> {
    credential: Credential,
    connect: Connect,
    signing_clock: Option<SharedClock>,
    sink: K,
    journal: J,
    allow: AllowList,
    webhook: EventGridWebhookLayer,
    max_pending: usize,
    lifetime: Duration,
    missing_window: Duration,
    fetch_policy: RetryPolicy,
    parallel: Option<ParallelPolicy>,
    budget: MemoryBudget,
    progress: Option<ProgressFn>,
    seen: Deduplicator,
    clock: SharedClock,
    settings: Settings,
}

impl<K: fmt::Debug, J: fmt::Debug> fmt::Debug for RecorderBuilder<K, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecorderBuilder")
            .field("credential", &self.credential)
            .field("sink", &self.sink)
            .field("journal", &self.journal)
            .field("allow", &self.allow)
            .field("workers", &self.settings.workers)
            .finish_non_exhaustive()
    }
}

impl<K, J> RecorderBuilder<K, J> {
    pub(super) fn with_client(credential: Credential, connect: Connect, sink: K, journal: J) -> Self {
        Self {
            credential,
            connect,
            signing_clock: None,
            sink,
            journal,
            allow: AllowList::azure_defaults(),
            webhook: EventGridWebhookLayer::new(),
            max_pending: 10_000,
            lifetime: DEFAULT_RECORDING_LIFETIME,
            missing_window: DEFAULT_MISSING_EVENT_WINDOW,
            fetch_policy: RetryPolicy::default(),
            parallel: Some(ParallelPolicy::default()),
            budget: MemoryBudget::global(),
            progress: None,
            seen: Deduplicator::default(),
            clock: SharedClock::system(),
            settings: Settings {
                workers: 4,
                delete_after_download: false,
                done_retention: Duration::from_secs(48 * 60 * 60),
                job_backoff: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
                shutdown_grace: Duration::from_secs(30),
                on_job: None,
                exported: ExportedRecordings::default(),
            },
        }
    }

    /// Sets the hosts, besides the endpoint, that event locations may point at; the signing layer and the
    /// downloader both use this one list (default [`AllowList::azure_defaults`]).
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// Sets the cloud of the ACS resource: the allow-list becomes [`AllowList::for_cloud`] and the webhook layer
    /// grants only that cloud's Event Grid origin. Call it before [`allow_list`](Self::allow_list) and
    /// [`webhook_layer`](Self::webhook_layer), which replace what it set (give an `EntraDeliveryCheck` its
    /// cloud with `EntraDeliveryCheck::cloud`).
    pub fn cloud(mut self, cloud: AzureCloud) -> Self {
        self.allow = AllowList::for_cloud(cloud);
        self.webhook = self.webhook.cloud(cloud);
        self
    }

    /// Sets the Event Grid layer (delivery secret, body limit, origins); by default [`EventGridWebhookLayer::new`],
    /// which authenticates nothing.
    pub fn webhook_layer(mut self, layer: EventGridWebhookLayer) -> Self {
        self.webhook = layer;
        self
    }

    /// Sets how many recordings download at once (at least 1; default 4).
    pub fn workers(mut self, workers: usize) -> Self {
        self.settings.workers = workers.max(1);
        self
    }

    /// Sets the most open (pending or running) jobs the journal holds; past it deliveries get 503 and `/readyz`
    /// says the intake is full (default 10 000). A delivery is taken while there is room, so one batch may pass the
    /// bound. With a shared journal the count is the journal's, set again on every poll.
    pub fn max_pending(mut self, jobs: usize) -> Self {
        self.max_pending = jobs.max(1);
        self
    }

    /// Sets how long after its event a recording stays downloadable (default 24 hours): retries stop then.
    pub fn recording_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets how long after a tracked recording stopped its `RecordingFileStatusUpdated` event may take (default
    /// [`DEFAULT_MISSING_EVENT_WINDOW`]); past it the recording is reported `missing` (see
    /// [`Recorder::track_started`]). The workers look for such recordings every half window, at most every minute.
    pub fn missing_event_window(mut self, window: Duration) -> Self {
        self.missing_window = window;
        self
    }

    /// Sets how long done jobs are kept (default 48 hours): they answer redeliveries as duplicates until pruned.
    pub fn done_retention(mut self, retention: Duration) -> Self {
        self.settings.done_retention = retention;
        self
    }

    /// Sets the retry policy of each request within an attempt (resets, 5xx, short bodies).
    pub fn fetch_retry(mut self, policy: RetryPolicy) -> Self {
        self.fetch_policy = policy;
        self
    }

    /// Sets how large chunks are fetched as parallel ranges (default [`ParallelPolicy::default`]: over 32 MiB, parts
    /// of 8 MiB, 8 at once); `None` fetches every chunk as one stream.
    pub fn parallel(mut self, policy: Option<ParallelPolicy>) -> Self {
        self.parallel = policy;
        self
    }

    /// Sets the memory budget that the parallel parts of every worker draw from together (default
    /// [`MemoryBudget::global`], 64 MiB for the whole process).
    pub fn memory_budget(mut self, budget: MemoryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the wait between attempts of a job after a retryable failure: `initial`, doubling up to `max`, with
    /// jitter (default 5 s up to 5 minutes), until the recording expires.
    pub fn job_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.settings.job_backoff = Backoff::new(initial, max);
        self
    }

    /// Deletes each chunk from ACS storage once it is in the sink. A failed delete is retried like any other step
    /// and never holds back the other chunks.
    pub fn delete_after_download(mut self, delete: bool) -> Self {
        self.settings.delete_after_download = delete;
        self
    }

    /// Sets what happens to a recording that ACS exported to the customer's own container (bring your own
    /// storage): by default [`ExportedRecordings::Record`], which downloads nothing and records where it is. A
    /// failed export is downloaded from ACS whatever this says.
    pub fn exported_recordings(mut self, policy: ExportedRecordings) -> Self {
        self.settings.exported = policy;
        self
    }

    /// Sets how long [`Recorder::run`] lets running downloads go on after shutdown was asked (default 30 s);
    /// then they stop where they are and resume on the next start.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.settings.shutdown_grace = grace;
        self
    }

    /// Sets the in-memory filter in front of the journal's deduplication.
    pub fn deduplicator(mut self, seen: Deduplicator) -> Self {
        self.seen = seen;
        self
    }

    /// Uses this clock for receive times, expiry and backoff deadlines.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// Dates the signatures and reads the token expiries of the download requests with this clock (default the
    /// system's); the recorder's own clock is set with [`clock`](Self::clock).
    pub fn signing_clock(mut self, clock: impl Clock) -> Self {
        self.signing_clock = Some(SharedClock::new(clock));
        self
    }

    /// Calls `report` as bytes are stored (see [`ChunkDownloader::on_progress`]).
    pub fn on_progress(mut self, report: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(report));
        self
    }

    /// Calls `report` with each job that reaches `done` or `failed` (after its record was written).
    pub fn on_job(mut self, report: impl Fn(&Job) + Send + Sync + 'static) -> Self {
        self.settings.on_job = Some(Arc::new(report));
        self
    }

    /// Builds the recorder. Nothing runs until [`Recorder::run`] and the [`Recorder::webhook`] is served.
    pub fn build(self) -> Recorder<K, J>
    where
        K: Sink,
        J: Journal,
    {
        let client = (self.connect)(&self.credential, self.allow.clone(), self.signing_clock);
        let mut downloader: ChunkDownloader<SignedClient, K, Empty<Bytes>> = ChunkDownloader::new(client, self.sink)
            .endpoint(self.credential.endpoint().clone())
            .allow_list(self.allow)
            .retry_policy(self.fetch_policy)
            .with_clock(self.clock.clone())
            .parallel(self.parallel)
            .memory_budget(self.budget);
        if let Some(progress) = self.progress {
            downloader = downloader.on_progress(move |p| progress(p));
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            journal: self.journal,
            seen: self.seen,
            states: StateCounts::default(),
            max_pending: self.max_pending,
            queue: sender,
            accepting: AtomicBool::new(true),
            working: AtomicBool::new(false),
            lifetime: self.lifetime,
            missing_window: self.missing_window,
            clock: self.clock,
            in_flight: Mutex::default(),
            polled: Mutex::default(),
            counting: tokio::sync::RwLock::new(()),
            tracking: tokio::sync::Mutex::new(()),
        });
        Recorder {
            engine: Arc::new(Engine { shared, downloader, settings: self.settings }),
            queue: Mutex::new(Some(receiver)),
            webhook: self.webhook,
        }
    }
}
