use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use pin_project::pin_project;
use tower_service::Service;

use super::token::{Token, TokenCache};
use crate::signing::error::Error;
use crate::BoxError;

type TokenFuture = Pin<Box<dyn Future<Output = Result<Token, Error>> + Send>>;

/// The response future of [`BearerToken`](super::BearerToken).
///
/// With a cached token it is the inner service's future and nothing else; it waits for the credential only when
/// there is no valid token, or for the one retry after a 401.
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct BearerFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[pin]
    state: State<S, B>,
    cache: Option<Arc<TokenCache>>,
}

// The future is pinned once and never moved, so the variants' sizes cost nothing; boxing would allocate.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<S, B>
where
    S: Service<Request<B>>,
{
    /// Waiting for a token from the credential: the first one, or a new one after a 401.
    Acquiring {
        token: TokenFuture,
        pending: Option<Pending<S, B>>,
    },
    /// Waiting for the inner service to be ready for the retry (whose body is `B::default()`).
    Readying {
        pending: Option<(S, Parts)>,
    },
    Calling {
        #[pin]
        future: S::Future,
        retry: Option<Retry<S>>,
    },
    Failed {
        error: Option<Error>,
    },
}

struct Pending<S, B> {
    inner: S,
    parts: Parts,
    body: B,
    /// Whether a 401 to this attempt may be retried (a first attempt without a body).
    retryable: bool,
    /// Whether `inner` was made ready by the caller (the first attempt) or must be polled (the retry).
    ready: bool,
}

/// What the one retry after a 401 needs: the service, the request head and which token was refused.
struct Retry<S> {
    inner: S,
    parts: Parts,
    generation: u64,
}

impl<S, B> BearerFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn failed(error: Error) -> Self {
        Self { state: State::Failed { error: Some(error) }, cache: None }
    }

    pub(crate) fn calling(
        inner: S,
        parts: Parts,
        body: B,
        generation: u64,
        retryable: bool,
        cache: Arc<TokenCache>,
    ) -> Self {
        Self { state: call(inner, parts, body, generation, retryable), cache: Some(cache) }
    }

    pub(crate) fn acquiring(inner: S, parts: Parts, body: B, retryable: bool, cache: Arc<TokenCache>) -> Self {
        let pending = Pending { inner, parts, body, retryable, ready: true };
        let token = Box::pin(cache.clone().fetch());
        Self { state: State::Acquiring { token, pending: Some(pending) }, cache: Some(cache) }
    }
}

/// Calls the inner service, keeping what a retry needs when the attempt may be retried.
fn call<S, B>(mut inner: S, parts: Parts, body: B, generation: u64, retryable: bool) -> State<S, B>
where
    S: Service<Request<B>>,
{
    let again = retryable.then(|| parts.clone());
    let future = inner.call(Request::from_parts(parts, body));
    let retry = again.map(|parts| Retry { inner, parts, generation });
    State::Calling { future, retry }
}

impl<S, B, ResBody> Future for BearerFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Default,
{
    type Output = Result<Response<ResBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Acquiring { token, pending } => {
                    let token = ready!(token.as_mut().poll(cx))?;
                    let Pending { inner, mut parts, body, retryable, ready } =
                        pending.take().expect("polled after completion");
                    parts.headers.insert(AUTHORIZATION, token.header().clone());
                    let next = if ready {
                        call(inner, parts, body, token.generation(), retryable)
                    } else {
                        State::Readying { pending: Some((inner, parts)) }
                    };
                    this.state.set(next);
                }
                StateProj::Readying { pending } => {
                    let (inner, _) = pending.as_mut().expect("polled after completion");
                    ready!(inner.poll_ready(cx)).map_err(Error::inner)?;
                    let (inner, parts) = pending.take().expect("polled after completion");
                    this.state.set(call(inner, parts, B::default(), 0, false));
                }
                StateProj::Calling { future, retry } => {
                    let response = ready!(future.poll(cx)).map_err(Error::inner)?;
                    let (Some(cache), true) = (this.cache.as_ref(), response.status() == StatusCode::UNAUTHORIZED)
                    else {
                        return Poll::Ready(Ok(response));
                    };
                    let Some(Retry { inner, parts, generation }) = retry.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    // The service refused this token (revoked, or a clock far off): drop it and try once more with
                    // a new one. The first answer's body is dropped unread.
                    drop(response);
                    cache.invalidate(generation);
                    tracing::debug!("401 with a cached token: retrying once with a new token");
                    let pending = Pending { inner, parts, body: B::default(), retryable: false, ready: false };
                    let token = Box::pin(cache.clone().fetch());
                    this.state.set(State::Acquiring { token, pending: Some(pending) });
                }
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after completion")));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for BearerFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Acquiring { .. } => "acquiring",
            State::Readying { .. } => "readying",
            State::Calling { .. } => "calling",
            State::Failed { .. } => "failed",
        };
        f.debug_struct("BearerFuture").field("state", &state).finish()
    }
}
