//! Call Automation's recording operations on the emulator over HTTP: validation, errors in the service's shape,
//! the state machine, repeatability, the `RecordingStateChanged` callbacks and, on stop, the chunks announced on
//! Event Grid and downloadable.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{self, eventually, TestServer};
use acs_recording::credential::{AccessKey, ConnectionString};
use acs_recording::emulator::eventgrid::EventGridPublisher;
use acs_recording::emulator::Emulator;
use acs_recording::eventgrid::{Events, Schema};
use acs_recording::recording::{CallAutomationEvents, RecordingCallback, RecordingEvents, RecordingState};
use acs_recording::signing::{HmacSigning, HmacSigningLayer};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};

pub(crate) const API: &str = "api-version=2024-09-15";

type Signed = HmacSigning<Client<HttpConnector, Full<Bytes>>>;

pub(crate) fn signed(connection_string: &ConnectionString) -> Signed {
    HmacSigningLayer::from_connection_string(connection_string)
        .layer(Client::builder(TokioExecutor::new()).build_http())
}

/// One exchange with the emulator's endpoint, signed.
pub(crate) async fn call(
    client: &Signed,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = client.clone().oneshot(request.body(Full::new(body)).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

/// A loopback server keeping every body posted to it, in arrival order.
pub(crate) async fn receiver() -> (TestServer, Arc<Mutex<Vec<Bytes>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let server = TestServer::service(service_fn(move |request: Request<Incoming>| {
        let kept = kept.clone();
        async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            kept.lock().unwrap().push(body);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    }))
    .await;
    (server, bodies)
}

/// The states the callbacks received so far announced, typed by the crate's own callback parser.
pub(crate) async fn states(bodies: &Arc<Mutex<Vec<Bytes>>>) -> Vec<RecordingState> {
    let bodies = bodies.lock().unwrap().clone();
    let mut states = Vec::new();
    for body in bodies {
        let request = Request::post("/callbacks").header("content-type", "application/json").body(Full::new(body));
        let callbacks = CallAutomationEvents::extract(request.unwrap()).await.unwrap();
        assert_eq!(callbacks.rejected().count(), 0);
        for callback in callbacks.iter() {
            let RecordingCallback::StateChanged(changed) = callback.callback() else { panic!("a state change") };
            states.push(changed.state.clone().unwrap());
        }
    }
    states
}

fn start_body(server_call_id: &str) -> Value {
    json!({ "callLocator": { "kind": "serverCallLocator", "serverCallId": server_call_id } })
}

fn error_body(code: &str, message: &str) -> Bytes {
    Bytes::from(json!({ "error": { "code": code, "message": message } }).to_string())
}

async fn start(client: &Signed, emulator: &Emulator, body: Value) -> String {
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let (status, _, answer) = call(client, Method::POST, &url, &[], body).await;
    assert_eq!(status, StatusCode::OK, "{answer:?}");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    answer["recordingId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bad_signature_gets_401_in_call_automations_error_shape() {
    let emulator = Emulator::start().await.unwrap();
    let wrong = ConnectionString::new(emulator.endpoint().clone(), AccessKey::from_bytes(vec![7; 32]));
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let (status, headers, body) = call(&signed(&wrong), Method::POST, &url, &[], start_body("c1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, error_body("Unauthorized", "the signature does not match"));
    assert_eq!(headers["www-authenticate"], "HMAC-SHA256");
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn an_unsigned_request_gets_401_naming_the_missing_header() {
    let emulator = Emulator::start().await.unwrap();
    let url = format!("{}calling/recordings/r1?{API}", emulator.endpoint());
    let reply = support::send(Method::GET, &url, &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, error_body("Unauthorized", "missing header `authorization`"));
}

#[tokio::test]
async fn a_bearer_token_is_accepted_and_a_wrong_one_gets_401() {
    let emulator = Emulator::builder().bearer_token("test-token").start().await.unwrap();
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let body = start_body("c1").to_string();
    let accepted = support::send(
        Method::POST,
        &url,
        &[("authorization", "Bearer test-token"), ("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    assert_eq!(accepted.json()["recordingState"], "active");
    let refused = support::send(Method::POST, &url, &[("authorization", "Bearer other")], body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body, error_body("Unauthorized", "the bearer token is not accepted"));
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn an_unknown_recording_gets_404() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    for (method, suffix) in
        [(Method::GET, ""), (Method::DELETE, ""), (Method::POST, ":pause"), (Method::POST, ":resume")]
    {
        let url = format!("{}calling/recordings/unknown{suffix}?{API}", emulator.endpoint());
        let (status, _, body) = call(&client, method.clone(), &url, &[], Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {suffix}");
        assert_eq!(body, error_body("RecordingNotFound", "no such recording"), "{method} {suffix}");
    }
}

#[tokio::test]
async fn operations_on_a_stopped_recording_get_409_and_its_state_404() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let id = start(&client, &emulator, start_body("c1")).await;
    let recording = format!("{}calling/recordings/{id}", emulator.endpoint());
    let (status, _, _) = call(&client, Method::DELETE, &format!("{recording}?{API}"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let table = [
        (Method::POST, ":pause", "cannot pause a recording that was stopped"),
        (Method::POST, ":resume", "cannot resume a recording that was stopped"),
        (Method::DELETE, "", "cannot stop a recording that was stopped"),
    ];
    for (method, suffix, message) in table {
        let (status, _, body) = call(&client, method, &format!("{recording}{suffix}?{API}"), &[], Value::Null).await;
        assert_eq!(status, StatusCode::CONFLICT, "{suffix}");
        assert_eq!(body, error_body("Conflict", message));
    }
    let (status, _, body) = call(&client, Method::GET, &format!("{recording}?{API}"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error_body("RecordingNotFound", "no such recording"));
}

#[tokio::test]
async fn a_second_start_for_a_call_being_recorded_gets_409() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    start(&client, &emulator, start_body("c1")).await;
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let (status, _, body) = call(&client, Method::POST, &url, &[], start_body("c1")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, error_body("Conflict", "a recording of this call is already in progress"));
    start(&client, &emulator, start_body("c2")).await;
}

#[tokio::test]
async fn a_request_without_api_version_gets_400() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let url = format!("{}calling/recordings", emulator.endpoint());
    let (status, _, body) = call(&client, Method::POST, &url, &[], start_body("c1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, error_body("MissingApiVersionParameter", "the api-version query parameter is required"));
    let url = format!("{}calling/recordings?api-version=latest", emulator.endpoint());
    let (status, _, body) = call(&client, Method::POST, &url, &[], start_body("c1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, error_body("UnsupportedApiVersion", "the api-version `latest` is not supported"));
}

#[tokio::test]
async fn a_start_request_without_a_call_or_with_a_bad_callback_gets_400() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let table = [
        (json!({}), "callLocator or callConnectionId is required"),
        (json!({ "callLocator": { "kind": "serverCallLocator" } }), "the call locator names no call"),
        (
            json!({ "callLocator": { "kind": "roomCallLocator", "roomId": "room-1" } }),
            "a room call locator cannot start a recording; use the call's server call id",
        ),
        (
            json!({ "callLocator": { "serverCallId": "c1" }, "callConnectionId": "cc1" }),
            "give either callLocator or callConnectionId, not both",
        ),
        (
            json!({ "callConnectionId": "cc1", "recordingStateCallbackUri": "/relative" }),
            "recordingStateCallbackUri must be an absolute http or https URL",
        ),
    ];
    for (body, message) in table {
        let (status, _, answer) = call(&client, Method::POST, &url, &[], body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer, error_body("BadRequest", message), "{body}");
    }
    let (status, _, answer) = call(&client, Method::POST, &url, &[], json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error"]["code"], "BadRequest");
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("the body is not a start recording request: "));
}

#[tokio::test]
async fn a_start_repeated_with_the_same_request_id_gets_the_first_answer_and_no_second_recording() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let (callbacks, bodies) = receiver().await;
    let body = json!({
        "callLocator": { "kind": "serverCallLocator", "serverCallId": "c1" },
        "recordingStateCallbackUri": callbacks.url("/recording"),
    });
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let headers = [
        ("repeatability-request-id", "3f2a1c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"),
        ("repeatability-first-sent", "Sun, 06 Dec 2026 23:00:00 GMT"),
    ];
    let first = call(&client, Method::POST, &url, &headers, body.clone()).await;
    let again = call(&client, Method::POST, &url, &headers, body.clone()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(again.0, StatusCode::OK);
    assert_eq!(again.2, first.2);
    assert_eq!(first.1["repeatability-result"], "accepted");
    assert_eq!(again.1["repeatability-result"], "accepted");

    // Another request id is another request: the call is being recorded already.
    let other = [("repeatability-request-id", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")];
    let (status, _, _) = call(&client, Method::POST, &url, &other, body).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A pause queues its callback behind any other: once it arrives, every start's callback has arrived too.
    let id = serde_json::from_slice::<Value>(&first.2).unwrap()["recordingId"].as_str().unwrap().to_owned();
    let pause = format!("{}calling/recordings/{id}:pause?{API}", emulator.endpoint());
    assert_eq!(call(&client, Method::POST, &pause, &[], Value::Null).await.0, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(5), "the pause callback arrived", || async {
        (bodies.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    assert_eq!(states(&bodies).await, [RecordingState::Active, RecordingState::Inactive]);
}

#[tokio::test]
async fn a_repeated_pause_is_carried_out_once() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let (callbacks, bodies) = receiver().await;
    let body = json!({ "callConnectionId": "cc1", "recordingStateCallbackUri": callbacks.url("/recording") });
    let id = start(&client, &emulator, body).await;
    let recording = format!("{}calling/recordings/{id}", emulator.endpoint());
    let pause = [("repeatability-request-id", "11111111-2222-4333-8444-555555555555")];
    let resume = [("repeatability-request-id", "66666666-7777-4888-9999-aaaaaaaaaaaa")];
    assert_eq!(call(&client, Method::POST, &format!("{recording}:pause?{API}"), &pause, Value::Null).await.0, 202);
    assert_eq!(call(&client, Method::POST, &format!("{recording}:resume?{API}"), &resume, Value::Null).await.0, 202);
    // The pause repeated after the resume is answered from memory: the recording stays active.
    assert_eq!(call(&client, Method::POST, &format!("{recording}:pause?{API}"), &pause, Value::Null).await.0, 202);
    let (status, _, state) = call(&client, Method::GET, &format!("{recording}?{API}"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let expected =
        json!({ "recordingId": id, "recordingState": "active", "recordingKind": "azureCommunicationServices" });
    assert_eq!(serde_json::from_slice::<Value>(&state).unwrap(), expected);

    eventually(Duration::from_secs(5), "three callbacks arrived", || async {
        (bodies.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    let expected = [RecordingState::Active, RecordingState::Inactive, RecordingState::Active];
    assert_eq!(states(&bodies).await, expected);
}

#[tokio::test]
async fn a_recording_started_paused_is_inactive_until_resumed() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let body = json!({ "callConnectionId": "cc1", "pauseOnStart": true });
    let (status, _, answer) = call(&client, Method::POST, &url, &[], body).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["recordingState"], "inactive");
    let recording = format!("{}calling/recordings/{}", emulator.endpoint(), answer["recordingId"].as_str().unwrap());
    assert_eq!(call(&client, Method::POST, &format!("{recording}:resume?{API}"), &[], Value::Null).await.0, 202);
    let (_, _, state) = call(&client, Method::GET, &format!("{recording}?{API}"), &[], Value::Null).await;
    assert_eq!(serde_json::from_slice::<Value>(&state).unwrap()["recordingState"], "active");
}

#[tokio::test]
async fn attempts_of_one_start_sent_together_make_one_recording() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let url = format!("{}calling/recordings?{API}", emulator.endpoint());
    let headers = [("repeatability-request-id", "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e")];
    let attempts = (0..8).map(|_| call(&client, Method::POST, &url, &headers, start_body("c1")));
    let answers = futures_util::future::join_all(attempts).await;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(body, &answers[0].2);
    }
}

#[tokio::test]
async fn an_unknown_calling_path_gets_404_and_a_wrong_method_405() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let table = [
        (Method::POST, "calling/callConnections", 404, error_body("NotFound", "no such operation")),
        (Method::POST, "calling/recordings/r1:stop", 404, error_body("NotFound", "no such operation")),
        (Method::GET, "calling/recordings", 405, error_body("MethodNotAllowed", "method not allowed here")),
        (Method::PUT, "calling/recordings/r1", 405, error_body("MethodNotAllowed", "method not allowed here")),
    ];
    for (method, path, status, body) in table {
        let url = format!("{}{path}?{API}", emulator.endpoint());
        let answer = call(&client, method.clone(), &url, &[], Value::Null).await;
        assert_eq!((answer.0.as_u16(), answer.2), (status, body), "{method} {path}");
    }
}

#[tokio::test]
async fn the_storage_host_serves_no_recording_operations() {
    let emulator = Emulator::start().await.unwrap();
    let client = HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .allow_list(emulator.allow_list())
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let url = format!("{}/calling/recordings?{API}", emulator.storage().base_url());
    let (status, _, body) = call(&client, Method::POST, &url, &[], start_body("c1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error_body("not_found", "no such path"));
}

#[tokio::test]
async fn a_call_is_recorded_again_once_its_recording_stopped_and_each_keeps_its_chunks() {
    let emulator = Emulator::start().await.unwrap();
    let client = signed(&emulator.connection_string());
    let (webhook, events) = receiver().await;
    emulator.subscribe(EventGridPublisher::new(&webhook.url("/events"), Schema::EventGrid).unwrap());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = start(&client, &emulator, start_body("c1")).await;
        let stop = format!("{}calling/recordings/{id}?{API}", emulator.endpoint());
        assert_eq!(call(&client, Method::DELETE, &stop, &[], Value::Null).await.0, StatusCode::NO_CONTENT);
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    eventually(Duration::from_secs(5), "both recordings were announced", || async {
        (events.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let mut documents = Vec::new();
    for body in events.lock().unwrap().iter() {
        let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, body).unwrap());
        for event in events.iter() {
            for chunk in event.data().chunks() {
                let stored = emulator.storage().document(chunk.document_id()).unwrap();
                assert!(!stored.deleted);
                documents.push(chunk.document_id().to_owned());
            }
        }
    }
    documents.sort();
    documents.dedup();
    assert_eq!(documents.len(), 2);
}
