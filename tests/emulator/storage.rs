//! The emulator's storage over HTTP: signatures, Range, ETag, preconditions, HEAD, DELETE and the legacy paths.

use acs_recording::emulator::{Emulator, RecordingSpec};
use acs_recording::signing::{HmacSigning, HmacSigningLayer};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt};

type Signed = HmacSigning<Client<HttpConnector, Empty<Bytes>>>;

fn client(emulator: &Emulator) -> Signed {
    HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .allow_list(emulator.allow_list())
        .layer(Client::builder(TokioExecutor::new()).build_http())
}

async fn send(
    client: &Signed,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client.clone().oneshot(request.body(Empty::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn ranges_are_served_with_content_range() {
    let emulator = Emulator::start().await.unwrap();
    emulator.storage().put_document("d", b"0123456789".to_vec());
    let url = emulator.storage().content_location("d");
    let c = client(&emulator);
    let table: [(&str, u16, &str, Option<&str>); 6] = [
        ("bytes=0-", 206, "0123456789", Some("bytes 0-9/10")),
        ("bytes=3-", 206, "3456789", Some("bytes 3-9/10")),
        ("bytes=2-4", 206, "234", Some("bytes 2-4/10")),
        ("bytes=8-100", 206, "89", Some("bytes 8-9/10")),
        ("bytes=-3", 206, "789", Some("bytes 7-9/10")),
        ("bytes=10-", 416, "", Some("bytes */10")),
    ];
    for (range, status, body, content_range) in table {
        let (got, headers, bytes) = send(&c, Method::GET, &url, &[("range", range)]).await;
        assert_eq!(got.as_u16(), status, "{range}");
        assert_eq!(headers.get("content-range").map(|v| v.to_str().unwrap()), content_range, "{range}");
        if status == 206 {
            assert_eq!(&bytes[..], body.as_bytes(), "{range}");
            assert_eq!(headers["content-length"], body.len().to_string().as_str());
        }
    }
    let (status, headers, bytes) = send(&c, Method::GET, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(&bytes[..], b"0123456789");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(headers.contains_key("etag") && headers.contains_key("last-modified"));
}

#[tokio::test]
async fn if_match_head_and_delete_behave_like_storage() {
    let emulator = Emulator::start().await.unwrap();
    let info = emulator.storage().put_document("d", b"abc".to_vec());
    let url = emulator.storage().content_location("d");
    let c = client(&emulator);
    let (status, _, _) = send(&c, Method::GET, &url, &[("if-match", "\"0xother\"")]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _, bytes) = send(&c, Method::GET, &url, &[("if-match", info.etag.as_str())]).await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"abc"[..]));
    let (status, headers, bytes) = send(&c, Method::HEAD, &url, &[]).await;
    assert_eq!((status, bytes.len()), (StatusCode::OK, 0));
    assert_eq!(headers["content-length"], "3");
    assert_eq!(headers["etag"], info.etag.as_str());

    let delete = emulator.storage().delete_location("d");
    assert_eq!(send(&c, Method::DELETE, &delete, &[]).await.0, StatusCode::OK);
    assert_eq!(send(&c, Method::DELETE, &delete, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(send(&c, Method::GET, &url, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(send(&c, Method::GET, &emulator.storage().metadata_location("d"), &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_legacy_paths_serve_media_and_metadata_on_the_endpoint() {
    let emulator = Emulator::builder().chunk_limit(10_000).start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call", 25_000));
    let c = client(&emulator);
    let chunk = &stored.chunks[2];
    assert_eq!(chunk.end_reason, "SessionEnded");
    let endpoint = emulator.endpoint().url();
    let media = format!("{endpoint}recording/download/{}?api-version=2021-04-15-preview1", chunk.document_id);
    let (status, headers, bytes) = send(&c, Method::GET, &media, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/wav");
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), chunk.sha256);
    assert_eq!(&bytes[..4], b"RIFF");
    let metadata =
        format!("{endpoint}recording/download/{}/metadata?api-version=2021-04-15-preview1", chunk.document_id);
    let (status, _, bytes) = send(&c, Method::GET, &metadata, &[]).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["callId"], "call");
    assert_eq!(json["chunkIndex"], 2);
    assert_eq!(json["chunkDocumentId"], chunk.document_id.as_str());
}

#[tokio::test]
async fn unsigned_requests_get_401_and_are_logged() {
    let emulator = Emulator::start().await.unwrap();
    emulator.storage().put_document("d", b"abc".to_vec());
    let plain = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = plain.get(emulator.storage().content_location("d").parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 401);
    let log = emulator.storage().requests();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].method.clone(), log[0].status), (Method::GET, 401));
}

#[tokio::test]
async fn the_configured_bearer_token_is_accepted_beside_hmac_and_any_other_is_refused() {
    let emulator = Emulator::builder().bearer_token("test-token").start().await.unwrap();
    emulator.storage().put_document("d", b"abc".to_vec());
    let url = emulator.storage().content_location("d");
    let plain = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let get = |authorization: &'static str| {
        let request = Request::get(&url).header("authorization", authorization).body(Empty::new()).unwrap();
        let plain = plain.clone();
        async move {
            let response = plain.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
        }
    };

    let (status, _, body) = get("Bearer test-token").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"abc"[..]));

    let (status, headers, body) = get("Bearer guessed-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(body, r#"{"error":"bad_token","message":"the bearer token is not accepted"}"#);

    // HMAC keeps working on the same emulator.
    let (status, _, body) = send(&client(&emulator), Method::GET, &url, &[]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"abc"[..]));
    assert!(!format!("{emulator:?}").contains("test-token"));
}

#[tokio::test]
async fn without_a_configured_token_a_bearer_token_is_a_malformed_authorization() {
    let emulator = Emulator::start().await.unwrap();
    emulator.storage().put_document("d", b"abc".to_vec());
    let plain = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = Request::get(emulator.storage().content_location("d"))
        .header("authorization", "Bearer anything")
        .body(Empty::new())
        .unwrap();
    let response = plain.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"error":"malformed_authorization","message":"malformed `authorization` header"}"#);
}
