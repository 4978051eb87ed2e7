//! Receives ACS recording events: an axum app with the Event Grid webhook layer on loopback, fed by the crate's
//! Event Grid emulator — the validation handshake, then one recording event delivered twice, as Event Grid's
//! at-least-once delivery may do.
//!
//! ```sh
//! cargo run --example axum_webhook
//! ```

use acs_recording::emulator::eventgrid::{EventGridPublisher, OutgoingEvent};

use acs_recording::eventgrid::Schema;
use acs_recording::eventgrid::{Deduplicator, DeliverySecret, EventGridWebhookLayer};
use acs_recording::recording::RecordingEvents;
use acs_recording::BoxError;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

/// The handler: typed events from the layer, redeliveries skipped by event id.
async fn on_events(State(seen): State<Deduplicator>, events: RecordingEvents) -> StatusCode {
    for event in &events {
        if !seen.first_delivery(event.id()) {
            println!("event {}: a redelivery, skipped", event.id());
            continue;
        }
        let call = event.recording_subject().map(|subject| subject.call_id().to_owned()).unwrap_or_default();
        println!("event {} for call {call}: {} chunk(s)", event.id(), event.data().chunks().len());
        for chunk in event.data().chunks() {
            // A real handler queues the download here and answers 200 once the work is safely recorded.
            println!("  #{} {} {}", chunk.index(), chunk.document_id(), chunk.content_location().unwrap_or("-"));
        }
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let secret = "example-secret";
    let webhook = EventGridWebhookLayer::new().require_secret(DeliverySecret::query(secret));
    let app = Router::new().route("/events", post(on_events).layer(webhook)).with_state(Deduplicator::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("webhook listening on http://{address}/events");

    let publisher = EventGridPublisher::new(&format!("http://{address}/events?code={secret}"), Schema::EventGrid)?;
    publisher.validate().await?;
    println!("subscription validated");

    let fixture: Value = serde_json::from_str(include_str!("../tests/fixtures/recording_three_chunks.eventgrid.json"))?;
    let event = &fixture[0];
    let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
    let event = OutgoingEvent {
        id: text("id"),
        event_type: text("eventType"),
        subject: text("subject"),
        time: text("eventTime"),
        data_version: text("dataVersion"),
        data: event["data"].clone(),
    };
    for _ in 0..2 {
        let outcome = publisher.deliver(std::slice::from_ref(&event)).await;
        println!("delivery: {outcome:?}");
    }
    Ok(())
}
