//! The whole path over loopback: the emulator stores a recording and announces it through Event Grid, the webhook
//! layer and the extractor hand the typed event to a handler, and the download service fetches every chunk.
#![cfg(all(feature = "emulator", feature = "axum"))]

use std::sync::{Arc, Mutex};

use crate::support::TestServer;
use acs_recording::download::{sink::DirectorySink, ChunkDownloader, RecordingManifest};
use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, OutgoingEvent,
};
use acs_recording::emulator::{Emulator, RecordingSpec, StoredRecording};
use acs_recording::eventgrid::Schema;
use acs_recording::eventgrid::{Deduplicator, DeliverySecret, EventGridWebhookLayer};
use acs_recording::recording::{Recording, RecordingEvents};
use acs_recording::signing::HmacSigningLayer;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;

/// The event the service sends for a stored recording, with the chunks listed last first.
fn announcement(recording: &StoredRecording) -> OutgoingEvent {
    let mut event = recording_file_status_updated(recording);
    event.data["recordingStorageInfo"]["recordingChunks"].as_array_mut().expect("chunk list").reverse();
    event
}

#[tokio::test]
async fn an_announced_recording_is_downloaded_once_chunk_by_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-e2e", 150_000));
    assert_eq!(recording.chunks.len(), 3);

    let client = ServiceBuilder::new()
        .layer(
            HmacSigningLayer::from_connection_string(&emulator.connection_string()).allow_list(emulator.allow_list()),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let directory = tempfile::tempdir().unwrap();
    let downloader = Arc::new(
        ChunkDownloader::new(client, DirectorySink::new(directory.path()))
            .endpoint(emulator.endpoint().clone())
            .allow_list(emulator.allow_list()),
    );
    let seen = Deduplicator::default();
    let manifests = Arc::new(Mutex::new(Vec::<RecordingManifest>::new()));

    let handler = {
        let (downloader, manifests) = (downloader.clone(), manifests.clone());
        move |events: RecordingEvents| async move {
            for event in &events {
                if !seen.first_delivery(event.id()) {
                    continue;
                }
                let recording = Recording::from_event(&event);
                match downloader.download(recording).await {
                    Ok(manifest) => manifests.lock().unwrap().push(manifest),
                    Err(_) => {
                        // Not stored: let Event Grid retry this event.
                        seen.forget(event.id());
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
            }
            StatusCode::OK
        }
    };
    let layer = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("e2e"));
    let server = TestServer::axum(Router::new().route("/events", post(handler).layer(layer))).await;

    let publisher = EventGridPublisher::new(&server.url("/events?code=e2e"), Schema::EventGrid).unwrap();
    publisher.validate().await.unwrap();
    let event = announcement(&recording);
    for _ in 0..2 {
        let outcome = publisher.deliver(std::slice::from_ref(&event)).await;
        assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 });
    }

    let manifests = manifests.lock().unwrap();
    assert_eq!(manifests.len(), 1, "the redelivery is not downloaded again");
    assert_eq!(manifests[0].call_id, "call-e2e");
    let got: Vec<(i64, &str, acs_recording::Sha256Digest)> =
        manifests[0].chunks.iter().map(|chunk| (chunk.index, chunk.document_id.as_str(), chunk.sha256)).collect();
    let expected: Vec<(i64, &str, acs_recording::Sha256Digest)> =
        recording.chunks.iter().map(|chunk| (chunk.index, chunk.document_id.as_str(), chunk.sha256)).collect();
    assert_eq!(got, expected);
}
