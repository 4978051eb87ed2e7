use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::BearerFuture;
use super::token::TokenCache;
use crate::inner::{inner_service_accessors, take_ready};
use crate::signing::error::Error;
use crate::signing::target::Target;
use crate::BoxError;

/// A client service that sends each request with an Entra access token; see the [module docs](crate::signing).
///
/// Clones share one token cache.
#[derive(Clone)]
pub struct BearerToken<S> {
    inner: S,
    target: Arc<Target>,
    cache: Arc<TokenCache>,
}

impl<S> BearerToken<S> {
    pub(super) fn from_parts(inner: S, target: Arc<Target>, cache: Arc<TokenCache>) -> Self {
        Self { inner, target, cache }
    }

    inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for BearerToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("inner", &self.inner)
            .field("target", &self.target)
            .field("cache", &self.cache)
            .finish()
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
        // No token is looked up, let alone attached, for a refused host.
        let cross_host = match self.target.admit(request.uri()) {
            Ok(cross_host) => cross_host,
            Err(refused) => return BearerFuture::failed(refused),
        };
        let inner = take_ready(&mut self.inner);

        let retryable = request.body().is_end_stream();
        let (mut parts, body) = request.into_parts();
        self.target.set_x_ms_host(&mut parts.headers, cross_host);
        let cache = &self.cache;
        match cache.cached() {
            Some(token) => {
                parts.headers.insert(AUTHORIZATION, token.header().clone());
                BearerFuture::calling(inner, parts, body, token.generation(), retryable, cache.clone())
            }
            None => BearerFuture::acquiring(inner, parts, body, retryable, cache.clone()),
        }
    }
}
