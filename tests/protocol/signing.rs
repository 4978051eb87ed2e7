//! The signing and verifying layers: known-answer vectors, round trips through a real hyper server, tampering,
//! refused destinations and redaction.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::support;
use acs_recording::credential::{AccessKey, ConnectionString, Endpoint};
use acs_recording::signing::{
    compute_signature, content_hash, string_to_sign, AllowList, ContentHash, ErrorKind, HmacSigningLayer,
    HmacVerifyLayer, RefusedReason,
};
use acs_recording::Sha256Digest;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use serde_json::Value;

use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

const KEY_B64: &str = "YWNzLXJlY29yZGluZyBmaXhlZCB0ZXN0IGtleSwgbm90IGEgc2VjcmV0";

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/signing.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn at(date: &str) -> SystemTime {
    httpdate::parse_http_date(date).unwrap()
}

/// A "client" that hands back the request it was given, to inspect what the layer sent.
fn capture<B: Send + 'static>(
) -> impl Service<Request<B>, Response = Request<B>, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(|request: Request<B>| async move { Ok::<_, Infallible>(request) })
}

#[test]
fn vectors_match_the_pure_functions() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let e = &v["expected"];
        let key = AccessKey::from_base64(v["key"].as_str().unwrap()).unwrap();
        let url: http::Uri = v["url"].as_str().unwrap().parse().unwrap();
        let endpoint = Endpoint::parse(v["endpoint"].as_str().unwrap()).unwrap();
        let path = if e["x_ms_host"].is_null() {
            url.path_and_query().unwrap().as_str().to_owned()
        } else {
            url.path().to_owned()
        };
        let hash = content_hash(v["body"].as_str().unwrap().as_bytes());
        assert_eq!(hash, e["content_hash"].as_str().unwrap(), "{name}");
        let sts = string_to_sign(
            v["method"].as_str().unwrap(),
            &path,
            v["date"].as_str().unwrap(),
            endpoint.authority(),
            &hash,
        );
        assert_eq!(sts, e["string_to_sign"].as_str().unwrap(), "{name}");
        assert_eq!(compute_signature(&key, &sts), e["signature"].as_str().unwrap(), "{name}");
    }
}

#[tokio::test]
async fn vectors_match_the_signing_layer_and_pass_the_verifier() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let e = &v["expected"];
        let key = AccessKey::from_base64(v["key"].as_str().unwrap()).unwrap();
        let endpoint = Endpoint::parse(v["endpoint"].as_str().unwrap()).unwrap();
        let date = v["date"].as_str().unwrap().to_owned();
        let now = at(&date);
        let mut layer = HmacSigningLayer::new(endpoint.clone(), key.clone()).with_clock(move || now);
        if v["legacy_date_header"].as_bool().unwrap() {
            layer = layer.legacy_date_header();
        }
        let body = Bytes::from(v["body"].as_str().unwrap().to_owned());
        let request = Request::builder()
            .method(v["method"].as_str().unwrap())
            .uri(v["url"].as_str().unwrap())
            .body(Full::new(body.clone()))
            .unwrap();
        let sent = ServiceBuilder::new().layer(layer).service(capture()).oneshot(request).await.unwrap();

        let headers = sent.headers();
        let date_header = if v["legacy_date_header"].as_bool().unwrap() { "date" } else { "x-ms-date" };
        assert_eq!(headers[date_header], date.as_str(), "{name}");
        assert_eq!(headers["x-ms-content-sha256"], e["content_hash"].as_str().unwrap(), "{name}");
        assert_eq!(headers["authorization"], e["authorization"].as_str().unwrap(), "{name}");
        assert_eq!(headers.get("x-ms-host").map(|h| h.to_str().unwrap()), e["x_ms_host"].as_str(), "{name}");
        assert!(headers["authorization"].is_sensitive(), "{name}");
        assert_eq!(sent.body().clone().collect().await.unwrap().to_bytes(), body, "{name}: body intact");

        // The verifier, configured with the endpoint's authority, accepts exactly this request as a server sees it.
        let (mut parts, body) = sent.into_parts();
        parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let verifier = HmacVerifyLayer::new(key, endpoint.authority()).with_clock(move || now);
        let response = ServiceBuilder::new()
            .layer(verifier)
            .service(counting_ok(calls.clone()))
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{name}");
    }
}

/// An inner server service that counts calls and answers 200 with the SHA-256 of the body it got.
fn counting_ok(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone + Send
{
    service_fn(move |request: Request<Full<Bytes>>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let digest = Sha256Digest::of(&body).to_string();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(digest))))
        }
    })
}

struct Harness {
    server: support::TestServer,
    calls: Arc<AtomicUsize>,
    key: AccessKey,
    endpoint: Endpoint,
}

/// A real hyper server on loopback behind the verifying layer; the endpoint is the server itself.
async fn harness() -> Harness {
    harness_with_authority(None).await
}

async fn harness_with_authority(authority: Option<&str>) -> Harness {
    let key = AccessKey::from_base64(KEY_B64).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    // Bind first to learn the port, which is part of the signed authority.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let authority = authority.map(str::to_owned).unwrap_or(format!("127.0.0.1:{port}"));
    let endpoint = Endpoint::parse(&format!("http://{authority}/")).unwrap();
    let server = ServiceBuilder::new()
        .layer(HmacVerifyLayer::new(key.clone(), endpoint.authority()))
        .service(counting_ok(calls.clone()));
    let server = support::TestServer::service_on(listener, server);
    Harness { server, calls, key, endpoint }
}

async fn body_of(response: Response<hyper::body::Incoming>) -> (StatusCode, HeaderMap, String) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn signed_requests_round_trip_through_a_real_server() {
    let h = harness().await;
    let base = format!("http://{}", h.server.addr);
    let mut client = ServiceBuilder::new()
        .layer(HmacSigningLayer::new(h.endpoint.clone(), h.key.clone()))
        .service(support::client::<Full<Bytes>>());

    let cases: [(&str, String, &[u8]); 4] = [
        ("GET", format!("{base}/recording/download/doc-1"), b""),
        ("GET", format!("{base}/recording/download/doc-1/metadata?api-version=2021-04-15-preview1&x=%20y"), b""),
        ("POST", format!("{base}/calling/recordings?api-version=2023-10-15"), br#"{"recordingContentType":"audio"}"#),
        ("DELETE", format!("{base}/v1/objects/0-eus/content"), b""),
    ];
    for (method, url, body) in cases {
        let request = Request::builder().method(method).uri(&url).body(Full::new(Bytes::from_static(body))).unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        let (status, _, text) = body_of(response).await;
        assert_eq!(status, StatusCode::OK, "{method} {url}: {text}");
        assert_eq!(text, Sha256Digest::of(body).to_string(), "{method} {url}: the server got the body intact");
    }
    assert_eq!(h.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn streaming_bodies_are_hashed_under_the_limit_and_refused_over_it() {
    let h = harness().await;
    let url = format!("http://{}/upload", h.server.addr);
    let layer = HmacSigningLayer::new(h.endpoint.clone(), h.key.clone()).body_buffer_limit(64 * 1024);
    let mut client = ServiceBuilder::new().layer(layer).service(support::client::<StreamingBody>());

    let chunks: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; 1000])).collect();
    let whole: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
    let response = client.ready().await.unwrap().call(streaming_post(&url, chunks)).await.unwrap();
    let (status, _, text) = body_of(response).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, Sha256Digest::of(&whole).to_string());

    let big: Vec<Bytes> = (0..80).map(|_| Bytes::from(vec![7u8; 1024])).collect();
    let error = client.ready().await.unwrap().call(streaming_post(&url, big)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BodyTooLarge);
    assert_eq!(
        error.to_string(),
        "request body exceeds the signing buffer limit of 65536 bytes; attach a precomputed content hash"
    );
    assert_eq!(h.calls.load(Ordering::SeqCst), 1, "the oversized request never reached the server");
}

type StreamingBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn streaming_post(url: &str, chunks: Vec<Bytes>) -> Request<StreamingBody> {
    let frames = stream_of(chunks.into_iter().map(|c| Ok::<_, Infallible>(http_body::Frame::data(c))));
    Request::post(url).body(StreamBody::new(frames).boxed()).unwrap()
}

/// A stream over an iterator, without extra dependencies.
fn stream_of<I>(iter: I) -> impl futures_core::Stream<Item = I::Item> + Send + Sync
where
    I: Iterator + Unpin + Send + Sync,
{
    struct Iter<I>(I);
    impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(iter)
}

#[tokio::test]
async fn precomputed_hash_is_used_without_reading_the_body() {
    let h = harness().await;
    let url = format!("http://{}/upload", h.server.addr);
    // Limit 0: any body read would fail, so success proves the body was not buffered for hashing.
    let layer = HmacSigningLayer::new(h.endpoint.clone(), h.key.clone()).body_buffer_limit(0);
    let client = ServiceBuilder::new().layer(layer).service(support::client::<StreamingBody>());
    let chunks = vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")];
    let mut request = streaming_post(&url, chunks);
    request.extensions_mut().insert(ContentHash::of(b"hello world"));
    let (status, _, text) = body_of(client.oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, Sha256Digest::of(b"hello world").to_string());
}

#[tokio::test]
async fn cross_host_requests_carry_x_ms_host_and_verify() {
    // The endpoint's authority differs from the storage server's address, as in Azure.
    let h = harness_with_authority(Some("127.0.0.1:9")).await;
    let storage = format!("127.0.0.1:{}", h.server.addr.port());
    let allow = AllowList::azure_defaults().allow_host(&storage).unwrap();
    let layer = HmacSigningLayer::new(h.endpoint.clone(), h.key.clone()).allow_list(allow);
    let mut client = ServiceBuilder::new().layer(layer).service(support::client::<Empty<Bytes>>());
    for path in ["/v1/objects/0-eus-d2/content/audio", "/v1/objects/0-eus-d2/content/acsmetadata?sv=2&sig=a%2Bb"] {
        let request = Request::get(format!("http://{storage}{path}")).body(Empty::new()).unwrap();
        let (status, _, text) = body_of(client.ready().await.unwrap().call(request).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
    }
}

#[tokio::test]
async fn verifier_accepts_the_python_sdk_variant() {
    // Python signs the endpoint authority with its port and the path with the query, and sends x-ms-host
    // without the port; the verifier accepts either form of the signed host.
    let h = harness_with_authority(Some("127.0.0.1:40183")).await;
    let path = "/v1/objects/0-eus/content/audio?sv=2&sig=x";
    let date = httpdate::fmt_http_date(SystemTime::now());
    let sts = string_to_sign("GET", path, &date, "127.0.0.1:40183", acs_recording::signing::EMPTY_CONTENT_HASH);
    let signature = compute_signature(&h.key, &sts);
    let request = Request::get(format!("http://{}{path}", h.server.addr))
        .header("x-ms-date", &date)
        .header("x-ms-host", "127.0.0.1")
        .header("x-ms-content-sha256", acs_recording::signing::EMPTY_CONTENT_HASH)
        .header("x-ms-return-client-request-id", "true")
        .header("accept", "application/json")
        .header(
            "authorization",
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
        )
        .body(Empty::<Bytes>::new())
        .unwrap();
    let (status, _, text) = body_of(support::client().request(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// Builds a correctly signed request for the harness, then lets `tamper` change it, and sends it unsigned.
async fn send_tampered(
    h: &Harness,
    signing: HmacSigningLayer,
    method: &str,
    path: &str,
    body: &'static [u8],
    tamper: impl FnOnce(&mut http::request::Parts, &mut Bytes),
) -> (StatusCode, HeaderMap, String) {
    let url = format!("http://{}{path}", h.server.addr);
    let request = Request::builder().method(method).uri(url).body(Full::new(Bytes::from_static(body))).unwrap();
    let signed = ServiceBuilder::new().layer(signing).service(capture()).oneshot(request).await.unwrap();
    let (mut parts, body) = signed.into_parts();
    let mut bytes = body.collect().await.unwrap().to_bytes();
    tamper(&mut parts, &mut bytes);
    let response = support::client().request(Request::from_parts(parts, Full::new(bytes))).await.unwrap();
    body_of(response).await
}

#[tokio::test]
async fn every_tampering_is_rejected_with_a_clear_reason() {
    let h = harness().await;
    let signing = || HmacSigningLayer::new(h.endpoint.clone(), h.key.clone());
    let other_key = AccessKey::from_bytes(b"another key".to_vec());
    let now = SystemTime::now();
    let bad_sig = r#"{"error":"bad_signature","message":"the signature does not match"}"#;

    type Tamper = Box<dyn FnOnce(&mut http::request::Parts, &mut Bytes)>;
    let cases: Vec<(&str, HmacSigningLayer, Tamper, &str)> = vec![
        ("method", signing(), Box::new(|p, _| p.method = http::Method::PUT), bad_sig),
        (
            "path",
            signing(),
            Box::new(|p, _| p.uri = format!("http://{}/b?q=1", p.uri.authority().unwrap()).parse().unwrap()),
            bad_sig,
        ),
        (
            "query",
            signing(),
            Box::new(|p, _| p.uri = format!("http://{}/a?q=2", p.uri.authority().unwrap()).parse().unwrap()),
            bad_sig,
        ),
        (
            "body",
            signing(),
            Box::new(|_, b| *b = Bytes::from_static(b"{\"x\":2}")),
            r#"{"error":"body_hash_mismatch","message":"the body does not match `x-ms-content-sha256`"}"#,
        ),
        (
            "content hash header",
            signing(),
            Box::new(|p, b| {
                *b = Bytes::from_static(b"{\"x\":2}");
                p.headers.insert("x-ms-content-sha256", ContentHash::of(b"{\"x\":2}").as_str().parse().unwrap());
            }),
            bad_sig,
        ),
        (
            "date",
            signing(),
            Box::new(move |p, _| {
                let date = httpdate::fmt_http_date(now + Duration::from_secs(1));
                p.headers.insert("x-ms-date", date.parse().unwrap());
            }),
            bad_sig,
        ),
        ("key", HmacSigningLayer::new(h.endpoint.clone(), other_key), Box::new(|_, _| {}), bad_sig),
        (
            "host signed for another endpoint",
            HmacSigningLayer::new(Endpoint::parse("http://127.0.0.1:1/").unwrap(), h.key.clone())
                .allow_list(AllowList::empty().allow_host(&h.server.addr.to_string()).unwrap()),
            Box::new(|_, _| {}),
            r#"{"error":"host_mismatch","message":"`x-ms-host` does not name this endpoint"}"#,
        ),
        (
            "x-ms-host removed from a cross-host request",
            HmacSigningLayer::new(Endpoint::parse("http://127.0.0.1:1/").unwrap(), h.key.clone())
                .allow_list(AllowList::empty().allow_host(&h.server.addr.to_string()).unwrap()),
            Box::new(|p, _| {
                p.headers.remove("x-ms-host");
            }),
            bad_sig,
        ),
        (
            "skew in the past",
            signing().with_clock(move || now - Duration::from_secs(16 * 60)),
            Box::new(|_, _| {}),
            r#"{"error":"date_skew","message":"the request date is outside the allowed clock skew"}"#,
        ),
        (
            "skew in the future",
            signing().with_clock(move || now + Duration::from_secs(16 * 60)),
            Box::new(|_, _| {}),
            r#"{"error":"date_skew","message":"the request date is outside the allowed clock skew"}"#,
        ),
        (
            "missing authorization",
            signing(),
            Box::new(|p, _| {
                p.headers.remove("authorization");
            }),
            r#"{"error":"missing_header","message":"missing header `authorization`"}"#,
        ),
        (
            "missing x-ms-date",
            signing(),
            Box::new(|p, _| {
                p.headers.remove("x-ms-date");
            }),
            r#"{"error":"missing_header","message":"missing header `x-ms-date`"}"#,
        ),
        (
            "missing x-ms-content-sha256",
            signing(),
            Box::new(|p, _| {
                p.headers.remove("x-ms-content-sha256");
            }),
            r#"{"error":"missing_header","message":"missing header `x-ms-content-sha256`"}"#,
        ),
        (
            "malformed authorization",
            signing(),
            Box::new(|p, _| {
                p.headers.insert("authorization", "HMAC-SHA256 Signature=abc".parse().unwrap());
            }),
            r#"{"error":"malformed_authorization","message":"malformed `authorization` header"}"#,
        ),
        (
            "malformed date",
            signing(),
            Box::new(|p, _| {
                p.headers.insert("x-ms-date", "yesterday".parse().unwrap());
            }),
            r#"{"error":"bad_date","message":"the request date is not an HTTP date"}"#,
        ),
    ];
    for (name, layer, tamper, expected) in cases {
        let (status, headers, text) = send_tampered(&h, layer, "POST", "/a?q=1", b"{\"x\":1}", tamper).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {text}");
        assert_eq!(text, expected, "{name}");
        assert_eq!(headers["content-type"], "application/json", "{name}");
        assert_eq!(headers["www-authenticate"], "HMAC-SHA256", "{name}");
    }
    assert_eq!(h.calls.load(Ordering::SeqCst), 0, "no tampered request reached the inner service");

    // The untampered control case passes, so each rejection above is due to its tampering alone.
    let (status, _, text) = send_tampered(&h, signing(), "POST", "/a?q=1", b"{\"x\":1}", |_, _| {}).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn legacy_date_requests_verify() {
    let h = harness().await;
    let layer = HmacSigningLayer::new(h.endpoint.clone(), h.key.clone()).legacy_date_header();
    let (status, _, text) = send_tampered(&h, layer, "GET", "/recording/download/x", b"", |p, _| {
        assert!(p.headers.get("x-ms-date").is_none());
        assert!(p.headers.get("date").is_some());
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn oversized_verified_bodies_get_413() {
    let key = AccessKey::from_base64(KEY_B64).unwrap();
    let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
    let body = Bytes::from(vec![1u8; 2048]);
    let request = Request::post("https://contoso.communication.azure.com/x").body(Full::new(body)).unwrap();
    let signed = ServiceBuilder::new()
        .layer(HmacSigningLayer::new(endpoint.clone(), key.clone()))
        .service(capture())
        .oneshot(request)
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let response = ServiceBuilder::new()
        .layer(HmacVerifyLayer::new(key, endpoint.authority()).body_limit(1024))
        .service(counting_ok(calls.clone()))
        .oneshot(signed)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, r#"{"error":"body_too_large","message":"the request body is too large"}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn refused_destinations_never_reach_the_inner_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = {
        let calls = calls.clone();
        service_fn(move |request: Request<Empty<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Infallible>(request) }
        })
    };
    let cs: ConnectionString =
        format!("endpoint=https://contoso.communication.azure.com/;accesskey={KEY_B64}").parse().unwrap();
    let client = ServiceBuilder::new().layer(HmacSigningLayer::from_connection_string(&cs)).service(counted);
    let cases = [
        (
            "https://attacker.example/steal",
            RefusedReason::NotAllowed,
            "host `attacker.example` is not on the allow-list",
        ),
        (
            "https://169.254.169.254/metadata",
            RefusedReason::IpLiteral,
            "host `169.254.169.254` is an IP literal or loopback host that was not allowed by name",
        ),
        (
            "https://[::1]:8080/x",
            RefusedReason::IpLiteral,
            "host `[::1]` is an IP literal or loopback host that was not allowed by name",
        ),
        (
            "http://127.0.0.1:9000/x",
            RefusedReason::IpLiteral,
            "host `127.0.0.1` is an IP literal or loopback host that was not allowed by name",
        ),
        (
            "http://eu2.asm.skype.com/x",
            RefusedReason::Scheme,
            "host `eu2.asm.skype.com` is refused over a scheme other than https",
        ),
        (
            "http://contoso.communication.azure.com/x",
            RefusedReason::NotAllowed,
            "host `contoso.communication.azure.com` is not on the allow-list",
        ),
        (
            "https://contoso.communication.azure.com.attacker.example/x",
            RefusedReason::NotAllowed,
            "host `contoso.communication.azure.com.attacker.example` is not on the allow-list",
        ),
        ("/relative/only", RefusedReason::NoHost, "destination has no host"),
    ];
    for (url, reason, message) in cases {
        let request = Request::get(url).body(Empty::new()).unwrap();
        let error = client.clone().oneshot(request).await.unwrap_err();
        assert!(error.is_refused(), "{url}");
        assert_eq!(error.refusal().unwrap().reason(), reason, "{url}");
        assert_eq!(std::error::Error::source(&error).unwrap().to_string(), message, "{url}");
        assert!(!error.to_string().contains(message), "{error} repeats its source");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the inner service was never called");

    // The endpoint itself and default storage hosts do reach it.
    for url in ["https://contoso.communication.azure.com/x", "https://eu2.asm.skype.com/x"] {
        client.clone().oneshot(Request::get(url).body(Empty::new()).unwrap()).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn debug_output_never_contains_key_material() {
    let secret = b"super secret key bytes 0123456789";
    let key = AccessKey::from_bytes(secret.to_vec());
    let b64 = key.to_base64();
    let cs: ConnectionString = format!("endpoint=https://a.communication.azure.com/;accesskey={b64}").parse().unwrap();
    let signing = HmacSigningLayer::from_connection_string(&cs);
    let verify = HmacVerifyLayer::new(key.clone(), "a.communication.azure.com");
    let echo = service_fn(|request: Request<Empty<Bytes>>| async move { Ok::<_, Infallible>(request) });
    let service = ServiceBuilder::new().layer(signing.clone()).service(echo);
    let verify_service = ServiceBuilder::new().layer(verify.clone()).service(echo);
    let printed = [
        format!("{key:?}"),
        format!("{cs:?}"),
        format!("{cs:#?}"),
        format!("{signing:?}"),
        format!("{signing:#?}"),
        format!("{verify:?}"),
        format!("{verify:#?}"),
        format!("{service:?}"),
        format!("{verify_service:?}"),
    ];
    for text in printed {
        assert!(!text.contains(&b64), "{text}");
        assert!(!text.contains("super secret"), "{text}");
        let raw: Vec<String> = secret.iter().map(|b| b.to_string()).collect();
        assert!(!text.contains(&raw[..8].join(", ")), "raw key bytes in {text}");
    }
}
