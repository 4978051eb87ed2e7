//! Delivery checks that may wait: a bearer token whose signing keys must be fetched first.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::request::Parts;

use super::error::{Error, ErrorKind};

/// What an [`AsyncDeliveryCheck`] decided about a delivery.
///
/// The reasons go into the problem body of the refusal: they must say what was wrong without echoing a secret or
/// a token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// The delivery may proceed.
    Allow,
    /// No credential, or one that is not valid (malformed, expired, wrong audience or issuer): 401.
    Unauthorized(String),
    /// A valid credential of a caller that may not deliver (another application, a missing role): 403.
    Forbidden(String),
    /// The check could not be made now (its keys cannot be fetched): 503, so that Event Grid delivers again.
    Unavailable(String),
}

impl CheckOutcome {
    /// The refusal the webhook answers with, or `None` to let the delivery proceed.
    pub(crate) fn into_error(self) -> Option<Error> {
        match self {
            CheckOutcome::Allow => None,
            CheckOutcome::Unauthorized(reason) => {
                Some(Error::new(ErrorKind::Unauthorized, reason).with_challenge(BEARER_CHALLENGE))
            }
            CheckOutcome::Forbidden(reason) => Some(Error::new(ErrorKind::Forbidden, reason)),
            CheckOutcome::Unavailable(reason) => Some(Error::new(ErrorKind::Unavailable, reason)),
        }
    }
}

/// The `WWW-Authenticate` challenge of a 401 from an asynchronous check (RFC 6750 §3).
const BEARER_CHALLENGE: &str = "Bearer";

/// A check every delivery must pass before its body is read, which may wait (fetch keys, ask a service).
///
/// The webhook runs it after the synchronous [`DeliveryCheck`](super::DeliveryCheck)s, on every `POST`, the
/// validation handshake included. [`CheckOutcome::Unauthorized`] is answered with 401 and
/// `WWW-Authenticate: Bearer`, [`CheckOutcome::Forbidden`] with 403, [`CheckOutcome::Unavailable`] with 503.
/// A check that can decide at once returns [`CheckFuture::ready`], which does not allocate.
///
/// ```
/// use acs_recording::eventgrid::{AsyncDeliveryCheck, CheckFuture, CheckOutcome, EventGridWebhookLayer};
///
/// struct KnownCaller;
///
/// impl AsyncDeliveryCheck for KnownCaller {
///     fn check(&self, request: &http::request::Parts) -> CheckFuture {
///         match request.headers.get("x-caller") {
///             Some(caller) if caller == "event-grid" => CheckFuture::ready(CheckOutcome::Allow),
///             Some(_) => CheckFuture::ready(CheckOutcome::Forbidden("this caller may not deliver".into())),
///             None => CheckFuture::new(async { CheckOutcome::Unauthorized("no caller".into()) }),
///         }
///     }
/// }
///
/// let layer = EventGridWebhookLayer::new().require_async(KnownCaller);
/// # let _ = layer;
/// ```
pub trait AsyncDeliveryCheck: Send + Sync + 'static {
    /// Decides whether the request, seen before its body, may deliver events. Whatever the future needs from the
    /// request must be taken from `request` before returning.
    fn check(&self, request: &Parts) -> CheckFuture;
}

/// The future of an [`AsyncDeliveryCheck`]: an outcome known at once, or one to wait for.
#[must_use = "futures do nothing unless polled"]
pub struct CheckFuture {
    inner: Inner,
}

enum Inner {
    Ready(Option<CheckOutcome>),
    Waiting(Pin<Box<dyn Future<Output = CheckOutcome> + Send>>),
}

impl CheckFuture {
    /// An outcome known at once.
    pub fn ready(outcome: CheckOutcome) -> Self {
        Self { inner: Inner::Ready(Some(outcome)) }
    }

    /// An outcome to wait for (boxed once).
    pub fn new(future: impl Future<Output = CheckOutcome> + Send + 'static) -> Self {
        Self { inner: Inner::Waiting(Box::pin(future)) }
    }
}

impl Future for CheckFuture {
    type Output = CheckOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CheckOutcome> {
        match &mut self.inner {
            Inner::Ready(outcome) => Poll::Ready(outcome.take().expect("CheckFuture polled after completion")),
            Inner::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for CheckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.inner {
            Inner::Ready(_) => "ready",
            Inner::Waiting(_) => "waiting",
        };
        f.debug_struct("CheckFuture").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_maps_to_its_status_and_challenge() {
        let cases = [
            (CheckOutcome::Unauthorized("u".into()), 401, Some("Bearer")),
            (CheckOutcome::Forbidden("f".into()), 403, None),
            (CheckOutcome::Unavailable("n".into()), 503, None),
        ];
        for (outcome, status, challenge) in cases {
            let response = outcome.clone().into_error().unwrap().to_response();
            assert_eq!(response.status().as_u16(), status, "{outcome:?}");
            let sent = response.headers().get("www-authenticate").map(|value| value.to_str().unwrap());
            assert_eq!(sent, challenge, "{outcome:?}");
        }
        assert!(CheckOutcome::Allow.into_error().is_none());
    }
}
