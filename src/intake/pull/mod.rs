//! Pull delivery as a source of recording events: [`PullSource`] receives from an Event Grid namespace topic's
//! event subscription, admits each event through the recorder's intake and settles its lock token by what
//! became of it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::download::sink::DirectorySink;
//! use acs_recording::emulator::Emulator;
//! use acs_recording::eventgrid::namespace::{NamespaceClient, NamespaceKey};
//! use acs_recording::intake::pull::{PullOptions, PullSource};
//! use acs_recording::journal::{Journal, MemoryJournal};
//! use acs_recording::recorder::Recorder;
//! use bytes::Bytes;
//! use http_body_util::{Empty, Full};
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let emulator = Emulator::start().await?;
//! let namespace = emulator.namespace();
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let client = NamespaceClient::from_url(http, &emulator.namespace_subscription_url())?
//!     .with_key(NamespaceKey::new(namespace.key())?);
//! let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
//! let downloads = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let folder = tempfile::tempdir()?;
//! let recorder = Recorder::builder(&cs, downloads, DirectorySink::new(folder.path()), MemoryJournal::new()).build();
//!
//! namespace.publish(serde_json::json!({"id": "e1", "source": "/acs", "specversion": "1.0",
//!     "type": "Microsoft.Communication.RecordingFileStatusUpdated",
//!     "subject": "/recording/call/c1/serverCallId/s1/recordingId/r1",
//!     "data": {"recordingStorageInfo": {"recordingChunks": [{"documentId": "d0", "index": 0}]},
//!              "recordingStartTime": "2026-11-26T07:59:00Z"}}));
//! let source = PullSource::new(client).options(PullOptions { max_wait: Duration::from_secs(1), ..PullOptions::default() });
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(source.run(recorder.intake(), async { let _ = stopped.await; }));
//! for _ in 0..500 {
//!     if namespace.acknowledgements("e1") == 1 { break }
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//! }
//! let _ = stop.send(());
//! running.await??;
//! assert_eq!(namespace.acknowledgements("e1"), 1, "acknowledged once journaled");
//! assert_eq!(recorder.journal().list().await?[0].source.as_deref(), Some("pull:recordings/recorder"));
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. An event is acknowledged only after [`Intake::admit_from`](crate::recorder::Intake::admit_from) returned
//!    `Ok` (its jobs are durable) or, for an event of another type, at once: it holds nothing to record.
//! 2. An admission that fails (a journal that cannot write, a full journal, a shutdown) releases the event, with
//!    [`PullOptions::release_delay`] (none when shutting down, so that another replica takes it): it comes again.
//! 3. An event that can never be a recording event (not a CloudEvent, or recording data that does not fit) is
//!    journaled as rejected with its text ([`Intake::reject_message`](crate::recorder::Intake::reject_message))
//!    and then rejected, so the subscription dead-letters it instead of delivering it again.
//! 4. While an event is being admitted the locks of the batch's unsettled events are renewed every half
//!    [`PullOptions::lock_duration`], so a slow journal does not let them expire and be handed to another
//!    receiver.
//! 5. A failed receive, or a batch with a failed admission, is followed by a growing wait (from
//!    [`PullOptions::min_backoff`] to [`PullOptions::max_backoff`]), so that an outage of the journal does not
//!    spend the events' deliveries (the subscription dead-letters an event after its maximum delivery count).
//!    Only a refused key or token (401, 403) or a topic or subscription that does not exist (404) ends
//!    [`PullSource::run`] with the error. A lock that expired anyway
//!    makes the event come again, and the journal recognises it as a duplicate.

mod classify;
mod run;

use std::time::Duration;

use crate::eventgrid::namespace::{NamespaceClient, ReleaseDelay};
use crate::recorder::{Source, SourceKind};

/// How a [`PullSource`] receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOptions {
    /// The most events one receive asks for (1–100; default 10).
    pub max_events: u32,
    /// How long one receive waits for a first event (default 60 s; the service takes 10–120 s).
    pub max_wait: Duration,
    /// The subscription's lock duration (default 60 s): locks are renewed every half of it.
    pub lock_duration: Duration,
    /// How long an event released after a failed admission waits before it comes again (default 10 s).
    pub release_delay: ReleaseDelay,
    /// The first wait after a failed receive; it doubles up to `max_backoff` (default 1 s).
    pub min_backoff: Duration,
    /// The longest wait after failed receives (default 30 s).
    pub max_backoff: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            max_events: 10,
            max_wait: Duration::from_secs(60),
            lock_duration: Duration::from_secs(60),
            release_delay: ReleaseDelay::TenSeconds,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Receives recording events from one event subscription of a namespace topic until shut down
/// ([`run`](Self::run)); each job it admits records the source `pull:<topic>/<subscription>`.
#[derive(Debug, Clone)]
pub struct PullSource<S> {
    client: NamespaceClient<S>,
    options: PullOptions,
    source: Source,
}

impl<S> PullSource<S> {
    /// A source receiving through `client` with the default [`PullOptions`].
    pub fn new(client: NamespaceClient<S>) -> Self {
        let name = format!("{}/{}", client.topic(), client.subscription());
        Self { client, options: PullOptions::default(), source: Source::new(SourceKind::NamespacePull, name) }
    }

    /// Sets the options.
    #[must_use]
    pub fn options(mut self, options: PullOptions) -> Self {
        self.options = options;
        self
    }

    /// What the jobs this source admits record as their source.
    pub fn source(&self) -> &Source {
        &self.source
    }
}
