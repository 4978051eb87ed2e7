//! The webhook's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::check::CheckFuture;
use super::config::Config;
use super::envelope::{Events, Schema};
use super::error::{Error, ErrorKind};
use super::handshake::{aeg_event_type_is, validation_response};
use super::read::Collector;
use crate::body::ResponseBody;
use crate::BoxError;

/// The future of [`EventGridWebhook`](super::EventGridWebhook): runs the checks that may wait, reads and parses the
/// body, then answers a handshake or calls the inner service.
#[pin_project]
#[must_use = "futures do nothing unless polled"]
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
    /// Running the [`AsyncDeliveryCheck`](super::AsyncDeliveryCheck)s, one after the other, before the body is
    /// read.
    Authenticating {
        check: CheckFuture,
        index: usize,
        config: Arc<Config>,
        body: Option<B>,
        next: Option<(Parts, S)>,
        precheck: Option<Result<Schema, Error>>,
    },
    Reading {
        #[pin]
        body: B,
        collector: Collector,
        next: Option<(Parts, S)>,
        schema: Schema,
        timeout: Option<Duration>,
        /// Armed the first time the body is not ready, so that a body already in memory needs no timer.
        #[pin]
        timer: Option<Sleep>,
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

    /// Runs the configured asynchronous checks (there is at least one), then answers `precheck`'s refusal or
    /// reads the body.
    pub(crate) fn authenticate(
        config: Arc<Config>,
        body: B,
        parts: Parts,
        inner: S,
        precheck: Result<Schema, Error>,
        span: tracing::Span,
    ) -> Self {
        let check = config.async_checks[0].check(&parts);
        let state = State::Authenticating {
            check,
            index: 0,
            config,
            body: Some(body),
            next: Some((parts, inner)),
            precheck: Some(precheck),
        };
        Self { state, span }
    }

    pub(crate) fn read(body: B, parts: Parts, inner: S, schema: Schema, config: &Config, span: tracing::Span) -> Self {
        Self { state: State::reading(body, parts, inner, schema, config), span }
    }
}

impl<S, B> State<S, B>
where
    S: Service<Request<B>>,
{
    /// Reading the body under the configured limit and timeout.
    fn reading(body: B, parts: Parts, inner: S, schema: Schema, config: &Config) -> Self {
        State::Reading {
            body,
            collector: Collector::new(config.max_body_bytes),
            next: Some((parts, inner)),
            schema,
            timeout: config.body_timeout,
            timer: None,
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Authenticating { .. } => "Authenticating",
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
                StateProj::Authenticating { check, index, config, body, next, precheck } => {
                    let outcome = ready!(Pin::new(&mut *check).poll(cx));
                    if let Some(error) = outcome.into_error() {
                        tracing::debug!(%error, "delivery refused");
                        this.state.set(State::Responding { response: Some(error.to_response()) });
                        continue;
                    }
                    *index += 1;
                    let Some((parts, inner)) = next.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    if let Some(following) = config.async_checks.get(*index) {
                        *check = following.check(&parts);
                        *next = Some((parts, inner));
                        continue;
                    }
                    let (Some(body), Some(precheck)) = (body.take(), precheck.take()) else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next_state = match precheck {
                        Ok(schema) => State::reading(body, parts, inner, schema, config),
                        Err(error) => {
                            tracing::debug!(%error, "delivery refused");
                            State::Responding { response: Some(error.to_response()) }
                        }
                    };
                    this.state.set(next_state);
                }
                StateProj::Reading { body, collector, next, schema, timeout, mut timer } => {
                    let read = match collector.poll_collect(body, cx) {
                        Poll::Ready(read) => read,
                        Poll::Pending => {
                            let Some(timeout) = *timeout else { return Poll::Pending };
                            if timer.is_none() {
                                timer.set(Some(tokio::time::sleep(timeout)));
                            }
                            let Some(sleep) = timer.as_mut().as_pin_mut() else { return Poll::Pending };
                            ready!(sleep.poll(cx));
                            Err(Error::new(
                                ErrorKind::BodyTimeout,
                                format!("the body did not arrive within {} s", timeout.as_secs_f64()),
                            ))
                        }
                    };
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
    if !span.is_disabled() {
        // Recording into a disabled span still walks tracing's field machinery: skip it when nobody listens.
        span.record("events", events.len());
    }
    // A publisher posting directly sends no `aeg-*` headers, so the body alone can start a handshake.
    if let Some(code) = events.validation_code() {
        if events.len() > 1 {
            // Answering the handshake would acknowledge the other events unread: refuse the whole delivery instead.
            return Err(Error::new(
                ErrorKind::InvalidEvent,
                format!(
                    "a delivery mixes a Microsoft.EventGrid.SubscriptionValidationEvent with {} other events",
                    events.len() - 1
                ),
            ));
        }
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
