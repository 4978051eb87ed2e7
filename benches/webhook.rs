//! The webhook layer plus the recording extractor, next to the floor: `std::str::from_utf8` once, then
//! `serde_json::from_str` into the same typed recording structs.
#![allow(missing_docs)] // criterion_group! generates undocumented items

#[path = "support/poll.rs"]
mod poll;

use std::convert::Infallible;
use std::hint::black_box;

use acs_recording::eventgrid::EventGridWebhookLayer;
use acs_recording::recording::{RecordingEvents, RecordingFileStatusUpdated};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use poll::run;
use serde::Deserialize;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// The Event Grid envelope as a user who knows the event type would write it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FloorEvent {
    id: String,
    #[serde(default)]
    topic: Option<String>,
    subject: String,
    event_type: String,
    event_time: String,
    data: RecordingFileStatusUpdated,
    data_version: String,
    #[serde(default)]
    metadata_version: Option<String>,
}

/// A compact batch of `count` copies of the three-chunk event, each with its own id, fields in the order Event Grid
/// sends them (`data` before `eventType`). The `&` in one URL stays escaped as `\u0026`, as Event Grid may send it.
fn batch(count: usize) -> Bytes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/recording_three_chunks.eventgrid.json");
    let fixture = minify(&std::fs::read_to_string(path).expect("fixture"));
    let event = fixture.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).expect("a one-event array");
    let template_id = "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01";
    assert!(event.contains(template_id));
    let events: Vec<String> =
        (0..count).map(|n| event.replace(template_id, &format!("1f6cf0b4-4b4e-4a36-9d5e-{n:012}"))).collect();
    Bytes::from(format!("[{}]", events.join(",")))
}

/// Drops the whitespace outside JSON strings, keeping everything else byte for byte.
fn minify(json: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(json.len()), false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn webhook(c: &mut Criterion) {
    let handler = service_fn(|request: Request<Full<Bytes>>| async move {
        let events = RecordingEvents::extract(request).await.expect("events");
        let chunks: usize = events.iter().map(|event| event.data().chunks().len()).sum();
        black_box(chunks);
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut service = ServiceBuilder::new().layer(EventGridWebhookLayer::new()).service(handler);

    // Both sides get their input ready-made, as a server hands the layer a parsed request: building the request
    // (what hyper does) is setup, not measured. Both free what they parsed inside the measurement.
    let mut group = c.benchmark_group("webhook");
    for count in [1usize, 64] {
        let body = batch(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("layer_and_extractor", count), &body, |b, body| {
            // Header values are built once and shared, as hyper's are slices of the connection's read buffer.
            let head = Request::post("/events")
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .header("aeg-event-type", "Notification")
                .header("aeg-delivery-count", "0")
                .header("aeg-subscription-name", "RECORDINGS")
                .body(())
                .expect("request");
            b.iter_batched(
                || head.clone().map(|()| Full::new(body.clone())),
                |request| {
                    run(service.ready()).expect("ready");
                    let response = run(service.call(request)).expect("response");
                    assert_eq!(response.status(), StatusCode::OK);
                    response
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("floor_from_utf8_and_from_str", count), &body, |b, body| {
            b.iter_batched(
                || body.clone(),
                |body| {
                    let text = std::str::from_utf8(&body).expect("utf-8");
                    let events: Vec<FloorEvent> = serde_json::from_str(text).expect("events");
                    // Dropped here, inside the measurement, as the layer's handler drops its events.
                    black_box(&events).len()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, webhook);
criterion_main!(benches);
