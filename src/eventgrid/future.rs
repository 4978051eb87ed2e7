//! The webhook's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project::pin_project;
use tower_service::Service;

use super::envelope::{Events, Schema};
use super::error::{Error, ErrorKind};
use super::handshake::{aeg_event_type_is, validation_response};
use super::read::Collector;
use crate::body::ResponseBody;
use crate::BoxError;

/// The future of [`EventGridWebhook`](super::EventGridWebhook): reads and parses the body, then answers a
/// handshake or calls the inner service.
#[pin_project]
pub struct ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[pin]
    state: State<S, B>,
    span: tracing::Span,
}

#[pin_project(project = StateProj)]
enum State<S, B>
where
    S: Service<Request<B>>,
{
    Reading {
        #[pin]
        body: B,
        collector: Collector,
        next: Option<(Parts, S)>,
        schema: Schema,
    },
    Calling {
        #[pin]
        future: S::Future,
    },
    Responding {
        response: Option<Response<Bytes>>,
    },
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn respond(response: Response<Bytes>, span: tracing::Span) -> Self {
        Self { state: State::Responding { response: Some(response) }, span }
    }

    pub(crate) fn call(future: S::Future, span: tracing::Span) -> Self {
        Self { state: State::Calling { future }, span }
    }

    pub(crate) fn read(body: B, parts: Parts, inner: S, schema: Schema, limit: usize, span: tracing::Span) -> Self {
        let state = State::Reading { body, collector: Collector::new(limit), next: Some((parts, inner)), schema };
        Self { state, span }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Reading { .. } => "Reading",
            State::Calling { .. } => "Calling",
            State::Responding { .. } => "Responding",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Reading { body, collector, next, schema } => {
                    let read = ready!(collector.poll_collect(body, cx));
                    let schema = *schema;
                    let Some((parts, mut inner)) = next.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next_state = match read.and_then(|bytes| accept(parts, bytes, schema, this.span)) {
                        Ok(Accepted::Handshake(response)) => State::Responding { response: Some(response) },
                        Ok(Accepted::Deliver(request)) => State::Calling { future: inner.call(request) },
                        Err(error) => {
                            tracing::debug!(%error, "delivery refused");
                            State::Responding { response: Some(error.to_response()) }
                        }
                    };
                    this.state.set(next_state);
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Responding { response } => {
                    let response = response.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::full)));
                }
            }
        }
    }
}

enum Accepted<B> {
    Handshake(Response<Bytes>),
    Deliver(Request<B>),
}

/// Parses the body once and decides: answer the validation handshake, or deliver the events.
fn accept<B: From<Bytes>>(
    mut parts: Parts,
    bytes: Bytes,
    schema: Schema,
    span: &tracing::Span,
) -> Result<Accepted<B>, Error> {
    let events = Events::from_slice(schema, &bytes)?;
    span.record("events", events.len());
    // SPEC.md §4: a publisher posting directly sends no `aeg-*` headers, so the body alone can start a handshake.
    if let Some(code) = events.validation_code() {
        tracing::debug!("subscription validation answered");
        return Ok(Accepted::Handshake(validation_response(code)));
    }
    if aeg_event_type_is(&parts.headers, "SubscriptionValidation") {
        return Err(Error::new(
            ErrorKind::MissingValidationCode,
            "a SubscriptionValidation delivery without a Microsoft.EventGrid.SubscriptionValidationEvent",
        ));
    }
    parts.extensions.insert(events);
    Ok(Accepted::Deliver(Request::from_parts(parts, B::from(bytes))))
}
