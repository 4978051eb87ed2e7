//! The recorder's pieces, wired together: an axum webhook (Event Grid layer, typed extractor, download queue) in
//! front of a background worker that downloads each recording with the signed client into a directory.
//!
//! `main.rs` parses the command line; the integration test `tests/recorder.rs` runs [`run_demo`] in-process.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_recording::credential::ConnectionString;
use acs_recording::download::{ChunkDownloader, DirectorySink, Progress, RecordingManifest};
use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryKind, DeliveryOutcome, EventGridPublisher, Schema,
};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::queue::{DownloadJob, DownloadJobs, DownloadQueue};
use acs_recording::recording::RecordingEvents;
use acs_recording::signing::{AllowList, HmacSigning, HmacSigningLayer};
use acs_recording::BoxError;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::{HeaderName, StatusCode};
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceBuilder;

/// The header that may carry the webhook secret, as an alternative to the `code` query parameter.
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// The HTTP client every download goes through: hyper-util's client (https, or http for named loopback hosts)
/// inside the signing layer.
pub type SignedClient = HmacSigning<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>;

/// The downloader the recorder uses.
pub type Downloader = ChunkDownloader<SignedClient, DirectorySink>;

/// What the worker reports for each job.
pub type JobResult = (DownloadJob, Result<RecordingManifest, acs_recording::download::Error>);

/// Settings shared by both modes.
#[derive(Debug, Clone)]
pub struct Settings {
    pub out: PathBuf,
    pub path: String,
    pub webhook_secret: Option<String>,
    pub allow_hosts: Vec<String>,
    pub concurrency: usize,
    pub delete_after_download: bool,
    pub queue_capacity: usize,
    pub progress: bool,
}

/// The demo recording and how it is delivered.
#[derive(Debug, Clone)]
pub struct Demo {
    pub chunks: u64,
    pub chunk_size: u64,
    pub schema: Schema,
    /// Inject storage faults (a dropped connection mid-chunk, 503s with `Retry-After`) to show the resume.
    pub faults: bool,
}

/// The signed client for `connection_string`, allowed to reach `allow`.
pub fn signed_client(connection_string: &ConnectionString, allow: AllowList) -> SignedClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        // Plain http is still refused by the signing layer unless the host was named (loopback emulators).
        .https_or_http()
        .enable_http1()
        .build();
    ServiceBuilder::new()
        .layer(HmacSigningLayer::from_connection_string(connection_string).allow_list(allow))
        .service(Client::builder(TokioExecutor::new()).build(https))
}

/// The downloader writing into `settings.out`, with progress bars on a terminal.
pub fn downloader(connection_string: &ConnectionString, allow: AllowList, settings: &Settings) -> Downloader {
    let client = signed_client(connection_string, allow.clone());
    let mut downloader = ChunkDownloader::new(client, DirectorySink::new(&settings.out))
        .endpoint(connection_string.endpoint().clone())
        .allow_list(allow)
        .concurrency(settings.concurrency)
        .delete_after_write(settings.delete_after_download);
    if settings.progress {
        let bars = ProgressBars::new();
        downloader = downloader.on_progress(move |progress| bars.update(progress));
    }
    downloader
}

/// The allow-list: Azure's storage hosts plus the hosts named on the command line.
pub fn allow_list(extra: &[String]) -> Result<AllowList, BoxError> {
    let mut allow = AllowList::azure_defaults();
    for host in extra {
        allow = allow.allow_host(host)?;
    }
    Ok(allow)
}

/// The webhook: the Event Grid layer (handshakes, secret, limits, parse once) around a handler that queues
/// recordings for download and answers 200 at once, or 503 when the queue cannot take them.
pub fn webhook(path: &str, secret: Option<&str>, queue: DownloadQueue) -> Router {
    let mut layer = EventGridWebhookLayer::new();
    if let Some(secret) = secret {
        let query = DeliverySecret::query(secret);
        let header = DeliverySecret::header(HeaderName::from_static(SECRET_HEADER), secret);
        // Both are always checked, so the time taken does not tell which one was tried.
        layer = layer.require(move |parts: &http::request::Parts| query.matches(parts) | header.matches(parts));
    }
    Router::new().route(path, post(accept_events).layer(layer)).with_state(queue)
}

async fn accept_events(State(queue): State<DownloadQueue>, events: RecordingEvents) -> Response {
    match queue.accept(&events) {
        Ok(accepted) => {
            let body = format!(r#"{{"queued":{},"duplicates":{}}}"#, accepted.queued, accepted.duplicates);
            (StatusCode::OK, [("content-type", "application/json")], body).into_response()
        }
        // Event Grid retries a 503 later; nothing is lost (SPEC §4).
        Err(unavailable) => {
            let body = format!(r#"{{"error":"unavailable","message":"{unavailable}"}}"#);
            (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/json"), ("retry-after", "10")], body)
                .into_response()
        }
    }
}

/// Downloads each job in turn until the queue's senders are gone and it is drained; reports every result.
pub async fn run_worker(mut jobs: DownloadJobs, downloader: Downloader, results: mpsc::UnboundedSender<JobResult>) {
    while let Some(job) = jobs.recv().await {
        let result = downloader.download(job.recording.clone()).await;
        if results.send((job, result)).is_err() {
            break;
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires; in-flight requests finish first.
pub async fn serve(listener: TcpListener, router: Router, shutdown: oneshot::Receiver<()>) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = shutdown.await;
        })
        .await
}

/// What the demo did, for the summary and for the tests.
#[derive(Debug)]
pub struct DemoReport {
    pub recording: StoredRecording,
    pub manifest: RecordingManifest,
    pub elapsed: Duration,
    pub handshakes: usize,
    pub deliveries: Vec<DeliveryOutcome>,
    pub jobs: usize,
    /// Per chunk: the SHA-256 of the file read back from disk matched the emulator's.
    pub verified: Vec<bool>,
    pub webhook: SocketAddr,
    pub content_bytes_served: u64,
}

impl DemoReport {
    /// Whether every chunk was downloaded once, byte for byte.
    pub fn all_verified(&self) -> bool {
        self.verified.len() == self.recording.chunks.len() && self.verified.iter().all(|ok| *ok)
    }
}

/// Runs the whole flow on the embedded emulator: the emulator validates the webhook, records a call whose media
/// spans several chunks, delivers its event (twice, as at-least-once delivery may), and the recorder downloads
/// everything; every file is then read back and checked against the emulator's SHA-256.
pub async fn run_demo(settings: Settings, demo: Demo) -> Result<DemoReport, BoxError> {
    let emulator = Emulator::builder().chunk_limit(demo.chunk_size).start().await?;
    let connection_string = emulator.connection_string();
    let total = demo.chunks.max(1) * demo.chunk_size - demo.chunk_size / 3;
    let recording = emulator.storage().record(RecordingSpec::new("demo-call", total));
    if demo.faults {
        let first = &recording.chunks[0];
        emulator.storage().inject(&first.document_id, [Fault::DropAfter(first.size / 3)]);
        if let Some(second) = recording.chunks.get(1) {
            emulator.storage().inject(&second.document_id, Fault::status_times(503, 2, Some(0)));
        }
    }

    let mut hosts = settings.allow_hosts.clone();
    hosts.push(emulator.storage_authority());
    let allow = allow_list(&hosts)?;
    let downloader = downloader(&connection_string, allow, &settings);

    let secret = settings.webhook_secret.clone().unwrap_or_else(|| format!("demo-{:016x}", rand_u64()));
    let (queue, jobs) = DownloadQueue::new(settings.queue_capacity);
    let router = webhook(&settings.path, Some(&secret), queue);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let webhook_addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(serve(listener, router, stopped));
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let worker = tokio::spawn(run_worker(jobs, downloader, results_tx));

    let started = Instant::now();
    let url = format!("http://{webhook_addr}{}?code={secret}", settings.path);
    let publisher = EventGridPublisher::new(&url, demo.schema)?;
    publisher.validate().await?;
    let event = recording_file_status_updated(&recording);
    let mut deliveries = Vec::new();
    for _ in 0..2 {
        deliveries.push(publisher.deliver(std::slice::from_ref(&event)).await);
    }

    let (_, result) = tokio::time::timeout(Duration::from_secs(300), results.recv())
        .await
        .map_err(|_| "the download did not finish within 5 minutes")?
        .ok_or("the download worker stopped")?;
    let manifest = result?;
    let elapsed = started.elapsed();

    // Shut down in order: the webhook stops, the queue closes, the worker drains and ends.
    let _ = stop.send(());
    server.await??;
    worker.await?;
    let mut jobs = 1;
    while results.try_recv().is_ok() {
        jobs += 1;
    }

    let mut verified = Vec::new();
    for (stored, chunk) in manifest.chunks.iter().zip(&recording.chunks) {
        let on_disk = sha256_of_file(Path::new(&stored.location)).await?;
        verified.push(stored.document_id == chunk.document_id && on_disk == chunk.sha256 && stored.sha256 == on_disk);
    }
    let handshakes = publisher.log().iter().filter(|entry| entry.kind == DeliveryKind::Validation).count();
    let content_bytes_served = recording
        .chunks
        .iter()
        .flat_map(|chunk| emulator.storage().requests_for(&chunk.document_id))
        .filter(|request| request.method == http::Method::GET && !request.path.ends_with("acsmetadata"))
        .filter(|request| request.status == 200 || request.status == 206)
        .map(|request| request.bytes_sent)
        .sum();
    Ok(DemoReport {
        recording,
        manifest,
        elapsed,
        handshakes,
        deliveries,
        jobs,
        verified,
        webhook: webhook_addr,
        content_bytes_served,
    })
}

/// SHA-256 of a file, read in constant memory.
pub async fn sha256_of_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

/// One progress bar per chunk, on stderr when it is a terminal.
#[derive(Clone)]
struct ProgressBars {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<(String, i64), ProgressBar>>>,
}

impl ProgressBars {
    fn new() -> Self {
        Self { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Arc::default() }
    }

    fn update(&self, progress: &Progress<'_>) {
        let mut bars = self.bars.lock().expect("progress lock");
        let bar = bars.entry((progress.call_id.to_owned(), progress.index)).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(progress.chunk_total.unwrap_or(0)));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>18} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{} #{}", progress.call_id, progress.index));
            bar
        });
        if let Some(total) = progress.chunk_total {
            bar.set_length(total);
        }
        bar.set_position(progress.chunk_bytes);
        if progress.chunk_total == Some(progress.chunk_bytes) {
            bar.finish_with_message("done");
        }
    }
}
