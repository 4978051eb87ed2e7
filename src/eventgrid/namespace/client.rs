//! [`NamespaceClient`]: the pull delivery operations of one event subscription over any HTTP client.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tower::ServiceExt;

use super::error::{Error, ErrorKind, Operation};
use super::key::NamespaceKey;
use super::model::{LockTokenResult, LockTokens, ReceiveResult, ReceivedEvent, ReleaseDelay};
use super::{API_VERSION, CLOUDEVENTS_BATCH, DEFAULT_MAX_RESPONSE_BYTES};
use crate::calling::ErrorResponse;
use crate::credential::Endpoint;
use crate::inner::inner_service_accessors;
use crate::HttpClient;

/// How long an answer other than a receive's may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Receives, acknowledges, releases, rejects and renews the locks of the events of one event subscription of a
/// namespace topic, and publishes to the topic, through `S`: an HTTP client (hyper-util's, or a
/// `BearerTokenLayer` around it with [`EVENTGRID_SCOPE`](super::EVENTGRID_SCOPE) for Microsoft Entra ID).
///
/// Each call is one request; retrying is the caller's (a source backs off and receives again).
#[derive(Clone)]
pub struct NamespaceClient<S> {
    inner: S,
    endpoint: Endpoint,
    topic: String,
    subscription: String,
    key: Option<NamespaceKey>,
    max_response_bytes: usize,
}

impl<S> NamespaceClient<S> {
    /// A client for `subscription` of `topic` on the namespace at `endpoint`
    /// (`https://<namespace>.<region>-1.eventgrid.azure.net/`). An error when a name is not 3–50 letters, digits
    /// and hyphens, as the service requires.
    pub fn new(inner: S, endpoint: Endpoint, topic: &str, subscription: &str) -> Result<Self, InvalidName> {
        Ok(Self {
            inner,
            endpoint,
            topic: checked_name(topic)?,
            subscription: checked_name(subscription)?,
            key: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// A client from the subscription's URL, `https://<namespace host>/topics/<topic>/eventsubscriptions/<name>`
    /// (plain http for loopback hosts only).
    pub fn from_url(inner: S, url: &str) -> Result<Self, InvalidName> {
        let invalid = || InvalidName(format!("`{url}` is not https://<host>/topics/<topic>/eventsubscriptions/<name>"));
        let uri: http::Uri = url.trim().parse().map_err(|_| invalid())?;
        if uri.query().is_some() {
            return Err(invalid());
        }
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let [topics, topic, subscriptions, subscription] = segments[..] else { return Err(invalid()) };
        if !topics.eq_ignore_ascii_case("topics") || !subscriptions.eq_ignore_ascii_case("eventsubscriptions") {
            return Err(invalid());
        }
        let scheme = uri.scheme_str().ok_or_else(invalid)?;
        let authority = uri.authority().ok_or_else(invalid)?;
        let endpoint = Endpoint::parse(&format!("{scheme}://{authority}/")).map_err(|e| InvalidName(e.to_string()))?;
        Self::new(inner, endpoint, topic, subscription)
    }

    /// Authenticates with the namespace (or topic) access key; without one the requests go as `S` sends them.
    #[must_use]
    pub fn with_key(mut self, key: NamespaceKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Caps the bytes read of any answer (default 16 MiB); a larger one fails with [`ErrorKind::TooLarge`].
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The namespace endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The event subscription's name.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    inner_service_accessors!();
}

impl<S: HttpClient<Full<Bytes>>> NamespaceClient<S> {
    /// Receives up to `max_events` (1–100) events, waiting up to `max_wait` (10–120 s, whole seconds) for the
    /// first; each comes locked for this receiver.
    pub async fn receive(&self, max_events: u32, max_wait: Duration) -> Result<Vec<ReceivedEvent>, Error> {
        let query = format!("&maxEvents={}&maxWaitTime={}", max_events.clamp(1, 100), max_wait.as_secs().max(1));
        let wait = max_wait + ANSWER_TIMEOUT;
        let body = self.send(Operation::Receive, &query, Bytes::from_static(b"{}"), "application/json", wait).await?;
        read::<ReceiveResult>(Operation::Receive, &body).map(|result| result.value)
    }

    /// Acknowledges events: they are done and deleted.
    pub async fn acknowledge(&self, lock_tokens: &[String]) -> Result<LockTokenResult, Error> {
        self.tokens(Operation::Acknowledge, "", lock_tokens).await
    }

    /// Releases events: they can be received again after `delay`.
    pub async fn release(&self, lock_tokens: &[String], delay: ReleaseDelay) -> Result<LockTokenResult, Error> {
        let query = match delay {
            ReleaseDelay::None => String::new(),
            delay => format!("&releaseDelayInSeconds={}", delay.as_secs()),
        };
        self.tokens(Operation::Release, &query, lock_tokens).await
    }

    /// Rejects events: they go to the subscription's dead-letter destination, if it has one, and are never
    /// delivered again.
    pub async fn reject(&self, lock_tokens: &[String]) -> Result<LockTokenResult, Error> {
        self.tokens(Operation::Reject, "", lock_tokens).await
    }

    /// Renews the locks of events still being worked on, for another lock duration from now.
    pub async fn renew_locks(&self, lock_tokens: &[String]) -> Result<LockTokenResult, Error> {
        self.tokens(Operation::RenewLock, "", lock_tokens).await
    }

    /// Publishes CloudEvents to the topic, as a publisher (Event Grid, for an ACS system topic) does.
    pub async fn publish(&self, events: &[Box<RawValue>]) -> Result<(), Error> {
        let body = serde_json::to_vec(events)
            .map_err(|error| Error::new(ErrorKind::InvalidRequest, Operation::Publish).with_source(error))?;
        self.send(Operation::Publish, "", Bytes::from(body), CLOUDEVENTS_BATCH, ANSWER_TIMEOUT).await.map(drop)
    }

    async fn tokens(
        &self,
        operation: Operation,
        query: &str,
        lock_tokens: &[String],
    ) -> Result<LockTokenResult, Error> {
        let body = serde_json::to_vec(&LockTokens { lock_tokens })
            .map_err(|error| Error::new(ErrorKind::InvalidRequest, operation).with_source(error))?;
        let answer = self.send(operation, query, Bytes::from(body), "application/json", ANSWER_TIMEOUT).await?;
        read(operation, &answer)
    }

    /// Sends one request and answers the body of a 200, read up to the cap.
    async fn send(
        &self,
        operation: Operation,
        query: &str,
        body: Bytes,
        content_type: &'static str,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let path = match operation {
            Operation::Publish => format!("topics/{}:publish", self.topic),
            _ => format!("topics/{}/eventsubscriptions/{}:{}", self.topic, self.subscription, operation.action()),
        };
        let uri = format!("{}{path}?api-version={API_VERSION}{query}", self.endpoint.url());
        let mut request = Request::post(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .map_err(|error| Error::new(ErrorKind::InvalidRequest, operation).with_source(error))?;
        if let Some(key) = &self.key {
            request.headers_mut().insert(AUTHORIZATION, key.header().clone());
        }
        let limit = self.max_response_bytes;
        let exchange = async {
            let response = self
                .inner
                .clone()
                .oneshot(request)
                .await
                .map_err(|error| Error::new(ErrorKind::Transport, operation).with_source(error))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|error| {
                let kind = if error.is::<LengthLimitError>() { ErrorKind::TooLarge } else { ErrorKind::Transport };
                Error::new(kind, operation).with_source(error)
            })?;
            Ok::<_, Error>((parts.status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|elapsed| Error::new(ErrorKind::Transport, operation).with_source(elapsed))??;
        if status != StatusCode::OK {
            let service = serde_json::from_slice::<ErrorResponse>(&body).ok().map(|answer| answer.error);
            return Err(Error::status(operation, status, service));
        }
        Ok(body)
    }
}

fn read<T: DeserializeOwned>(operation: Operation, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|error| Error::new(ErrorKind::InvalidAnswer, operation).with_source(error))
}

/// A topic or subscription name is 3–50 letters, digits and hyphens: safe in a path as it is.
fn checked_name(name: &str) -> Result<String, InvalidName> {
    let valid = (3..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    match valid {
        true => Ok(name.to_owned()),
        false => {
            Err(InvalidName(format!("`{name}` is not a topic or subscription name (3-50 letters, digits, hyphens)")))
        }
    }
}

/// A topic, subscription or URL that names no event subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName(String);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidName {}

impl<S> fmt::Debug for NamespaceClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceClient")
            .field("endpoint", &self.endpoint.url())
            .field("topic", &self.topic)
            .field("subscription", &self.subscription)
            .field("key", &self.key)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_url_names_endpoint_topic_and_subscription() {
        let client =
            NamespaceClient::from_url((), "https://ns.westus-1.eventgrid.azure.net/topics/acs/eventsubscriptions/rec")
                .unwrap();
        assert_eq!(
            (client.endpoint().url().as_str(), client.topic(), client.subscription()),
            ("https://ns.westus-1.eventgrid.azure.net/", "acs", "rec")
        );
        for bad in [
            "https://ns.example/topics/acs",
            "https://ns.example/topics/acs/eventsubscriptions/rec?x=1",
            "https://ns.example/topics/a/eventsubscriptions/rec",
            "http://ns.example/topics/acs/eventsubscriptions/rec",
            "https://ns.example/topics/a%2Fb/eventsubscriptions/rec",
        ] {
            assert!(NamespaceClient::from_url((), bad).is_err(), "{bad}");
        }
        assert!(NamespaceClient::from_url((), "http://127.0.0.1:9/topics/acs/eventsubscriptions/rec").is_ok());
    }
}
