//! A tonic server that serves a gRPC service and the recorder's Event Grid webhook on one port: the recorder
//! journals each delivery before its 200 and downloads the recording with its workers.
//!
//! Runs against the embedded emulator and exits:
//!
//! ```sh
//! cargo run --example tonic_app
//! ```

use std::time::Duration;

use acs_recording::download::sink::DirectorySink;
use acs_recording::emulator::eventgrid::{recording_file_status_updated, EventGridPublisher};
use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::eventgrid::Schema;
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::journal::{JobId, JobState, Journal, MemoryJournal};
use acs_recording::recorder::Recorder;
use acs_recording::BoxError;

#[path = "support/grpc.rs"]
mod grpc;
use bytes::Bytes;
use grpc::{RawCodec, ReverseService, REVERSE_CALL};
use http::uri::PathAndQuery;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let emulator = Emulator::builder().chunk_limit(1024 * 1024).start().await?;
    let out = std::env::temp_dir().join(format!("acs-recording-tonic-example-{}", std::process::id()));

    // The recorder: its webhook journals each delivery before the 200, its workers download. The journal is in
    // memory for this demo (a crash would lose the accepted jobs); a service uses a `FileJournal`.
    let recorder = Recorder::builder(
        &emulator.connection_string(),
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>(),
        DirectorySink::new(&out),
        MemoryJournal::new(),
    )
    .allow_list(emulator.allow_list())
    .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("tonic-example")))
    .build();

    // Server: the webhook beside a gRPC service, on one port.
    let routes = tonic::service::Routes::from(axum::Router::new().route_service("/api/events", recorder.webhook()))
        .add_service(ReverseService);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    println!("tonic server on http://{address}: gRPC acs.example.Reverse and the webhook at /api/events");
    let workers = recorder.spawn();
    let journal = recorder.journal();

    // gRPC works on that port.
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?.connect().await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let reply: tonic::Response<Bytes> = grpc
        .unary(tonic::Request::new(Bytes::from_static(b"recording")), PathAndQuery::from_static(REVERSE_CALL), RawCodec)
        .await?;
    println!("gRPC Reverse(\"recording\") = {:?}", String::from_utf8_lossy(&reply.into_inner()));

    // Event Grid (emulated) validates the webhook and delivers a recording's event.
    let recording = emulator.storage().record(RecordingSpec::new("tonic-call", 2_500_000));
    let event = recording_file_status_updated(&recording);
    let publisher =
        EventGridPublisher::new(&format!("http://{address}/api/events?code=tonic-example"), Schema::EventGrid)?;
    publisher.validate().await?;
    let outcome = publisher.deliver(std::slice::from_ref(&event)).await;
    println!("event delivered: {outcome:?}");

    // The workers store the recording; the journal has each chunk's SHA-256.
    let id = JobId::for_event(&event.id);
    let job = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match journal.get(&id).await {
                Ok(Some(job)) if !job.state.is_open() => break Ok::<_, std::io::Error>(job),
                Err(error) => break Err(error),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await??;
    if job.state != JobState::Done {
        return Err(format!("the recording was not stored: {}", job.last_error.unwrap_or_default()).into());
    }
    for (chunk, expected) in job.chunks.iter().zip(&recording.chunks) {
        let matches = chunk.sha256 == Some(expected.sha256);
        let verdict = if matches { "sha-256 matches" } else { "SHA-256 MISMATCH" };
        println!(
            "chunk {} -> {} ({} bytes, {verdict})",
            chunk.index,
            chunk.location.as_deref().unwrap_or("?"),
            chunk.bytes.unwrap_or(0)
        );
        if !matches {
            return Err("a downloaded chunk differs from the emulator's".into());
        }
    }
    workers.shutdown().await?;
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
