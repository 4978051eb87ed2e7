//! The crate's own Event Grid publisher (the emulator) delivering to the webhook layer over loopback: both
//! handshakes, typed events, redeliveries dropped by the deduplicator, deletion, and a refused secret.
#![cfg(all(feature = "emulator", feature = "axum"))]

use std::sync::{Arc, Mutex};

use crate::support::{fixture, TestServer};
use acs_recording::emulator::eventgrid::{DeliveryOutcome, EventGridPublisher, OutgoingEvent};
use acs_recording::eventgrid::Schema;
use acs_recording::eventgrid::{Deduplicator, DeliverySecret, EventGridWebhookLayer, SUBSCRIPTION_DELETED_EVENT};
use acs_recording::recording::RecordingEvents;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use serde_json::Value;

/// An event id and its chunks' document ids, in the order the handler got them.
type Recording = (String, Vec<String>);

#[derive(Clone, Default)]
struct Handled {
    seen: Deduplicator,
    /// (event id, chunk document ids in order) for each first delivery.
    recordings: Arc<Mutex<Vec<Recording>>>,
    other_types: Arc<Mutex<Vec<String>>>,
}

async fn on_events(State(handled): State<Handled>, events: RecordingEvents) -> StatusCode {
    for event in &events {
        if handled.seen.first_delivery(event.id()) {
            let chunks = event.data().chunks().iter().map(|chunk| chunk.document_id().to_owned()).collect();
            handled.recordings.lock().unwrap().push((event.id().to_owned(), chunks));
        }
    }
    for event in events.all() {
        if event.recording_file_status_updated().is_none() {
            handled.other_types.lock().unwrap().push(event.event_type().to_owned());
        }
    }
    StatusCode::OK
}

async fn start(handled: Handled) -> TestServer {
    let layer = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("emulated"));
    TestServer::axum(Router::new().route("/events", post(on_events).layer(layer)).with_state(handled)).await
}

fn recording_event() -> OutgoingEvent {
    let fixture: Value = serde_json::from_slice(&fixture("recording_three_chunks.eventgrid.json")).unwrap();
    let event = &fixture[0];
    OutgoingEvent {
        id: event["id"].as_str().unwrap().into(),
        event_type: event["eventType"].as_str().unwrap().into(),
        subject: event["subject"].as_str().unwrap().into(),
        time: event["eventTime"].as_str().unwrap().into(),
        data_version: "1.0".into(),
        data: event["data"].clone(),
    }
}

#[tokio::test]
async fn the_emulated_publisher_validates_and_delivers_in_both_schemas_once_per_event_id() {
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let handled = Handled::default();
        let server = start(handled.clone()).await;
        let publisher = EventGridPublisher::new(&server.url("/events?code=emulated"), schema).unwrap();
        publisher.validate().await.unwrap_or_else(|error| panic!("{schema:?}: {error}"));

        let event = recording_event();
        for _ in 0..2 {
            let outcome = publisher.deliver(std::slice::from_ref(&event)).await;
            assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 }, "{schema:?}");
        }
        assert_eq!(
            *handled.recordings.lock().unwrap(),
            [(
                "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01".to_owned(),
                vec![
                    "0-eus-d2-1b2a9e5f7c3d4e6f8a0b1c2d3e4f5a6b".to_owned(),
                    "0-eus-d2-3cca2175891f21c6c9a5975a12c0141c".to_owned(),
                    "0-eus-d2-9f8e7d6c5b4a39281706f5e4d3c2b1a0".to_owned(),
                ],
            )],
            "{schema:?}: the redelivery is dropped and chunks come in index order"
        );

        let outcome = publisher.announce_deletion().await;
        assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 }, "{schema:?}");
        assert_eq!(*handled.other_types.lock().unwrap(), [SUBSCRIPTION_DELETED_EVENT], "{schema:?}");
    }
}

#[tokio::test]
async fn a_publisher_with_the_wrong_secret_is_refused_and_not_retried() {
    let handled = Handled::default();
    let server = start(handled.clone()).await;
    let publisher = EventGridPublisher::new(&server.url("/events?code=stale"), Schema::EventGrid).unwrap();
    assert!(publisher.validate().await.is_err());
    let outcome = publisher.deliver(&[recording_event()]).await;
    assert_eq!(outcome, DeliveryOutcome::Dropped { status: StatusCode::UNAUTHORIZED, attempts: 1 });
    assert!(handled.recordings.lock().unwrap().is_empty());
}
