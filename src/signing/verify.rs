use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, DATE, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use pin_project::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::sign::{write_string_to_sign, Signer, LEGACY_SIGNED_HEADERS, SIGNED_HEADERS};
use super::target::{signing_target, X_MS_DATE, X_MS_HOST};
use super::ContentHash;
pub use crate::body::ResponseBody;
use crate::clock::{Clock, SharedClock};
use crate::credential::AccessKey;
use crate::BoxError;

/// The default allowed difference between a request's date and the server's clock: 15 minutes.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The default limit on a verified request body: 1 MiB.
pub const DEFAULT_VERIFY_BODY_LIMIT: usize = 1024 * 1024;

/// Verifies ACS HMAC-SHA256 signatures on incoming requests; builds [`HmacVerify`].
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacVerifyLayer {
    config: Arc<VerifyConfig>,
}

#[derive(Clone, Debug)]
struct VerifyConfig {
    signer: Signer,
    /// `host[:port]` of the endpoint this server stands for, as clients sign it.
    authority: String,
    clock: SharedClock,
    max_skew: Duration,
    body_limit: usize,
}

impl HmacVerifyLayer {
    /// Verifies signatures made with `key` for the endpoint authority `authority` (`host[:port]`, the port only when
    /// it is not the scheme's default, exactly as clients sign it).
    pub fn new(key: AccessKey, authority: impl Into<String>) -> Self {
        Self {
            config: Arc::new(VerifyConfig {
                signer: Signer::new(&key),
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
        HmacVerify { inner, config: self.config.clone() }
    }
}

/// A server service that answers requests without a valid ACS signature with 401 and passes the others, body
/// intact, to `S`; see the [module docs](super).
#[derive(Clone)]
pub struct HmacVerify<S> {
    inner: S,
    config: Arc<VerifyConfig>,
}

impl<S: fmt::Debug> fmt::Debug for HmacVerify<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacVerify").field("inner", &self.inner).field("config", &self.config).finish()
    }
}

/// Why [`HmacVerify`] rejected a request; found in the rejection response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyRejection {
    /// A required header is absent: `authorization`, `x-ms-date` (or `date`) or `x-ms-content-sha256`.
    MissingHeader(&'static str),
    /// `Authorization` is not `HMAC-SHA256 SignedHeaders=...&Signature=...` with a known header list.
    MalformedAuthorization,
    /// The date header is not an HTTP date.
    BadDate,
    /// The date is outside the skew window.
    DateSkew,
    /// `x-ms-host` names another endpoint.
    HostMismatch,
    /// The signature does not match.
    BadSignature,
    /// The body's SHA-256 differs from `x-ms-content-sha256`.
    BodyHashMismatch,
    /// The body is larger than the limit (413).
    BodyTooLarge,
    /// The body could not be read (400).
    UnreadableBody,
}

impl VerifyRejection {
    /// The status answered: 401, or 413 / 400 for body problems.
    pub fn status(self) -> StatusCode {
        match self {
            VerifyRejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            VerifyRejection::UnreadableBody => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short machine-readable code, the `error` field of the JSON body.
    pub fn code(self) -> &'static str {
        match self {
            VerifyRejection::MissingHeader(_) => "missing_header",
            VerifyRejection::MalformedAuthorization => "malformed_authorization",
            VerifyRejection::BadDate => "bad_date",
            VerifyRejection::DateSkew => "date_skew",
            VerifyRejection::HostMismatch => "host_mismatch",
            VerifyRejection::BadSignature => "bad_signature",
            VerifyRejection::BodyHashMismatch => "body_hash_mismatch",
            VerifyRejection::BodyTooLarge => "body_too_large",
            VerifyRejection::UnreadableBody => "unreadable_body",
        }
    }

    fn into_response<B>(self) -> Response<ResponseBody<B>> {
        let body = format!(r#"{{"error":"{}","message":"{}"}}"#, self.code(), self);
        let mut response = Response::new(ResponseBody::full(Bytes::from(body)));
        *response.status_mut() = self.status();
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("HMAC-SHA256"));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl fmt::Display for VerifyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyRejection::MissingHeader(name) => write!(f, "missing header `{name}`"),
            VerifyRejection::MalformedAuthorization => f.write_str("malformed `authorization` header"),
            VerifyRejection::BadDate => f.write_str("the request date is not an HTTP date"),
            VerifyRejection::DateSkew => f.write_str("the request date is outside the allowed clock skew"),
            VerifyRejection::HostMismatch => f.write_str("`x-ms-host` does not name this endpoint"),
            VerifyRejection::BadSignature => f.write_str("the signature does not match"),
            VerifyRejection::BodyHashMismatch => f.write_str("the body does not match `x-ms-content-sha256`"),
            VerifyRejection::BodyTooLarge => f.write_str("the request body is too large"),
            VerifyRejection::UnreadableBody => f.write_str("the request body could not be read"),
        }
    }
}

impl std::error::Error for VerifyRejection {}

impl VerifyConfig {
    /// Checks everything but the body: headers, date, host and signature. The body is only read once the
    /// signature holds, so an unauthenticated client cannot make the server buffer anything.
    fn check_head(&self, request: &http::request::Parts) -> Result<ContentHash, VerifyRejection> {
        let headers = &request.headers;
        let authorization = header_str(headers, "authorization")?;
        let (legacy, signature) = parse_authorization(authorization)?;
        let (date_name, date_header) = if legacy { ("date", DATE) } else { ("x-ms-date", X_MS_DATE) };
        let date = headers
            .get(&date_header)
            .ok_or(VerifyRejection::MissingHeader(date_name))?
            .to_str()
            .map_err(|_| VerifyRejection::BadDate)?;
        let hash = header_str(headers, "x-ms-content-sha256")?;
        let claimed_hash = decode_digest(hash).ok_or(VerifyRejection::BodyHashMismatch)?;

        let signed_at = httpdate::parse_http_date(date).map_err(|_| VerifyRejection::BadDate)?;
        let now = self.clock.now();
        let skew = now.duration_since(signed_at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
        if skew > self.max_skew {
            return Err(VerifyRejection::DateSkew);
        }

        // A request for a storage location carries `x-ms-host`: SDKs send it with or without the port, and sign
        // either the path alone (.NET, JS) or the path and query (Python) — SPEC §2, "Our choice, verifying".
        let cross_host = match headers.get(X_MS_HOST) {
            None => false,
            Some(value) => {
                let value = value.to_str().map_err(|_| VerifyRejection::HostMismatch)?;
                if !self.names_this_endpoint(value) {
                    return Err(VerifyRejection::HostMismatch);
                }
                true
            }
        };
        let (host, with_query) = signing_target(&self.authority, &request.uri, false);
        let mut sts = String::new();
        write_string_to_sign(&mut sts, request.method.as_str(), with_query, date, host, hash);
        let mut valid = self.signer.verify(&sts, &signature);
        if cross_host {
            let (_, path_only) = signing_target(&self.authority, &request.uri, true);
            write_string_to_sign(&mut sts, request.method.as_str(), path_only, date, host, hash);
            // Both candidates are always computed, so the timing does not tell which one matched.
            valid |= self.signer.verify(&sts, &signature);
        }
        if !valid {
            return Err(VerifyRejection::BadSignature);
        }
        Ok(ContentHash::from_digest(claimed_hash))
    }

    fn names_this_endpoint(&self, value: &str) -> bool {
        let value = value.trim();
        if value.eq_ignore_ascii_case(&self.authority) {
            return true;
        }
        let host_only = match self.authority.rfind(':') {
            Some(colon) if !self.authority[colon..].contains(']') => &self.authority[..colon],
            _ => self.authority.as_str(),
        };
        value.eq_ignore_ascii_case(host_only)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyRejection> {
    let value = headers.get(name).ok_or(VerifyRejection::MissingHeader(name))?;
    value.to_str().map_err(|_| {
        if name == AUTHORIZATION.as_str() {
            VerifyRejection::MalformedAuthorization
        } else {
            VerifyRejection::BodyHashMismatch
        }
    })
}

/// Parses `HMAC-SHA256 SignedHeaders=<list>&Signature=<base64>`; returns whether the legacy `date` list was used
/// and the decoded signature.
fn parse_authorization(value: &str) -> Result<(bool, [u8; 32]), VerifyRejection> {
    let malformed = VerifyRejection::MalformedAuthorization;
    let (scheme, params) = value.trim().split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(malformed);
    }
    let mut signed_headers = None;
    let mut signature = None;
    for param in params.trim().split('&') {
        let (name, value) = param.split_once('=').ok_or(malformed)?;
        if name.eq_ignore_ascii_case("SignedHeaders") {
            signed_headers = Some(value);
        } else if name.eq_ignore_ascii_case("Signature") {
            signature = Some(value);
        } else {
            return Err(malformed);
        }
    }
    let legacy = match signed_headers.ok_or(malformed)? {
        list if list.eq_ignore_ascii_case(SIGNED_HEADERS) => false,
        list if list.eq_ignore_ascii_case(LEGACY_SIGNED_HEADERS) => true,
        _ => return Err(malformed),
    };
    let signature = decode_digest(signature.ok_or(malformed)?).ok_or(malformed)?;
    Ok((legacy, signature))
}

fn decode_digest(encoded: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 33];
    let len = base64::engine::general_purpose::STANDARD.decode_slice(encoded.trim(), &mut out).ok()?;
    (len == 32).then(|| out[..32].try_into().expect("32 bytes"))
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
            Err(rejection) => return VerifyFuture { state: VerifyState::Rejected { rejection: Some(rejection) } },
        };
        if body.size_hint().lower() > self.config.body_limit as u64 {
            let rejection = Some(VerifyRejection::BodyTooLarge);
            return VerifyFuture { state: VerifyState::Rejected { rejection } };
        }
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        VerifyFuture {
            state: VerifyState::Reading {
                collect: Limited::new(body, self.config.body_limit).collect(),
                parts: Some(parts),
                inner: Some(inner),
                expected,
            },
        }
    }
}

/// The response future of [`HmacVerify`].
#[pin_project]
pub struct VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    #[pin]
    state: VerifyState<S, B>,
}

// The future is pinned once and never moved, so the variants' sizes cost nothing; boxing would allocate.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = VerifyStateProj)]
enum VerifyState<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    Rejected {
        rejection: Option<VerifyRejection>,
    },
    Reading {
        #[pin]
        collect: Collect<Limited<B>>,
        parts: Option<http::request::Parts>,
        inner: Option<S>,
        expected: ContentHash,
    },
    Calling {
        #[pin]
        future: S::Future,
    },
}

impl<S, B, ResBody> Future for VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                VerifyStateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.into_response()));
                }
                VerifyStateProj::Reading { collect, parts, inner, expected } => {
                    let bytes = match ready!(collect.poll(cx)) {
                        Ok(collected) => collected.to_bytes(),
                        Err(error) => {
                            let rejection = if error.is::<LengthLimitError>() {
                                VerifyRejection::BodyTooLarge
                            } else {
                                VerifyRejection::UnreadableBody
                            };
                            this.state.set(VerifyState::Rejected { rejection: Some(rejection) });
                            continue;
                        }
                    };
                    if ContentHash::of(&bytes) != *expected {
                        let rejection = Some(VerifyRejection::BodyHashMismatch);
                        this.state.set(VerifyState::Rejected { rejection });
                        continue;
                    }
                    let parts = parts.take().expect("polled after completion");
                    let mut inner = inner.take().expect("polled after completion");
                    let future = inner.call(Request::from_parts(parts, Full::new(bytes)));
                    this.state.set(VerifyState::Calling { future });
                }
                VerifyStateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for VerifyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            VerifyState::Rejected { .. } => "rejected",
            VerifyState::Reading { .. } => "reading",
            VerifyState::Calling { .. } => "calling",
        };
        f.debug_struct("VerifyFuture").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing() {
        let sig = "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4=";
        let ok = format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}");
        assert!(matches!(parse_authorization(&ok), Ok((false, _))));
        let legacy = format!("HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={sig}");
        assert!(matches!(parse_authorization(&legacy), Ok((true, _))));
        for bad in [
            String::new(),
            format!("Bearer SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"),
            format!("HMAC-SHA256 SignedHeaders=host&Signature={sig}"),
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=abc".into(),
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256".into(),
            format!("HMAC-SHA256 Signature={sig}"),
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}&x=y"),
        ] {
            assert_eq!(parse_authorization(&bad).unwrap_err(), VerifyRejection::MalformedAuthorization, "{bad}");
        }
    }

    #[test]
    fn x_ms_host_with_or_without_port_names_the_endpoint() {
        let config = VerifyConfig {
            signer: Signer::new(&AccessKey::from_bytes(b"k".to_vec())),
            authority: "127.0.0.1:40183".into(),
            clock: SharedClock::system(),
            max_skew: DEFAULT_MAX_SKEW,
            body_limit: 0,
        };
        assert!(config.names_this_endpoint("127.0.0.1:40183"));
        assert!(config.names_this_endpoint("127.0.0.1"));
        assert!(!config.names_this_endpoint("127.0.0.2"));
        assert!(!config.names_this_endpoint("127.0.0.1:1"));
    }
}
