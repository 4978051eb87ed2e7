//! The HMAC verifying layer over signed requests with arbitrary changes, and over requests with arbitrary
//! `Authorization`, date and content-hash headers. An unchanged signed request is accepted with its body intact; a
//! changed body or path, or a request nobody signed, never is; nothing gets a 500.
#![no_main]

use std::convert::Infallible;
use std::sync::OnceLock;

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::signing::{HmacSigningLayer, HmacVerifyLayer};
use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower::{service_fn, Layer, ServiceExt};

#[derive(Arbitrary, Debug)]
enum Name {
    Authorization,
    Date,
    XMsDate,
    ContentHash,
    Host,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Change {
    Set(Name, String),
    Append(Name, String),
    Remove(Name),
    FlipBody(u16),
    Path(String),
}

#[derive(Arbitrary, Debug)]
struct Case {
    signed: bool,
    method: u8,
    path: String,
    body: Vec<u8>,
    changes: Vec<Change>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

fn header_name(name: &Name) -> Option<HeaderName> {
    Some(match name {
        Name::Authorization => http::header::AUTHORIZATION,
        Name::Date => http::header::DATE,
        Name::XMsDate => HeaderName::from_static("x-ms-date"),
        Name::ContentHash => HeaderName::from_static("x-ms-content-sha256"),
        Name::Host => http::header::HOST,
        Name::Other(name) => HeaderName::from_bytes(name.as_bytes()).ok()?,
    })
}

fuzz_target!(|case: Case| {
    let key = AccessKey::from_bytes(b"fuzzing key, not a secret".to_vec());
    let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
    let method = [Method::GET, Method::POST, Method::PUT, Method::DELETE][usize::from(case.method % 4)].clone();
    let path: String = case.path.chars().filter(|c| c.is_ascii_alphanumeric() || "/-._~".contains(*c)).take(64).collect();
    let uri = format!("https://contoso.communication.azure.com/{path}");
    let Ok(request) = Request::builder().method(method).uri(&uri).body(Full::new(Bytes::from(case.body.clone()))) else {
        return;
    };
    let runtime = runtime();
    let (mut parts, body) = if case.signed {
        let echo = service_fn(|request: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(request) });
        let signed = runtime.block_on(HmacSigningLayer::new(endpoint.clone(), key.clone()).layer(echo).oneshot(request)).unwrap();
        let (parts, body) = signed.into_parts();
        (parts, runtime.block_on(body.collect()).unwrap().to_bytes())
    } else {
        let (parts, body) = request.into_parts();
        (parts, runtime.block_on(body.collect()).unwrap().to_bytes())
    };
    parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
    let original_path = parts.uri.clone();
    let mut body = body.to_vec();
    for change in &case.changes {
        match change {
            Change::Set(name, value) | Change::Append(name, value) => {
                let (Some(name), Ok(value)) = (header_name(name), HeaderValue::from_str(value)) else { continue };
                if matches!(change, Change::Set(..)) {
                    parts.headers.insert(name, value);
                } else {
                    parts.headers.append(name, value);
                }
            }
            Change::Remove(name) => {
                if let Some(name) = header_name(name) {
                    parts.headers.remove(name);
                }
            }
            Change::FlipBody(at) => {
                if !body.is_empty() {
                    let at = usize::from(*at) % body.len();
                    body[at] ^= 0x01;
                }
            }
            Change::Path(path) => {
                if let Ok(uri) = path.parse::<http::Uri>() {
                    if uri.scheme().is_none() && uri.path().starts_with('/') {
                        parts.uri = uri;
                    }
                }
            }
        }
    }
    let body_changed = body != case.body;
    // An empty query (`/a?`) is the same resource as none (`/a`): both sign the same string.
    let target = |uri: &http::Uri| uri.path_and_query().map_or("/", |p| p.as_str()).trim_end_matches('?').to_owned();
    let path_changed = target(&parts.uri) != target(&original_path);
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(body)))
    });
    let verifier = HmacVerifyLayer::new(key.clone(), endpoint.authority()).layer(inner);
    let response = runtime.block_on(verifier.oneshot(Request::from_parts(parts, Full::new(Bytes::from(body.clone()))))).unwrap();
    let status = response.status();
    assert!([200, 400, 401, 413].contains(&status.as_u16()), "undocumented status {status}");
    if status == StatusCode::OK {
        assert!(case.signed, "a request nobody signed was accepted");
        assert!(!body_changed, "a changed body was accepted");
        assert!(!path_changed, "a changed path was accepted");
        let echoed = runtime.block_on(response.into_body().collect()).unwrap().to_bytes();
        assert_eq!(echoed, Bytes::from(body), "the inner service gets the body intact");
    } else if case.signed && case.changes.is_empty() {
        panic!("an unchanged signed request was refused with {status}");
    }
});
