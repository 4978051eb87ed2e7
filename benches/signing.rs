//! Signing and verifying through the layers, next to the floor: a bare HMAC-SHA256 over the same string to sign,
//! base64 and date formatting.
#![allow(missing_docs)] // criterion_group! generates undocumented items

#[path = "support/poll.rs"]
mod poll;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::SystemTime;

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::signing::{HmacSigningLayer, HmacVerifyLayer, EMPTY_CONTENT_HASH};
use base64::Engine as _;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hmac::{Hmac, Mac};
use http::{Request, Response};
use http_body_util::{Empty, Full};
use poll::run;
use sha2::{Digest, Sha256};
use tower::{service_fn, Layer, Service};

const KEY: &[u8] = b"acs-recording benchmark key, 32 bytes or so....";
const GET_URL: &str =
    "https://contoso.communication.azure.com/recording/download/0-eus-d2-3cca2175?api-version=2021-04-15-preview1";
const POST_URL: &str = "https://contoso.communication.azure.com/calling/recordings?api-version=2023-10-15";

/// What a bare implementation does per request: HMAC over the string to sign, base64, and format the date.
fn floor(method: &str, path_and_query: &str, body: &[u8]) -> (String, String, String) {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let hash = if body.is_empty() {
        EMPTY_CONTENT_HASH.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
    };
    let sts = format!("{method}\n{path_and_query}\n{date};contoso.communication.azure.com;{hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(sts.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (date, hash, signature)
}

fn signing(c: &mut Criterion) {
    let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
    let layer = HmacSigningLayer::new(endpoint.clone(), AccessKey::from_bytes(KEY.to_vec()));
    let body_1k = Bytes::from(vec![b'a'; 1024]);

    let mut group = c.benchmark_group("signing");
    group.bench_function("floor: bare hmac + base64 + date, GET empty body", |b| {
        b.iter(|| floor("GET", black_box("/recording/download/0-eus-d2-3cca2175?api-version=2021-04-15-preview1"), b""))
    });
    let mut get = layer.layer(service_fn(|r: Request<Empty<Bytes>>| async move { Ok::<_, Infallible>(r) }));
    group.bench_function("layer: GET empty body", |b| {
        b.iter_batched(
            || Request::get(GET_URL).body(Empty::new()).unwrap(),
            |request| run(get.call(request)).unwrap(),
            BatchSize::SmallInput,
        )
    });

    group.bench_function("floor: bare sha256 + hmac + base64 + date, POST 1 KiB", |b| {
        b.iter(|| floor("POST", black_box("/calling/recordings?api-version=2023-10-15"), black_box(&body_1k)))
    });
    let mut post = layer.layer(service_fn(|r: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(r) }));
    group.bench_function("layer: POST 1 KiB body", |b| {
        b.iter_batched(
            || Request::post(POST_URL).body(Full::new(body_1k.clone())).unwrap(),
            |request| run(post.call(request)).unwrap(),
            BatchSize::SmallInput,
        )
    });

    // Verify a signed GET as a server receives it (origin-form URI).
    let signed = run(get.call(Request::get(GET_URL).body(Empty::new()).unwrap())).unwrap();
    let (mut parts, _) = signed.into_parts();
    parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
    let verifier = HmacVerifyLayer::new(AccessKey::from_bytes(KEY.to_vec()), endpoint.authority());
    let mut verify = verifier.layer(service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    group.bench_function("layer: verify GET", |b| {
        b.iter_batched(
            || Request::from_parts(parts.clone(), Empty::<Bytes>::new()),
            |request| {
                let response = run(verify.call(request)).unwrap();
                assert_eq!(response.status(), 200);
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
