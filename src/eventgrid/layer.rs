//! The webhook layer: a builder of its configuration.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::auth::{DeliveryCheck, DeliverySecret};
use super::check::AsyncDeliveryCheck;
use super::config::Config;
use super::service::EventGridWebhook;
#[cfg(feature = "recorder")]
use super::Schema;
use crate::cloud::AzureCloud;

/// Puts an Event Grid webhook in front of a service: handshakes, delivery authentication, limits and parsing.
///
/// See the [module docs](super) for the rules and an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct EventGridWebhookLayer {
    config: Arc<Config>,
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
        Self { config: Arc::new(Config::default()) }
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

    /// Sets the body limit (default 1 MiB); raise it for subscriptions with large batches. Larger bodies get 413.
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

    /// Replaces the CloudEvents origins granted by the `OPTIONS` handshake (compared ignoring ASCII case); by
    /// default `eventgrid.azure.net`, `eventgrid.azure.us` and `eventgrid.azure.cn`.
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

    /// Reads every delivery as `schema` whatever its JSON content type: for a route of callbacks whose sender
    /// labels CloudEvents `application/json` (the recorder's callback route).
    #[cfg(feature = "recorder")]
    pub(crate) fn read_as(mut self, schema: Schema) -> Self {
        self.config_mut().schema = Some(schema);
        self
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
