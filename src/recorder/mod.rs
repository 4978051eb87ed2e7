//! The lossless recorder: Event Grid deliveries in, every recording in the sink, nothing lost on the way
//! (feature `recorder`).
//!
//! [`Recorder`] composes the crate's pieces once: the [`EventGridWebhookLayer`] in front of an [`Intake`] that
//! writes each delivery's jobs to a [`Journal`] before answering 200, a pool of workers that download every job's
//! chunks with the [`ChunkDownloader`](crate::download::ChunkDownloader) through a client signed for its
//! [`Credential`] (an access key, or Microsoft Entra ID with feature `entra`), and the [`Sink`]. One allow-list
//! serves both the signing layer and the downloader. [`Recorder::spawn`] runs the workers until
//! [`RecorderHandle::shutdown`].
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! use acs_recording::download::sink::DirectorySink;
//! use acs_recording::emulator::eventgrid::{recording_file_status_updated, EventGridPublisher};
//! use acs_recording::eventgrid::Schema;
//! use acs_recording::emulator::{Emulator, RecordingSpec};
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::journal::{FileJournal, JobState, Journal};
//! use acs_recording::recorder::Recorder;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await?;
//! let stored = emulator.storage().record(RecordingSpec::new("call-1", 150_000));
//! let out = tempfile::tempdir()?;
//!
//! let recorder = Recorder::builder(
//!     &emulator.connection_string(),                                        // ConnectionString::from_env()? on Azure
//!     Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>(), // an https client on Azure
//!     DirectorySink::new(out.path()),
//!     FileJournal::open(out.path().join(".journal"))?,
//! )
//! .allow_list(emulator.allow_list())
//! .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret")))
//! .build();
//!
//! // The webhook is a tower service: here on axum, as `Router::route_service`.
//! let app = axum::Router::new().route_service("/api/events", recorder.webhook());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/api/events?code=s3cret", listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let workers = recorder.spawn();
//!
//! // Event Grid validates the webhook and delivers; the 200 comes once the job is durable.
//! let publisher = EventGridPublisher::new(&url, Schema::EventGrid)?;
//! publisher.validate().await?;
//! assert!(publisher.deliver(&[recording_file_status_updated(&stored)]).await.is_delivered());
//!
//! // The job reaches `done`, with every chunk's SHA-256 in the journal.
//! let job = loop {
//!     let jobs = recorder.journal().list().await?;
//!     if jobs.first().is_some_and(|job| job.state == JobState::Done) { break jobs[0].clone() }
//!     tokio::time::sleep(std::time::Duration::from_millis(20)).await;
//! };
//! for (progress, chunk) in job.chunks.iter().zip(&stored.chunks) {
//!     assert_eq!(progress.sha256, Some(chunk.sha256));
//! }
//! workers.shutdown().await?;
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. **Nothing accepted is lost.** A delivery's recording events are journaled before the 200; a journal that
//!    cannot write, a full journal ([`RecorderBuilder::max_pending`]) or a shutdown answers 503, and Event Grid
//!    delivers again. Redeliveries are answered 200 without a second job; an open job a redelivery finds is queued
//!    again, and a job made durable is queued even when the delivery's caller went away. Another source of
//!    events (a queue consumer) admits them through [`Recorder::admit`] or an [`Intake`] with the same guarantee,
//!    and acknowledges them to its source only once that returned `Ok`.
//! 2. **Event by event.** A recording event whose data does not fit is journaled as `rejected` with its reason;
//!    the valid events of the same delivery are accepted.
//! 3. **Every open job resumes.** The workers ([`Recorder::spawn`] or [`Recorder::run`]) first queues every pending or interrupted job of the journal;
//!    chunks already stored are not downloaded again, partial ones resume from the sink.
//! 4. **Retries until the recording expires.** Each request retries per the fetch policy (its budget restarts
//!    whenever bytes arrive); a failed attempt that can succeed later (resets, timeouts, 5xx, a sink error) is
//!    tried again with backoff ([`RecorderBuilder::job_backoff`]) until the recording's expiry (event time + 24 h).
//!    A permanent failure (404/410, a refused host, a non-JSON metadata document) fails the job with a reason that
//!    names the chunk and the cause; never a secret or a query string.
//! 5. **Deletes are a step of their own** ([`RecorderBuilder::delete_after_download`]): after the chunk is in the
//!    sink; a failed delete is recorded on the chunk and retried, and never holds back the other chunks.
//! 6. **Several recordings at once** ([`RecorderBuilder::workers`], 4 by default): one slow or failing recording
//!    never blocks the others.
//! 7. **Graceful shutdown** ([`RecorderHandle::shutdown`]): the intake answers 503, running downloads get [`RecorderBuilder::shutdown_grace`]
//!    to finish, then stop where they are and resume on the next start.
//! 8. **Observable**: the [`metrics`] facade counters and gauges, `tracing` spans per job, and [`Health`] for
//!    `/healthz` and `/readyz`.
//! 9. **Many replicas on one journal** (feature `object-store`): a worker takes a job's
//!    [`Lease`](crate::journal::Lease) before working on it and skips a job another replica holds, renews the lease
//!    every third of its duration and stops, writing nothing more, once a renewal finds it taken over. Every
//!    [`Journal::poll_interval`] the workers look for open jobs that any
//!    replica accepted, so that the jobs of a replica that died are finished once its leases expire.
//! 10. **Bring your own storage**: a recording that ACS exported to the customer's container is not downloaded
//!     again by default ([`ExportedRecordings`]): its job is done with where the recording is
//!     ([`Job::exported`](crate::journal::Job::exported)); a failed export is downloaded from ACS as usual.
//! 11. **Every started recording accounted for.** A recording the application started
//!     ([`Recorder::track_started`], from the start answer with
//!     [`TrackedRecording::from_status`](crate::journal::TrackedRecording::from_status)) or that a
//!     `RecordingStateChanged` callback names ([`Recorder::callbacks`], the start request's state callback route,
//!     authenticated as the webhook is) is kept in the journal as a record of its own, `awaiting` its
//!     `RecordingFileStatusUpdated` event. The event, matched by the recording id of its subject or data, links
//!     the record to its download job (`linked`), which runs as any other. A recording that stopped (an
//!     `inactive` callback, or [`Recorder::track_stopped`]) and whose event did not come within
//!     [`RecorderBuilder::missing_event_window`] (30 minutes by default) is reported: `missing` in the journal,
//!     in the `acs_recording_jobs{state="missing"}` gauge and in a warning with the recording and call ids; a
//!     late event still links it. An `inactive` callback does not tell a pause from a stop: a recording paused
//!     longer than the window is reported too, and awaits again when it records again. Events of recordings
//!     never tracked are handled as before.

mod admission;
mod builder;
mod callbacks;
mod engine;
mod export;
mod future;
mod handle;
mod health;
mod hold;
mod intake;
mod manifest;
pub mod metrics;
mod shared;
mod signed;
#[cfg(all(test, feature = "emulator"))]
mod simulation;
mod source;
mod tracking;
mod worker;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tower_layer::Layer;

pub use admission::{Admission, AdmitError, AdmitErrorKind};
pub use builder::{RecorderBuilder, DEFAULT_MISSING_EVENT_WINDOW, DEFAULT_RECORDING_LIFETIME};
pub use callbacks::CallbackIntake;
use engine::Engine;
pub use export::ExportedRecordings;
pub use future::ResponseFuture;
pub use handle::RecorderHandle;
pub use health::Health;
pub use intake::Intake;
use signed::SignedClient;
pub use source::{Source, SourceKind, SourceOutcome};

use crate::credential::Credential;
use crate::download::sink::Sink;
use crate::eventgrid::{EventGridWebhook, EventGridWebhookLayer, Schema};
use crate::journal::{JobId, JobState, Journal, TrackedRecording};
use crate::recording::RecordingEvents;
use crate::HttpClient;

/// The recorder's webhook service: the Event Grid layer around the [`Intake`].
pub type Webhook<J> = EventGridWebhook<Intake<J>>;

/// The recorder's callback service: the Event Grid layer's authentication around the [`CallbackIntake`].
pub type Callbacks<J> = EventGridWebhook<CallbackIntake<J>>;

/// The lossless recorder: the webhook intake, the journal and a pool of download workers; see the
/// [module docs](crate::recorder).
///
/// Its type names the sink and the journal only: whatever the [`Credential`], the client is signed and boxed
/// once when the recorder is built.
pub struct Recorder<K, J> {
    engine: Arc<Engine<SignedClient, K, J>>,
    queue: Mutex<Option<mpsc::UnboundedReceiver<JobId>>>,
    webhook: EventGridWebhookLayer,
}

impl<K: fmt::Debug, J: fmt::Debug> fmt::Debug for Recorder<K, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("sink", self.engine.downloader.sink())
            .field("journal", &self.engine.shared.journal)
            .field("workers", &self.engine.settings.workers)
            .finish_non_exhaustive()
    }
}

impl Recorder<(), ()> {
    /// Starts a recorder for the ACS resource of `credential` (a [`Credential`], or a
    /// [`ConnectionString`](crate::credential::ConnectionString) for its access key), downloading through `client`
    /// (any HTTP client service, such as hyper-util's; the builder wraps it in the signing layer of the credential)
    /// into `sink`, with `journal` as its durable memory.
    pub fn builder<K, J>(
        credential: impl Into<Credential>,
        client: impl HttpClient,
        sink: K,
        journal: J,
    ) -> RecorderBuilder<K, J> {
        RecorderBuilder::with_client(credential.into(), signed::connector(client), sink, journal)
    }
}

impl<K, J: Journal> Recorder<K, J> {
    /// The webhook service for the Event Grid subscription's route: mount it in axum
    /// (`Router::route_service`), tonic or bare hyper. Clones share the recorder.
    pub fn webhook(&self) -> Webhook<J> {
        self.webhook.layer(Intake::new(self.engine.shared.clone()))
    }

    /// The service for Call Automation's callback route (the `recordingStateCallbackUri` of a start request):
    /// `RecordingStateChanged` callbacks track their recordings until their events come (see [`CallbackIntake`]).
    /// It authenticates as the [`webhook`](Self::webhook) does (the delivery secret and checks of the
    /// [`RecorderBuilder::webhook_layer`]) and reads every body as CloudEvents, as Call Automation sends them.
    pub fn callbacks(&self) -> Callbacks<J> {
        self.webhook.clone().read_as(Schema::CloudEvents).layer(CallbackIntake::new(self.engine.shared.clone()))
    }

    /// Tracks a recording the application started (from its start answer: [`TrackedRecording::from_status`])
    /// until its `RecordingFileStatusUpdated` event comes: a record `awaiting` in the journal, durable when this
    /// returns. Tracking it again adds what was not known (the call ids) and changes nothing else.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::SystemTime;
    /// use acs_recording::calling::RecordingStatus;
    /// use acs_recording::credential::ConnectionString;
    /// use acs_recording::download::sink::DirectorySink;
    /// use acs_recording::journal::{JobState, Journal, MemoryJournal, TrackedRecording};
    /// use acs_recording::recorder::Recorder;
    /// use acs_recording::recording::{RecordingKind, RecordingState};
    /// use bytes::Bytes;
    /// use http_body_util::Empty;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
    ///
    /// // What `RecordingClient::start` answered for the call `server-call-1`.
    /// let status = RecordingStatus::new("rec-1", RecordingState::Active, RecordingKind::AzureCommunicationServices);
    /// let started = TrackedRecording::from_status(&status, SystemTime::now()).unwrap().server_call("server-call-1");
    /// recorder.track_started(started).await?;
    /// let record = recorder.journal().get(&TrackedRecording::job_id("rec-1")).await?.unwrap();
    /// assert_eq!(record.state, JobState::Awaiting);
    /// assert!(recorder.track_stopped("rec-1").await?, "the window for its event starts now");
    /// # Ok::<(), acs_recording::BoxError>(())
    /// # }).unwrap();
    /// ```
    pub async fn track_started(&self, recording: TrackedRecording) -> io::Result<()> {
        tracking::track(&self.engine.shared, recording).await
    }

    /// Marks a tracked recording stopped now: once [`RecorderBuilder::missing_event_window`] passed without its
    /// event, it is reported `missing`. `Ok(false)` when the recording is not tracked.
    pub async fn track_stopped(&self, recording_id: &str) -> io::Result<bool> {
        let now = crate::clock::Clock::now(&self.engine.shared.clock);
        tracking::stopped(&self.engine.shared, recording_id, now).await
    }

    /// The intake without its HTTP service: [`Intake::admit`] journals recording events from any source.
    pub fn intake(&self) -> Intake<J> {
        Intake::new(self.engine.shared.clone())
    }

    /// Admits a batch of recording events from a source other than the webhook (a queue consumer): see
    /// [`Intake::admit`]. Acknowledge the batch to its source only once this returned `Ok`.
    pub async fn admit(&self, events: &RecordingEvents) -> Result<Admission, AdmitError> {
        self.intake().admit(events).await
    }

    /// `GET /healthz` (alive) and `GET /readyz` (journal writable, workers running) as a service.
    pub fn health(&self) -> Health<J> {
        Health::new(self.engine.shared.clone())
    }

    /// The journal.
    pub fn journal(&self) -> &J {
        &self.engine.shared.journal
    }

    /// Makes a failed job pending again (attempts start over, its expiry stays): `Ok(false)` when there is no
    /// failed job with this id.
    pub async fn retry(&self, id: &JobId) -> io::Result<bool> {
        let shared = &self.engine.shared;
        let Some(mut job) = shared.journal.get(id).await? else { return Ok(false) };
        if !job.reopen() {
            return Ok(false);
        }
        shared.journal.update(&job).await?;
        shared.states.moved(JobState::Failed, JobState::Pending);
        shared.enqueue(id);
        Ok(true)
    }

    /// Stops accepting deliveries (they get 503) without stopping the workers.
    pub fn stop_intake(&self) {
        self.engine.shared.accepting.store(false, Ordering::Release);
    }
}

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
    /// use acs_recording::download::sink::DirectorySink;
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
