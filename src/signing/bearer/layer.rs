use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use tower_layer::Layer;

use super::service::BearerToken;
use super::token::TokenCache;
use crate::clock::{Clock, SharedClock};
use crate::credential::Endpoint;
use crate::signing::allow::AllowList;
use crate::signing::target::Target;

/// The scope of Azure Communication Services tokens. The double slash is part of it: the resource is
/// `https://communication.azure.com/` and `/.default` is appended to it.
pub const ACS_SCOPE: &str = "https://communication.azure.com//.default";

/// How long before its expiry a token is replaced by default: 5 minutes.
pub(crate) const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// Sends every request with a Microsoft Entra ID access token (`Authorization: Bearer`); builds [`BearerToken`].
///
/// The counterpart of [`HmacSigningLayer`](crate::signing::HmacSigningLayer) for a resource reached with an
/// identity instead of an access key; see the [module docs](crate::signing#microsoft-entra-id) for the rules and an
/// example.
#[derive(Clone, Debug)]
#[must_use]
pub struct BearerTokenLayer {
    target: Arc<Target>,
    cache: Arc<TokenCache>,
}

impl BearerTokenLayer {
    /// Sends tokens of `credential` (any `azure_identity` credential) for the ACS resource at `endpoint`; storage
    /// hosts from [`AllowList::azure_defaults`] are allowed.
    pub fn new(endpoint: Endpoint, credential: Arc<dyn TokenCredential>) -> Self {
        let cache = TokenCache::new(credential, ACS_SCOPE.to_owned(), DEFAULT_REFRESH_BEFORE, SharedClock::system());
        Self { target: Arc::new(Target::new(endpoint, AllowList::azure_defaults())), cache: Arc::new(cache) }
    }

    /// Replaces the allow-list of hosts other than the endpoint that may receive tokens.
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        Arc::make_mut(&mut self.target).set_allow_list(allow);
        self
    }

    /// Asks the credential for tokens of another scope than [`ACS_SCOPE`].
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.rebuild_cache(|cache| {
            TokenCache::new(cache.credential().clone(), scope.into(), cache.refresh_before(), cache.clock().clone())
        })
    }

    /// Replaces a token this long before it expires (default 5 minutes), in the background while it is valid.
    pub fn refresh_before(self, early: Duration) -> Self {
        self.rebuild_cache(|cache| {
            TokenCache::new(cache.credential().clone(), cache.scope().to_owned(), early, cache.clock().clone())
        })
    }

    /// Takes the wall-clock time, against which token expiries are read, from `clock` instead of the system clock.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        let clock = SharedClock::new(clock);
        self.rebuild_cache(|cache| {
            TokenCache::new(cache.credential().clone(), cache.scope().to_owned(), cache.refresh_before(), clock)
        })
    }

    /// The endpoint tokens are sent to.
    pub fn endpoint(&self) -> &Endpoint {
        self.target.endpoint()
    }

    /// A layer with a fresh token cache (configuration happens before any token is fetched).
    fn rebuild_cache(mut self, build: impl FnOnce(&TokenCache) -> TokenCache) -> Self {
        self.cache = Arc::new(build(&self.cache));
        self
    }
}

impl<S> Layer<S> for BearerTokenLayer {
    type Service = BearerToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerToken::from_parts(inner, self.target.clone(), self.cache.clone())
    }
}

impl<S> BearerToken<S> {
    /// Wraps `inner` with the configuration (and the token cache) of `layer`.
    pub fn new(inner: S, layer: &BearerTokenLayer) -> Self {
        layer.layer(inner)
    }
}
