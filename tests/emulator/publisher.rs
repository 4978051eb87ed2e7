//! The emulator's Event Grid publisher against a real webhook server on loopback: handshakes, envelopes, `aeg-*`
//! headers and Event Grid's retry rules.
#![cfg(feature = "emulator")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support;
use acs_recording::emulator::eventgrid::{
    DeliveryKind, DeliveryOutcome, EventGridPublisher, OutgoingEvent, RetryPolicy,
};

use acs_recording::eventgrid::Schema;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tower::service_fn;

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A webhook that records every request and answers with the scripted statuses in turn (the last repeats).
async fn webhook(
    script: Vec<StatusCode>,
    answer: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
) -> (support::TestServer, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let answer = Arc::new(answer);
    let log = seen.clone();
    let server = support::TestServer::service(service_fn(move |request: Request<Incoming>| {
        let (log, answer, script) = (log.clone(), answer.clone(), script.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let entry = Seen { method: parts.method, uri: parts.uri.to_string(), headers: parts.headers, body };
            let n = {
                let mut log = log.lock().unwrap();
                log.push(entry.clone());
                log.len()
            };
            let mut response = answer(&entry);
            if let Some(status) = script.get(n - 1).or(script.last()) {
                if response.status() == StatusCode::OK {
                    *response.status_mut() = *status;
                }
            }
            Ok::<_, Infallible>(response)
        }
    }))
    .await;
    (server, seen)
}

fn echo_validation(seen: &Seen) -> Response<Full<Bytes>> {
    if seen.method == Method::OPTIONS {
        let origin = seen.headers["webhook-request-origin"].clone();
        return Response::builder().header("webhook-allowed-origin", origin).body(Full::new(Bytes::new())).unwrap();
    }
    let events: Value = serde_json::from_slice(&seen.body).unwrap();
    match events[0]["data"]["validationCode"].as_str() {
        Some(code) => Response::new(Full::new(Bytes::from(json!({ "validationResponse": code }).to_string()))),
        None => Response::new(Full::new(Bytes::new())),
    }
}

fn recording_event(id: &str) -> OutgoingEvent {
    OutgoingEvent {
        id: id.into(),
        event_type: "Microsoft.Communication.RecordingFileStatusUpdated".into(),
        subject: "/recording/call/c1/serverCallId/s1/recordingId/r1".into(),
        time: "2026-11-26T08:00:00.000000Z".into(),
        data_version: "1.0".into(),
        data: json!({ "recordingStorageInfo": { "recordingChunks": [{ "documentId": "d0", "index": 0 }] } }),
    }
}

/// Event Grid's rules with millisecond waits.
fn fast_retry() -> RetryPolicy {
    RetryPolicy { delays: vec![Duration::from_millis(1)], max_attempts: 10, response_timeout: Duration::from_secs(5) }
}

#[tokio::test]
async fn event_grid_validation_posts_the_handshake_and_checks_the_echo() {
    let (server, seen) = webhook(vec![StatusCode::OK], echo_validation).await;
    let publisher =
        EventGridPublisher::new(&format!("http://{}/api/events?code=s3", server.addr), Schema::EventGrid).unwrap();
    publisher.validate().await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.uri, "/api/events?code=s3");
    assert_eq!(request.headers["aeg-event-type"], "SubscriptionValidation");
    assert_eq!(request.headers["aeg-delivery-count"], "0");
    assert_eq!(request.headers["content-type"], "application/json; charset=utf-8");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body[0]["eventType"], "Microsoft.EventGrid.SubscriptionValidationEvent");
    assert!(body[0]["data"]["validationCode"].as_str().unwrap().len() >= 32);
}

#[tokio::test]
async fn validation_fails_when_the_webhook_does_not_echo_the_code() {
    let (server, _) =
        webhook(vec![StatusCode::OK], |_| Response::new(Full::new(Bytes::from(r#"{"validationResponse":"x"}"#)))).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::EventGrid).unwrap();
    let error = publisher.validate().await.unwrap_err();
    assert_eq!(error.to_string(), "subscription validation failed: the answer echoed a different validation code");
}

#[tokio::test]
async fn cloud_events_validation_is_an_options_request_that_must_grant_the_origin() {
    let (server, seen) = webhook(vec![StatusCode::OK], echo_validation).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::CloudEvents).unwrap();
    publisher.validate().await.unwrap();
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.method, Method::OPTIONS);
    assert_eq!(request.headers["webhook-request-origin"], "eventgrid.azure.net");
    assert_eq!(request.headers["webhook-request-rate"], "120");

    let (server, _) = webhook(vec![StatusCode::OK], |_| Response::new(Full::new(Bytes::new()))).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::CloudEvents).unwrap();
    let error = publisher.validate().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "subscription validation failed: the webhook did not grant origin `eventgrid.azure.net`"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_ids_and_a_growing_delivery_count() {
    let script = vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::OK];
    let (server, seen) = webhook(script, |_| Response::new(Full::new(Bytes::new()))).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::EventGrid)
        .unwrap()
        .with_retry(fast_retry());
    let outcome = publisher.deliver(&[recording_event("ev-1"), recording_event("ev-2")]).await;
    assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 3 });

    let seen = seen.lock().unwrap();
    let counts: Vec<&str> = seen.iter().map(|s| s.headers["aeg-delivery-count"].to_str().unwrap()).collect();
    assert_eq!(counts, ["0", "1", "2"]);
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body), "every retry carries the same events");
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body[0]["id"], "ev-1");
    assert_eq!(body[1]["id"], "ev-2");
    assert_eq!(body[0]["eventType"], "Microsoft.Communication.RecordingFileStatusUpdated");
    assert_eq!(body[0]["dataVersion"], "1.0");
    assert_eq!(body[0]["metadataVersion"], "1");
    assert_eq!(seen[0].headers["aeg-event-type"], "Notification");
    assert_eq!(seen[0].headers["aeg-data-version"], "1.0");

    let log = publisher.log();
    let statuses: Vec<Option<u16>> = log.iter().map(|e| e.status.map(|s| s.as_u16())).collect();
    assert_eq!(statuses, [Some(503), Some(500), Some(200)]);
    assert!(log.iter().all(|e| e.kind == DeliveryKind::Notification && e.event_ids == ["ev-1", "ev-2"]));
}

#[tokio::test]
async fn non_retryable_statuses_drop_the_delivery() {
    for status in
        [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::PAYLOAD_TOO_LARGE]
    {
        let (server, seen) = webhook(vec![status], |_| Response::new(Full::new(Bytes::new()))).await;
        let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::EventGrid)
            .unwrap()
            .with_retry(fast_retry());
        let outcome = publisher.deliver(&[recording_event("ev")]).await;
        assert_eq!(outcome, DeliveryOutcome::Dropped { status, attempts: 1 }, "{status}");
        assert_eq!(seen.lock().unwrap().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn retries_stop_at_the_policy_limit() {
    let (server, seen) =
        webhook(vec![StatusCode::SERVICE_UNAVAILABLE], |_| Response::new(Full::new(Bytes::new()))).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::EventGrid)
        .unwrap()
        .with_retry(fast_retry().max_attempts(4));
    assert_eq!(publisher.deliver(&[recording_event("ev")]).await, DeliveryOutcome::Exhausted { attempts: 4 });
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_logged() {
    // Bind and close a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let publisher = EventGridPublisher::new(&format!("http://127.0.0.1:{port}/e"), Schema::EventGrid)
        .unwrap()
        .with_retry(fast_retry().max_attempts(2));
    assert_eq!(publisher.deliver(&[recording_event("ev")]).await, DeliveryOutcome::Exhausted { attempts: 2 });
    let log = publisher.log();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.status.is_none() && e.error.is_some()));
}

#[tokio::test]
async fn cloud_events_are_delivered_as_a_batch() {
    let (server, seen) = webhook(vec![StatusCode::OK], |_| Response::new(Full::new(Bytes::new()))).await;
    let publisher = EventGridPublisher::new(&format!("http://{}/e", server.addr), Schema::CloudEvents).unwrap();
    assert!(publisher.deliver(&[recording_event("ev-9")]).await.is_delivered());
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.headers["content-type"], "application/cloudevents-batch+json; charset=utf-8");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body[0]["specversion"], "1.0");
    assert_eq!(body[0]["type"], "Microsoft.Communication.RecordingFileStatusUpdated");
    assert_eq!(body[0]["source"], publisher.topic());
    assert_eq!(body[0]["subject"], "/recording/call/c1/serverCallId/s1/recordingId/r1");
}

#[tokio::test]
async fn debug_output_hides_the_webhook_query() {
    let publisher = EventGridPublisher::new("http://127.0.0.1:1/api/events?code=topsecret", Schema::EventGrid).unwrap();
    let printed = format!("{publisher:?}");
    assert!(!printed.contains("topsecret"), "{printed}");
    assert!(printed.contains("/api/events"), "{printed}");
}
