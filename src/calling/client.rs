//! [`RecordingClient`]: the recording operations over any HTTP client.

use std::fmt;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{Error, ErrorKind};
use super::model::{RecordingStatus, StartRecording};
use super::operation::Operation;
use super::retry::{send, Repeatability};
use super::API_VERSION;
use crate::clock::{Clock, SharedClock};
use crate::credential::Endpoint;
use crate::download::RetryPolicy;
use crate::inner::inner_service_accessors;
use crate::HttpClient;

/// What a path segment keeps unencoded: the unreserved characters. A recording id is base64 (`+`, `/`, `=`), and
/// must stay one segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Starts, pauses, resumes, stops and reads the state of call recordings through `S`, an HTTP client that
/// authenticates its requests (an [`HmacSigningLayer`](crate::signing::HmacSigningLayer) or a `BearerTokenLayer`
/// around hyper-util's client, for instance).
///
/// Each operation is retried on 408, 429, 5xx and transport failures under its [`RetryPolicy`] (the downloader's:
/// `max_attempts`, the [`Backoff`](crate::download::Backoff) curve with `Retry-After` honoured up to its
/// `maximum`, `max_total` for all the attempts of one call, `read_timeout` for each answer). Put the signing layer
/// inside the client given here: the retries happen above it, so every attempt is signed afresh.
#[derive(Clone)]
pub struct RecordingClient<S> {
    inner: S,
    endpoint: Endpoint,
    policy: RetryPolicy,
    clock: SharedClock,
}

impl<S> RecordingClient<S> {
    /// A client for the ACS resource at `endpoint`, sending through `inner`, with the default [`RetryPolicy`].
    pub fn new(inner: S, endpoint: Endpoint) -> Self {
        Self { inner, endpoint, policy: RetryPolicy::default(), clock: SharedClock::system() }
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the clock that dates `Repeatability-First-Sent` and reads a `Retry-After` date.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// The endpoint the operations go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    inner_service_accessors!();
}

impl<S: HttpClient<Full<Bytes>>> RecordingClient<S> {
    /// Starts recording a call: answers the recording's id and state (200, or 202 when the service starts it
    /// later). A retried start carries the same repeatability headers, so it never starts a second recording. A
    /// request that names no call, or names it twice (locator and call connection id), is not sent.
    pub async fn start(&self, request: &StartRecording) -> Result<RecordingStatus, Error> {
        let operation = Operation::Start;
        if request.call_locator.is_some() == request.call_connection_id.is_some() {
            let why = "a start request names the call by a call locator or by a call connection id, one of the two";
            return Err(Error::new(ErrorKind::InvalidRequest, operation).with_source(why));
        }
        let body = serde_json::to_vec(request)
            .map(Bytes::from)
            .map_err(|error| Error::new(ErrorKind::InvalidRequest, operation).with_source(error))?;
        let answer = self.call(operation, "calling/recordings", body).await?;
        read(operation, &answer)
    }

    /// Pauses a recording (202).
    pub async fn pause(&self, recording_id: &str) -> Result<(), Error> {
        let path = format!("{}:pause", recording_path(recording_id));
        self.call(Operation::Pause, &path, Bytes::new()).await.map(drop)
    }

    /// Resumes a paused recording (202).
    pub async fn resume(&self, recording_id: &str) -> Result<(), Error> {
        let path = format!("{}:resume", recording_path(recording_id));
        self.call(Operation::Resume, &path, Bytes::new()).await.map(drop)
    }

    /// Stops a recording (204); ACS then makes it ready for download and says so with a
    /// `RecordingFileStatusUpdated` event.
    pub async fn stop(&self, recording_id: &str) -> Result<(), Error> {
        self.call(Operation::Stop, &recording_path(recording_id), Bytes::new()).await.map(drop)
    }

    /// The state of a recording (200).
    pub async fn state(&self, recording_id: &str) -> Result<RecordingStatus, Error> {
        let answer = self.call(Operation::State, &recording_path(recording_id), Bytes::new()).await?;
        read(Operation::State, &answer)
    }

    /// Sends `operation` to `path` with `body` until it succeeds or the retries end, and answers the body of the
    /// success. A `POST` gets one pair of repeatability headers for all its attempts.
    async fn call(&self, operation: Operation, path: &str, body: Bytes) -> Result<Bytes, Error> {
        let repeatability = operation.is_repeatable().then(|| Repeatability::new(self.clock.now()));
        send(&self.inner, &self.policy, &self.clock, operation, || {
            self.request(operation, path, body.clone(), repeatability.as_ref())
        })
        .await
    }

    /// One attempt's request: `{endpoint}/{path}?api-version=...`, JSON when it has a body.
    fn request(
        &self,
        operation: Operation,
        path: &str,
        body: Bytes,
        repeatability: Option<&Repeatability>,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let method = operation.method();
        let uri = format!("{}{path}?api-version={API_VERSION}", self.endpoint.url());
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        } else if method == Method::POST {
            // HTTP clients leave the length out of an empty body; front ends may answer a POST without one 411.
            builder = builder.header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        let mut request = builder
            .body(Full::new(body))
            .map_err(|error| Error::new(ErrorKind::InvalidRequest, operation).with_source(error))?;
        if let Some(repeatability) = repeatability {
            repeatability.apply(&mut request);
        }
        Ok(request)
    }
}

/// The recording's state in the body of a success.
fn read(operation: Operation, answer: &[u8]) -> Result<RecordingStatus, Error> {
    serde_json::from_slice(answer).map_err(|error| Error::new(ErrorKind::InvalidAnswer, operation).with_source(error))
}

/// `calling/recordings/{id}`, the id encoded as one segment.
fn recording_path(recording_id: &str) -> String {
    format!("calling/recordings/{}", utf8_percent_encode(recording_id, SEGMENT))
}

impl<S> fmt::Debug for RecordingClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingClient")
            .field("endpoint", &self.endpoint.url())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_id_is_encoded_as_one_path_segment() {
        assert_eq!(recording_path("ab+c/d=="), "calling/recordings/ab%2Bc%2Fd%3D%3D");
        assert_eq!(recording_path("plain-id_1.2~"), "calling/recordings/plain-id_1.2~");
    }
}
