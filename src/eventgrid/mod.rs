//! Receiving Event Grid deliveries: the webhook layer, typed envelopes, delivery authentication and
//! deduplication.
//!
//! [`EventGridWebhookLayer`] goes in front of the route that receives events. Its inner service only sees
//! accepted deliveries, parsed once into [`Events`] in the request extensions, with the original bytes as body.
//! Whatever the inner service answers goes back to Event Grid, which never delivers an event again after a 200:
//! persist what a delivery asks for, then answer 200 (or 503, and Event Grid retries). The
//! [`Recorder`](crate::recorder::Recorder) (feature `recorder`) is this layer in front of a durable journal.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::recording::RecordingEvents;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let handler = service_fn(|request: Request<Full<Bytes>>| async move {
//!     let events = match RecordingEvents::extract(request).await {
//!         Ok(events) => events,
//!         Err(rejection) => return Ok::<_, Infallible>(rejection.to_response().map(Full::new)),
//!     };
//!     for event in events.iter() {
//!         for chunk in event.data().chunks() {
//!             println!("{} chunk {}: {:?}", event.id(), chunk.index(), chunk.content_location());
//!         }
//!     }
//!     Ok(Response::new(Full::new(Bytes::new())))
//! });
//! let webhook = ServiceBuilder::new()
//!     .layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret")))
//!     .service(handler);
//!
//! // Event Grid's validation handshake is answered by the layer.
//! let validation = Request::post("/events?code=s3cret")
//!     .header("content-type", "application/json")
//!     .header("aeg-event-type", "SubscriptionValidation")
//!     .body(Full::from(
//!         r#"[{"id":"1","subject":"","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent",
//!             "eventTime":"2026-11-26T08:00:00Z","dataVersion":"1","data":{"validationCode":"512d38b6"}}]"#,
//!     ))?;
//! let response = webhook.clone().oneshot(validation).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["content-type"], "application/json");
//! assert_eq!(response.into_body().collect().await?.to_bytes(), r#"{"validationResponse":"512d38b6"}"#);
//!
//! // A wrong secret is refused before the body is read.
//! let forged = Request::post("/events?code=guess")
//!     .header("content-type", "application/json")
//!     .body(Full::from("not even JSON"))?;
//! let response = webhook.clone().oneshot(forged).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. Handshakes are answered by the layer; the inner service is not called for them. The Event Grid schema's
//!    `SubscriptionValidation` (told by the `aeg-event-type` header or by a
//!    `Microsoft.EventGrid.SubscriptionValidationEvent` in the body, since a publisher posting directly sends no
//!    `aeg-*` headers) gets 200 with `{"validationResponse":"<code>"}`. The CloudEvents `OPTIONS` with
//!    `WebHook-Request-Origin` gets 200 with `WebHook-Allowed-Origin`, `WebHook-Allowed-Rate` (when a rate was
//!    asked) and `Allow: POST` for an allowed origin (by default `eventgrid.azure.net`, `eventgrid.azure.us` and
//!    `eventgrid.azure.cn`), 403 without a grant otherwise.
//! 2. Authentication, when configured, runs on every `POST` before the body is read, the validation handshake
//!    included: a [`DeliverySecret`] in a query parameter or header (two secrets for rotation, constant-time
//!    comparison) and any [`DeliveryCheck`], then any [`AsyncDeliveryCheck`] (one that may wait, such as the
//!    Microsoft Entra token check `EntraDeliveryCheck` of the `entra` feature). Failure is a 401; an asynchronous
//!    check may also answer 403 (a valid credential that may not deliver) or 503 (it cannot decide now, so Event
//!    Grid delivers again). The `OPTIONS` handshake is not authenticated: it grants nothing but the right to send.
//! 3. The content type is matched on its media type: `application/json` is the Event Grid schema,
//!    `application/cloudevents+json` and `application/cloudevents-batch+json` are CloudEvents; anything else is a
//!    415. A lone event and an array of events are both accepted. In the Event Grid schema every event needs
//!    `id`, `subject`, `eventType`, `eventTime`, `dataVersion` and `data` (`topic` and `metadataVersion` are
//!    optional); in CloudEvents `id`, `source` and `type` (`data` only for a recording or a validation event).
//!    The data of a CloudEvents validation event may be a JSON string that holds the object.
//! 4. A body over the limit (1 MiB unless configured, the largest preferred batch size an Event Grid subscription
//!    can be given) is a 413, decided from `Content-Length` when present and while reading otherwise. Malformed
//!    JSON, a wrong shape or a missing required envelope field is a 400; a `RecordingFileStatusUpdated` event
//!    whose `data` does not fit is kept alone as [`EventData::Rejected`] with its reason, and the rest of the
//!    batch is delivered. A body that fails while being read is a 503. Every refusal carries a JSON problem body
//!    (`application/problem+json`) with the reason, plus the line and column of JSON errors, and the [`Error`] in
//!    the response extensions.
//! 5. Accepted deliveries, `SubscriptionDeletion` included, reach the inner service. Answer 200 once the events
//!    are safely accepted (Event Grid's publisher SDK treats anything else as a failure) and 503 for a transient
//!    fault: 400, 401, 403 and 413 are not retried.
//! 6. Every delivery gets a `tracing` span `eventgrid_delivery` with `aeg_event_type`, `aeg_delivery_count`,
//!    `aeg_subscription_name` and the event count; never the secret or the query string.
//!
//! # Security
//!
//! Event Grid does not sign payloads: without a secret or a check, anyone who knows the URL can post events. An
//! Entra-secured subscription sends a bearer token instead, which `EntraDeliveryCheck` validates (RS256 against
//! the tenant's published keys, the tenant's issuer, this application as audience, Event Grid as the caller).
//! Event payloads are input: their URLs and ids must be checked before use (the download service does).
//! Deliveries are at least once; see [`Deduplicator`] for a per-process filter by event id.

mod auth;
mod check;
mod config;
mod dedup;
#[cfg(feature = "entra")]
mod entra;
mod envelope;
mod error;
mod future;
mod handshake;
mod layer;
pub mod namespace;
mod parse;
mod read;
mod service;

pub use crate::body::ResponseBody;
pub use auth::{DeliveryCheck, DeliverySecret};
pub use check::{AsyncDeliveryCheck, CheckFuture, CheckOutcome};
pub use dedup::Deduplicator;
#[cfg(feature = "entra")]
pub use entra::{
    EntraDeliveryCheck, InvalidEntraConfig, EVENT_GRID_APP_ID, EVENT_GRID_SUBSCRIBER_ROLE, EVENT_GRID_US_GOV_APP_ID,
};
pub use envelope::{
    Event, EventData, Events, RejectedData, Schema, SubscriptionValidation, RECORDING_FILE_STATUS_UPDATED_EVENT,
    SUBSCRIPTION_DELETED_EVENT, SUBSCRIPTION_VALIDATION_EVENT,
};
pub use error::{Error, ErrorKind, PROBLEM_CONTENT_TYPE};
pub use future::ResponseFuture;
pub use layer::EventGridWebhookLayer;
pub(crate) use read::DEFAULT_MAX_BODY_BYTES;
pub use service::EventGridWebhook;

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for Events {
    type Rejection = Error;

    /// Clones the events the webhook layer stored; without the layer, a 500 (a server misconfiguration).
    async fn from_request_parts(parts: &mut http::request::Parts, _state: &S) -> Result<Self, Error> {
        parts.extensions.get::<Events>().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingLayer,
                "no parsed events: the EventGridWebhookLayer is not in front of this route",
            )
        })
    }
}
