//! A tonic server that serves a gRPC service and the Event Grid webhook on one port, and a client stack with the
//! signing layer in a `ServiceBuilder` around hyper-util's client that downloads what the webhook accepted.
//!
//! Runs against the embedded emulator and exits:
//!
//! ```sh
//! cargo run --example tonic_app
//! ```

use std::convert::Infallible;
use std::time::Duration;

use acs_recording::download::{sink::DirectorySink, ChunkDownloader};
use acs_recording::emulator::eventgrid::{recording_file_status_updated, EventGridPublisher};
use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::eventgrid::Schema;
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::queue::DownloadQueue;
use acs_recording::recording::RecordingEvents;
use acs_recording::signing::HmacSigningLayer;
use acs_recording::BoxError;

#[path = "support/grpc.rs"]
mod grpc;
use bytes::Bytes;
use grpc::{RawCodec, ReverseService, REVERSE_CALL};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{service_fn, ServiceBuilder};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let emulator = Emulator::builder().chunk_limit(1024 * 1024).start().await?;

    // Server: the webhook (layer + plain extractor function + download queue) beside a gRPC service.
    let (queue, mut jobs) = DownloadQueue::new(64);
    let handler = service_fn(move |request: Request<axum::body::Body>| {
        let queue = queue.clone();
        async move {
            let response = match RecordingEvents::extract(request).await {
                Ok(events) => match queue.accept(&events) {
                    Ok(_) => Response::new(Full::new(Bytes::new())),
                    Err(unavailable) => {
                        let mut response = Response::new(Full::new(Bytes::from(unavailable.to_string())));
                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        response
                    }
                },
                Err(rejection) => rejection.to_response().map(Full::new),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let webhook = ServiceBuilder::new()
        .layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("tonic-example")))
        .service(handler);
    let routes = tonic::service::Routes::from(axum::Router::new().route_service("/api/events", webhook))
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
    let publisher =
        EventGridPublisher::new(&format!("http://{address}/api/events?code=tonic-example"), Schema::EventGrid)?;
    publisher.validate().await?;
    let outcome = publisher.deliver(&[recording_file_status_updated(&recording)]).await;
    println!("event delivered: {outcome:?}");

    // Client: a concurrency limit, a timeout for the response head and the signing layer in a ServiceBuilder around hyper-util's client.
    let client = ServiceBuilder::new()
        .concurrency_limit(8)
        .timeout(Duration::from_secs(60))
        .layer(
            HmacSigningLayer::from_connection_string(&emulator.connection_string()).allow_list(emulator.allow_list()),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let out = std::env::temp_dir().join(format!("acs-recording-tonic-example-{}", std::process::id()));
    let downloader = ChunkDownloader::new(client, DirectorySink::new(&out))
        .endpoint(emulator.endpoint().clone())
        .allow_list(emulator.allow_list());
    let job = tokio::time::timeout(Duration::from_secs(30), jobs.recv()).await?.ok_or("no job was queued")?;
    let manifest = downloader.download(job.recording).await?;
    for (chunk, expected) in manifest.chunks.iter().zip(&recording.chunks) {
        let verdict = if chunk.sha256 == expected.sha256 { "sha-256 matches" } else { "SHA-256 MISMATCH" };
        println!("chunk {} -> {} ({} bytes, {verdict})", chunk.index, chunk.location, chunk.bytes);
        if chunk.sha256 != expected.sha256 {
            return Err("a downloaded chunk differs from the emulator's".into());
        }
    }
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
