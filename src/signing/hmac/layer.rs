use std::sync::Arc;

use tower_layer::Layer;

use super::service::HmacSigning;
use crate::clock::Clock;
use crate::credential::{AccessKey, ConnectionString, Endpoint};
use crate::signing::allow::AllowList;
use crate::signing::signer::HmacSigner;

/// The default limit for reading a request body to hash it: 1 MiB.
pub(crate) const DEFAULT_BODY_BUFFER_LIMIT: usize = 1024 * 1024;

/// Signs every request with the ACS HMAC-SHA256 scheme; builds [`HmacSigning`].
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacSigningLayer {
    signer: Arc<HmacSigner>,
    body_limit: usize,
}

impl HmacSigningLayer {
    /// Signs for `endpoint` with `key`; storage hosts from [`AllowList::azure_defaults`] are allowed.
    pub fn new(endpoint: Endpoint, key: AccessKey) -> Self {
        Self::from_signer(HmacSigner::new(endpoint, key))
    }

    /// Signs for the endpoint and key of a connection string.
    pub fn from_connection_string(connection_string: &ConnectionString) -> Self {
        Self::from_signer(HmacSigner::from_connection_string(connection_string))
    }

    /// Signs with `signer`, its allow-list, clock and date header included.
    pub fn from_signer(signer: HmacSigner) -> Self {
        Self { signer: Arc::new(signer), body_limit: DEFAULT_BODY_BUFFER_LIMIT }
    }

    /// Replaces the allow-list of hosts other than the endpoint that may receive signed requests.
    pub fn allow_list(self, allow: AllowList) -> Self {
        self.map_signer(|signer| signer.allow_list(allow))
    }

    /// Takes the time from `clock` instead of the system clock.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.map_signer(|signer| signer.with_clock(clock))
    }

    /// Sends the date in `Date` with `SignedHeaders=date;host;x-ms-content-sha256`, as the original quickstart did,
    /// instead of `x-ms-date`.
    pub fn legacy_date_header(self) -> Self {
        self.map_signer(HmacSigner::legacy_date_header)
    }

    /// The most bytes read from a body of unknown content to hash it (default 1 MiB). A larger body fails with
    /// [`ErrorKind::BodyTooLarge`](crate::signing::ErrorKind::BodyTooLarge) unless it carries a
    /// [`ContentHash`](crate::signing::ContentHash).
    pub fn body_buffer_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The endpoint requests are signed for.
    pub fn endpoint(&self) -> &Endpoint {
        self.signer.endpoint()
    }

    fn map_signer(mut self, change: impl FnOnce(HmacSigner) -> HmacSigner) -> Self {
        let signer = Arc::unwrap_or_clone(self.signer);
        self.signer = Arc::new(change(signer));
        self
    }
}

impl<S> Layer<S> for HmacSigningLayer {
    type Service = HmacSigning<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HmacSigning::from_parts(inner, self.signer.clone(), self.body_limit)
    }
}

impl<S> HmacSigning<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &HmacSigningLayer) -> Self {
        layer.layer(inner)
    }
}
