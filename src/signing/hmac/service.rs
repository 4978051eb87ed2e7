use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http_body_util::{BodyExt, Limited};
use tower_service::Service;

use super::future::ResponseFuture;
use crate::inner::{inner_service_accessors, take_ready};
use crate::signing::body::{ContentHash, SignableBody};
use crate::signing::error::Error;
use crate::signing::sign::EMPTY_CONTENT_HASH;
use crate::signing::signer::HmacSigner;
use crate::BoxError;

/// A client service that signs each request before passing it to `S`; see the [module docs](crate::signing).
#[derive(Clone)]
pub struct HmacSigning<S> {
    inner: S,
    signer: Arc<HmacSigner>,
    body_limit: usize,
}

impl<S> HmacSigning<S> {
    pub(super) fn from_parts(inner: S, signer: Arc<HmacSigner>, body_limit: usize) -> Self {
        Self { inner, signer, body_limit }
    }

    inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for HmacSigning<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSigning")
            .field("inner", &self.inner)
            .field("signer", &self.signer)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for HmacSigning<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
    B: SignableBody,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::inner)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Decided before anything else, so that a refused host never reaches the inner service.
        let cross_host = match self.signer.admit(request.uri()) {
            Ok(cross_host) => cross_host,
            Err(refused) => return ResponseFuture::failed(refused),
        };
        let inner = take_ready(&mut self.inner);

        let precomputed = request.extensions().get::<ContentHash>().copied();
        let (mut parts, body) = request.into_parts();
        if let Some(hash) = precomputed {
            self.signer.sign_admitted(&mut parts, hash.as_str(), cross_host);
            return ResponseFuture::calling(inner, Request::from_parts(parts, body));
        }
        if body.is_end_stream() {
            self.signer.sign_admitted(&mut parts, EMPTY_CONTENT_HASH, cross_host);
            return ResponseFuture::calling(inner, Request::from_parts(parts, body));
        }
        if body.size_hint().lower() > self.body_limit as u64 {
            return ResponseFuture::failed(Error::body_too_large(self.body_limit));
        }
        let collect = Limited::new(body, self.body_limit).collect();
        ResponseFuture::buffering(collect, parts, inner, self.signer.clone(), self.body_limit, cross_host)
    }
}
