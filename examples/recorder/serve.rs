//! The real mode: the library's `Recorder` behind an axum listener, until the shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use acs_recording::credential::ConnectionString;
use acs_recording::download::{DirectorySink, ParallelPolicy};
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::journal::{FileJournal, JobState};
use acs_recording::recorder::Recorder;
use acs_recording::signing::AllowList;
use acs_recording::BoxError;
use bytes::Bytes;
use http::HeaderName;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::progress::ProgressBars;

/// The header that may carry the webhook secret, as an alternative to the `code` query parameter.
pub(crate) const SECRET_HEADER: &str = "x-webhook-secret";

/// What the command line configures.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) out: PathBuf,
    pub(crate) journal: PathBuf,
    pub(crate) path: String,
    pub(crate) webhook_secret: Option<String>,
    pub(crate) allow_hosts: Vec<String>,
    pub(crate) workers: usize,
    pub(crate) max_pending: usize,
    pub(crate) delete_after_download: bool,
    pub(crate) progress: bool,
    pub(crate) metrics: Option<SocketAddr>,
    pub(crate) parallel: Option<ParallelPolicy>,
}

/// Serves the webhook on `listener` and downloads every accepted recording until `shutdown` completes.
pub(crate) async fn run(
    settings: &Settings,
    connection_string: &ConnectionString,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let mut allow = AllowList::azure_defaults();
    for host in &settings.allow_hosts {
        allow = allow.allow_host(host)?;
    }
    // https for Azure; plain http only reaches hosts named with --allow-host (the signing layer refuses others).
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https);
    let journal = FileJournal::open(&settings.journal)?;
    let mut builder = Recorder::builder(connection_string, client, DirectorySink::new(&settings.out), journal)
        .allow_list(allow)
        .webhook_layer(webhook_layer(settings.webhook_secret.as_deref()))
        .workers(settings.workers)
        .max_pending(settings.max_pending)
        .delete_after_download(settings.delete_after_download)
        .parallel(settings.parallel)
        .on_job(|job| match job.state {
            JobState::Done => println!(
                "recording of call {} (event {}): {} chunks, {} bytes",
                job.recording.as_ref().map_or("?", |r| r.call_id.as_str()),
                job.event_id,
                job.chunks.len(),
                job.bytes_stored()
            ),
            _ => eprintln!(
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
    let recorder = builder.build();

    let app = axum::Router::new()
        .route_service(&settings.path, recorder.webhook())
        .route_service("/healthz", recorder.health())
        .route_service("/readyz", recorder.health());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });
    // Returns once shutdown was asked and the running downloads finished (or their grace period ended).
    recorder.run(shutdown).await?;
    let _ = stop_server.send(());
    server.await??;
    Ok(())
}

/// The Event Grid layer: the secret in the `code` query parameter or the `x-webhook-secret` header.
fn webhook_layer(secret: Option<&str>) -> EventGridWebhookLayer {
    let layer = EventGridWebhookLayer::new();
    let Some(secret) = secret else { return layer };
    let query = DeliverySecret::query(secret);
    let header = DeliverySecret::header(HeaderName::from_static(SECRET_HEADER), secret);
    // Both are always checked, so the time taken does not tell which one was tried.
    layer.require(move |parts: &http::request::Parts| query.matches(parts) | header.matches(parts))
}
