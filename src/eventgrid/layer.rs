//! The webhook layer and its configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::auth::{DeliveryCheck, DeliverySecret};
use super::check::AsyncDeliveryCheck;
use super::read::DEFAULT_MAX_BODY_BYTES;
use super::service::EventGridWebhook;
use crate::cloud::AzureCloud;

/// The CloudEvents origins granted by default: Event Grid in the public, US government and China clouds.
pub const DEFAULT_ALLOWED_ORIGINS: [&str; 3] = ["eventgrid.azure.net", "eventgrid.azure.us", "eventgrid.azure.cn"];

/// The default [`EventGridWebhookLayer::body_timeout`]: 30 seconds, Event Grid's own delivery timeout.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Puts an Event Grid webhook in front of a service: handshakes, delivery authentication, limits and parsing.
///
/// See the [module docs](super) for the rules and an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct EventGridWebhookLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_rate: Option<u32>,
    pub(crate) checks: Vec<Arc<dyn DeliveryCheck>>,
    pub(crate) async_checks: Vec<Arc<dyn AsyncDeliveryCheck>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_rate", &self.allowed_rate)
            .field("checks", &self.checks.len())
            .field("async_checks", &self.async_checks.len())
            .finish()
    }
}

impl Default for EventGridWebhookLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl EventGridWebhookLayer {
    /// A layer with a 1 MiB body limit, the default origins and no delivery authentication.
    ///
    /// Authentication is optional but recommended: add [`DeliverySecret`] with
    /// [`require_secret`](Self::require_secret), or a check of your own with [`require`](Self::require).
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                body_timeout: Some(DEFAULT_BODY_TIMEOUT),
                allowed_origins: DEFAULT_ALLOWED_ORIGINS.iter().map(|origin| origin.to_string()).collect(),
                allowed_rate: None,
                checks: Vec::new(),
                async_checks: Vec::new(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// How long a body may take to arrive once the layer waits for it (default 30 s); a slower one gets 408 and
    /// its connection is free again. `None` waits for as long as the sender takes. The timer needs a tokio runtime
    /// with time enabled, and starts only when the body is not already there.
    pub fn body_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config_mut().body_timeout = timeout.into();
        self
    }

    /// Sets the body limit; raise it for subscriptions with large batches. Larger bodies get 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.config_mut().max_body_bytes = limit;
        self
    }

    /// Requires the shared secret on every POST (checked before the body is read; 401 otherwise).
    pub fn require_secret(self, secret: DeliverySecret) -> Self {
        self.require(secret)
    }

    /// Requires a check on every POST, in addition to any already configured (checked before the body is read;
    /// 401 otherwise).
    pub fn require(mut self, check: impl DeliveryCheck) -> Self {
        self.config_mut().checks.push(Arc::new(check));
        self
    }

    /// Requires a check that may wait (a bearer token whose keys are fetched, such as `EntraDeliveryCheck`) on
    /// every POST, the validation handshake included. It runs after the synchronous checks and before the body is
    /// read; its outcome decides between going on, 401, 403 and 503 (see [`AsyncDeliveryCheck`]).
    pub fn require_async(mut self, check: impl AsyncDeliveryCheck) -> Self {
        self.config_mut().async_checks.push(Arc::new(check));
        self
    }

    /// Replaces the CloudEvents origins granted by the `OPTIONS` handshake (compared ignoring ASCII case).
    pub fn allowed_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.config_mut().allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Grants only `cloud`'s Event Grid origin in the CloudEvents handshake
    /// ([`AzureCloud::webhook_origin`]; by default the public, US Government and China origins are all granted).
    pub fn cloud(self, cloud: AzureCloud) -> Self {
        self.allowed_origins([cloud.webhook_origin()])
    }

    /// Grants at most this many requests per minute when a CloudEvents handshake asks for a rate; by default `*`.
    pub fn allowed_rate(mut self, per_minute: u32) -> Self {
        self.config_mut().allowed_rate = Some(per_minute);
        self
    }
}

impl<S> Layer<S> for EventGridWebhookLayer {
    type Service = EventGridWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventGridWebhook::new(inner, self.config.clone())
    }
}
