//! The demo: the real mode against the embedded emulator, which validates the webhook, records a call whose media
//! spans several chunks, delivers its event twice (as at-least-once delivery may) with storage faults on, and
//! lets the recorder download everything; every file is then read back and checked.

use std::path::Path;
use std::time::{Duration, Instant};

use acs_recording::credential::Credential;
use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryKind, DeliveryOutcome, EventGridPublisher,
};

use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
use acs_recording::eventgrid::Schema;
use acs_recording::journal::{FileJournal, Job, JobId, Journal};
use acs_recording::{BoxError, Sha256Digest};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::serve::{self, Settings};

/// The demo recording and how it is delivered.
#[derive(Debug, Clone)]
pub(crate) struct Demo {
    pub(crate) chunks: u64,
    pub(crate) chunk_size: u64,
    pub(crate) schema: Schema,
    /// A dropped connection mid-chunk and 503s, to show the resume and the retries.
    pub(crate) faults: bool,
}

/// What the demo did.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) recording: StoredRecording,
    pub(crate) job: Job,
    pub(crate) elapsed: Duration,
    pub(crate) handshakes: usize,
    pub(crate) deliveries: Vec<DeliveryOutcome>,
    /// Jobs in the journal after both deliveries: 1 when the redelivery was recognised.
    pub(crate) jobs: usize,
    /// Per chunk: the file read back from disk has the emulator's SHA-256.
    pub(crate) verified: Vec<bool>,
    pub(crate) content_bytes_served: u64,
}

impl Report {
    pub(crate) fn all_verified(&self) -> bool {
        self.verified.len() == self.recording.chunks.len() && self.verified.iter().all(|ok| *ok)
    }
}

pub(crate) async fn run(mut settings: Settings, demo: Demo) -> Result<Report, BoxError> {
    let emulator = Emulator::builder().chunk_limit(demo.chunk_size).start().await?;
    let total = demo.chunks.max(1) * demo.chunk_size - demo.chunk_size / 3;
    let recording = emulator.storage().record(RecordingSpec::new("demo-call", total));
    if demo.faults {
        let first = &recording.chunks[0];
        emulator.storage().inject(&first.document_id, [Fault::DropAfter(first.size / 3)]);
        if let Some(second) = recording.chunks.get(1) {
            emulator.storage().inject(&second.document_id, Fault::status_times(503, 2, Some(0)));
        }
    }
    settings.allow_hosts.push(emulator.storage_authority());
    let secret = settings.webhook_secret.get_or_insert_with(|| "demo-secret".to_owned()).clone();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{}?code={secret}", listener.local_addr()?, settings.path);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signing = Credential::from(emulator.connection_string());
    let webhook = serve::webhook_layer(&settings)?;
    let journal_dir = settings.journal.clone();
    let service = tokio::spawn(async move {
        serve::run(&settings, signing, webhook, listener, async {
            let _ = stopped.await;
        })
        .await
    });

    let started = Instant::now();
    let publisher = EventGridPublisher::new(&url, demo.schema)?;
    publisher.validate().await?;
    let event = recording_file_status_updated(&recording);
    let mut deliveries = Vec::new();
    for _ in 0..2 {
        deliveries.push(publisher.deliver(std::slice::from_ref(&event)).await);
    }
    let job = wait_for_finished(&journal_dir, &JobId::for_event(&event.id), Duration::from_secs(300)).await?;
    let elapsed = started.elapsed();
    let jobs = FileJournal::open_read_only(&journal_dir)?.list().await?.len();
    let _ = stop.send(());
    service.await??;

    let mut verified = Vec::new();
    for (progress, chunk) in job.chunks.iter().zip(&recording.chunks) {
        let on_disk = match &progress.location {
            Some(location) => sha256_of_file(Path::new(location)).await?,
            None => [0; 32],
        };
        let recorded = progress.sha256 == Some(Sha256Digest::from(on_disk));
        verified.push(progress.document_id == chunk.document_id && on_disk == chunk.sha256 && recorded);
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
    Ok(Report { recording, job, elapsed, handshakes, deliveries, jobs, verified, content_bytes_served })
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
