//! The webhook service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use tower_service::Service;
use tracing::field;

use super::config::Config;
use super::error::{Error, ErrorKind};
use super::future::ResponseFuture;
use super::handshake::{self, AEG_DELIVERY_COUNT, AEG_EVENT_TYPE, AEG_SUBSCRIPTION_NAME, WEBHOOK_REQUEST_ORIGIN};
use super::read::{check_content_length, schema_of};
use crate::body::ResponseBody;
use crate::inner::{inner_service_accessors, take_ready};
use crate::BoxError;

/// An Event Grid webhook in front of `S`; built by [`EventGridWebhookLayer`](super::EventGridWebhookLayer).
///
/// `S` receives accepted deliveries with their [`Events`](super::Events) in the request extensions and the
/// original bytes as the body (the request body type must therefore be buildable from [`Bytes`]). Any other method
/// is answered 405 (`Allow: POST, OPTIONS`) and never reaches `S`: a request that passed no check must not reach a
/// handler that reads events from the body.
#[derive(Clone, Debug)]
pub struct EventGridWebhook<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> EventGridWebhook<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for EventGridWebhook<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = delivery_span(request.headers()).entered();

        if request.method() == Method::OPTIONS {
            if let Some(origin) = request.headers().get(WEBHOOK_REQUEST_ORIGIN) {
                let response = handshake::options_response(request.headers(), origin, &self.config);
                tracing::debug!(status = response.status().as_u16(), "cloudevents handshake");
                return ResponseFuture::respond(response, span.exit());
            }
        }
        if request.method() != Method::POST {
            let error = Error::new(
                ErrorKind::MethodNotAllowed,
                format!("method {} is not allowed: Event Grid delivers with POST", request.method()),
            );
            tracing::debug!(%error, "request refused");
            return ResponseFuture::respond(error.to_response(), span.exit());
        }

        let (parts, body) = request.into_parts();
        // Authentication comes first: nothing of an unauthenticated body is read.
        if !self.config.checks.iter().all(|check| check.check(&parts)) {
            let error = Error::new(ErrorKind::Unauthorized, "the delivery is not authenticated");
            tracing::debug!(%error, "delivery refused");
            return ResponseFuture::respond(error.to_response(), span.exit());
        }
        let precheck = schema_of(&parts.headers).and_then(|schema| {
            let schema = self.config.schema.unwrap_or(schema);
            check_content_length(&parts.headers, self.config.max_body_bytes)?;
            Ok(schema)
        });
        if !self.config.async_checks.is_empty() {
            // An unauthenticated request learns nothing, not even that its content type is wrong: the checks that
            // may wait come first, and the header checks are answered after them.
            let inner = take_ready(&mut self.inner);
            return ResponseFuture::authenticate(self.config.clone(), body, parts, inner, precheck, span.exit());
        }
        let schema = match precheck {
            Ok(schema) => schema,
            Err(error) => {
                tracing::debug!(%error, "delivery refused");
                return ResponseFuture::respond(error.to_response(), span.exit());
            }
        };
        // The ready service goes into the future; a clone takes its place (tower's guidance).
        let inner = take_ready(&mut self.inner);
        ResponseFuture::read(body, parts, inner, schema, &self.config, span.exit())
    }
}

fn delivery_span(headers: &HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "eventgrid_delivery",
        aeg_event_type = field::Empty,
        aeg_delivery_count = field::Empty,
        aeg_subscription_name = field::Empty,
        events = field::Empty,
    );
    if !span.is_disabled() {
        // Only these headers are recorded: never the secret, never the query string.
        for (name, field) in [
            (AEG_EVENT_TYPE, "aeg_event_type"),
            (AEG_DELIVERY_COUNT, "aeg_delivery_count"),
            (AEG_SUBSCRIPTION_NAME, "aeg_subscription_name"),
        ] {
            if let Some(value) = headers.get(name).and_then(|value| value.to_str().ok()) {
                span.record(field, value);
            }
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::time::Duration;

    use http::StatusCode;
    use http_body::Frame;
    use tower::{service_fn, Layer, ServiceExt};

    use super::*;
    use crate::eventgrid::{DeliverySecret, EventGridWebhookLayer};

    /// A body that fails the test if anything polls it.
    struct MustNotBeRead;

    impl Body for MustNotBeRead {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            panic!("the body was read");
        }
    }

    impl From<Bytes> for MustNotBeRead {
        fn from(_: Bytes) -> Self {
            MustNotBeRead
        }
    }

    fn webhook(
    ) -> EventGridWebhook<impl Service<Request<MustNotBeRead>, Response = Response<String>, Error = Infallible> + Clone>
    {
        let inner = service_fn(|_: Request<MustNotBeRead>| async { Ok::<_, Infallible>(Response::new(String::new())) });
        let layer = EventGridWebhookLayer::new().max_body_bytes(100).require_secret(DeliverySecret::query("right"));
        layer.layer(inner)
    }

    /// Decides from the `x-outcome` header, after a pending poll when the value starts with `later-`.
    struct ByHeader;

    impl crate::eventgrid::AsyncDeliveryCheck for ByHeader {
        fn check(&self, request: &http::request::Parts) -> crate::eventgrid::CheckFuture {
            use crate::eventgrid::{CheckFuture, CheckOutcome};
            let value = request.headers.get("x-outcome").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let outcome = |value: &str| match value {
                "allow" => CheckOutcome::Allow,
                "forbidden" => CheckOutcome::Forbidden("not this caller".into()),
                "unavailable" => CheckOutcome::Unavailable("keys unavailable".into()),
                _ => CheckOutcome::Unauthorized("no token".into()),
            };
            match value.strip_prefix("later-") {
                Some(later) => {
                    let outcome = outcome(later);
                    CheckFuture::new(async move {
                        tokio::task::yield_now().await;
                        outcome
                    })
                }
                None => CheckFuture::ready(outcome(&value)),
            }
        }
    }

    #[tokio::test]
    async fn asynchronous_checks_run_before_the_header_checks_and_never_poll_a_refused_body() {
        let inner = service_fn(|_: Request<MustNotBeRead>| async { Ok::<_, Infallible>(Response::new(String::new())) });
        let layer = EventGridWebhookLayer::new().max_body_bytes(100).require_async(ByHeader);
        let cases = [
            ("no", "text/plain", StatusCode::UNAUTHORIZED),
            ("later-no", "application/json", StatusCode::UNAUTHORIZED),
            ("forbidden", "text/plain", StatusCode::FORBIDDEN),
            ("later-unavailable", "application/json", StatusCode::SERVICE_UNAVAILABLE),
            ("allow", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("later-allow", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ];
        for (outcome, content_type, status) in cases {
            let request = Request::post("/e")
                .header("x-outcome", outcome)
                .header("content-type", content_type)
                .body(MustNotBeRead)
                .unwrap();
            let response = layer.layer(inner).oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{outcome} {content_type}");
        }
        let request = Request::post("/e").header("x-outcome", "allow").header("content-length", "101");
        let request = request.header("content-type", "application/json").body(MustNotBeRead).unwrap();
        let response = layer.layer(inner).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn refusals_before_reading_never_poll_the_body() {
        let cases = [
            ("/e?code=wrong", "application/json", "10", StatusCode::UNAUTHORIZED),
            ("/e", "application/json", "10", StatusCode::UNAUTHORIZED),
            ("/e?code=right", "text/plain", "10", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("/e?code=right", "application/json", "101", StatusCode::PAYLOAD_TOO_LARGE),
        ];
        for (uri, content_type, length, status) in cases {
            let request = Request::post(uri)
                .header("content-type", content_type)
                .header("content-length", length)
                .body(MustNotBeRead)
                .unwrap();
            let response = webhook().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{uri} {content_type} {length}");
        }
    }

    /// A body that sends its first bytes and then stalls for ever, as a slow sender does.
    struct Stalls(bool);

    impl Body for Stalls {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"[{\"id\":")))))
            }
        }
    }

    impl From<Bytes> for Stalls {
        fn from(_: Bytes) -> Self {
            Stalls(false)
        }
    }

    fn stalled_delivery() -> Request<Stalls> {
        Request::post("/e?code=right").header("content-type", "application/json").body(Stalls(false)).unwrap()
    }

    #[test]
    fn the_webhook_lends_and_returns_its_inner_service() {
        let mut webhook = EventGridWebhookLayer::new().layer(1_u8);
        *webhook.get_mut() += 1;
        assert_eq!((*webhook.get_ref(), webhook.into_inner()), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_gets_408_once_the_body_timeout_passes() {
        let inner = service_fn(|_: Request<Stalls>| async { Ok::<_, Infallible>(Response::new(String::new())) });
        let layer = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("right"));
        let started = tokio::time::Instant::now();
        let response = layer.layer(inner).oneshot(stalled_delivery()).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), crate::eventgrid::config::DEFAULT_BODY_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_body_timeout_a_stalled_body_is_waited_for() {
        let inner = service_fn(|_: Request<Stalls>| async { Ok::<_, Infallible>(Response::new(String::new())) });
        let layer = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("right")).body_timeout(None);
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), layer.layer(inner).oneshot(stalled_delivery())).await;
        assert!(waited.is_err(), "the delivery was answered: {waited:?}");
    }
}
