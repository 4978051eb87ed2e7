use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tower_service::Service;

use super::config::VerifyConfig;
use super::future::VerifyFuture;
use super::rejection::VerifyRejection;
use crate::body::ResponseBody;
use crate::inner::{inner_service_accessors, take_ready};
use crate::BoxError;

/// A server service that answers requests without a valid ACS signature with 401 and passes the others, body
/// intact, to `S`; see the [module docs](crate::signing).
#[derive(Clone)]
pub struct HmacVerify<S> {
    inner: S,
    config: Arc<VerifyConfig>,
}

impl<S> HmacVerify<S> {
    pub(super) fn from_parts(inner: S, config: Arc<VerifyConfig>) -> Self {
        Self { inner, config }
    }

    inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for HmacVerify<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacVerify").field("inner", &self.inner).field("config", &self.config).finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for HmacVerify<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = VerifyFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let expected = match self.config.check_head(&parts) {
            Ok(hash) => hash,
            Err(rejection) => return VerifyFuture::rejected(rejection),
        };
        if body.size_hint().lower() > self.config.body_limit as u64 {
            return VerifyFuture::rejected(VerifyRejection::BodyTooLarge);
        }
        let inner = take_ready(&mut self.inner);
        VerifyFuture::reading(Limited::new(body, self.config.body_limit).collect(), parts, inner, expected)
    }
}
