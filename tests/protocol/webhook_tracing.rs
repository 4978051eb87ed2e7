//! The delivery span: what it records, and what it never records.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::fixture;
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn each_delivery_gets_a_span_with_aeg_headers_and_count_but_no_secret_or_query() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

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
    let response = webhook.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
