//! What the webhook layer is configured with, shared by the layer, the service, the future and the handshakes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::auth::DeliveryCheck;
use super::check::AsyncDeliveryCheck;
use super::read::DEFAULT_MAX_BODY_BYTES;
use super::Schema;

/// The CloudEvents origins granted by default: Event Grid in the public, US government and China clouds.
pub(crate) const DEFAULT_ALLOWED_ORIGINS: [&str; 3] =
    ["eventgrid.azure.net", "eventgrid.azure.us", "eventgrid.azure.cn"];

/// The default body timeout: 30 seconds, Event Grid's own delivery timeout.
pub(crate) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_rate: Option<u32>,
    pub(crate) checks: Vec<Arc<dyn DeliveryCheck>>,
    pub(crate) async_checks: Vec<Arc<dyn AsyncDeliveryCheck>>,
    /// Reads every delivery as this schema, whatever its JSON content type (Call Automation labels its
    /// CloudEvents `application/json`); `None` decides by the content type.
    pub(crate) schema: Option<Schema>,
}

impl Default for Config {
    /// A 1 MiB body limit, a 30 s body timeout, the default origins and no delivery authentication.
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: Some(DEFAULT_BODY_TIMEOUT),
            allowed_origins: DEFAULT_ALLOWED_ORIGINS.iter().map(|origin| origin.to_string()).collect(),
            allowed_rate: None,
            checks: Vec::new(),
            async_checks: Vec::new(),
            schema: None,
        }
    }
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
            .field("schema", &self.schema)
            .finish()
    }
}
