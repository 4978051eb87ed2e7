//! The namespace topic's HTTP side: routing, authentication, bodies and the long-polling receive.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::{json, Value};

use super::queue::Settle;
use super::NamespaceTopic;
use crate::emulator::bearer::{self, BearerCheck};
use crate::emulator::eventgrid::new_id;
use crate::emulator::StorageBody;
use crate::eventgrid::namespace::ReleaseDelay;

/// The API versions the official SDKs have sent.
const API_VERSIONS: [&str; 4] = ["2024-06-01", "2023-11-01", "2023-10-01-preview", "2023-06-01-preview"];

/// The largest request body read: the service takes 1 MB per publish.
const MAX_BODY: usize = 1 << 20;

/// The longest receive wait the service allows.
const MAX_WAIT: u64 = 120;

enum Route {
    Publish,
    Subscription(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockTokens {
    lock_tokens: Vec<String>,
}

impl NamespaceTopic {
    /// Whether a path is the namespace's (`/topics/...`).
    pub(crate) fn serves(path: &str) -> bool {
        path.starts_with("/topics/")
    }

    /// Answers one request to the namespace.
    pub(crate) async fn handle<B>(&self, request: Request<B>) -> Response<StorageBody>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<crate::BoxError>,
    {
        match self.answer(request).await {
            Ok(response) => response,
            Err((status, code, message)) => reply(status, &json!({"error": {"code": code, "message": message}})),
        }
    }

    async fn answer<B>(&self, request: Request<B>) -> Result<Response<StorageBody>, Refusal>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<crate::BoxError>,
    {
        self.authenticate(request.headers())?;
        if request.method() != Method::POST {
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the namespace data plane takes POST".into(),
            ));
        }
        let query = parse_query(request.uri().query().unwrap_or(""));
        let version = query.iter().find(|(name, _)| name == "api-version").map(|(_, value)| value.as_str());
        if !version.is_some_and(|version| API_VERSIONS.contains(&version)) {
            return Err((StatusCode::BAD_REQUEST, "BadRequest", "a supported api-version is required".into()));
        }
        let route = self.route(request.uri().path())?;
        let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = Limited::new(request.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", "the body is over 1 MB or unreadable".into())
            })?
            .to_bytes();
        let number = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.parse::<u64>());
        match route {
            Route::Publish => self.publish_request(&content_type, &body),
            Route::Subscription(action) => match action.as_str() {
                "receive" => {
                    let max_events = match number("maxEvents") {
                        None => 1,
                        Some(Ok(n @ 1..=100)) => n as usize,
                        Some(_) => return Err(bad("maxEvents must be 1 to 100")),
                    };
                    let wait = match number("maxWaitTime") {
                        None => 60,
                        Some(Ok(n @ 0..=MAX_WAIT)) => n,
                        Some(_) => return Err(bad("maxWaitTime must be at most 120 seconds")),
                    };
                    Ok(self.receive(max_events, Duration::from_secs(wait)).await)
                }
                "acknowledge" | "reject" | "renewLock" | "release" => {
                    let tokens: LockTokens =
                        serde_json::from_slice(&body).map_err(|_| bad("the body is not {\"lockTokens\":[...]}"))?;
                    if tokens.lock_tokens.is_empty() || tokens.lock_tokens.len() > 100 {
                        return Err(bad("lockTokens must hold 1 to 100 tokens"));
                    }
                    let settle = match action.as_str() {
                        "acknowledge" => Settle::Acknowledge,
                        "reject" => Settle::Reject,
                        "renewLock" => Settle::Renew,
                        _ => {
                            let secs = match number("releaseDelayInSeconds") {
                                None => 0,
                                Some(Ok(secs)) => secs,
                                Some(Err(_)) => u64::MAX,
                            };
                            let delay = u32::try_from(secs)
                                .ok()
                                .and_then(ReleaseDelay::from_secs)
                                .ok_or_else(|| bad("releaseDelayInSeconds must be 0, 10, 60, 600 or 3600"))?;
                            Settle::Release(Duration::from_secs(delay.as_secs().into()))
                        }
                    };
                    let result = self.queue().settle(&tokens.lock_tokens, settle, Instant::now());
                    if matches!(settle, Settle::Release(_)) {
                        self.shared.published.notify_waiters();
                    }
                    Ok(reply(
                        StatusCode::OK,
                        &json!({
                            "failedLockTokens": result.failed_lock_tokens,
                            "succeededLockTokens": result.succeeded_lock_tokens,
                        }),
                    ))
                }
                other => Err((StatusCode::NOT_FOUND, "NotFound", format!("no operation `{other}`"))),
            },
        }
    }

    /// `SharedAccessKey <key>`, or the configured bearer token.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), Refusal> {
        let presented = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
        if self.shared.key_digest.matches(presented) {
            return Ok(());
        }
        if let BearerCheck::Accepted = bearer::check(headers, self.shared.bearer.as_ref()) {
            return Ok(());
        }
        Err((
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the request carries no valid SharedAccessKey or bearer token for this namespace".into(),
        ))
    }

    fn route(&self, path: &str) -> Result<Route, Refusal> {
        let not_found = || (StatusCode::NOT_FOUND, "NotFound", "no such topic or event subscription".to_owned());
        let rest = path.strip_prefix("/topics/").ok_or_else(not_found)?;
        if let Some(topic) = rest.strip_suffix(":publish") {
            return if topic == self.topic() { Ok(Route::Publish) } else { Err(not_found()) };
        }
        let (topic, rest) = rest.split_once("/eventsubscriptions/").ok_or_else(not_found)?;
        let (subscription, action) = rest.split_once(':').ok_or_else(not_found)?;
        if topic != self.topic() || subscription != self.subscription() {
            return Err(not_found());
        }
        Ok(Route::Subscription(action.to_owned()))
    }

    fn publish_request(&self, content_type: &str, body: &[u8]) -> Result<Response<StorageBody>, Refusal> {
        let value: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
        let events = match (content_type.starts_with("application/cloudevents-batch+json"), value) {
            (true, Value::Array(events)) => events,
            (false, event @ Value::Object(_)) if content_type.starts_with("application/cloudevents+json") => {
                vec![event]
            }
            _ => return Err(bad(
                "publish takes application/cloudevents-batch+json (an array) or one application/cloudevents+json event",
            )),
        };
        for event in &events {
            let has = |field: &str| event.get(field).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
            if !(has("id") && has("source") && has("type") && event.get("specversion") == Some(&json!("1.0"))) {
                return Err(bad("every event must be a CloudEvent 1.0 with id, source, type and specversion"));
            }
        }
        for event in events {
            self.publish(event);
        }
        Ok(reply(StatusCode::OK, &json!({})))
    }

    /// Locks what is available, waiting up to `wait` for a first event.
    async fn receive(&self, max_events: usize, wait: Duration) -> Response<StorageBody> {
        let deadline = Instant::now() + wait;
        loop {
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let now = Instant::now();
            let (got, next) = {
                let mut queue = self.queue();
                let got = queue.receive(max_events, now, &mut new_id);
                let next = queue.next_change(now);
                (got, next)
            };
            if !got.is_empty() || now >= deadline {
                let value: Vec<Value> = got
                    .into_iter()
                    .map(|(lock_token, delivery_count, event)| {
                        json!({"brokerProperties": {"lockToken": lock_token, "deliveryCount": delivery_count}, "event": event})
                    })
                    .collect();
                return reply(StatusCode::OK, &json!({ "value": value }));
            }
            let wake = next.map_or(deadline, |next| next.min(deadline));
            tokio::select! {
                _ = published => {}
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
        }
    }
}

type Refusal = (StatusCode, &'static str, String);

fn bad(message: &str) -> Refusal {
    (StatusCode::BAD_REQUEST, "BadRequest", message.to_owned())
}

fn reply(status: StatusCode, body: &Value) -> Response<StorageBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).expect("json values serialize"));
    let mut response = Response::new(StorageBody::full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(name), decode(value))
        })
        .collect()
}
