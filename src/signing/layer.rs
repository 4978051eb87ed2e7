use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, AUTHORIZATION, DATE};
use http::Request;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::allow::AllowList;
use super::body::{ContentHash, SignableBody};
use super::error::Error;
use super::future::ResponseFuture;
use super::sign::{
    cached_http_date, write_string_to_sign, Signer, EMPTY_CONTENT_HASH, LEGACY_SIGNED_HEADERS, SIGNED_HEADERS,
};
use super::target::{cross_host, set_x_ms_host, signing_target, X_MS_CONTENT_SHA256, X_MS_DATE};
use crate::clock::{Clock, SharedClock};
use crate::credential::{AccessKey, ConnectionString, Endpoint};
use crate::BoxError;

/// The default limit for reading a request body to hash it: 1 MiB.
pub const DEFAULT_BODY_BUFFER_LIMIT: usize = 1024 * 1024;

/// Signs every request with the ACS HMAC-SHA256 scheme; builds [`HmacSigning`].
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacSigningLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    endpoint: Endpoint,
    signer: Signer,
    allow: AllowList,
    clock: SharedClock,
    legacy_date: bool,
    body_limit: usize,
}

impl HmacSigningLayer {
    /// Signs for `endpoint` with `key`; storage hosts from [`AllowList::azure_defaults`] are allowed.
    pub fn new(endpoint: Endpoint, key: AccessKey) -> Self {
        Self {
            config: Arc::new(Config {
                signer: Signer::new(&key),
                endpoint,
                allow: AllowList::azure_defaults(),
                clock: SharedClock::system(),
                legacy_date: false,
                body_limit: DEFAULT_BODY_BUFFER_LIMIT,
            }),
        }
    }

    /// Signs for the endpoint and key of a connection string.
    pub fn from_connection_string(connection_string: &ConnectionString) -> Self {
        Self::new(connection_string.endpoint().clone(), connection_string.access_key().clone())
    }

    /// Replaces the allow-list of hosts other than the endpoint that may receive signed requests.
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        Arc::make_mut(&mut self.config).allow = allow;
        self
    }

    /// Takes the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        Arc::make_mut(&mut self.config).clock = SharedClock::new(clock);
        self
    }

    /// Sends the date in `Date` with `SignedHeaders=date;host;x-ms-content-sha256`, as the original quickstart did,
    /// instead of `x-ms-date`.
    pub fn legacy_date_header(mut self) -> Self {
        Arc::make_mut(&mut self.config).legacy_date = true;
        self
    }

    /// The most bytes read from a body of unknown content to hash it (default 1 MiB). A larger body fails with
    /// [`ErrorKind::BodyTooLarge`](super::ErrorKind::BodyTooLarge) unless it carries a [`ContentHash`].
    pub fn body_buffer_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).body_limit = limit;
        self
    }

    /// The endpoint requests are signed for.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }
}

impl<S> Layer<S> for HmacSigningLayer {
    type Service = HmacSigning<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HmacSigning { inner, config: self.config.clone() }
    }
}

/// A client service that signs each request before passing it to `S`; see the [module docs](super).
#[derive(Clone)]
pub struct HmacSigning<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> HmacSigning<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &HmacSigningLayer) -> Self {
        layer.layer(inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for HmacSigning<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSigning").field("inner", &self.inner).field("config", &self.config).finish()
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
        let config = &self.config;
        // SSRF guard (SPEC §5): decide before anything else, so a refused host never reaches the inner service.
        let cross_host = match cross_host(&config.endpoint, &config.allow, request.uri()) {
            Ok(cross_host) => cross_host,
            Err(refused) => return ResponseFuture::failed(Error::refused(refused)),
        };
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);

        let precomputed = request.extensions().get::<ContentHash>().copied();
        let (mut parts, body) = request.into_parts();
        if let Some(hash) = precomputed {
            config.sign(&mut parts, hash.as_str(), cross_host);
            return ResponseFuture::calling(inner, Request::from_parts(parts, body));
        }
        if body.is_end_stream() {
            config.sign(&mut parts, EMPTY_CONTENT_HASH, cross_host);
            return ResponseFuture::calling(inner, Request::from_parts(parts, body));
        }
        if body.size_hint().lower() > config.body_limit as u64 {
            return ResponseFuture::failed(Error::body_too_large(config.body_limit));
        }
        let collect = Limited::new(body, config.body_limit).collect();
        ResponseFuture::buffering(collect, parts, inner, self.config.clone(), cross_host)
    }
}

impl Config {
    pub(crate) fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Adds `x-ms-date` (or `Date`), `x-ms-content-sha256`, `Authorization` and, for another host, `x-ms-host`.
    pub(crate) fn sign(&self, parts: &mut http::request::Parts, content_hash: &str, cross_host: bool) {
        thread_local! {
            static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let mut date = cached_http_date(self.clock.now());
        let (host, path_and_query) = signing_target(self.endpoint.authority(), &parts.uri, cross_host);
        let signature = BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let date = date.to_str().expect("http dates are ascii");
            write_string_to_sign(&mut buffer, parts.method.as_str(), path_and_query, date, host, content_hash);
            self.signer.signature(&buffer)
        });

        let signed_headers = if self.legacy_date { LEGACY_SIGNED_HEADERS } else { SIGNED_HEADERS };
        let mut authorization = [0u8; 128];
        let len = {
            let mut cursor = &mut authorization[..];
            for piece in ["HMAC-SHA256 SignedHeaders=", signed_headers, "&Signature=", signature.as_str()] {
                let (head, tail) = cursor.split_at_mut(piece.len());
                head.copy_from_slice(piece.as_bytes());
                cursor = tail;
            }
            128 - cursor.len()
        };
        let mut authorization = HeaderValue::from_bytes(&authorization[..len]).expect("authorization is ascii");
        let mut hash = if content_hash == EMPTY_CONTENT_HASH {
            HeaderValue::from_static(EMPTY_CONTENT_HASH)
        } else {
            HeaderValue::from_str(content_hash).expect("base64 is a valid header value")
        };
        date.set_sensitive(true);
        hash.set_sensitive(true);
        authorization.set_sensitive(true);

        let headers = &mut parts.headers;
        set_x_ms_host(headers, &self.endpoint, cross_host);
        if self.legacy_date {
            headers.remove(X_MS_DATE);
            headers.insert(DATE, date);
        } else {
            headers.insert(X_MS_DATE, date);
        }
        headers.insert(X_MS_CONTENT_SHA256, hash);
        headers.insert(AUTHORIZATION, authorization);
    }
}
