//! The Event Grid half of the emulator: the subscription handshake and at-least-once delivery to a webhook, with
//! Event Grid's envelopes, `aeg-*` headers and retry rules (a delivery that fails is sent again, with growing
//! waits, until it succeeds or the attempts run out), and a log of what happened.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::StoredRecording;
use crate::eventgrid::Schema;

/// The envelope schema a subscription is named by on a command line: `eventgrid` (or `event-grid`) or
/// `cloudevents` (or `cloud-events`), in any case. The Event Grid schema delivers a JSON array of
/// `{id, topic, subject, eventType, eventTime, data, ...}`; CloudEvents 1.0 is delivered as
/// `application/cloudevents-batch+json`.
///
/// ```
/// use acs_recording::emulator::eventgrid::parse_schema;
/// use acs_recording::eventgrid::Schema;
/// assert_eq!(parse_schema("CloudEvents"), Ok(Schema::CloudEvents));
/// assert_eq!(parse_schema("event-grid"), Ok(Schema::EventGrid));
/// assert_eq!(parse_schema("xml").unwrap_err(), "unknown schema `xml` (expected eventgrid or cloudevents)");
/// ```
pub fn parse_schema(name: &str) -> Result<Schema, String> {
    match name.to_ascii_lowercase().as_str() {
        "eventgrid" | "event-grid" => Ok(Schema::EventGrid),
        "cloudevents" | "cloud-events" => Ok(Schema::CloudEvents),
        other => Err(format!("unknown schema `{other}` (expected eventgrid or cloudevents)")),
    }
}

/// When to retry a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The waits before the 2nd, 3rd, ... attempt; the last one repeats.
    pub delays: Vec<Duration>,
    /// The most attempts, the first included.
    pub max_attempts: u32,
    /// How long one attempt may take before it counts as failed (Event Grid waits 30 s).
    pub response_timeout: Duration,
}

impl RetryPolicy {
    /// Event Grid's schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h) divided by
    /// `divisor`, so that tests and demos see real retries in milliseconds.
    pub fn event_grid_scaled(divisor: u32) -> Self {
        let divisor = divisor.max(1);
        let delays = [10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200]
            .iter()
            .map(|secs| Duration::from_secs(*secs) / divisor)
            .collect();
        Self { delays, max_attempts: 30, response_timeout: Duration::from_secs(30) }
    }

    /// Caps the number of attempts.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    fn delay_before(&self, attempt: u32) -> Duration {
        let index = (attempt as usize).saturating_sub(2);
        self.delays.get(index).or(self.delays.last()).copied().unwrap_or_default()
    }
}

impl Default for RetryPolicy {
    /// Event Grid's schedule scaled down 1000 times (10 ms, 30 ms, 60 ms, ...), at most 10 attempts.
    fn default() -> Self {
        Self::event_grid_scaled(1000).max_attempts(10)
    }
}

/// One event to deliver, schema-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// The event id; redeliveries keep it, which is how receivers deduplicate.
    pub id: String,
    /// `eventType` / `type`.
    pub event_type: String,
    /// `subject`.
    pub subject: String,
    /// `eventTime` / `time`, RFC 3339.
    pub time: String,
    /// `dataVersion` (Event Grid schema only).
    pub data_version: String,
    /// `data`.
    pub data: Value,
}

/// The resource id of the emulated ACS resource: the `topic` (Event Grid schema) or `source` (CloudEvents) of its
/// events.
pub(crate) const ACS_TOPIC: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.Communication/communicationServices/emulator";

impl OutgoingEvent {
    /// The event as a CloudEvent 1.0 from `source`, as Event Grid delivers or forwards it.
    pub fn to_cloud_event(&self, source: &str) -> Value {
        json!({
            "id": self.id,
            "source": source,
            "specversion": "1.0",
            "type": self.event_type,
            "subject": self.subject,
            "time": self.time,
            "data": self.data,
        })
    }
}

/// What a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// The subscription validation handshake.
    Validation,
    /// A notification (events).
    Notification,
    /// A `SubscriptionDeletion` announcement.
    Deletion,
}

/// One HTTP attempt, as recorded in [`EventGridPublisher::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLogEntry {
    /// What was sent.
    pub kind: DeliveryKind,
    /// 1 for the first attempt (`aeg-delivery-count` is `attempt - 1`).
    pub attempt: u32,
    /// The ids of the events in the delivery.
    pub event_ids: Vec<String>,
    /// The answer's status, when there was one.
    pub status: Option<StatusCode>,
    /// The transport error or timeout, when there was no answer.
    pub error: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 200–204 answer after this many attempts.
    Delivered {
        /// Attempts made, the successful one included.
        attempts: u32,
    },
    /// A status Event Grid never retries (400, 401, 403, 413): the events are dropped (or dead-lettered).
    Dropped {
        /// The final status.
        status: StatusCode,
        /// Attempts made.
        attempts: u32,
    },
    /// The retry policy ran out.
    Exhausted {
        /// Attempts made.
        attempts: u32,
    },
}

impl DeliveryOutcome {
    /// Whether the webhook accepted the events.
    pub fn is_delivered(&self) -> bool {
        matches!(self, DeliveryOutcome::Delivered { .. })
    }
}

/// Why the validation handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError(String);

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subscription validation failed: {}", self.0)
    }
}

impl std::error::Error for ValidationError {}

/// Delivers events to one webhook subscription as Event Grid does.
///
/// Cheap to clone; clones share the log.
#[derive(Clone)]
pub struct EventGridPublisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    client: Client<HttpConnector, Full<Bytes>>,
    webhook: Uri,
    schema: Schema,
    retry: RetryPolicy,
    topic: String,
    subscription_name: String,
    origin: String,
    log: Mutex<Vec<DeliveryLogEntry>>,
}

impl fmt::Debug for EventGridPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The webhook URL may carry a secret in its query: print the path only.
        f.debug_struct("EventGridPublisher")
            .field("webhook_path", &self.inner.webhook.path())
            .field("schema", &self.inner.schema)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl EventGridPublisher {
    /// A publisher for the webhook at `webhook` (an absolute `http` URL; put a delivery secret in its query, as
    /// on a real subscription).
    pub fn new(webhook: &str, schema: Schema) -> Result<Self, ValidationError> {
        let uri: Uri = webhook.parse().map_err(|_| ValidationError(format!("`{webhook}` is not a URL")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ValidationError("the emulator delivers to absolute http:// webhook URLs only".into()));
        }
        Ok(Self {
            inner: Arc::new(PublisherInner {
                client: Client::builder(TokioExecutor::new()).build_http(),
                webhook: uri,
                schema,
                retry: RetryPolicy::default(),
                topic: ACS_TOPIC.into(),
                subscription_name: "ACS-RECORDING-EMULATOR".into(),
                origin: "eventgrid.azure.net".into(),
                log: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Replaces the retry policy (before the first use).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.retry = retry;
        }
        self
    }

    /// The topic put in envelopes (`topic` / `source`).
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Every attempt made so far.
    pub fn log(&self) -> Vec<DeliveryLogEntry> {
        self.inner.log.lock().expect("log lock").clone()
    }

    /// Performs the subscription handshake: for the Event Grid schema a `SubscriptionValidation` POST whose answer
    /// must echo the code; for CloudEvents an `OPTIONS` abuse-protection request whose answer must grant the
    /// origin.
    pub async fn validate(&self) -> Result<(), ValidationError> {
        match self.inner.schema {
            Schema::EventGrid => self.validate_event_grid().await,
            Schema::CloudEvents => self.validate_cloud_events().await,
        }
    }

    async fn validate_event_grid(&self) -> Result<(), ValidationError> {
        let code = new_id();
        let id = new_id();
        let event = OutgoingEvent {
            id: id.clone(),
            event_type: "Microsoft.EventGrid.SubscriptionValidationEvent".into(),
            subject: String::new(),
            time: rfc3339(SystemTime::now()),
            data_version: "2".into(),
            data: json!({
                "validationCode": code,
                // Event Grid's manual-validation URL; the emulator has none, so it points nowhere routable.
                "validationUrl": format!("https://eventgrid.invalid/validate?id={code}"),
            }),
        };
        let body = self.envelope(std::slice::from_ref(&event), Schema::EventGrid);
        let request = self.post(body, "SubscriptionValidation", 0, Schema::EventGrid);
        let answer = self.send(request, DeliveryKind::Validation, 1, vec![id]).await?;
        if answer.status != StatusCode::OK {
            return Err(ValidationError(format!("the webhook answered {} (expected 200)", answer.status)));
        }
        let answer: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| ValidationError(format!("the answer is not JSON: {e}")))?;
        match answer.get("validationResponse").and_then(Value::as_str) {
            Some(echoed) if echoed == code => Ok(()),
            Some(_) => Err(ValidationError("the answer echoed a different validation code".into())),
            None => Err(ValidationError("the answer has no `validationResponse`".into())),
        }
    }

    async fn validate_cloud_events(&self) -> Result<(), ValidationError> {
        let request = Request::builder()
            .method(Method::OPTIONS)
            .uri(self.inner.webhook.clone())
            .header("webhook-request-origin", self.inner.origin.as_str())
            .header("webhook-request-rate", "120")
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let answer = self.send(request, DeliveryKind::Validation, 1, Vec::new()).await?;
        if answer.status != StatusCode::OK {
            return Err(ValidationError(format!("the webhook answered {} (expected 200)", answer.status)));
        }
        let granted = answer.headers.get("webhook-allowed-origin").and_then(|v| v.to_str().ok()).unwrap_or("");
        if granted != self.inner.origin && granted != "*" {
            return Err(ValidationError(format!("the webhook did not grant origin `{}`", self.inner.origin)));
        }
        Ok(())
    }

    /// Delivers `events` in one request, retrying as Event Grid does: success is 200–204; 400, 401, 403 and 413
    /// drop the events; anything else (including a timeout or a refused connection) is retried on the policy's
    /// schedule, with the same event ids and a growing `aeg-delivery-count`.
    pub async fn deliver(&self, events: &[OutgoingEvent]) -> DeliveryOutcome {
        self.deliver_kind(events, DeliveryKind::Notification, "Notification").await
    }

    /// Announces the subscription's removal with a `Microsoft.EventGrid.SubscriptionDeletedEvent`.
    pub async fn announce_deletion(&self) -> DeliveryOutcome {
        let event = OutgoingEvent {
            id: new_id(),
            event_type: "Microsoft.EventGrid.SubscriptionDeletedEvent".into(),
            subject: String::new(),
            time: rfc3339(SystemTime::now()),
            data_version: "1".into(),
            data: json!({ "eventSubscriptionId": format!("{}/providers/Microsoft.EventGrid/eventSubscriptions/{}", self.inner.topic, self.inner.subscription_name) }),
        };
        self.deliver_kind(std::slice::from_ref(&event), DeliveryKind::Deletion, "SubscriptionDeletion").await
    }

    async fn deliver_kind(&self, events: &[OutgoingEvent], kind: DeliveryKind, header: &str) -> DeliveryOutcome {
        let schema = self.inner.schema;
        let body = self.envelope(events, schema);
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let retry = &self.inner.retry;
        let mut attempt = 1;
        loop {
            let request = self.post(body.clone(), header, attempt - 1, schema);
            match self.send(request, kind, attempt, ids.clone()).await {
                Ok(answer) if (200..=204).contains(&answer.status.as_u16()) => {
                    return DeliveryOutcome::Delivered { attempts: attempt };
                }
                Ok(answer) if matches!(answer.status.as_u16(), 400 | 401 | 403 | 413) => {
                    return DeliveryOutcome::Dropped { status: answer.status, attempts: attempt };
                }
                _ if attempt >= retry.max_attempts => return DeliveryOutcome::Exhausted { attempts: attempt },
                _ => {
                    attempt += 1;
                    tokio::time::sleep(retry.delay_before(attempt)).await;
                }
            }
        }
    }

    fn envelope(&self, events: &[OutgoingEvent], schema: Schema) -> Bytes {
        let topic = &self.inner.topic;
        let array: Vec<Value> = events
            .iter()
            .map(|e| match schema {
                Schema::EventGrid => json!({
                    "id": e.id,
                    "topic": topic,
                    "subject": e.subject,
                    "data": e.data,
                    "eventType": e.event_type,
                    "dataVersion": e.data_version,
                    "metadataVersion": "1",
                    "eventTime": e.time,
                }),
                Schema::CloudEvents => e.to_cloud_event(topic),
            })
            .collect();
        Bytes::from(serde_json::to_vec(&array).expect("json values serialize"))
    }

    fn post(&self, body: Bytes, event_type: &str, delivery_count: u32, schema: Schema) -> Request<Full<Bytes>> {
        let content_type = match schema {
            Schema::EventGrid => "application/json; charset=utf-8",
            Schema::CloudEvents => "application/cloudevents-batch+json; charset=utf-8",
        };
        Request::post(self.inner.webhook.clone())
            .header("content-type", content_type)
            .header("aeg-event-type", event_type)
            .header("aeg-subscription-name", self.inner.subscription_name.as_str())
            .header("aeg-delivery-count", delivery_count.to_string())
            .header("aeg-data-version", "1.0")
            .header("aeg-metadata-version", "1")
            .body(Full::new(body))
            .expect("valid request")
    }

    /// Sends one attempt, records it in the log, and reads the (small, bounded) answer.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        kind: DeliveryKind,
        attempt: u32,
        event_ids: Vec<String>,
    ) -> Result<Answer, ValidationError> {
        let timeout = self.inner.retry.response_timeout;
        let exchange = async {
            let response = self.inner.client.request(request).await.map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            // Answers are small; cap what is read so a misbehaving webhook cannot exhaust memory.
            let body = http_body_util::Limited::new(body, 64 * 1024)
                .collect()
                .await
                .map_err(|e| format!("reading the answer failed: {e}"))?
                .to_bytes();
            Ok::<_, String>(Answer { status: parts.status, headers: parts.headers, body })
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        let entry = DeliveryLogEntry {
            kind,
            attempt,
            event_ids,
            status: result.as_ref().ok().map(|answer| answer.status),
            error: result.as_ref().err().cloned(),
        };
        self.inner.log.lock().expect("log lock").push(entry);
        result.map_err(ValidationError)
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

/// The `Microsoft.Communication.RecordingFileStatusUpdated` event announcing `recording`, with every chunk's
/// locations and the newest subject form (`/recording/call/{callId}/serverCallId/{serverCallId}/recordingId/{recordingId}`).
pub fn recording_file_status_updated(recording: &StoredRecording) -> OutgoingEvent {
    let chunks: Vec<Value> = recording
        .chunks
        .iter()
        .map(|chunk| {
            json!({
                "documentId": chunk.document_id,
                "index": chunk.index,
                "endReason": chunk.end_reason,
                "contentLocation": chunk.content_location,
                "metadataLocation": chunk.metadata_location,
                "deleteLocation": chunk.delete_location,
            })
        })
        .collect();
    OutgoingEvent {
        id: new_id(),
        event_type: "Microsoft.Communication.RecordingFileStatusUpdated".into(),
        subject: format!(
            "/recording/call/{}/serverCallId/{}/recordingId/{}",
            recording.call_id, recording.server_call_id, recording.recording_id
        ),
        time: rfc3339(SystemTime::now()),
        data_version: "1.0".into(),
        data: {
            let mut data = json!({
                "recordingStorageInfo": { "recordingChunks": chunks },
                "recordingStartTime": recording.start_time,
                "recordingDurationMs": recording.duration_ms,
                "recordingContentType": recording.content_type,
                "recordingChannelType": recording.channel_type,
                "recordingFormatType": recording.format,
                "sessionEndReason": "CallEnded",
            });
            // Bring your own storage: the event says where the recording went, and its id.
            if let Some(storage_type) = &recording.storage_type {
                data["storageType"] = json!(storage_type);
                data["recordingId"] = json!(recording.recording_id);
            }
            data
        },
    }
}

/// A random-looking, unique id in the 8-4-4-4-12 hex form of Event Grid's ids.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = crate::random::splitmix(nanos ^ n.rotate_left(32));
    let b = crate::random::splitmix(a ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Formats a time as RFC 3339 in UTC with microseconds, as Event Grid writes `eventTime`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    crate::time::format_rfc3339(time, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_shaped_like_guids() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            let lens: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
        }
    }

    #[test]
    fn retry_schedule_is_event_grids_scaled() {
        let retry = RetryPolicy::event_grid_scaled(1000);
        assert_eq!(retry.delay_before(2), Duration::from_millis(10));
        assert_eq!(retry.delay_before(3), Duration::from_millis(30));
        assert_eq!(retry.delay_before(11), Duration::from_millis(43_200));
        assert_eq!(retry.delay_before(40), Duration::from_millis(43_200));
    }
}
