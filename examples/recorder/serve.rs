//! The real mode: the library's `Recorder` behind an axum listener, until the shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use acs_recording::cloud::AzureCloud;
use acs_recording::credential::Credential;
use acs_recording::download::{
    sink::{DirectorySink, ObjectStoreSink, Sink},
    ParallelPolicy,
};
use acs_recording::eventgrid::{DeliverySecret, EntraDeliveryCheck, EventGridWebhookLayer};
use acs_recording::intake::dead_letter::DeadLetterSource;
use acs_recording::journal::{FileJournal, JobState, Journal, ObjectStoreJournal};
use acs_recording::recorder::{ExportedRecordings, Recorder, RecorderBuilder};
use acs_recording::signing::AllowList;
use acs_recording::store::StoreLocation;
use acs_recording::BoxError;
use bytes::Bytes;
use http::HeaderName;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::progress::ProgressBars;
use crate::pull::Puller;

/// The header that may carry the webhook secret, as an alternative to the `code` query parameter.
pub(crate) const SECRET_HEADER: &str = "x-webhook-secret";

/// What the command line configures.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) out: PathBuf,
    pub(crate) journal: PathBuf,
    pub(crate) path: String,
    pub(crate) webhook_secret: Option<String>,
    /// `--webhook-entra-tenant` and its audiences.
    pub(crate) webhook_entra: Option<(String, Vec<String>)>,
    /// `--cloud`: the storage hosts, Event Grid origin and Entra authority of one cloud.
    pub(crate) cloud: Option<AzureCloud>,
    pub(crate) allow_hosts: Vec<String>,
    pub(crate) workers: usize,
    pub(crate) max_pending: usize,
    pub(crate) max_connections: usize,
    pub(crate) delete_after_download: bool,
    pub(crate) download_exported: bool,
    pub(crate) progress: bool,
    pub(crate) metrics: Option<SocketAddr>,
    pub(crate) parallel: Option<ParallelPolicy>,
    /// Bytes the parallel ranges of all workers may hold together.
    pub(crate) memory_budget: u64,
    /// `--store`: recordings and the journal in object storage instead of `out`.
    pub(crate) store: Option<String>,
    /// `--lease-seconds`: how long a claim on a job lasts without renewal.
    pub(crate) lease: Duration,
    /// `--unauthenticated-webhook`: serve the webhook without a delivery check on purpose.
    pub(crate) unauthenticated_webhook: bool,
    /// `--queue` and its options.
    pub(crate) queues: crate::queue::QueueSettings,
    /// `--dead-letters` and `--dead-letters-interval`: a dead-letter container to watch.
    pub(crate) dead_letters: Option<(String, Duration)>,
    /// `--pull`: an Event Grid namespace subscription to receive from.
    pub(crate) pull: Option<crate::pull::PullSettings>,
}

impl Settings {
    /// Whether any source other than the webhook is given (queues, pull subscriptions, dead-letter watches).
    pub(crate) fn pull_sources(&self) -> bool {
        !self.queues.urls.is_empty() || self.dead_letters.is_some() || self.pull.is_some()
    }

    /// Whether the webhook (and callback) routes are served: always without pull sources; with them, only when a
    /// delivery check (or `--unauthenticated-webhook`) says the webhook is wanted, so that a recorder reading a
    /// queue opens no door it does not use.
    pub(crate) fn webhook_route(&self) -> bool {
        !self.pull_sources()
            || self.webhook_secret.is_some()
            || self.webhook_entra.is_some()
            || self.unauthenticated_webhook
    }

    /// The pull sources, for the start-up line.
    pub(crate) fn describe_pull_sources(&self) -> String {
        let queues: Vec<String> = self
            .queues
            .urls
            .iter()
            .filter_map(|url| acs_recording::intake::queue::QueueUrl::parse(url).ok())
            .map(|url| format!("; reading queue {url}"))
            .collect();
        let dead_letters = self.dead_letters.iter().map(|(url, _)| format!("; watching dead letters in {url}"));
        queues.into_iter().chain(dead_letters).collect()
    }

    /// Where recordings and the journal go, for the start-up line.
    pub(crate) fn storage(&self) -> String {
        match &self.store {
            Some(url) => format!("recordings and journal in {url}"),
            None => format!("journal in {}", self.journal.display()),
        }
    }
}

/// How the download requests authenticate, for the start-up line.
pub(crate) fn describe(credential: &Credential) -> &'static str {
    match credential {
        Credential::Entra { .. } => "Entra ID",
        _ => "access key",
    }
}

/// https for Azure; plain http only reaches hosts named with --allow-host (the signing layers refuse others).
pub(crate) fn https_client() -> Client<HttpsConnector<HttpConnector>, Empty<Bytes>> {
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// Serves the webhook on `listener` and downloads every accepted recording until `shutdown` completes.
pub(crate) async fn run(
    settings: &Settings,
    credential: Credential,
    webhook: EventGridWebhookLayer,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let allow = allow_list(settings.cloud, &settings.allow_hosts)?;
    let pull = settings.pull.as_ref().map(|pull| Puller::prepare(pull, &credential)).transpose()?;
    let storage = Storage { settings, credential, allow, webhook, listener, pull };
    match &settings.store {
        None => {
            let journal = FileJournal::open(&settings.journal)?;
            storage.start(DirectorySink::new(&settings.out), journal, shutdown).await
        }
        Some(url) => {
            // Every replica given the same URL shares the recordings, the jobs and the leases on them.
            let location = StoreLocation::parse(url)?;
            let journal = ObjectStoreJournal::open(location.clone()).await?.lease_duration(settings.lease);
            storage.start(ObjectStoreSink::new(location), journal, shutdown).await
        }
    }
}

/// The hosts signed requests may go to besides the endpoint: the storage hosts of `cloud` (without one, of every
/// cloud the official SDKs know) and `hosts` (`--allow-host`).
pub(crate) fn allow_list(cloud: Option<AzureCloud>, hosts: &[String]) -> Result<AllowList, BoxError> {
    let mut allow = cloud.map_or_else(AllowList::azure_defaults, AllowList::for_cloud);
    for host in hosts {
        allow = allow.allow_host(host)?;
    }
    Ok(allow)
}

/// Everything but the sink and the journal.
struct Storage<'a> {
    settings: &'a Settings,
    credential: Credential,
    allow: AllowList,
    webhook: EventGridWebhookLayer,
    listener: TcpListener,
    pull: Option<Puller>,
}

impl Storage<'_> {
    async fn start<K: Sink, J: Journal>(
        self,
        sink: K,
        journal: J,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), BoxError> {
        let Self { settings, credential, allow, webhook, listener, pull } = self;
        let builder = Recorder::builder(credential, https_client(), sink, journal);
        serve(configure(builder, settings, allow, webhook).build(), settings, listener, pull, shutdown).await
    }
}

/// What the command line sets on the recorder, whichever way it stores.
pub(crate) fn configure<K, J>(
    builder: RecorderBuilder<K, J>,
    settings: &Settings,
    allow: AllowList,
    webhook: EventGridWebhookLayer,
) -> RecorderBuilder<K, J> {
    let mut builder = builder
        .allow_list(allow)
        .webhook_layer(webhook)
        .workers(settings.workers)
        .max_pending(settings.max_pending)
        .delete_after_download(settings.delete_after_download)
        .exported_recordings(match settings.download_exported {
            true => ExportedRecordings::Download,
            false => ExportedRecordings::Record,
        })
        .parallel(settings.parallel)
        .memory_budget(acs_recording::download::MemoryBudget::new(settings.memory_budget))
        .on_job(|job| match (&job.exported, job.state) {
            (Some(exported), _) => println!(
                "recording of call {} (event {}): exported by ACS to your storage ({}), not downloaded: {}",
                exported.call_id,
                job.event_id,
                exported.storage_type,
                exported.folder_prefix.as_deref().unwrap_or("folder not known from the event")
            ),
            (None, JobState::Done) => println!(
                "recording of call {} (event {}): {} chunks, {} bytes",
                job.recording.as_ref().map_or("?", |r| r.call_id.as_str()),
                job.event_id,
                job.chunks.len(),
                job.bytes_stored()
            ),
            (None, _) => eprintln!(
                "recording of call {} (event {}) failed: {}",
                job.recording.as_ref().map_or("?", |r| r.call_id.as_str()),
                job.event_id,
                job.last_error.as_deref().unwrap_or("unknown")
            ),
        });
    if settings.progress {
        let bars = ProgressBars::new();
        builder = builder.on_progress(move |progress| bars.update(progress));
    }
    builder
}

/// Serves the recorder's webhook and probes until `shutdown`, running its workers.
async fn serve<K: Sink, J: Journal>(
    recorder: Recorder<K, J>,
    settings: &Settings,
    listener: TcpListener,
    pull: Option<Puller>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let mut app = axum::Router::new();
    if settings.webhook_route() {
        app = app
            .route_service(&settings.path, recorder.webhook())
            // Call Automation's recording callbacks (give this URL as the start request's
            // `recordingStateCallbackUri`): each started recording is tracked until its event comes, and reported
            // when it does not.
            .route_service("/api/callbacks", recorder.callbacks());
    }
    let app = app.route_service("/healthz", recorder.health()).route_service("/readyz", recorder.health());
    // The pull sources stop when `shutdown` completes, before the recorder finishes its downloads.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut pulls = Vec::new();
    for source in settings.queues.sources()? {
        pulls.push(tokio::spawn(source.run(recorder.intake(), until_stopped())));
    }
    let mut watchers = Vec::new();
    if let Some((url, every)) = &settings.dead_letters {
        let source = DeadLetterSource::open(url)?.interval(*every);
        watchers.push(tokio::spawn(source.run(recorder.intake(), until_stopped())));
    }
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let max_connections = settings.max_connections;
    let server = tokio::spawn(async move {
        crate::listen::serve(listener, app, max_connections, async {
            let _ = server_stopped.await;
        })
        .await
    });
    let (shutdown, pulling) = match pull {
        Some(pull) => {
            println!("receiving from {}", pull.describe());
            let (shutdown, task) = pull.start(recorder.intake(), shutdown);
            (futures_util::future::Either::Left(shutdown), Some(task))
        }
        None => (futures_util::future::Either::Right(shutdown), None),
    };
    // Returns once shutdown was asked and the running downloads finished (or their grace period ended).
    recorder.run(shutdown).await?;
    for pull in pulls {
        pull.await??;
    }
    for watcher in watchers {
        watcher.await??;
    }
    let _ = stop_server.send(());
    server.await??;
    if let Some(pulling) = pulling {
        pulling.await??;
    }
    Ok(())
}

/// The Event Grid layer: the secret in the `code` query parameter or the `x-webhook-secret` header, and the
/// Entra token of `--webhook-entra-tenant` (its keys fetched over https).
pub(crate) fn webhook_layer(settings: &Settings) -> Result<EventGridWebhookLayer, BoxError> {
    let mut layer = EventGridWebhookLayer::new().body_timeout(crate::listen::BODY_TIMEOUT);
    if let Some(cloud) = settings.cloud {
        layer = layer.cloud(cloud);
    }
    if let Some(secret) = settings.webhook_secret.as_deref() {
        let query = DeliverySecret::query(secret);
        let header = DeliverySecret::header(HeaderName::from_static(SECRET_HEADER), secret);
        // Both are always checked, so the time taken does not tell which one was tried.
        layer = layer.require(move |parts: &http::request::Parts| query.matches(parts) | header.matches(parts));
    }
    if let Some((tenant, audiences)) = &settings.webhook_entra {
        let check = EntraDeliveryCheck::new(tenant, audiences.clone(), https_client())?;
        layer = layer.require_async(match settings.cloud {
            Some(cloud) => check.cloud(cloud),
            None => check,
        });
    }
    Ok(layer)
}
