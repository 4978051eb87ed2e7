//! Pull delivery from an Event Grid namespace topic: a recorder with no public endpoint receives the events that
//! an ACS system topic forwards to a namespace topic (CloudEvents 1.0) over outbound HTTPS.
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use acs_recording::emulator::Emulator;
//! use acs_recording::eventgrid::namespace::{NamespaceClient, NamespaceKey};
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let emulator = Emulator::builder().namespace_topic("acs-events", "recorder").start().await?;
//! let namespace = emulator.namespace();
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let client = NamespaceClient::new(http, emulator.endpoint().clone(), "acs-events", "recorder")?
//!     .with_key(NamespaceKey::new(namespace.key())?);
//!
//! namespace.publish(serde_json::json!({"id": "e1", "source": "/acs", "type": "Contoso.Test", "specversion": "1.0"}));
//! let events = client.receive(10, Duration::from_secs(10)).await?;
//! assert_eq!(events.len(), 1);
//! let token = events[0].broker_properties.lock_token.clone();
//! let done = client.acknowledge(&[token.clone(), "unknown-token".into()]).await?;
//! assert!(done.succeeded(&token));
//! assert_eq!(done.failed_lock_tokens[0].error.code, "TokenLost");
//! assert_eq!(namespace.acknowledgements("e1"), 1);
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. The data plane (API version 2024-06-01) is `POST {endpoint}/topics/{topic}/eventsubscriptions/{name}:{action}`
//!    with `action` one of `receive` (query `maxEvents` 1–100 and `maxWaitTime` in seconds, 10–120; the answer
//!    waits until an event is there or the time is up), `acknowledge`, `release` (query `releaseDelayInSeconds`:
//!    0, 10, 60, 600 or 3600), `reject` and `renewLock`; publishing is `POST {endpoint}/topics/{topic}:publish`
//!    with a `application/cloudevents-batch+json; charset=utf-8` array.
//! 2. A receive answers `{"value":[{"brokerProperties":{"lockToken","deliveryCount"},"event":{CloudEvent}}]}`.
//!    Each event is locked for the subscription's lock duration (60 s by default, at most 5 minutes); a lock that
//!    expires puts the event back, and after the subscription's maximum delivery count (10 by default) it goes
//!    to the dead letters instead.
//! 3. The lock operations take `{"lockTokens":[...]}` and answer 200 with `{"succeededLockTokens":[...],
//!    "failedLockTokens":[{"lockToken","error":{"code","message"}}]}`: success is per token, so a 200 can hold
//!    failures (a lock that expired, a token never handed out).
//! 4. Authentication is `Authorization: SharedAccessKey <key>` with a namespace or topic access key, or a
//!    Microsoft Entra ID token for [`EVENTGRID_SCOPE`] (a `BearerTokenLayer` around the HTTP client, feature
//!    `entra`). A refusal is 401 with `{"error":{"code","message"}}`.
//!
//! The key is never printed: [`NamespaceKey`]'s `Debug` is redacted, the header is marked sensitive, and errors
//! name the operation and status only.

mod client;
mod error;
mod key;
mod model;

pub use client::{InvalidName, NamespaceClient};
pub use error::{Error, ErrorKind, Operation};
pub use key::{InvalidKey, NamespaceKey};
pub use model::{BrokerProperties, FailedLockToken, LockTokenResult, ReceivedEvent, ReleaseDelay};

/// The data plane API version the client speaks.
pub const API_VERSION: &str = "2024-06-01";

/// The Microsoft Entra ID scope of Event Grid's data plane.
pub const EVENTGRID_SCOPE: &str = "https://eventgrid.azure.net/.default";

/// The content type of a publish: a JSON array of CloudEvents.
pub const CLOUDEVENTS_BATCH: &str = "application/cloudevents-batch+json; charset=utf-8";

/// The most bytes of an answer the client reads by default: 100 events of up to 1 MB would exceed it only in
/// theory, and ACS events are a few kilobytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
