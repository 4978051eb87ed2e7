//! The Entra bearer-token layer: token caching and refresh on paused time, the 401 retry against a loopback
//! server, the allow-list, `x-ms-host`, redaction, and a recording downloaded from the emulator with a token.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{self, eventually};
use acs_recording::credential::Endpoint;
use acs_recording::signing::{AllowList, BearerTokenLayer, ErrorKind, ACS_SCOPE};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};

/// The wall clock of the layer and of the fake credential: tokens expire relative to it, and tokio's paused clock
/// moves the deadlines.
const WALL_SECS: u64 = 1_800_000_000;

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(WALL_SECS)
}

/// Hands out `secret-token-<n>` valid for `lifetime` from [`wall`], after `delay` of tokio time, counting calls.
#[derive(Debug)]
struct FakeCredential {
    calls: AtomicUsize,
    lifetime: Duration,
    delay: Duration,
    fail: AtomicBool,
}

impl FakeCredential {
    fn new(lifetime: Duration) -> Arc<Self> {
        Self::slow(lifetime, Duration::ZERO)
    }

    fn slow(lifetime: Duration, delay: Duration) -> Arc<Self> {
        Arc::new(Self { calls: AtomicUsize::new(0), lifetime, delay, fail: AtomicBool::new(false) })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, [ACS_SCOPE]);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, "no identity here"));
        }
        let expires = OffsetDateTime::from_unix_timestamp((WALL_SECS + self.lifetime.as_secs()) as i64).unwrap();
        Ok(AccessToken::new(format!("secret-token-{n}"), expires))
    }
}

const ENDPOINT: &str = "https://contoso.communication.azure.com/";
const STORAGE: &str = "https://eu.asm.skype.com/v1/objects/0-eu-d1/content/audio";

fn layer(credential: Arc<FakeCredential>) -> BearerTokenLayer {
    BearerTokenLayer::new(Endpoint::parse(ENDPOINT).unwrap(), credential).with_clock(wall)
}

type Seen = Arc<Mutex<Vec<http::request::Parts>>>;

/// A client that records each request's head and answers `status(authorization)`.
fn recording_client(
    status: fn(&str) -> StatusCode,
) -> (
    Seen,
    impl Service<Request<Empty<Bytes>>, Response = Response<String>, Error = Infallible, Future: Send>
        + Clone
        + std::fmt::Debug,
) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let client = service_fn(move |request: Request<Empty<Bytes>>| {
        let log = log.clone();
        async move {
            let (parts, _) = request.into_parts();
            let authorization = parts.headers.get("authorization").map_or("", |v| v.to_str().unwrap()).to_owned();
            log.lock().unwrap().push(parts);
            let mut response = Response::new(authorization.clone());
            *response.status_mut() = status(&authorization);
            Ok::<_, Infallible>(response)
        }
    });
    (seen, client)
}

fn get(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri).body(Empty::new()).unwrap()
}

fn always_ok(_: &str) -> StatusCode {
    StatusCode::OK
}

#[tokio::test(start_paused = true)]
async fn one_token_serves_every_request_until_its_refresh_window() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(always_ok);
    let client = layer(credential.clone()).layer(client);
    for _ in 0..10 {
        let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
        assert_eq!(response.into_body(), "Bearer secret-token-1");
    }
    tokio::time::advance(Duration::from_secs(54 * 60)).await;
    client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(credential.calls(), 1);
    assert_eq!(seen.lock().unwrap().len(), 11);
    assert!(seen.lock().unwrap().iter().all(|parts| parts.headers["authorization"].is_sensitive()));
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_without_a_token_ask_the_credential_once() {
    let credential = FakeCredential::slow(Duration::from_secs(3600), Duration::from_secs(2));
    let (_, client) = recording_client(always_ok);
    let client = layer(credential.clone()).layer(client);
    let requests: Vec<_> = (0..5).map(|_| tokio::spawn(client.clone().oneshot(get(STORAGE)))).collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap().into_body(), "Bearer secret-token-1");
    }
    assert_eq!(credential.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_refresh_runs_in_the_background_while_the_valid_token_keeps_serving() {
    // The second call to the credential takes 30 s; requests must not wait for it.
    let credential = FakeCredential::slow(Duration::from_secs(3600), Duration::from_secs(30));
    let (_, client) = recording_client(always_ok);
    let client = layer(credential.clone()).layer(client);
    client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(credential.calls(), 1);

    // 56 minutes in: inside the 5-minute window before expiry.
    tokio::time::advance(Duration::from_secs(56 * 60)).await;
    let started = Instant::now();
    for _ in 0..3 {
        let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
        assert_eq!(response.into_body(), "Bearer secret-token-1");
        tokio::task::yield_now().await; // lets the background refresh start
    }
    assert_eq!(Instant::now(), started, "no request waited for the refresh");
    assert_eq!(credential.calls(), 2, "one refresh, however many requests saw the window");

    tokio::time::sleep(Duration::from_secs(31)).await;
    let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(response.into_body(), "Bearer secret-token-2");
    assert_eq!(credential.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_refresh_keeps_the_valid_token_and_an_expired_one_is_not_sent() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(always_ok);
    let client = layer(credential.clone()).layer(client);
    client.clone().oneshot(get(STORAGE)).await.unwrap();
    credential.fail.store(true, Ordering::SeqCst);

    tokio::time::advance(Duration::from_secs(56 * 60)).await;
    let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(response.into_body(), "Bearer secret-token-1");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(credential.calls(), 2);
    assert_eq!(client.clone().oneshot(get(STORAGE)).await.unwrap().into_body(), "Bearer secret-token-1");

    // Past the expiry the request waits for a new token; the credential fails, so nothing is sent.
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    let sent = seen.lock().unwrap().len();
    let error = client.clone().oneshot(get(STORAGE)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert_eq!(error.to_string(), "the credential did not give an access token");
    assert_eq!(seen.lock().unwrap().len(), sent);
}

#[tokio::test(start_paused = true)]
async fn a_401_drops_the_token_and_retries_once_with_a_new_one() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(|authorization| {
        if authorization == "Bearer secret-token-1" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        }
    });
    let client = layer(credential.clone()).layer(client);
    let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.into_body(), "Bearer secret-token-2");
    assert_eq!(credential.calls(), 2);
    let seen = seen.lock().unwrap();
    let tokens: Vec<_> = seen.iter().map(|parts| parts.headers["authorization"].to_str().unwrap()).collect();
    assert_eq!(tokens, ["Bearer secret-token-1", "Bearer secret-token-2"]);
    assert!(seen.iter().all(|parts| parts.headers["x-ms-host"] == "contoso.communication.azure.com"));
}

#[tokio::test(start_paused = true)]
async fn a_second_401_is_returned_without_a_third_attempt() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(|_| StatusCode::UNAUTHORIZED);
    let client = layer(credential.clone()).layer(client);
    let response = client.clone().oneshot(get(STORAGE)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(credential.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_with_a_body_is_sent_once_and_its_401_returned() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let client = service_fn(move |_: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        async { Ok::<_, Infallible>(response) }
    });
    let client = layer(credential.clone()).layer(client);
    let request = Request::post(ENDPOINT).body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(credential.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_host_gets_no_token_and_no_request() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(always_ok);
    let client = layer(credential.clone()).layer(client);
    let table = [
        (
            "https://attacker.example/steal",
            "refused to sign a request to `attacker.example`: host `attacker.example` is not on the allow-list",
        ),
        (
            "http://eu.asm.skype.com/x",
            "refused to sign a request to `eu.asm.skype.com`: host `eu.asm.skype.com` is refused over a scheme other than https",
        ),
        (
            "https://10.0.0.1/x",
            "refused to sign a request to `10.0.0.1`: host `10.0.0.1` is an IP literal or loopback host that was not allowed by name",
        ),
        ("/relative", "refused to sign a request: destination has no host"),
    ];
    for (uri, message) in table {
        let error = client.clone().oneshot(get(uri)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RefusedHost, "{uri}");
        let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert_eq!(chain, message, "{uri}");
    }
    assert_eq!(credential.calls(), 0);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn x_ms_host_names_the_endpoint_on_storage_requests_only() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(always_ok);
    let client = layer(credential).layer(client);
    client.clone().oneshot(get(STORAGE)).await.unwrap();
    let mut stale =
        get("https://contoso.communication.azure.com/recording/download/d1?api-version=2021-04-15-preview1");
    stale.headers_mut().insert("x-ms-host", "elsewhere.example".parse().unwrap());
    client.clone().oneshot(stale).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].headers["x-ms-host"], "contoso.communication.azure.com");
    assert_eq!(seen[0].headers["authorization"], "Bearer secret-token-1");
    assert_eq!(seen[1].headers.get("x-ms-host"), None);
    assert_eq!(seen[1].headers["authorization"], "Bearer secret-token-1");
}

#[tokio::test(start_paused = true)]
async fn loopback_hosts_get_tokens_only_when_named() {
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let (seen, client) = recording_client(always_ok);
    let endpoint = Endpoint::parse("http://127.0.0.1:4000/").unwrap();
    let allow = AllowList::azure_defaults().allow_host("127.0.0.1:9000").unwrap();
    let client = BearerTokenLayer::new(endpoint, credential).allow_list(allow).with_clock(wall).layer(client);
    client.clone().oneshot(get("http://127.0.0.1:9000/v1/objects/d1/content/audio")).await.unwrap();
    let error = client.clone().oneshot(get("http://127.0.0.1:9001/v1/objects/d1")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RefusedHost);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(seen.lock().unwrap()[0].headers["x-ms-host"], "127.0.0.1:4000");
}

#[tokio::test(start_paused = true)]
async fn debug_never_shows_the_token() {
    let credential = FakeCredential::slow(Duration::from_secs(3600), Duration::from_secs(1));
    let (_, client) = recording_client(always_ok);
    let layer = layer(credential);
    let mut service = layer.layer(client);
    let waiting = service.call(get(STORAGE));
    assert_eq!(format!("{waiting:?}"), r#"BearerFuture { state: "acquiring" }"#);
    waiting.await.unwrap();
    let shown = format!("{layer:?} {service:?} {:?}", service.call(get(STORAGE)));
    assert!(!shown.contains("secret-token"), "{shown}");
    assert!(shown.contains(r#"token: Some("<redacted>")"#), "{shown}");
}

/// The same retry against a real server on loopback: it answers 401 to the first token and 200 to the next.
#[tokio::test]
async fn a_server_that_revoked_the_token_gets_the_request_again_with_a_new_one() {
    let authorizations: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = authorizations.clone();
    let app = axum::Router::new().route(
        "/recording/download/{id}",
        axum::routing::get(move |headers: http::HeaderMap| {
            let log = log.clone();
            async move {
                let authorization = headers["authorization"].to_str().unwrap().to_owned();
                log.lock().unwrap().push(authorization.clone());
                if authorization == "Bearer secret-token-1" {
                    (StatusCode::UNAUTHORIZED, "revoked")
                } else {
                    (StatusCode::OK, "media")
                }
            }
        }),
    );
    let server = support::TestServer::axum(app).await;
    let endpoint = Endpoint::parse(&format!("http://{}/", server.addr)).unwrap();
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let client =
        BearerTokenLayer::new(endpoint, credential.clone()).with_clock(wall).layer(support::client::<Empty<Bytes>>());
    let response = client.oneshot(get(&server.url("/recording/download/d1"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(body, "media");
    assert_eq!(*authorizations.lock().unwrap(), ["Bearer secret-token-1", "Bearer secret-token-2"]);
    assert_eq!(credential.calls(), 2);
}

/// The emulator accepts one test token as if Entra had issued it; the downloader goes through the bearer layer.
#[tokio::test]
async fn a_recording_downloads_from_the_emulator_with_a_bearer_token() {
    use acs_recording::download::{sink::WriterSink, ChunkDownloader};
    use acs_recording::emulator::{Emulator, RecordingSpec};
    use sha2::{Digest, Sha256};

    // The emulator knows the second token only, so the first request also exercises the 401 retry.
    let emulator = Emulator::builder().chunk_limit(64 * 1024).bearer_token("secret-token-2").start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call-1", 150_000));
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let client = BearerTokenLayer::new(emulator.endpoint().clone(), credential.clone())
        .allow_list(emulator.allow_list())
        .with_clock(wall)
        .layer(support::client::<Empty<Bytes>>());
    let downloader = ChunkDownloader::new(client, WriterSink::new(Vec::new()))
        .endpoint(emulator.endpoint().clone())
        .allow_list(emulator.allow_list());

    let mut first = stored.to_recording();
    first.chunks.truncate(1);
    let manifest = downloader.download(first).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, stored.chunks[0].sha256);
    let media = downloader.sink().clone();
    drop(downloader);
    let bytes = media.into_inner().expect("no download holds the sink");
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), stored.chunks[0].sha256);

    assert_eq!(credential.calls(), 2);
    let log = emulator.storage().requests();
    assert_eq!(log[0].status, 401, "the first token was refused");
    assert!(log[1..].iter().all(|request| request.status < 300), "{log:?}");
    let endpoint = emulator.endpoint().authority().to_owned();
    assert!(log.iter().all(|request| request.x_ms_host.as_deref() == Some(endpoint.as_str())), "{log:?}");
}

/// The library recorder with Entra instead of an access key: the same journal-before-200 and download, each
/// request carrying the token.
#[tokio::test]
async fn the_recorder_downloads_with_a_bearer_token_instead_of_the_key() {
    use acs_recording::credential::Credential;
    use acs_recording::download::sink::DirectorySink;
    use acs_recording::emulator::eventgrid::{recording_file_status_updated, EventGridPublisher};
    use acs_recording::emulator::{Emulator, RecordingSpec};
    use acs_recording::eventgrid::Schema;
    use acs_recording::journal::{FileJournal, JobState, Journal};
    use acs_recording::recorder::Recorder;

    let emulator = Emulator::builder().chunk_limit(64 * 1024).bearer_token("secret-token-1").start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call-1", 150_000));
    let out = tempfile::tempdir().unwrap();
    let credential = FakeCredential::new(Duration::from_secs(3600));
    let recorder = Recorder::builder(
        Credential::entra(emulator.endpoint().clone(), credential.clone()),
        support::client::<Empty<Bytes>>(),
        DirectorySink::new(out.path()),
        FileJournal::open(out.path().join(".journal")).unwrap(),
    )
    .allow_list(emulator.allow_list())
    .signing_clock(wall)
    .build();
    let journal = recorder.journal().clone();
    let server = support::TestServer::axum(axum::Router::new().route_service("/api/events", recorder.webhook())).await;
    let workers = recorder.spawn();

    let publisher = EventGridPublisher::new(&server.url("/api/events"), Schema::EventGrid).unwrap();
    assert!(publisher.deliver(&[recording_file_status_updated(&stored)]).await.is_delivered());
    let journal = &journal;
    let job = eventually(Duration::from_secs(30), "the job finishes", || async move {
        journal.list().await.unwrap().into_iter().find(|job| job.state == JobState::Done)
    })
    .await;
    for (progress, chunk) in job.chunks.iter().zip(&stored.chunks) {
        assert_eq!(progress.sha256, Some(chunk.sha256));
    }
    assert_eq!(credential.calls(), 1);
    assert!(emulator.storage().requests().iter().all(|request| request.status < 300));
    workers.shutdown().await.unwrap();
}
