//! The delivery span: what it records, and what it never records.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io::Write;
use std::sync::Once;

use crate::support::fixture;
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

thread_local! {
    /// What the subscriber wrote for this thread, while a test captures it.
    static CAPTURED: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes into the capture of the thread that logs, if it has one; anything else is dropped.
#[derive(Clone, Copy, Default)]
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|captured| {
            if let Some(buffer) = captured.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadCapture {
    type Writer = ThreadCapture;

    fn make_writer(&'a self) -> ThreadCapture {
        *self
    }
}

/// Captures what the crate logs on this thread while `run` runs (a current-thread runtime keeps the service's work
/// on it). The subscriber is the process's global one: with a per-test default, another test's thread could cache
/// the span's callsite as disabled while this one registers, and the span would go unrecorded.
async fn capture<F: std::future::Future>(run: F) -> (F::Output, String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ThreadCapture)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in this binary");
    });
    CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
    let output = run.await;
    let bytes = CAPTURED.with(|captured| captured.borrow_mut().take()).unwrap_or_default();
    (output, String::from_utf8(bytes).unwrap())
}

#[tokio::test]
async fn each_delivery_gets_a_span_with_aeg_headers_and_count_but_no_secret_or_query() {
    let handler =
        service_fn(|_: Request<Full<Bytes>>| async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) });
    let webhook = ServiceBuilder::new()
        .layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("top-secret-value")))
        .service(handler);
    let request = Request::post("/events?code=top-secret-value&api-version=2018-01-01")
        .header("content-type", "application/json")
        .header("aeg-event-type", "Notification")
        .header("aeg-delivery-count", "2")
        .header("aeg-subscription-name", "RECORDINGS")
        .body(Full::new(fixture("mixed_batch.eventgrid.json")))
        .unwrap();
    let (response, output) = capture(webhook.oneshot(request)).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);

    let close =
        output.lines().find(|line| line.contains("eventgrid_delivery") && line.contains("close")).expect(&output);
    assert!(
        close.contains(
            "eventgrid_delivery{aeg_event_type=\"Notification\" aeg_delivery_count=\"2\" aeg_subscription_name=\"RECORDINGS\" events=4}"
        ),
        "{close}"
    );
    assert!(!output.contains("top-secret-value"), "{output}");
    assert!(!output.contains("api-version"), "{output}");
}
