//! The webhook layer plus the recording extractor, next to the floor: `std::str::from_utf8` once, then
//! `serde_json::from_str` into the same typed recording structs.
#![allow(missing_docs)] // criterion_group! generates undocumented items

#[path = "support/poll.rs"]
mod poll;
#[path = "support/webhook_input.rs"]
mod webhook_input;

use std::convert::Infallible;
use std::hint::black_box;

use acs_recording::eventgrid::EventGridWebhookLayer;
use acs_recording::recording::RecordingEvents;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use poll::run;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use webhook_input::{batch, floor_parse};

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
            b.iter_batched(|| body.clone(), |body| floor_parse(&body), BatchSize::SmallInput)
        });
    }
    group.finish();
}

criterion_group!(benches, webhook);
criterion_main!(benches);
