//! The demo: the real mode against the embedded emulator. A call's recording is started, paused, resumed and
//! stopped through Call Automation with the library's `RecordingClient`; on stop the emulator stores its media in
//! several chunks and announces them on Event Grid to the recorder's webhook, which downloads everything with
//! storage faults on. The webhook is subscribed twice, so the event arrives twice (as at-least-once delivery
//! may) and must make one job. Every file is then read back and checked.

use std::path::Path;
use std::time::{Duration, Instant};

use acs_recording::calling::{CallLocator, RecordingClient, StartRecording};
use acs_recording::credential::Credential;
use acs_recording::emulator::eventgrid::{DeliveryKind, EventGridPublisher};
use acs_recording::emulator::{Emulator, Fault, NamespaceTopic};
use acs_recording::eventgrid::Schema;
use acs_recording::journal::{FileJournal, Job, JobId, Journal};
use acs_recording::recording::{RecordingChannelType, RecordingContentType, RecordingFormatType};
use acs_recording::signing::HmacSigningLayer;
use acs_recording::{BoxError, HttpClient, Sha256Digest};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower::Layer;

use crate::serve::{self, Settings};

/// The server call id of the demo's call.
const SERVER_CALL_ID: &str = "aHR0cHM6Ly9kZW1vLmV4YW1wbGUvY2FsbHMvZGVtby1jYWxs";

/// The demo recording and how it is delivered.
#[derive(Debug, Clone)]
pub(crate) struct Demo {
    pub(crate) chunks: u64,
    pub(crate) chunk_size: u64,
    pub(crate) schema: Schema,
    /// A dropped connection mid-chunk and 503s, to show the resume and the retries.
    pub(crate) faults: bool,
    /// How the event reaches the recorder.
    pub(crate) via: Via,
}

/// How the demo's event reaches the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Event Grid pushes it to the webhook.
    Webhook,
    /// The recorder receives it from an Event Grid namespace topic (`--pull`).
    Pull,
}

/// What the demo did.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) job: Job,
    pub(crate) elapsed: Duration,
    pub(crate) handshakes: usize,
    /// The answer to each delivery of the recording's event.
    pub(crate) deliveries: Vec<String>,
    /// Jobs in the journal after both deliveries: 1 when the redelivery was recognised.
    pub(crate) jobs: usize,
    /// Per chunk: the file read back from disk has the emulator's SHA-256.
    pub(crate) verified: Vec<bool>,
    /// Chunks the emulator stored.
    pub(crate) stored_chunks: usize,
    pub(crate) content_bytes_served: u64,
}

impl Report {
    pub(crate) fn all_verified(&self) -> bool {
        self.verified.len() == self.stored_chunks && self.stored_chunks > 0 && self.verified.iter().all(|ok| *ok)
    }
}

pub(crate) async fn run(mut settings: Settings, demo: Demo) -> Result<Report, BoxError> {
    let total = demo.chunks.max(1) * demo.chunk_size - demo.chunk_size / 3;
    let emulator = Emulator::builder().chunk_limit(demo.chunk_size).call_recording_bytes(total).start().await?;
    settings.allow_hosts.push(emulator.storage_authority());
    let secret = settings.webhook_secret.get_or_insert_with(|| "demo-secret".to_owned()).clone();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{}?code={secret}", listener.local_addr()?, settings.path);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signing = Credential::from(emulator.connection_string());
    let webhook = serve::webhook_layer(&settings)?;
    let journal_dir = settings.journal.clone();
    if demo.via == Via::Pull {
        let key = emulator.namespace().key();
        let url = emulator.namespace_subscription_url();
        settings.pull = crate::pull::PullSettings::new(Some(&url), Some(key), 60, 0, 10);
    }
    let service = tokio::spawn(async move {
        serve::run(&settings, signing, webhook, listener, async {
            let _ = stopped.await;
        })
        .await
    });

    let started = Instant::now();
    let publisher = EventGridPublisher::new(&url, demo.schema)?;
    match demo.via {
        Via::Webhook => {
            publisher.validate().await?;
            // Two subscriptions to one webhook: every event arrives twice, as Event Grid's redelivery may make it.
            emulator.subscribe(publisher.clone());
            emulator.subscribe(publisher.clone());
        }
        Via::Pull => {
            // Routed twice to the namespace topic: the recorder receives the event twice.
            emulator.publish_to_namespace();
            emulator.publish_to_namespace();
        }
    }

    let signed = HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let client = RecordingClient::new(signed, emulator.endpoint().clone());
    let id = record_a_call(&client).await?;
    if demo.faults {
        // The chunks exist from the stop on, and the recorder may ask for them as soon as the event arrives: the
        // storage answers 503 until the faults are in place (one more fault the recorder rides out).
        emulator.storage().set_outage(true);
    }
    client.stop(&id).await?;
    println!("stop      done: ACS stores the media and announces it on Event Grid");
    let job = match demo.via {
        Via::Webhook => announced_job(&journal_dir, &publisher, Duration::from_secs(60)).await?,
        Via::Pull => pulled_job(&journal_dir, emulator.namespace(), Duration::from_secs(60)).await?,
    };
    if demo.faults {
        if let Some(first) = job.chunks.first() {
            let size = emulator.storage().document(&first.document_id).map_or(0, |info| info.size);
            emulator.storage().inject(&first.document_id, [Fault::DropAfter(size / 3)]);
        }
        if let Some(second) = job.chunks.get(1) {
            emulator.storage().inject(&second.document_id, Fault::status_times(503, 2, Some(0)));
        }
        emulator.storage().set_outage(false);
    }
    println!("announced {} chunks, downloading (job {})", job.chunks.len(), job.id);
    let job = wait_for_finished(&journal_dir, &job.id, Duration::from_secs(300)).await?;
    let elapsed = started.elapsed();
    let jobs = FileJournal::open_read_only(&journal_dir)?.list().await?.len();
    let _ = stop.send(());
    service.await??;

    let mut verified = Vec::new();
    for progress in &job.chunks {
        let on_disk = match &progress.location {
            Some(location) => sha256_of_file(Path::new(location)).await?,
            None => [0; 32],
        };
        let stored = emulator.storage().document(&progress.document_id).map(|info| info.sha256);
        let recorded = progress.sha256 == Some(Sha256Digest::from(on_disk));
        verified.push(stored == Some(Sha256Digest::from(on_disk)) && recorded);
    }
    let log = publisher.log();
    let handshakes = log.iter().filter(|entry| entry.kind == DeliveryKind::Validation).count();
    let deliveries = match demo.via {
        Via::Webhook => log
            .iter()
            .filter(|entry| entry.kind == DeliveryKind::Notification)
            .map(|entry| match (entry.status, &entry.error) {
                (Some(status), _) => status.to_string(),
                (None, error) => error.clone().unwrap_or_default(),
            })
            .collect(),
        Via::Pull => emulator
            .namespace()
            .acknowledged()
            .into_iter()
            .flat_map(|(_, times)| (0..times).map(|_| "acknowledged".to_owned()))
            .collect(),
    };
    let content_bytes_served = job
        .chunks
        .iter()
        .flat_map(|chunk| emulator.storage().requests_for(&chunk.document_id))
        .filter(|request| request.method == http::Method::GET && !request.path.ends_with("acsmetadata"))
        .filter(|request| request.status == 200 || request.status == 206)
        .map(|request| request.bytes_sent)
        .sum();
    let stored_chunks = job.chunks.len();
    Ok(Report { job, elapsed, handshakes, deliveries, jobs, verified, stored_chunks, content_bytes_served })
}

/// Starts recording the demo call, pauses and resumes it, printing each step and the state the service reads
/// back; answers the recording id.
async fn record_a_call<S: HttpClient<Full<Bytes>>>(client: &RecordingClient<S>) -> Result<String, BoxError> {
    let start = StartRecording::call(CallLocator::server_call(SERVER_CALL_ID))
        .content(RecordingContentType::Audio)
        .channels(RecordingChannelType::Mixed)
        .format(RecordingFormatType::Wav);
    let status = client.start(&start).await?;
    let id = status.recording_id.ok_or("the start answered no recording id")?;
    let state = |status: acs_recording::calling::RecordingStatus| {
        status.recording_state.map_or_else(|| "unknown".to_owned(), |state| state.to_string().to_ascii_lowercase())
    };
    println!("start     recording {id} of call {SERVER_CALL_ID}: {}", state(client.state(&id).await?));
    client.pause(&id).await?;
    println!("pause     {}", state(client.state(&id).await?));
    client.resume(&id).await?;
    println!("resume    {}", state(client.state(&id).await?));
    Ok(id)
}

/// Waits until the recording's event was delivered and its job journaled; answers the job as it is then.
async fn announced_job(journal: &Path, publisher: &EventGridPublisher, limit: Duration) -> Result<Job, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        let event = publisher.log().into_iter().find(|entry| entry.kind == DeliveryKind::Notification);
        if let Some(event_id) = event.and_then(|entry| entry.event_ids.into_iter().next()) {
            // The webhook journals the job before it answers, and the log has the attempt once it is answered.
            if let Some(job) = FileJournal::open_read_only(journal)?.get(&JobId::for_event(&event_id)).await? {
                return Ok(job);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the recording was not announced within {} s", limit.as_secs()).into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until the recording's event was received from the namespace topic and acknowledged (so journaled).
async fn pulled_job(journal: &Path, namespace: &NamespaceTopic, limit: Duration) -> Result<Job, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((event_id, _)) = namespace.acknowledged().into_iter().next() {
            if let Some(job) = FileJournal::open_read_only(journal)?.get(&JobId::for_event(&event_id)).await? {
                return Ok(job);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the recording was not pulled within {} s", limit.as_secs()).into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Polls the journal (read only: the recorder holds it) until the job is done or failed.
async fn wait_for_finished(journal: &Path, id: &JobId, limit: Duration) -> Result<Job, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(reader) = FileJournal::open_read_only(journal) {
            if let Some(job) = reader.get(id).await? {
                if !job.state.is_open() {
                    return Ok(job);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the recording was not downloaded within {} s", limit.as_secs()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sha256_of_file(path: &Path) -> std::io::Result<[u8; 32]> {
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
