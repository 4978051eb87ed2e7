use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::Request;
use http_body_util::combinators::Collect;
use http_body_util::{LengthLimitError, Limited};
use pin_project::pin_project;
use tower_service::Service;

use crate::signing::body::{ContentHash, SignableBody};
use crate::signing::error::Error;
use crate::signing::signer::HmacSigner;
use crate::BoxError;

/// The response future of [`HmacSigning`](super::HmacSigning).
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    #[pin]
    state: State<S, B>,
}

// The future is pinned once and never moved, so the variants' sizes cost nothing; boxing would allocate.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<S, B>
where
    S: Service<Request<B>>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    /// Reading a body of unknown content (under the limit) to hash it.
    Buffering {
        #[pin]
        collect: Collect<Limited<B>>,
        parts: Option<http::request::Parts>,
        inner: Option<S>,
        signer: Arc<HmacSigner>,
        body_limit: usize,
        cross_host: bool,
    },
    Calling {
        #[pin]
        future: S::Future,
    },
    Failed {
        error: Option<Error>,
    },
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    pub(crate) fn failed(error: Error) -> Self {
        Self { state: State::Failed { error: Some(error) } }
    }

    pub(crate) fn calling(mut inner: S, request: Request<B>) -> Self {
        Self { state: State::Calling { future: inner.call(request) } }
    }

    pub(crate) fn buffering(
        collect: Collect<Limited<B>>,
        parts: http::request::Parts,
        inner: S,
        signer: Arc<HmacSigner>,
        body_limit: usize,
        cross_host: bool,
    ) -> Self {
        let (parts, inner) = (Some(parts), Some(inner));
        Self { state: State::Buffering { collect, parts, inner, signer, body_limit, cross_host } }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Buffering { collect, parts, inner, signer, body_limit, cross_host } => {
                    let collected = match ready!(collect.poll(cx)) {
                        Ok(collected) => collected,
                        Err(error) if error.is::<LengthLimitError>() => {
                            let error = Error::body_too_large(*body_limit);
                            this.state.set(State::Failed { error: Some(error) });
                            continue;
                        }
                        Err(error) => {
                            this.state.set(State::Failed { error: Some(Error::body(error)) });
                            continue;
                        }
                    };
                    // A single frame (`Full<Bytes>`) comes back as the same `Bytes`: no copy.
                    let bytes = collected.to_bytes();
                    let hash = ContentHash::of(&bytes);
                    let mut parts = parts.take().expect("polled after completion");
                    signer.sign_admitted(&mut parts, hash.as_str(), *cross_host);
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(Request::from_parts(parts, B::from_bytes(bytes)));
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => return future.poll(cx).map_err(Error::inner),
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after completion")));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Buffering { .. } => "buffering",
            State::Calling { .. } => "calling",
            State::Failed { .. } => "failed",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
