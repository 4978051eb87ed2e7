use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{Full, LengthLimitError, Limited};
use pin_project::pin_project;
use tower_service::Service;

use super::rejection::VerifyRejection;
use crate::body::ResponseBody;
use crate::signing::body::ContentHash;
use crate::BoxError;

/// The response future of [`HmacVerify`](super::HmacVerify).
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    #[pin]
    state: VerifyState<S, B>,
}

// The future is pinned once and never moved, so the variants' sizes cost nothing; boxing would allocate.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = VerifyStateProj)]
enum VerifyState<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    Rejected {
        rejection: Option<VerifyRejection>,
    },
    Reading {
        #[pin]
        collect: Collect<Limited<B>>,
        parts: Option<http::request::Parts>,
        inner: Option<S>,
        expected: ContentHash,
    },
    Calling {
        #[pin]
        future: S::Future,
    },
}

impl<S, B> VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    pub(super) fn rejected(rejection: VerifyRejection) -> Self {
        Self { state: VerifyState::Rejected { rejection: Some(rejection) } }
    }

    pub(super) fn reading(
        collect: Collect<Limited<B>>,
        parts: http::request::Parts,
        inner: S,
        expected: ContentHash,
    ) -> Self {
        Self { state: VerifyState::Reading { collect, parts: Some(parts), inner: Some(inner), expected } }
    }
}

impl<S, B, ResBody> Future for VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                VerifyStateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
                VerifyStateProj::Reading { collect, parts, inner, expected } => {
                    let bytes = match ready!(collect.poll(cx)) {
                        Ok(collected) => collected.to_bytes(),
                        Err(error) => {
                            let rejection = if error.is::<LengthLimitError>() {
                                VerifyRejection::BodyTooLarge
                            } else {
                                VerifyRejection::UnreadableBody
                            };
                            this.state.set(VerifyState::Rejected { rejection: Some(rejection) });
                            continue;
                        }
                    };
                    if ContentHash::of(&bytes) != *expected {
                        let rejection = Some(VerifyRejection::BodyHashMismatch);
                        this.state.set(VerifyState::Rejected { rejection });
                        continue;
                    }
                    let parts = parts.take().expect("polled after completion");
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(Request::from_parts(parts, Full::new(bytes)));
                    this.state.set(VerifyState::Calling { future });
                }
                VerifyStateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            VerifyState::Rejected { .. } => "rejected",
            VerifyState::Reading { .. } => "reading",
            VerifyState::Calling { .. } => "calling",
        };
        f.debug_struct("VerifyFuture").field("state", &state).finish()
    }
}
