use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::allow::AllowList;
use super::bearer_future::BearerFuture;
use super::error::Error;
use super::target::{cross_host, set_x_ms_host};
use super::token::TokenCache;
use crate::clock::{Clock, SharedClock};
use crate::credential::Endpoint;
use crate::BoxError;

/// The scope of Azure Communication Services tokens. The double slash is part of it (`SPEC.md` §6).
pub const ACS_SCOPE: &str = "https://communication.azure.com//.default";

/// How long before its expiry a token is replaced by default: 5 minutes.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// Sends every request with a Microsoft Entra ID access token (`Authorization: Bearer`); builds [`BearerToken`].
///
/// The counterpart of [`HmacSigningLayer`](super::HmacSigningLayer) for a resource reached with an identity
/// instead of an access key; see the [module docs](super#microsoft-entra-id) for the rules and an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct BearerTokenLayer {
    config: Arc<BearerConfig>,
}

#[derive(Clone, Debug)]
pub(crate) struct BearerConfig {
    endpoint: Endpoint,
    allow: AllowList,
    pub(crate) cache: Arc<TokenCache>,
}

impl BearerTokenLayer {
    /// Sends tokens of `credential` (any `azure_identity` credential) for the ACS resource at `endpoint`; storage
    /// hosts from [`AllowList::azure_defaults`] are allowed.
    pub fn new(endpoint: Endpoint, credential: Arc<dyn TokenCredential>) -> Self {
        let cache = TokenCache::new(credential, ACS_SCOPE.to_owned(), DEFAULT_REFRESH_BEFORE, SharedClock::system());
        Self { config: Arc::new(BearerConfig { endpoint, allow: AllowList::azure_defaults(), cache: Arc::new(cache) }) }
    }

    /// Replaces the allow-list of hosts other than the endpoint that may receive tokens.
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        Arc::make_mut(&mut self.config).allow = allow;
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
        &self.config.endpoint
    }

    /// A layer with a fresh token cache (configuration happens before any token is fetched).
    fn rebuild_cache(mut self, build: impl FnOnce(&TokenCache) -> TokenCache) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.cache = Arc::new(build(&config.cache));
        self
    }
}

impl<S> Layer<S> for BearerTokenLayer {
    type Service = BearerToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerToken { inner, config: self.config.clone() }
    }
}

/// A client service that sends each request with an Entra access token; see the [module docs](super).
///
/// Clones share one token cache.
#[derive(Clone)]
pub struct BearerToken<S> {
    inner: S,
    config: Arc<BearerConfig>,
}

impl<S> BearerToken<S> {
    /// Wraps `inner` with the configuration (and the token cache) of `layer`.
    pub fn new(inner: S, layer: &BearerTokenLayer) -> Self {
        layer.layer(inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for BearerToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken").field("inner", &self.inner).field("config", &self.config).finish()
    }
}

/// Sends `request` with a token, retrying once after a 401 when the body is empty.
///
/// The bound `B: Default` is what makes that retry possible: a request whose body is at its end (the bodiless
/// `GET` and `DELETE` the downloader sends, with `Empty` bodies) is sent again with `B::default()`. A request with
/// a body is sent once, and a 401 to it is returned as it came.
impl<S, B, ResBody> Service<Request<B>> for BearerToken<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Body + Default,
{
    type Response = S::Response;
    type Error = Error;
    type Future = BearerFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::inner)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let config = &self.config;
        // SSRF guard (SPEC §5): no token is looked up, let alone attached, for a refused host.
        let cross_host = match cross_host(&config.endpoint, &config.allow, request.uri()) {
            Ok(cross_host) => cross_host,
            Err(refused) => return BearerFuture::failed(Error::refused(refused)),
        };
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);

        let retryable = request.body().is_end_stream();
        let (mut parts, body) = request.into_parts();
        set_x_ms_host(&mut parts.headers, &config.endpoint, cross_host);
        match config.cache.cached() {
            Some(token) => {
                parts.headers.insert(AUTHORIZATION, token.header().clone());
                BearerFuture::calling(inner, parts, body, token.generation(), retryable, config.cache.clone())
            }
            None => BearerFuture::acquiring(inner, parts, body, retryable, config.cache.clone()),
        }
    }
}
