//! Storage queues on Azurite's queue service for the queue tests: a fresh queue per test, messages in the shapes
//! Event Grid delivers, and the recorder example started with `--queue`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use acs_recording::credential::AccessKey;
use acs_recording::emulator::eventgrid::OutgoingEvent;
use acs_recording::emulator::Emulator;
use acs_recording::intake::queue::{QueueClient, QueueCredential, QueueMessage, QueueUrl};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::azurite::{queue_url, ACCOUNT, ACCOUNT_KEY};
use super::eventually;
use super::process::{recorder_binary, spawn_listening, Listening};
use super::recorder_process::Recorder;

/// The client the tests reach Azurite with.
pub(crate) type Http = Client<HttpConnector, Full<Bytes>>;

/// The topic the messages' events name, as an ACS resource's system topic.
const TOPIC: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/communicationServices/acs";

/// A queue name (3 to 63 lower-case letters, digits and dashes) unique to this test and run.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let name: String = name.to_lowercase().replace('_', "-").chars().take(30).collect();
    format!("{}-{}-{:x}", name.trim_end_matches('-'), std::process::id(), nanos & 0xffff_ffff)
}

/// The URL of queue `name` on Azurite, as `--queue` takes it.
pub(crate) fn url_of(name: &str) -> String {
    format!("{}/{ACCOUNT}/{name}", queue_url())
}

/// A client of queue `name` on Azurite with the development account's key.
pub(crate) fn client_of(name: &str) -> QueueClient<Http> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let key = AccessKey::from_base64(ACCOUNT_KEY).unwrap();
    QueueClient::new(http, QueueUrl::parse(&url_of(name)).unwrap(), QueueCredential::AccountKey(key))
}

/// A fresh, empty queue for `test`.
pub(crate) async fn new_queue(test: &str) -> QueueClient<Http> {
    let client = client_of(&unique(test));
    client.create_if_missing().await.unwrap();
    client
}

/// `event` as one Event Grid schema event object.
pub(crate) fn event_grid(event: &OutgoingEvent) -> String {
    json!({
        "id": event.id, "topic": TOPIC, "subject": event.subject, "data": event.data, "eventType": event.event_type,
        "dataVersion": event.data_version, "metadataVersion": "1", "eventTime": event.time,
    })
    .to_string()
}

/// `event` as one CloudEvents 1.0 object.
pub(crate) fn cloud_event(event: &OutgoingEvent) -> String {
    json!({
        "id": event.id, "source": TOPIC, "specversion": "1.0", "type": event.event_type, "subject": event.subject,
        "time": event.time, "data": event.data,
    })
    .to_string()
}

/// `text` in standard base64, as Event Grid's storage queue delivery writes messages.
pub(crate) fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Waits (bounded) until no message is left in the queue: none visible once `visibility` has passed since the
/// last one could have been received, so that a received but undeleted message would show again.
pub(crate) async fn assert_drained(queue: &QueueClient<Http>, visibility: Duration) {
    eventually(Duration::from_secs(60), format!("queue {} is empty", queue.url()), || async {
        queue.peek().await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(visibility + Duration::from_millis(500)).await;
    assert_eq!(queue.peek().await.unwrap(), None, "a message came back to {}", queue.url());
}

/// Waits (bounded) until the next visible message of `queue` satisfies `accept`; answers it.
pub(crate) async fn wait_for_message(
    queue: &QueueClient<Http>,
    what: &str,
    accept: impl Fn(&QueueMessage) -> bool,
) -> QueueMessage {
    let accept = &accept;
    eventually(Duration::from_secs(60), what, || async move { queue.peek().await.unwrap().filter(|m| accept(m)) }).await
}

/// The recorder example reading `queue` (and no webhook: no delivery check is given), downloading from
/// `emulator`, writing to `out` or, with `store`, to that `--store` URL with its environment.
pub(crate) async fn start_recorder(
    emulator: &Emulator,
    queue: &QueueClient<Http>,
    out: &Path,
    store: Option<(&str, &[(String, String)])>,
    extra: &[&str],
) -> Recorder {
    let mut command = Command::new(recorder_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--no-progress", "--queue", &url_of(queue.url().queue())])
        .args(extra)
        .args(["--allow-host", &emulator.storage_authority(), "--out"])
        .arg(out)
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
        .env("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
        .env("RUST_LOG", "warn");
    if let Some((url, env)) = store {
        command.args(["--store", url]).envs(env.iter().map(|(k, v)| (k, v)));
    }
    let Listening { child, addr, stdout, stderr } = spawn_listening(command, "the queue recorder").await;
    // The start-up line comes before the journal is open; the probes answer once the recorder runs.
    let healthz = format!("http://{addr}/healthz");
    let healthz = &healthz;
    eventually(Duration::from_secs(60), "the queue recorder's probe answers", || async move {
        let response = Client::builder(TokioExecutor::new())
            .build_http::<http_body_util::Empty<Bytes>>()
            .get(healthz.parse().unwrap())
            .await;
        response.ok().map(drop)
    })
    .await;
    Recorder { child: Some(child), addr, stdout, stderr }
}
