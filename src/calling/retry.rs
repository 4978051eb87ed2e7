//! Sending one operation: its attempts, the waits between them, and the repeatability headers they share.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tokio::time::Instant;
use tower::ServiceExt;

use super::error::{is_transient, Error, ErrorKind, Operation};
use super::model::ErrorResponse;
use super::{REPEATABILITY_FIRST_SENT, REPEATABILITY_REQUEST_ID};
use crate::clock::{Clock, SharedClock};
use crate::download::RetryPolicy;
use crate::{BoxError, HttpClient};

/// The largest answer read: the operations answer a few hundred bytes of JSON.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The repeatability headers of one request: generated once, sent unchanged on every attempt, so that the service
/// recognises a retry of a request it already executed.
#[derive(Debug, Clone)]
pub(crate) struct Repeatability {
    request_id: HeaderValue,
    first_sent: HeaderValue,
}

impl Repeatability {
    /// A fresh request id, first sent `now`.
    pub(crate) fn new(now: SystemTime) -> Self {
        let request_id = HeaderValue::from_str(&uuid_v4(crate::random::next_u64(), crate::random::next_u64()))
            .expect("a UUID is a valid header value");
        let first_sent =
            HeaderValue::from_str(&httpdate::fmt_http_date(now)).expect("an HTTP date is a valid header value");
        Self { request_id, first_sent }
    }

    /// Adds both headers to `request`.
    pub(crate) fn apply<B>(&self, request: &mut Request<B>) {
        let headers = request.headers_mut();
        headers.insert(REPEATABILITY_REQUEST_ID, self.request_id.clone());
        headers.insert(REPEATABILITY_FIRST_SENT, self.first_sent.clone());
    }
}

/// A version 4 UUID from 128 random bits, lower-case: the version nibble is 4, the variant bits `10`.
fn uuid_v4(high: u64, low: u64) -> String {
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// How one attempt ended without an answer.
enum NoAnswer {
    /// The request never left, and never will: the signing layer refused the host or had no credential.
    Refused(BoxError),
    /// The connection failed, the body was cut, or the attempt timed out: another attempt may get through.
    Transport(BoxError),
}

/// Sends the request `build` makes until its answer is one of `success` (then answers the body), a status not worth
/// retrying, or the policy's attempts or time run out. Transient statuses (408, 429, 5xx) and transport failures are retried
/// after the policy's backoff, or the server's `Retry-After` when longer, never more than the backoff's maximum.
pub(crate) async fn send<S>(
    service: &S,
    policy: &RetryPolicy,
    clock: &SharedClock,
    operation: Operation,
    success: &[StatusCode],
    build: impl Fn() -> Result<Request<Full<Bytes>>, Error>,
) -> Result<Bytes, Error>
where
    S: HttpClient<Full<Bytes>>,
{
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let request = build()?;
        let (failure, retry_after) = match tokio::time::timeout(policy.read_timeout, attempt(service, request)).await {
            Ok(Ok((status, _, body))) if success.contains(&status) => return Ok(body),
            Ok(Ok((status, headers, body))) => {
                let service_error = serde_json::from_slice::<ErrorResponse>(&body).ok().map(|answer| answer.error);
                let error = Error::status(operation, status, service_error).with_attempts(attempts);
                if !is_transient(status) {
                    return Err(error);
                }
                (error, crate::download::retry::retry_after(&headers, clock.now()))
            }
            Ok(Err(NoAnswer::Refused(source))) => {
                return Err(Error::new(ErrorKind::Credential, operation).with_source(source).with_attempts(attempts))
            }
            Ok(Err(NoAnswer::Transport(source))) => {
                (Error::new(ErrorKind::Transport, operation).with_source(source).with_attempts(attempts), None)
            }
            Err(_) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} ms", policy.read_timeout.as_millis()),
                );
                (Error::new(ErrorKind::Transport, operation).with_source(timed_out).with_attempts(attempts), None)
            }
        };
        if attempts >= policy.max_attempts {
            return Err(failure);
        }
        let delay = policy.delay(attempts, retry_after);
        // Checked: the budget and the delay are configuration and input, their sum may not fit.
        if started.elapsed().checked_add(delay).is_none_or(|at| at > policy.max_total) {
            return Err(failure);
        }
        tracing::warn!(%operation, attempts, delay_ms = delay.as_millis() as u64, cause = %failure, "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// One request and its whole answer.
async fn attempt<S>(
    service: &S,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, http::HeaderMap, Bytes), NoAnswer>
where
    S: HttpClient<Full<Bytes>>,
{
    let response = service.clone().oneshot(request).await.map_err(|error| classify(error.into()))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, ANSWER_LIMIT).collect().await.map_err(NoAnswer::Transport)?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// A signing layer's refusal or missing credential is final; any other error of the client is the transport's.
fn classify(error: BoxError) -> NoAnswer {
    match error.downcast_ref::<crate::signing::Error>() {
        Some(signing) if signing.is_refused() || signing.is_credential() => NoAnswer::Refused(error),
        _ => NoAnswer::Transport(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn uuids_are_version_4_lower_case_with_the_rfc_variant() {
        assert_eq!(uuid_v4(0, 0), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4(u64::MAX, u64::MAX), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4(crate::random::next_u64(), crate::random::next_u64());
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)), "{id}");
    }

    #[test]
    fn the_first_sent_date_is_an_imf_fixdate() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut request = Request::new(());
        Repeatability::new(at).apply(&mut request);
        assert_eq!(request.headers()[REPEATABILITY_FIRST_SENT], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(request.headers()[REPEATABILITY_REQUEST_ID].len(), 36);
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_maximum_is_cut_to_it() {
        let policy =
            RetryPolicy::default().initial_backoff(Duration::from_millis(10)).max_backoff(Duration::from_secs(5));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600))), Duration::from_secs(5));
    }
}
