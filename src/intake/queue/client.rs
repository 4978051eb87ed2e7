//! The queue REST calls: Get, Peek, Delete and Put Message, Create Queue, each signed and sent through the crate's
//! [`HttpClient`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tower::ServiceExt;

use super::auth::{Auth, QueueCredential};
use super::error::{Error, ErrorKind};
use super::url::QueueUrl;
use super::{xml, QueueMessage};
use crate::clock::{Clock, SharedClock};
use crate::HttpClient;

/// The Storage service version the requests ask for (Azurite 3.35 accepts it, and any with
/// `--skipApiVersionCheck`).
pub const API_VERSION: &str = "2021-12-02";

/// The most messages one Get Messages returns.
pub const MAX_BATCH: u8 = 32;

/// A message list of 32 messages of 64 KiB, escaped, fits many times over; a larger answer is not the queue's.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Query values are percent-encoded except the unreserved characters (RFC 3986 section 2.3).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A client of one Storage queue. Cheap to clone.
///
/// ```
/// use acs_recording::intake::queue::{QueueClient, QueueCredential, QueueUrl};
/// use acs_recording::credential::AccessKey;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
///
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let url = QueueUrl::parse("http://127.0.0.1:10001/devstoreaccount1/acs-events")?;
/// let key = AccessKey::from_base64("a2V5")?;
/// let client = QueueClient::new(http, url, QueueCredential::AccountKey(key));
/// assert_eq!(client.url().queue(), "acs-events");
/// assert_eq!(client.poison_queue().url().queue(), "acs-events-poison");
/// # Ok::<(), acs_recording::BoxError>(())
/// ```
#[derive(Clone)]
pub struct QueueClient<C> {
    http: C,
    url: Arc<QueueUrl>,
    auth: Arc<Auth>,
    clock: SharedClock,
}

impl<C> std::fmt::Debug for QueueClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueClient").field("url", &self.url).field("auth", &self.auth).finish_non_exhaustive()
    }
}

impl<C> QueueClient<C> {
    /// A client of the queue at `url`, sending through `http` with `credential`.
    pub fn new(http: C, url: QueueUrl, credential: QueueCredential) -> Self {
        Self { http, url: Arc::new(url), auth: Arc::new(Auth::new(credential)), clock: SharedClock::system() }
    }

    /// Takes the time of `x-ms-date` from `clock`.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// The queue's URL (its SAS never shown).
    pub fn url(&self) -> &QueueUrl {
        &self.url
    }

    /// The queue where messages that keep failing go: `<queue>-poison`, same account and credential.
    pub fn poison_queue(&self) -> Self
    where
        C: Clone,
    {
        let name = format!("{}-poison", self.url.queue());
        Self { url: Arc::new(self.url.sibling(&name)), ..self.clone() }
    }
}

impl<C: HttpClient<Full<Bytes>>> QueueClient<C> {
    /// Get Messages: up to `max` (1 to 32) messages, each invisible to other receivers for `visibility`.
    pub async fn receive(&self, max: u8, visibility: Duration) -> Result<Vec<QueueMessage>, Error> {
        let count = max.clamp(1, MAX_BATCH).to_string();
        let timeout = visibility.as_secs().max(1).to_string();
        let query = [("numofmessages", count.as_str()), ("visibilitytimeout", timeout.as_str())];
        let body = self.send(Method::GET, "/messages", &query, None, "receiving messages", &[StatusCode::OK]).await?;
        xml::parse_messages(&String::from_utf8_lossy(&body))
    }

    /// Peek Messages: the next visible message, left where it is (its pop receipt is empty).
    pub async fn peek(&self) -> Result<Option<QueueMessage>, Error> {
        let query = [("numofmessages", "1"), ("peekonly", "true")];
        let body = self.send(Method::GET, "/messages", &query, None, "peeking at messages", &[StatusCode::OK]).await?;
        Ok(xml::parse_messages(&String::from_utf8_lossy(&body))?.into_iter().next())
    }

    /// Delete Message: `Ok(true)` deleted; `Ok(false)` it was no longer ours to delete (its visibility timeout
    /// passed and another receiver took it, or it is gone).
    pub async fn delete(&self, message: &QueueMessage) -> Result<bool, Error> {
        let path = format!("/messages/{}", utf8_percent_encode(&message.id, QUERY_VALUE));
        let query = [("popreceipt", message.pop_receipt.as_str())];
        let expected = [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST];
        match self.send_status(Method::DELETE, &path, &query, None, "deleting a message", &expected).await? {
            (StatusCode::NO_CONTENT, _) => Ok(true),
            // 404 MessageNotFound, 400 PopReceiptMismatch: the receipt is stale.
            (_, _) => Ok(false),
        }
    }

    /// Put Message: adds `text` as it is (no encoding added).
    pub async fn put(&self, text: &str) -> Result<(), Error> {
        let body = xml::put_message_body(text);
        self.send(Method::POST, "/messages", &[], Some(body), "putting a message", &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Create Queue, if it does not exist yet.
    pub async fn create_if_missing(&self) -> Result<(), Error> {
        let expected = [StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::CONFLICT];
        self.send(Method::PUT, "", &[], None, "creating the queue", &expected).await?;
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        suffix: &str,
        query: &[(&str, &str)],
        body: Option<String>,
        doing: &str,
        expected: &[StatusCode],
    ) -> Result<Bytes, Error> {
        self.send_status(method, suffix, query, body, doing, expected).await.map(|(_, body)| body)
    }

    async fn send_status(
        &self,
        method: Method,
        suffix: &str,
        query: &[(&str, &str)],
        body: Option<String>,
        doing: &str,
        expected: &[StatusCode],
    ) -> Result<(StatusCode, Bytes), Error> {
        let what = || format!("{doing} on queue {}", self.url.queue());
        let path = self.url.path(suffix);
        let encoded: Vec<String> =
            query.iter().map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE))).collect();
        let uri = self.url.request_uri(&path, &encoded.join("&"));
        let body = Bytes::from(body.unwrap_or_default());
        let length = body.len();
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-ms-version", API_VERSION)
            .header("x-ms-date", httpdate::fmt_http_date(self.clock.now()))
            .header(http::header::CONTENT_LENGTH, length);
        if length > 0 {
            request = request.header(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        }
        let mut request = request.body(Full::new(body)).map_err(|error| {
            Error::new(ErrorKind::InvalidUrl, format!("{}: not a valid request", what())).with_source(error)
        })?;
        self.auth.authorize(&mut request, self.url.account(), &path, query, length).await?;
        let response = self
            .http
            .clone()
            .oneshot(request)
            .await
            .map_err(|error| Error::new(ErrorKind::Transport, format!("{} failed", what())).with_source(error))?;
        let status = response.status();
        let code = response.headers().get("x-ms-error-code").and_then(|code| code.to_str().ok()).map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| {
                Error::new(ErrorKind::Transport, format!("{}: the answer was cut short", what())).with_source(error)
            })?
            .to_bytes();
        if expected.contains(&status) {
            return Ok((status, body));
        }
        let code = code.map_or_else(String::new, |code| format!(": {code}"));
        Err(Error::status(format!("{} was refused{code}", what()), status.as_u16()))
    }
}
