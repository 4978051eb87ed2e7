//! The recorder: receives ACS recording events through Event Grid and downloads every recording.
//!
//! With no connection string it runs the whole flow on the embedded emulator and exits: the emulator validates
//! the webhook, records a demo call whose media spans several chunks, delivers the event (twice, as Event Grid's
//! at-least-once delivery may), and the recorder downloads everything into `./recordings` and checks every
//! SHA-256.
//!
//! With `--connection-string` (or `ACS_CONNECTION_STRING`) it serves the webhook for a real Event Grid
//! subscription until Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run --example recorder
//! cargo run --example recorder -- --help
//! ```

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use acs_recording::credential::ConnectionString;
use acs_recording::emulator::eventgrid::Schema;
use acs_recording::queue::DownloadQueue;
use acs_recording::BoxError;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Receive Azure Communication Services recording events and download every recording.
///
/// Without a connection string, runs a complete demo against the embedded ACS and Event Grid emulator and exits.
/// With one, serves the Event Grid webhook for `Microsoft.Communication.RecordingFileStatusUpdated` events until
/// Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// ACS connection string (`endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`); runs
    /// the real service instead of the demo.
    #[arg(long, env = "ACS_CONNECTION_STRING", hide_env_values = true)]
    connection_string: Option<String>,

    /// Address the webhook listens on [default: 0.0.0.0:8080; the demo uses a free loopback port].
    #[arg(long)]
    listen: Option<SocketAddr>,

    /// Path of the webhook route (the subscription's endpoint URL ends with it).
    #[arg(long, default_value = "/api/events")]
    path: String,

    /// Secret every delivery must carry, in the query parameter `code` or the header `x-webhook-secret`
    /// (put it in the subscription's endpoint URL: `https://host/api/events?code=<secret>`).
    #[arg(long, env = "ACS_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,

    /// Directory recordings are written to, as `<dir>/<call id>/<index>-<document id>.<ext>` plus metadata.
    #[arg(long, default_value = "./recordings")]
    out: PathBuf,

    /// Another host (`host` or `host:port`) that may receive signed download requests, besides the ACS
    /// endpoint and Azure's recording storage; repeatable. Plain http and IP literals are accepted only for
    /// hosts named here.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,

    /// Chunks of one recording downloaded at the same time.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,

    /// Delete each chunk from ACS storage once it is safely on disk.
    #[arg(long)]
    delete_after_download: bool,

    /// Recordings that may wait for download; a delivery that does not fit gets 503 and Event Grid retries.
    #[arg(long, default_value_t = 1024)]
    queue_capacity: usize,

    /// Hide the progress bars.
    #[arg(long)]
    no_progress: bool,

    /// Demo: chunks in the demo recording.
    #[arg(long, default_value_t = 3)]
    demo_chunks: u64,

    /// Demo: chunk size limit in bytes (ACS uses 1.5 GB).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    demo_chunk_size: u64,

    /// Demo: Event Grid schema of the subscription, `eventgrid` or `cloudevents`.
    #[arg(long, default_value = "eventgrid")]
    demo_schema: Schema,

    /// Demo: serve the storage without faults (by default a connection drops mid-chunk and a chunk answers 503
    /// twice, to show the resume and the retries).
    #[arg(long)]
    demo_no_faults: bool,
}

impl Args {
    fn settings(&self) -> app::Settings {
        app::Settings {
            out: self.out.clone(),
            path: self.path.clone(),
            webhook_secret: self.webhook_secret.clone(),
            allow_hosts: self.allow_hosts.clone(),
            concurrency: self.concurrency.max(1),
            delete_after_download: self.delete_after_download,
            queue_capacity: self.queue_capacity,
            progress: !self.no_progress,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.connection_string {
        Some(connection_string) => serve(&args, connection_string).await,
        None => demo(&args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: &Args) -> Result<ExitCode, BoxError> {
    println!("No connection string: running the demo on the embedded ACS and Event Grid emulator.");
    let demo = app::Demo {
        chunks: args.demo_chunks.max(1),
        chunk_size: args.demo_chunk_size.max(64 * 1024),
        schema: args.demo_schema,
        faults: !args.demo_no_faults,
    };
    let report = app::run_demo(args.settings(), demo).await?;

    println!();
    println!(
        "webhook           http://{}{} (validated with {} handshake)",
        report.webhook, args.path, report.handshakes
    );
    let outcomes: Vec<String> = report.deliveries.iter().map(|d| format!("{d:?}")).collect();
    println!("deliveries        {}", outcomes.join(", "));
    println!("recordings queued {} (the redelivery of the same event was skipped)", report.jobs);
    println!();
    println!(
        "{:>5}  {:<40} {:>10}  {:<16} {:<10} {:>8}  file",
        "chunk", "document", "bytes", "sha-256", "outcome", "requests"
    );
    for (chunk, ok) in report.manifest.chunks.iter().zip(&report.verified) {
        println!(
            "{:>5}  {:<40} {:>10}  {:<16} {:<10} {:>8}  {}{}",
            chunk.index,
            chunk.document_id,
            chunk.bytes,
            &chunk.sha256_hex()[..16],
            format!("{:?}", chunk.outcome),
            chunk.attempts,
            chunk.location,
            if *ok { "" } else { "  <-- SHA-256 MISMATCH" },
        );
    }
    let bytes = report.manifest.bytes();
    let seconds = report.elapsed.as_secs_f64().max(1e-9);
    println!();
    println!(
        "{} chunks, {} bytes in {:.2} s ({:.1} MB/s); storage served {} content bytes; every SHA-256 {}",
        report.manifest.chunks.len(),
        bytes,
        seconds,
        bytes as f64 / seconds / 1e6,
        report.content_bytes_served,
        if report.all_verified() { "matches the emulator" } else { "did NOT match" },
    );
    println!("files are under {}", args.out.display());
    Ok(if report.all_verified() && report.handshakes == 1 && report.jobs == 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn serve(args: &Args, connection_string: &str) -> Result<ExitCode, BoxError> {
    let connection_string = ConnectionString::parse(connection_string)?;
    let settings = args.settings();
    let allow = app::allow_list(&settings.allow_hosts)?;
    let downloader = app::downloader(&connection_string, allow, &settings);
    let (queue, jobs) = DownloadQueue::new(settings.queue_capacity);
    let router = app::webhook(&settings.path, settings.webhook_secret.as_deref(), queue);
    let listen = args.listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)));
    let listener = TcpListener::bind(listen).await?;
    println!(
        "recorder for {} listening on http://{}{}{}",
        connection_string.endpoint(),
        listener.local_addr()?,
        settings.path,
        if settings.webhook_secret.is_some() { " (deliveries must carry the secret)" } else { "" },
    );
    if settings.webhook_secret.is_none() {
        eprintln!("warning: no --webhook-secret: anyone who can reach the webhook can make the recorder download");
    }

    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(app::serve(listener, router, stopped));
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let worker = tokio::spawn(app::run_worker(jobs, downloader, results_tx));
    let reporter = tokio::spawn(async move {
        let mut failures = 0usize;
        while let Some((job, result)) = results.recv().await {
            match result {
                Ok(manifest) => println!(
                    "recording of call {} (event {}): {} chunks, {} bytes",
                    manifest.call_id,
                    job.event_id,
                    manifest.chunks.len(),
                    manifest.bytes()
                ),
                Err(error) => {
                    failures += 1;
                    eprintln!("recording of call {} (event {}) failed: {error}", job.recording.call_id, job.event_id);
                }
            }
        }
        failures
    });

    shutdown_signal().await;
    println!("shutting down: no new deliveries; finishing the downloads already accepted (Ctrl-C again to abort)");
    let _ = stop.send(());
    server.await??;
    tokio::select! {
        _ = worker => {}
        _ = shutdown_signal() => {
            eprintln!("aborted: partial downloads stay under temporary names and resume on the next run");
            return Ok(ExitCode::FAILURE);
        }
    }
    let failures = reporter.await?;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
