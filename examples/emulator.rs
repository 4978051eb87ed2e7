//! Runs the ACS recording emulator on its own, like Azurite for storage, so that apps and SDKs in any language
//! can be tested against it without an Azure account.
//!
//! It prints one line with its connection string and storage URL (shell syntax), records a demo call, and with
//! `--webhook` validates that webhook and delivers the demo recording's event to it. It serves until Ctrl-C.
//!
//! ```sh
//! cargo run --example emulator -- --webhook 'http://127.0.0.1:8080/api/events?code=secret'
//! ```

use std::net::SocketAddr;

use acs_recording::emulator::eventgrid::{parse_schema, recording_file_status_updated, EventGridPublisher};

use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::eventgrid::Schema;
use acs_recording::BoxError;
use clap::Parser;

/// A local stand-in for Azure Communication Services recording storage and Event Grid delivery.
///
/// Downloads must be signed with the printed access key (HMAC-SHA256, as for ACS); storage serves Range, ETag,
/// If-Match, HEAD and DELETE on its own port, apart from the endpoint, so clients exercise the cross-host rule.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address of the ACS endpoint (loopback only); the storage takes a free loopback port of its own.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Webhook to validate and deliver the demo recording's `RecordingFileStatusUpdated` event to (an http URL;
    /// put the delivery secret in its query, e.g. `?code=<secret>`).
    #[arg(long)]
    webhook: Option<String>,

    /// Chunks in the demo recording.
    #[arg(long, default_value_t = 3)]
    chunks: u64,

    /// Chunk size limit in bytes (ACS uses 1.5 GB).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    chunk_size: u64,

    /// Event Grid schema of the subscription, `eventgrid` or `cloudevents`.
    #[arg(long, default_value = "eventgrid", value_parser = parse_schema)]
    schema: Schema,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let chunk_size = args.chunk_size.max(64 * 1024);
    let emulator = Emulator::builder().endpoint_addr(args.listen).chunk_limit(chunk_size).start().await?;
    println!(
        "ACS_CONNECTION_STRING='{}' ACS_STORAGE_URL='{}/'",
        emulator.connection_string().to_secret_string(),
        emulator.storage().base_url()
    );

    let total = args.chunks.max(1) * chunk_size - chunk_size / 3;
    let recording = emulator.storage().record(RecordingSpec::new("emulator-demo-call", total));
    eprintln!("demo recording of call {} ({} bytes):", recording.call_id, recording.bytes());
    for chunk in &recording.chunks {
        let sha = chunk.sha256.to_string();
        eprintln!("  #{} {} {} bytes sha256 {sha}", chunk.index, chunk.content_location, chunk.size);
    }

    if let Some(webhook) = &args.webhook {
        let publisher = EventGridPublisher::new(webhook, args.schema)?;
        publisher.validate().await?;
        eprintln!("webhook validated ({:?} schema)", args.schema);
        let outcome = publisher.deliver(&[recording_file_status_updated(&recording)]).await;
        eprintln!("event delivered: {outcome:?}");
    }

    eprintln!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
