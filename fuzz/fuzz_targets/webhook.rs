//! The Event Grid webhook layer over arbitrary methods, URIs, headers and bodies. An unauthenticated request, or any
//! request but a POST, never reaches the inner service; what does reach it carries exactly the events its body
//! parses to; no request gets a 500; every answer is one of the statuses the layer documents.
#![no_main]

use std::convert::Infallible;
use std::sync::OnceLock;

use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer, Events, Schema};
use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use tower::{service_fn, Layer, ServiceExt};

const SECRET: &str = "s3cret";
const LIMIT: usize = 16 * 1024;

#[derive(Arbitrary, Debug)]
enum Name {
    ContentType,
    ContentLength,
    AegEventType,
    Origin,
    Rate,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Delivery {
    method: u8,
    with_secret: bool,
    query: String,
    headers: Vec<(Name, String)>,
    body: Vec<u8>,
}

/// The oracle, written apart from the layer's code: the first pair whose decoded name is `code` carries the secret.
fn presents_secret(query: &str) -> bool {
    let decode = |text: &str| percent_decode_str(text).collect::<Vec<u8>>();
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(name, _)| decode(name) == b"code")
        .is_some_and(|(_, value)| decode(value) == SECRET.as_bytes())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

fuzz_target!(|delivery: Delivery| {
    let method = match delivery.method % 4 {
        0 | 1 => Method::POST,
        2 => Method::OPTIONS,
        _ => Method::GET,
    };
    let mut uri = String::from("/api/events?");
    if delivery.with_secret {
        uri.push_str("code=");
        uri.push_str(SECRET);
        uri.push('&');
    }
    uri.push_str(&delivery.query);
    let Ok(uri) = uri.parse::<http::Uri>() else { return };
    let authenticated = uri.query().is_some_and(presents_secret);
    let mut request = Request::builder().method(method.clone()).uri(uri).body(Full::new(Bytes::from(delivery.body.clone()))).unwrap();
    for (name, value) in &delivery.headers {
        let name = match name {
            Name::ContentType => http::header::CONTENT_TYPE,
            Name::ContentLength => http::header::CONTENT_LENGTH,
            Name::AegEventType => HeaderName::from_static("aeg-event-type"),
            Name::Origin => HeaderName::from_static("webhook-request-origin"),
            Name::Rate => HeaderName::from_static("webhook-request-rate"),
            Name::Other(name) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let Ok(value) = HeaderValue::from_str(value) else { continue };
        request.headers_mut().append(name, value);
    }
    let content_type = request.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let events = request.extensions().get::<Events>().cloned();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = StatusCode::ACCEPTED;
        response.extensions_mut().insert(events);
        Ok::<_, Infallible>(response)
    });
    let layer = EventGridWebhookLayer::new()
        .require_secret(DeliverySecret::query_parameter("code", SECRET))
        .max_body_bytes(LIMIT);
    let response = runtime().block_on(layer.layer(inner).oneshot(request)).unwrap();
    let status = response.status();
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "no request gets a 500");
    assert!(
        [200, 202, 400, 401, 403, 405, 413, 415, 429, 503].contains(&status.as_u16()),
        "undocumented status {status}"
    );
    if status == StatusCode::ACCEPTED && method == Method::POST {
        assert!(authenticated, "an unauthenticated delivery reached the inner service");
        let events = response.extensions().get::<Option<Events>>().cloned().flatten().expect("events in the extensions");
        let body = runtime().block_on(response.into_body().collect()).unwrap().to_bytes();
        assert_eq!(body, Bytes::from(delivery.body), "the inner service gets the body intact");
        assert!(body.len() <= LIMIT, "the body limit holds");
        let schema = Schema::from_content_type(content_type.as_deref().unwrap_or_default()).expect("an accepted content type");
        let again = Events::from_slice(schema, &body).expect("the body parses again");
        assert_eq!(again.len(), events.len());
    }
    if method != Method::POST {
        // Only a POST reaches the inner service; anything else but the OPTIONS handshake is a 405.
        assert_ne!(status, StatusCode::ACCEPTED, "a {method} request reached the inner service");
        if method == Method::GET {
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "a GET got {status}");
        }
    }
    if method == Method::POST && !authenticated {
        assert!(matches!(status.as_u16(), 401 | 403 | 429), "an unauthenticated POST got {status}");
    }
});
