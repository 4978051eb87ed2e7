//! The Call Automation recording client against a loopback server that plays ACS: every request's method, path,
//! query, headers (signature and repeatability included) and body, compared with the API's official examples; the
//! answers, the errors and the retries. Waits are measured on paused tokio time with an in-process service.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use acs_recording::calling::{
    CallLocator, CommunicationIdentifier, ErrorKind, ExternalStorage, Operation, RecordingClient, RecordingStatus,
    StartRecording,
};
use acs_recording::credential::{AccessKey, ConnectionString, Endpoint};
use acs_recording::download::RetryPolicy;
use acs_recording::recording::{
    RecordingChannelType, RecordingContentType, RecordingFormatType, RecordingKind, RecordingState,
};
use acs_recording::signing::{
    compute_signature, content_hash, string_to_sign, BearerTokenLayer, HmacSigningLayer, ACS_SCOPE,
};
use acs_recording::HttpClient;
use axum::extract::State;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{service_fn, Layer};

use crate::support::{fixture, TestServer};

const KEY_B64: &str = "YWNzLXJlY29yZGluZyBmaXhlZCB0ZXN0IGtleSwgbm90IGEgc2VjcmV0";
/// The signing clock: Wed, 13 Apr 2022 18:09:12 GMT.
const SIGNED_AT: u64 = 1_649_873_352;
const RECORDING_ID: &str =
    "eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI4YjlkYmFkMS0xOGFiLTRmODYtYWQ0Yy1jNzVmODA5ODA3NmUiLCJSZXNvdXJjZVNwZWNpZmljSWQiOiI4YjlkYmFkMS0xOGFiLTRmODYtYWQ0Yy1jNzVmODA5ODA3NmUifQ==";
const EMPTY_SHA256: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

fn signed_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(SIGNED_AT)
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// One scripted answer: status, headers, body.
type Scripted = (StatusCode, Vec<(&'static str, String)>, String);

/// What the server answers, in order, and what it was sent.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn answer(self, status: u16, headers: &[(&'static str, &str)], body: &str) -> Self {
        let headers = headers.iter().map(|(name, value)| (*name, value.to_string())).collect();
        self.answers.lock().unwrap().push_back((StatusCode::from_u16(status).unwrap(), headers, body.to_owned()));
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn play_acs(State(script): State<Script>, request: axum::extract::Request) -> Response<axum::body::Body> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path_and_query = parts.uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default();
    script.seen.lock().unwrap().push(Seen { method: parts.method, path_and_query, headers: parts.headers, body });
    let (status, headers, body) = script.answers.lock().unwrap().pop_front().expect("an answer left in the script");
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    if !body.is_empty() {
        response = response.header("content-type", "application/json");
    }
    response.body(axum::body::Body::from(body)).unwrap()
}

/// Waits short enough for a test on the wall clock.
fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(20))
}

/// A loopback ACS answering `script`, and a client that signs with HMAC through hyper-util's client.
async fn acs(script: &Script) -> (TestServer, RecordingClient<impl HttpClient<Full<Bytes>>>) {
    let app = axum::Router::new().fallback(play_acs).with_state(script.clone());
    let server = TestServer::axum(app).await;
    let cs: ConnectionString =
        format!("endpoint=http://127.0.0.1:{}/;accesskey={KEY_B64}", server.addr.port()).parse().unwrap();
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let signed = HmacSigningLayer::from_connection_string(&cs).with_clock(signed_at).layer(http);
    let client = RecordingClient::new(signed, cs.endpoint().clone()).with_retry_policy(quick()).with_clock(signed_at);
    (server, client)
}

/// Checks the HMAC headers of `seen` as the service recomputes them.
fn assert_signed(seen: &Seen, port: u16) {
    let date = &seen.headers["x-ms-date"];
    assert_eq!(date, "Wed, 13 Apr 2022 18:09:12 GMT");
    let hash = content_hash(&seen.body);
    assert_eq!(seen.headers["x-ms-content-sha256"], hash.as_str());
    let sts = string_to_sign(
        seen.method.as_str(),
        &seen.path_and_query,
        date.to_str().unwrap(),
        &format!("127.0.0.1:{port}"),
        &hash,
    );
    let signature = compute_signature(&AccessKey::from_base64(KEY_B64).unwrap(), &sts);
    assert_eq!(
        seen.headers["authorization"],
        format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}").as_str()
    );
}

fn assert_repeatable(seen: &Seen) -> String {
    let id = seen.headers["repeatability-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(&id[14..15], "4", "{id}");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)), "{id}");
    assert_eq!(seen.headers["repeatability-first-sent"], "Wed, 13 Apr 2022 18:09:12 GMT");
    id
}

fn official(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// The official start example's request without its `null` options (which mean "unset"), and its answers.
fn official_start() -> (Value, Value) {
    let example = official("official_call_recording_start_2025-06-15.json");
    let mut request = example["parameters"]["startCallRecording"].clone();
    request.as_object_mut().unwrap().retain(|_, value| !value.is_null());
    (request, example["responses"].clone())
}

fn the_official_start_request() -> StartRecording {
    StartRecording::call(CallLocator::server_call(
        "aHR0cHM6Ly9za3lwZS5uZXQvYXBpL3YyL2NwL3NreXBlLm5ldC9jb252LzFQd3ZKMTcxZFI/aT0wJmU9NzU3NzA4NzU3OQ==",
    ))
    .state_callback("https://contoso.communications.azure.com/callback")
    .pause_on_start(true)
    .storage(ExternalStorage::azure_blob("https://contoso.blob.core.windows.net/recordings"))
}

#[tokio::test]
async fn start_sends_the_official_example_signed_and_repeatable_and_reads_its_answer() {
    let (expected, answers) = official_start();
    let script = Script::default().answer(200, &[], &answers["200"]["body"].to_string());
    let (server, client) = acs(&script).await;

    let status = client.start(&the_official_start_request()).await.unwrap();
    assert_eq!(status, RecordingStatus::new(RECORDING_ID, RecordingState::Inactive, RecordingKind::TeamsCompliance));

    let seen = script.seen();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path_and_query, "/calling/recordings?api-version=2025-06-15");
    assert_eq!(sent.headers["content-type"], "application/json");
    assert_eq!(sent.headers["accept"], "application/json");
    assert_eq!(sent.headers["host"], format!("127.0.0.1:{}", server.addr.port()).as_str());
    assert_eq!(serde_json::from_slice::<Value>(&sent.body).unwrap(), expected);
    assert_eq!(
        sent.body,
        concat!(
            r#"{"callLocator":{"serverCallId":"aHR0cHM6Ly9za3lwZS5uZXQvYXBpL3YyL2NwL3NreXBlLm5ldC9jb252LzFQd3ZKMTcxZFI/aT0wJmU9NzU3NzA4NzU3OQ==","kind":"serverCallLocator"},"#,
            r#""recordingStateCallbackUri":"https://contoso.communications.azure.com/callback","pauseOnStart":true,"#,
            r#""externalStorage":{"recordingStorageKind":"azureBlobStorage","recordingDestinationContainerUrl":"https://contoso.blob.core.windows.net/recordings"}}"#
        )
    );
    assert_signed(sent, server.addr.port());
    assert_repeatable(sent);
}

#[tokio::test]
async fn a_start_answered_202_is_a_success_with_the_official_answer() {
    let (_, answers) = official_start();
    let script = Script::default().answer(202, &[], &answers["202"]["body"].to_string());
    let (_server, client) = acs(&script).await;
    let status = client.start(&the_official_start_request()).await.unwrap();
    assert_eq!(
        status,
        RecordingStatus::new(RECORDING_ID, RecordingState::Inactive, RecordingKind::AzureCommunicationServices)
    );
}

#[tokio::test]
async fn every_start_option_is_sent_under_the_api_field_name() {
    let script = Script::default().answer(200, &[], r#"{"recordingId":"r1","recordingState":"active"}"#);
    let (_server, client) = acs(&script).await;
    let mut teams_user = CommunicationIdentifier::microsoft_teams_user("6a2b1c3d").with_raw_id("8:orgid:6a2b1c3d");
    teams_user.microsoft_teams_user.as_mut().unwrap().cloud = Some("public".into());
    let start = StartRecording::call_connection("421f0b00-2f3a-4c27-9a5f-8d4c3b2a1e0f")
        .state_callback("https://app.example/recording")
        .content(RecordingContentType::AudioVideo)
        .channels(RecordingChannelType::Unmixed)
        .format(RecordingFormatType::Mp4)
        .participant_order([
            CommunicationIdentifier::communication_user("8:acs:r_u1"),
            CommunicationIdentifier::phone_number("+14255550123"),
        ])
        .channel_affinity(0, teams_user)
        .channel_affinity(1, CommunicationIdentifier::microsoft_teams_app("28:app"))
        .channel_affinity(2, CommunicationIdentifier::teams_extension_user("u2", "t2"))
        .pause_on_start(false)
        .storage(ExternalStorage::azure_communication_services());

    let status = client.start(&start).await.unwrap();
    assert_eq!(status.recording_state, Some(RecordingState::Active));
    assert_eq!(status.recording_kind, None);

    let sent = &script.seen()[0];
    assert_eq!(
        std::str::from_utf8(&sent.body).unwrap(),
        concat!(
            r#"{"callConnectionId":"421f0b00-2f3a-4c27-9a5f-8d4c3b2a1e0f","#,
            r#""recordingStateCallbackUri":"https://app.example/recording","#,
            r#""recordingContentType":"audioVideo","recordingChannelType":"unmixed","recordingFormatType":"mp4","#,
            r#""audioChannelParticipantOrdering":["#,
            r#"{"kind":"communicationUser","communicationUser":{"id":"8:acs:r_u1"}},"#,
            r#"{"kind":"phoneNumber","phoneNumber":{"value":"+14255550123"}}],"#,
            r#""channelAffinity":["#,
            r#"{"channel":0,"participant":{"rawId":"8:orgid:6a2b1c3d","kind":"microsoftTeamsUser","microsoftTeamsUser":{"userId":"6a2b1c3d","cloud":"public"}}},"#,
            r#"{"channel":1,"participant":{"kind":"microsoftTeamsApp","microsoftTeamsApp":{"appId":"28:app"}}},"#,
            r#"{"channel":2,"participant":{"kind":"teamsExtensionUser","teamsExtensionUser":{"userId":"u2","tenantId":"t2"}}}],"#,
            r#""pauseOnStart":false,"#,
            r#""externalStorage":{"recordingStorageKind":"azureCommunicationServices"}}"#
        )
    );
}

#[tokio::test]
async fn a_start_retried_after_503_sends_the_same_repeatability_headers_and_a_new_start_new_ones() {
    let script = Script::default()
        .answer(503, &[("retry-after", "0")], r#"{"error":{"code":"ServiceUnavailable","message":"busy"}}"#)
        .answer(200, &[], r#"{"recordingId":"r1","recordingState":"active"}"#)
        .answer(200, &[], r#"{"recordingId":"r2","recordingState":"active"}"#);
    let (server, client) = acs(&script).await;
    let start = StartRecording::call(CallLocator::group_call("b6a2f7e0-4c1d-4f0e-9b1a-2c3d4e5f6a7b"));

    assert_eq!(client.start(&start).await.unwrap().recording_id.as_deref(), Some("r1"));
    assert_eq!(client.start(&start).await.unwrap().recording_id.as_deref(), Some("r2"));

    let seen = script.seen();
    assert_eq!(seen.len(), 3);
    let first = assert_repeatable(&seen[0]);
    assert_eq!(assert_repeatable(&seen[1]), first, "a retry is the same request");
    assert_ne!(assert_repeatable(&seen[2]), first, "another start is another request");
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(
        seen[0].body,
        r#"{"callLocator":{"groupCallId":"b6a2f7e0-4c1d-4f0e-9b1a-2c3d4e5f6a7b","kind":"groupCallLocator"}}"#
    );
    for sent in &seen {
        assert_signed(sent, server.addr.port());
    }
}

#[tokio::test]
async fn pause_and_resume_post_nothing_to_the_recording_and_202_is_their_success() {
    let script = Script::default().answer(202, &[], "").answer(202, &[], "");
    let (server, client) = acs(&script).await;
    client.pause(RECORDING_ID).await.unwrap();
    client.resume(RECORDING_ID).await.unwrap();

    let seen = script.seen();
    let encoded = RECORDING_ID.replace('=', "%3D");
    for (sent, action) in seen.iter().zip(["pause", "resume"]) {
        assert_eq!(sent.method, Method::POST);
        assert_eq!(sent.path_and_query, format!("/calling/recordings/{encoded}:{action}?api-version=2025-06-15"));
        assert!(sent.body.is_empty());
        assert_eq!(sent.headers["content-length"], "0");
        assert!(!sent.headers.contains_key("content-type"));
        assert_eq!(sent.headers["x-ms-content-sha256"], EMPTY_SHA256);
        assert_signed(sent, server.addr.port());
        assert_repeatable(sent);
    }
}

#[tokio::test]
async fn stop_deletes_the_recording_and_204_is_its_success() {
    let script = Script::default().answer(204, &[], "");
    let (server, client) = acs(&script).await;
    client.stop("rec/1+2").await.unwrap();

    let sent = &script.seen()[0];
    assert_eq!(sent.method, Method::DELETE);
    assert_eq!(sent.path_and_query, "/calling/recordings/rec%2F1%2B2?api-version=2025-06-15");
    assert!(!sent.headers.contains_key("repeatability-request-id"));
    assert_signed(sent, server.addr.port());
}

#[tokio::test]
async fn state_gets_the_recording_and_reads_the_official_example() {
    let example = official("official_call_recording_get_2025-06-15.json");
    let script = Script::default().answer(200, &[], &example["responses"]["200"]["body"].to_string());
    let (server, client) = acs(&script).await;

    let status = client.state(RECORDING_ID).await.unwrap();
    assert_eq!(status.recording_id.as_deref(), Some(RECORDING_ID));
    assert_eq!(status.recording_state, Some(RecordingState::Inactive));
    assert_eq!(status.recording_kind, None);

    let sent = &script.seen()[0];
    assert_eq!(sent.method, Method::GET);
    assert_eq!(
        sent.path_and_query,
        format!("/calling/recordings/{}?api-version=2025-06-15", RECORDING_ID.replace('=', "%3D"))
    );
    assert_signed(sent, server.addr.port());
}

#[tokio::test]
async fn not_found_and_conflict_are_told_apart_with_the_service_error_and_not_retried() {
    let script = Script::default()
        .answer(404, &[], r#"{"error":{"code":"8522","message":"Recording not found."}}"#)
        .answer(409, &[], r#"{"error":{"code":"8532","message":"Recording already in progress."}}"#);
    let (_server, client) = acs(&script).await;

    let missing = client.resume("r1").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(missing.is_not_found() && !missing.is_retryable());
    assert_eq!(missing.operation(), Operation::Resume);
    assert_eq!(missing.status_code(), Some(StatusCode::NOT_FOUND));
    assert_eq!(missing.attempts(), 1);
    assert_eq!(missing.service_error().unwrap().message, "Recording not found.");
    assert_eq!(missing.to_string(), "resume recording answered 404 not found (8522)");

    let start = StartRecording::call(CallLocator::server_call("s1"));
    let conflict = client.start(&start).await.unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert!(conflict.is_conflict());
    assert_eq!(conflict.service_error().unwrap().code, "8532");
    assert_eq!(conflict.to_string(), "start recording answered 409 conflict (8532)");
    assert_eq!(script.seen().len(), 2);
}

#[tokio::test]
async fn a_bad_request_is_final_and_an_error_without_a_body_has_no_code() {
    let script = Script::default().answer(400, &[], "");
    let (_server, client) = acs(&script).await;
    let error = client.pause("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert!(error.service_error().is_none());
    assert_eq!(error.to_string(), "pause recording answered 400 bad request");
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn transient_statuses_are_retried_until_the_attempts_run_out() {
    let script = Script::default().answer(500, &[], "").answer(429, &[], "").answer(408, &[], "");
    let (_server, client) = acs(&script).await;
    let error = client.stop("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert_eq!(error.attempts(), 3);
    assert!(error.is_retryable());
    assert_eq!(error.to_string(), "stop recording answered 408 request timeout after 3 attempts");
    assert_eq!(script.seen().len(), 3);
}

#[tokio::test]
async fn an_unreadable_answer_is_invalid_and_not_retried() {
    let script = Script::default().answer(200, &[], "not json");
    let (_server, client) = acs(&script).await;
    let error = client.state("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidAnswer);
    assert_eq!(error.to_string(), "get recording state got an answer it could not read");
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn nothing_secret_shows_in_messages_or_debug() {
    let script = Script::default().answer(503, &[], "").answer(503, &[], "").answer(503, &[], "");
    let (_server, client) = acs(&script).await;
    let start = StartRecording::call(CallLocator::server_call("s1"))
        .state_callback("https://app.example/cb?code=CALLBACK-SECRET")
        .storage(ExternalStorage::azure_blob("https://contoso.blob.core.windows.net/rec?sig=SAS-SECRET"));
    let error = client.start(&start).await.unwrap_err();
    let shown = format!("{error} {error:?} {client:?} {start:?}");
    for secret in [KEY_B64, "CALLBACK-SECRET", "SAS-SECRET", "api-version", "Signature="] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

// Waits, on paused tokio time: the "ACS" is an in-process service, so that no socket races the clock.

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

/// A client over a service that answers `answers` in order, counting the requests.
fn scripted(answers: Vec<Answer>) -> (RecordingClient<impl HttpClient<Full<Bytes>>>, Arc<AtomicUsize>) {
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let service = service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let answer = answers.lock().unwrap().pop_front().expect("an answer left");
        async move { answer }
    });
    let endpoint = Endpoint::parse("https://contoso.communication.azure.com").unwrap();
    let policy =
        RetryPolicy::default().initial_backoff(Duration::from_millis(100)).max_backoff(Duration::from_secs(30));
    (RecordingClient::new(service, endpoint).with_retry_policy(policy).with_clock(signed_at), calls)
}

fn status(code: u16, retry_after: Option<&str>) -> Answer {
    let mut response = Response::builder().status(code);
    if let Some(value) = retry_after {
        response = response.header("retry-after", value);
    }
    Ok(response.body(Full::new(Bytes::new())).unwrap())
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_waited_before_the_next_attempt() {
    let (client, calls) = scripted(vec![status(429, Some("7")), status(202, None)]);
    let started = tokio::time::Instant::now();
    client.pause("r1").await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_read_against_the_clock() {
    // The clock says 18:09:12; the server asks to come back at 18:09:17.
    let (client, calls) = scripted(vec![status(503, Some("Wed, 13 Apr 2022 18:09:17 GMT")), status(204, None)]);
    let started = tokio::time::Instant::now();
    client.stop("r1").await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_longest_backoff_is_cut_to_it() {
    let (client, _) = scripted(vec![status(503, Some("3600")), status(202, None)]);
    let started = tokio::time::Instant::now();
    client.resume("r1").await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn the_time_budget_ends_the_retries_before_a_wait_that_would_pass_it() {
    let (client, calls) = scripted(vec![status(503, Some("20")), status(503, Some("20")), status(202, None)]);
    let client = client.with_retry_policy(
        RetryPolicy::default().max_backoff(Duration::from_secs(30)).max_total(Duration::from_secs(30)),
    );
    let error = client.pause("r1").await.unwrap_err();
    assert_eq!(error.to_string(), "pause recording answered 503 service unavailable after 2 attempts");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn connection_errors_are_retried_and_reported_as_transport_when_they_persist() {
    let refused = || Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
    let (client, calls) = scripted(vec![refused(), status(204, None)]);
    client.stop("r1").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (client, calls) = scripted(vec![refused(), refused(), refused()]);
    let client = client.with_retry_policy(RetryPolicy::default().max_attempts(3));
    let error = client.stop("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert!(error.is_retryable());
    assert_eq!(error.status_code(), None);
    assert_eq!(error.to_string(), "stop recording got no answer after 3 attempts");
    assert_eq!(std::error::Error::source(&error).unwrap().to_string(), "connection refused");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_start_naming_no_call_or_two_is_not_sent() {
    let (client, calls) = scripted(vec![]);
    let mut both = StartRecording::call(CallLocator::room("room-1"));
    both.call_connection_id = Some("c1".into());
    for start in [StartRecording::default(), both] {
        let error = client.start(&start).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert_eq!(error.to_string(), "start recording could not be built");
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            "a start request names the call by a call locator or by a call connection id, one of the two"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_host_the_signing_layer_refuses_is_final() {
    let cs: ConnectionString =
        format!("endpoint=https://contoso.communication.azure.com/;accesskey={KEY_B64}").parse().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let inner = service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    });
    let signed = HmacSigningLayer::from_connection_string(&cs).layer(inner);
    let client = RecordingClient::new(signed, Endpoint::parse("https://attacker.example").unwrap());
    let error = client.stop("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert_eq!(error.attempts(), 1);
    assert_eq!(error.to_string(), "stop recording could not be signed");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// Hands out `entra-token-<n>`, valid for an hour of the signing clock, or fails when `fail` is set.
#[derive(Debug, Default)]
struct FakeCredential {
    calls: AtomicUsize,
    fail: bool,
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, [ACS_SCOPE]);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail {
            return Err(azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, "no identity here"));
        }
        let expires = OffsetDateTime::from_unix_timestamp(SIGNED_AT as i64 + 3600).unwrap();
        Ok(AccessToken::new(format!("entra-token-{n}"), expires))
    }
}

#[tokio::test]
async fn the_client_runs_inside_the_bearer_token_layer() {
    let script =
        Script::default().answer(200, &[], r#"{"recordingId":"r1","recordingState":"active"}"#).answer(202, &[], "");
    let app = axum::Router::new().fallback(play_acs).with_state(script.clone());
    let server = TestServer::axum(app).await;
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{}/", server.addr.port())).unwrap();
    let credential = Arc::new(FakeCredential::default());
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let entra = BearerTokenLayer::new(endpoint.clone(), credential.clone()).with_clock(signed_at).layer(http);
    let client = RecordingClient::new(entra, endpoint).with_retry_policy(quick());

    client.start(&StartRecording::call(CallLocator::server_call("s1"))).await.unwrap();
    client.pause("r1").await.unwrap();

    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    for sent in &seen {
        assert_eq!(sent.headers["authorization"], "Bearer entra-token-1");
        assert!(!sent.headers.contains_key("x-ms-content-sha256"));
        assert_eq!(sent.headers["repeatability-request-id"].len(), 36);
    }
    assert_eq!(seen[0].body, r#"{"callLocator":{"serverCallId":"s1","kind":"serverCallLocator"}}"#);
    assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_credential_that_gives_no_token_is_final() {
    let (inner, calls) = {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let inner = service_fn(move |_: Request<Full<Bytes>>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
        (inner, calls)
    };
    let endpoint = Endpoint::parse("https://contoso.communication.azure.com").unwrap();
    let credential = Arc::new(FakeCredential { fail: true, ..FakeCredential::default() });
    let entra = BearerTokenLayer::new(endpoint.clone(), credential).with_clock(signed_at).layer(inner);
    let error = RecordingClient::new(entra, endpoint).state("r1").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert_eq!(error.to_string(), "get recording state could not be signed");
    assert_eq!(error.attempts(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
