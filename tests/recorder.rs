//! The recorder example's flow, in-process, against the emulator: handshake, delivery, redelivery, faults,
//! download, and every file checked byte for byte.

#[path = "../examples/recorder/app.rs"]
mod app;

use std::time::Duration;

use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, RetryPolicy, Schema,
};
use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::queue::DownloadQueue;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn settings(out: &std::path::Path) -> app::Settings {
    app::Settings {
        out: out.to_owned(),
        path: "/api/events".into(),
        webhook_secret: Some("recorder-test-secret".into()),
        allow_hosts: Vec::new(),
        concurrency: 1,
        delete_after_download: false,
        queue_capacity: 16,
        progress: false,
    }
}

#[tokio::test]
async fn the_whole_flow_downloads_every_chunk_once_despite_faults() {
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let out = tempfile::tempdir().unwrap();
        let demo = app::Demo { chunks: 4, chunk_size: 512 * 1024, schema, faults: true };
        let report = app::run_demo(settings(out.path()), demo).await.unwrap();

        assert_eq!(report.recording.chunks.len(), 4, "{schema:?}");
        assert_eq!(report.manifest.chunks.len(), 4, "{schema:?}");
        // Every file, read back from disk, has the emulator's SHA-256, in index order, under the output folder.
        assert_eq!(report.verified, vec![true; 4], "{schema:?}");
        for (index, chunk) in report.manifest.chunks.iter().enumerate() {
            assert_eq!(chunk.index, index as i64);
            assert!(chunk.location.starts_with(out.path().to_str().unwrap()), "{}", chunk.location);
            assert!(chunk.location.ends_with(".wav"), "{}", chunk.location);
        }
        // The faults were really hit: the first chunk needed a resume, the second two retries after 503.
        assert_eq!(report.manifest.chunks[0].attempts, 2, "{schema:?}");
        assert_eq!(report.manifest.chunks[1].attempts, 3, "{schema:?}");
        // One handshake, two deliveries of the same event, one download.
        assert_eq!(report.handshakes, 1, "{schema:?}");
        assert_eq!(
            report.deliveries,
            vec![DeliveryOutcome::Delivered { attempts: 1 }, DeliveryOutcome::Delivered { attempts: 1 }]
        );
        assert_eq!(report.jobs, 1, "{schema:?}: the redelivery queued nothing");
        // Nothing was downloaded twice: the storage sent each media byte exactly once (the resume continued where
        // the dropped connection stopped).
        assert_eq!(report.content_bytes_served, report.recording.bytes(), "{schema:?}");
    }
}

/// A webhook whose queue nobody drains, so that it fills.
async fn stalled_webhook(capacity: usize) -> (String, oneshot::Sender<()>, acs_recording::queue::DownloadJobs) {
    let (queue, jobs) = DownloadQueue::new(capacity);
    let router = app::webhook("/api/events", Some("s3cret"), queue);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/events", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app::serve(listener, router, stopped));
    (url, stop, jobs)
}

#[tokio::test]
async fn a_full_queue_answers_503_so_event_grid_retries() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = recording_file_status_updated(&emulator.storage().record(RecordingSpec::new("call-a", 1000)));
    let second = recording_file_status_updated(&emulator.storage().record(RecordingSpec::new("call-b", 1000)));
    let (url, _stop, mut jobs) = stalled_webhook(1).await;
    let retry = RetryPolicy {
        delays: vec![Duration::from_millis(5)],
        max_attempts: 3,
        response_timeout: Duration::from_secs(5),
    };
    let publisher =
        EventGridPublisher::new(&format!("{url}?code=s3cret"), Schema::EventGrid).unwrap().with_retry(retry);
    publisher.validate().await.unwrap();

    assert_eq!(publisher.deliver(std::slice::from_ref(&first)).await, DeliveryOutcome::Delivered { attempts: 1 });
    assert_eq!(publisher.deliver(std::slice::from_ref(&second)).await, DeliveryOutcome::Exhausted { attempts: 3 });
    let statuses: Vec<Option<StatusCode>> = publisher.log().iter().skip(2).map(|entry| entry.status).collect();
    assert_eq!(statuses, vec![Some(StatusCode::SERVICE_UNAVAILABLE); 3]);

    // Once the worker takes a job, Event Grid's next retry of the refused event is accepted.
    assert_eq!(jobs.recv().await.unwrap().recording.call_id, "call-a");
    assert!(publisher.deliver(std::slice::from_ref(&second)).await.is_delivered());
    assert_eq!(jobs.recv().await.unwrap().recording.call_id, "call-b");
}

#[tokio::test]
async fn the_secret_is_accepted_in_the_query_or_the_header_and_required() {
    let (url, _stop, _jobs) = stalled_webhook(4).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let body = r#"[{"id":"v","subject":"","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime":"2026-11-26T08:00:00Z","dataVersion":"1","data":{"validationCode":"abc"}}]"#;
    let cases = [
        (format!("{url}?code=s3cret"), None, StatusCode::OK),
        (url.clone(), Some("s3cret"), StatusCode::OK),
        (format!("{url}?code=wrong"), None, StatusCode::UNAUTHORIZED),
        (url.clone(), Some("wrong"), StatusCode::UNAUTHORIZED),
        (url.clone(), None, StatusCode::UNAUTHORIZED),
    ];
    for (target, header, expected) in cases {
        let mut request = http::Request::post(&target)
            .header("content-type", "application/json")
            .header("aeg-event-type", "SubscriptionValidation");
        if let Some(secret) = header {
            request = request.header(app::SECRET_HEADER, secret);
        }
        let request = request.body(http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes()))).unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), expected, "{target} {header:?}");
    }
}
