use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::config::{VerifyConfig, DEFAULT_MAX_SKEW, DEFAULT_VERIFY_BODY_LIMIT};
use super::service::HmacVerify;
use crate::clock::{Clock, SharedClock};
use crate::credential::AccessKey;
use crate::signing::sign::HmacKey;

/// Verifies ACS HMAC-SHA256 signatures on incoming requests; builds [`HmacVerify`].
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacVerifyLayer {
    config: Arc<VerifyConfig>,
}

impl HmacVerifyLayer {
    /// Verifies signatures made with `key` for the endpoint authority `authority` (`host[:port]`, the port only when
    /// it is not the scheme's default, exactly as clients sign it).
    pub fn new(key: AccessKey, authority: impl Into<String>) -> Self {
        Self {
            config: Arc::new(VerifyConfig {
                key: HmacKey::new(&key),
                authority: authority.into().to_ascii_lowercase(),
                clock: SharedClock::system(),
                max_skew: DEFAULT_MAX_SKEW,
                body_limit: DEFAULT_VERIFY_BODY_LIMIT,
            }),
        }
    }

    /// Takes the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        Arc::make_mut(&mut self.config).clock = SharedClock::new(clock);
        self
    }

    /// The largest accepted difference between the request's date and now, either way (default 15 minutes).
    pub fn max_skew(mut self, skew: Duration) -> Self {
        Arc::make_mut(&mut self.config).max_skew = skew;
        self
    }

    /// The largest request body read and hashed (default 1 MiB); a larger one gets 413.
    pub fn body_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = limit;
        self
    }
}

impl<S> Layer<S> for HmacVerifyLayer {
    type Service = HmacVerify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HmacVerify::from_parts(inner, self.config.clone())
    }
}
