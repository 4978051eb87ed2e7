//! The namespace client against the emulator's namespace topic over a real loopback server: every operation,
//! success per lock token, the exact `Authorization` header, and a refused key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_recording::emulator::Emulator;
use acs_recording::eventgrid::namespace::{ErrorKind, NamespaceClient, NamespaceKey, ReleaseDelay};
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, value::RawValue, Value};
use tower::{service_fn, ServiceExt};

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

fn client(emulator: &Emulator) -> NamespaceClient<Http> {
    NamespaceClient::from_url(http(), &emulator.namespace_subscription_url())
        .unwrap()
        .with_key(NamespaceKey::new(emulator.namespace().key()).unwrap())
}

fn event(id: &str) -> Value {
    json!({"id": id, "source": "/test", "type": "Contoso.Test", "specversion": "1.0", "data": {"n": id}})
}

async fn received_tokens(client: &NamespaceClient<Http>, n: usize) -> Vec<(String, Value)> {
    let events = client.receive(n as u32, Duration::from_secs(5)).await.unwrap();
    assert_eq!(events.len(), n);
    events.into_iter().map(|e| (e.broker_properties.lock_token, serde_json::from_str(e.event.get()).unwrap())).collect()
}

#[tokio::test]
async fn publish_then_receive_hands_out_each_event_locked_once() {
    let emulator = Emulator::builder().namespace_topic("acs-events", "recorder").start().await.unwrap();
    let client = client(&emulator);
    let events: Vec<Box<RawValue>> =
        ["a", "b"].iter().map(|id| RawValue::from_string(event(id).to_string()).unwrap()).collect();
    client.publish(&events).await.unwrap();

    let received = client.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(received[0].event.get()).unwrap(), event("a"));
    assert_eq!(received[0].broker_properties.delivery_count, 1);
    // Locked: a second receive waits its time and gets nothing.
    assert!(client.receive(10, Duration::from_secs(1)).await.unwrap().is_empty());
    assert_eq!(emulator.namespace().deliveries("a"), 1);
}

#[tokio::test]
async fn acknowledge_reports_success_per_token() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator);
    emulator.namespace().publish(event("a"));
    let (token, _) = received_tokens(&client, 1).await.remove(0);

    let result = client.acknowledge(&[token.clone(), "00000000-0000-0000-0000-000000000000".into()]).await.unwrap();
    assert_eq!(result.succeeded_lock_tokens, std::slice::from_ref(&token));
    assert_eq!(result.failed_lock_tokens.len(), 1);
    assert_eq!(result.failed_lock_tokens[0].lock_token, "00000000-0000-0000-0000-000000000000");
    assert_eq!(result.failed_lock_tokens[0].error.code, "TokenLost");
    // The same token again: already settled.
    let again = client.acknowledge(std::slice::from_ref(&token)).await.unwrap();
    assert!(again.succeeded_lock_tokens.is_empty());
    assert_eq!(emulator.namespace().acknowledgements("a"), 1);
    assert_eq!(emulator.namespace().pending(), 0);
}

#[tokio::test]
async fn an_expired_lock_fails_its_token_and_the_event_comes_again() {
    let emulator = Emulator::builder().namespace_lock_duration(Duration::from_secs(2)).start().await.unwrap();
    let client = client(&emulator);
    emulator.namespace().publish(event("a"));
    emulator.namespace().publish(event("b"));
    let tokens = received_tokens(&client, 2).await;
    // Renew b's lock only, half a second before a's expires at 2 s; at 2.5 s b's runs until 3 s.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(client.renew_locks(&[tokens[1].0.clone()]).await.unwrap().is_complete());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let result = client.acknowledge(&[tokens[0].0.clone(), tokens[1].0.clone()]).await.unwrap();
    assert_eq!(result.succeeded_lock_tokens, [tokens[1].0.clone()]);
    assert_eq!(result.failed_lock_tokens[0].lock_token, tokens[0].0);

    let again = client.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].broker_properties.delivery_count, 2);
    assert_eq!(serde_json::from_str::<Value>(again[0].event.get()).unwrap()["id"], "a");
}

#[tokio::test]
async fn release_puts_the_event_back_and_reject_dead_letters_it() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator);
    emulator.namespace().publish(event("a"));
    let (token, _) = received_tokens(&client, 1).await.remove(0);
    assert!(client.release(&[token], ReleaseDelay::None).await.unwrap().is_complete());

    let again = client.receive(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(again[0].broker_properties.delivery_count, 2);
    let token = again[0].broker_properties.lock_token.clone();
    assert!(client.reject(&[token]).await.unwrap().is_complete());
    let dead = emulator.namespace().dead_letters();
    assert_eq!((dead.len(), dead[0].reason.as_str(), &dead[0].event), (1, "Rejected", &event("a")));
    assert_eq!(emulator.namespace().pending(), 0);
}

#[tokio::test]
async fn a_released_event_waits_its_delay() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator);
    emulator.namespace().publish(event("a"));
    let (token, _) = received_tokens(&client, 1).await.remove(0);
    assert!(client.release(&[token], ReleaseDelay::TenSeconds).await.unwrap().is_complete());
    assert!(client.receive(1, Duration::from_secs(1)).await.unwrap().is_empty(), "not within the delay");
}

#[tokio::test]
async fn an_event_delivered_the_maximum_times_is_dead_lettered() {
    let emulator = Emulator::builder().namespace_max_delivery_count(2).start().await.unwrap();
    let client = client(&emulator);
    emulator.namespace().publish(event("a"));
    for _ in 0..2 {
        let (token, _) = received_tokens(&client, 1).await.remove(0);
        client.release(&[token], ReleaseDelay::None).await.unwrap();
    }
    assert!(client.receive(1, Duration::from_secs(1)).await.unwrap().is_empty());
    let dead = emulator.namespace().dead_letters();
    assert_eq!((dead[0].reason.as_str(), dead[0].delivery_count), ("MaxDeliveryCountExceeded", 2));
}

#[tokio::test]
async fn a_waiting_receive_returns_as_soon_as_an_event_is_published() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator);
    let namespace = emulator.namespace().clone();
    let publish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        namespace.publish(event("late"));
    });
    // A 120 s wait that the test's own timeout would fail if the publish did not end it.
    let received = tokio::time::timeout(Duration::from_secs(60), client.receive(1, Duration::from_secs(120)))
        .await
        .expect("the receive ended with the publish")
        .unwrap();
    publish.await.unwrap();
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn the_key_goes_as_a_shared_access_key_header_exactly() {
    let emulator = Emulator::start().await.unwrap();
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let log = seen.clone();
    let recording = service_fn(move |request: Request<Full<Bytes>>| {
        log.lock().unwrap().push(request.headers().clone());
        http().oneshot(request)
    });
    let client = NamespaceClient::from_url(recording, &emulator.namespace_subscription_url())
        .unwrap()
        .with_key(NamespaceKey::new(emulator.namespace().key()).unwrap());
    emulator.namespace().publish(event("a"));
    assert_eq!(client.receive(1, Duration::from_secs(5)).await.unwrap().len(), 1);

    let headers = seen.lock().unwrap()[0].clone();
    let expected = format!("SharedAccessKey {}", emulator.namespace().key());
    assert_eq!(headers["authorization"], expected.as_str());
    assert!(headers["authorization"].is_sensitive());
    assert_eq!(headers["content-type"], "application/json");
    assert!(!format!("{client:?}").contains(emulator.namespace().key()));
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401_and_a_clear_error() {
    let emulator = Emulator::start().await.unwrap();
    let client = NamespaceClient::from_url(http(), &emulator.namespace_subscription_url())
        .unwrap()
        .with_key(NamespaceKey::new("d3Jvbmcta2V5").unwrap());
    let error = client.receive(1, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(error.status_code(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(
        error.to_string(),
        "receive answered 401 Unauthorized (Unauthorized: the request carries no valid SharedAccessKey or bearer \
         token for this namespace)"
    );
    assert!(!error.is_retryable());
    assert!(!format!("{error:?}").contains("d3Jvbmcta2V5"));

    let unknown = NamespaceClient::from_url(
        http(),
        &format!("http://{}/topics/other/eventsubscriptions/recorder", emulator.endpoint().authority()),
    )
    .unwrap()
    .with_key(NamespaceKey::new(emulator.namespace().key()).unwrap());
    assert_eq!(unknown.receive(1, Duration::from_secs(1)).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_publish_that_is_not_cloudevents_is_refused_with_the_services_error() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator);
    let error = client.publish(&[RawValue::from_string(r#"{"id":"x"}"#.into()).unwrap()]).await.unwrap_err();
    assert_eq!(error.status_code(), Some(http::StatusCode::BAD_REQUEST));
    assert_eq!(error.service_error().unwrap().code, "BadRequest");
}

#[tokio::test]
async fn an_answer_over_the_cap_is_an_error_not_a_buffer() {
    let emulator = Emulator::start().await.unwrap();
    let client = client(&emulator).max_response_bytes(256);
    emulator
        .namespace()
        .publish(json!({"id": "big", "source": "/t", "type": "T", "specversion": "1.0", "data": "x".repeat(1000)}));
    let error = client.receive(1, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge);
}
