//! The HMAC signer on its own: what the signing layer adds to a request, for code that sends requests without tower.

use std::cell::RefCell;

use http::header::{HeaderValue, AUTHORIZATION, DATE};
use http::request::Parts;

use super::allow::AllowList;
use super::body::ContentHash;
use super::error::Error;
use super::sign::{
    cached_http_date, write_string_to_sign, HmacKey, EMPTY_CONTENT_HASH, LEGACY_SIGNED_HEADERS, SIGNED_HEADERS,
};
use super::target::{signing_target, Target, X_MS_CONTENT_SHA256, X_MS_DATE};
use crate::clock::{Clock, SharedClock};
use crate::credential::{AccessKey, ConnectionString, Endpoint};

/// Signs a request head with the ACS HMAC-SHA256 scheme, outside any tower stack.
///
/// [`HmacSigningLayer`](super::HmacSigningLayer) signs with one of these; use it directly to sign a request that
/// another client sends. The body is not read: give its [`ContentHash`]. [`sign`](Self::sign) adds `x-ms-date`,
/// `x-ms-content-sha256` and `Authorization` (all marked sensitive) and, for a host other than the endpoint,
/// `x-ms-host`; it refuses a host that is neither the endpoint nor on the [`AllowList`] (by default
/// [`AllowList::azure_defaults`]). The rules are in the [module docs](super#rules).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use acs_recording::credential::ConnectionString;
/// use acs_recording::signing::{ContentHash, HmacSigner};
///
/// let cs: ConnectionString = "endpoint=https://contoso.communicationservices.azure.com/;accesskey=pw==".parse()?;
/// let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352); // Wed, 13 Apr 2022 18:09:12 GMT
/// let signer = HmacSigner::from_connection_string(&cs).with_clock(move || at);
///
/// let request = http::Request::get("https://contoso.communicationservices.azure.com/testPath?testQuery=yes")
///     .body(())?;
/// let (mut parts, body) = request.into_parts();
/// signer.sign(&mut parts, &ContentHash::EMPTY)?;
/// assert_eq!(parts.headers["x-ms-date"], "Wed, 13 Apr 2022 18:09:12 GMT");
/// assert_eq!(parts.headers["x-ms-content-sha256"], "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
/// assert_eq!(
///     parts.headers["authorization"],
///     "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=il99+rd6V5O136roX/zVePCNle78HmvC4B7tu9zRH3I="
/// );
/// let request = http::Request::from_parts(parts, body); // ready for any client
///
/// // A host that is not allowed is refused, and the head is left as it was.
/// let (mut parts, _) = http::Request::get("https://attacker.example/steal").body(())?.into_parts();
/// let error = signer.sign(&mut parts, &ContentHash::EMPTY).unwrap_err();
/// assert_eq!(error.to_string(), "refused to sign a request to `attacker.example`");
/// assert!(parts.headers.is_empty());
/// # let _ = request;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacSigner {
    target: Target,
    key: HmacKey,
    clock: SharedClock,
    legacy_date: bool,
}

impl HmacSigner {
    /// Signs for `endpoint` with `key`; storage hosts from [`AllowList::azure_defaults`] are allowed.
    pub fn new(endpoint: Endpoint, key: AccessKey) -> Self {
        Self {
            target: Target::new(endpoint, AllowList::azure_defaults()),
            key: HmacKey::new(&key),
            clock: SharedClock::system(),
            legacy_date: false,
        }
    }

    /// Signs for the endpoint and key of a connection string.
    pub fn from_connection_string(connection_string: &ConnectionString) -> Self {
        Self::new(connection_string.endpoint().clone(), connection_string.access_key().clone())
    }

    /// Replaces the allow-list of hosts other than the endpoint that may receive signed requests.
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        self.target.set_allow_list(allow);
        self
    }

    /// Takes the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = SharedClock::new(clock);
        self
    }

    /// Sends the date in `Date` with `SignedHeaders=date;host;x-ms-content-sha256`, as the original quickstart did,
    /// instead of `x-ms-date` with `SignedHeaders=x-ms-date;host;x-ms-content-sha256`.
    pub fn legacy_date_header(mut self) -> Self {
        self.legacy_date = true;
        self
    }

    /// The endpoint requests are signed for.
    pub fn endpoint(&self) -> &Endpoint {
        self.target.endpoint()
    }

    /// Signs `parts` for a body whose SHA-256 is `content_hash`, at the time of the signer's clock.
    ///
    /// Fails with [`ErrorKind::RefusedHost`](super::ErrorKind::RefusedHost), leaving `parts` untouched, when the
    /// destination is neither the endpoint nor on the allow-list.
    pub fn sign(&self, parts: &mut Parts, content_hash: &ContentHash) -> Result<(), Error> {
        let cross_host = self.admit(&parts.uri)?;
        self.sign_admitted(parts, content_hash.as_str(), cross_host);
        Ok(())
    }

    /// Whether a request to `uri` goes to another host than the endpoint, or the refusal (the SSRF guard).
    pub(crate) fn admit(&self, uri: &http::Uri) -> Result<bool, Error> {
        self.target.admit(uri)
    }

    /// Adds `x-ms-date` (or `Date`), `x-ms-content-sha256`, `Authorization` and, for another host, `x-ms-host`, to a
    /// request whose destination [`admit`](Self::admit) accepted.
    pub(crate) fn sign_admitted(&self, parts: &mut Parts, content_hash: &str, cross_host: bool) {
        thread_local! {
            static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let mut date = cached_http_date(self.clock.now());
        let (host, path_and_query) = signing_target(self.endpoint().authority(), &parts.uri, cross_host);
        let signature = BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let date = date.to_str().expect("http dates are ascii");
            write_string_to_sign(&mut buffer, parts.method.as_str(), path_and_query, date, host, content_hash);
            self.key.signature(&buffer)
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
        self.target.set_x_ms_host(headers, cross_host);
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use http::Request;
    use http_body_util::Full;
    use tower::{service_fn, Layer, ServiceExt};

    use super::*;
    use crate::signing::HmacSigningLayer;

    /// What the layer hands to its inner service for `request`.
    async fn signed_by_layer(layer: &HmacSigningLayer, request: Request<Full<Bytes>>) -> Parts {
        let echo = service_fn(|request: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(request) });
        layer.layer(echo).oneshot(request).await.unwrap().into_parts().0
    }

    #[tokio::test]
    async fn the_signer_adds_exactly_the_headers_the_layer_sends() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
        let key = AccessKey::from_base64("pw==").unwrap();
        let signer = HmacSigner::new(endpoint, key).with_clock(move || at);
        let cases: [(&str, &str, &[u8], bool); 5] = [
            ("GET", "https://contoso.communication.azure.com/testPath?testQuery=yes", b"", false),
            ("POST", "https://contoso.communication.azure.com/calling/recordings", b"{\"a\":1}", false),
            ("GET", "https://eu.asm.skype.com/v1/objects/0-eu-d1/content/audio?sig=x", b"", false),
            ("DELETE", "https://eu.asm.skype.com/v1/objects/0-eu-d1", b"", true),
            ("PUT", "https://contoso.communication.azure.com/x", b"body", true),
        ];
        for (method, uri, body, legacy) in cases {
            let signer = if legacy { signer.clone().legacy_date_header() } else { signer.clone() };
            let request = || {
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("x-ms-host", "stale")
                    .body(Full::new(Bytes::copy_from_slice(body)))
                    .unwrap()
            };
            let from_layer = signed_by_layer(&HmacSigningLayer::from_signer(signer.clone()), request()).await;
            let (mut parts, _) = request().into_parts();
            signer.sign(&mut parts, &ContentHash::of(body)).unwrap();
            assert_eq!(parts.headers, from_layer.headers, "{method} {uri}");
            for (name, value) in &parts.headers {
                assert_eq!(value.is_sensitive(), from_layer.headers[name].is_sensitive(), "{name} of {method} {uri}");
            }
        }
    }

    #[test]
    fn a_refused_host_leaves_the_head_untouched() {
        let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
        let signer = HmacSigner::new(endpoint, AccessKey::from_bytes(b"k".to_vec())).allow_list(AllowList::empty());
        let (mut parts, ()) = Request::get("https://eu.asm.skype.com/v1/objects/d").body(()).unwrap().into_parts();
        let error = signer.sign(&mut parts, &ContentHash::EMPTY).unwrap_err();
        assert!(error.is_refused());
        assert!(parts.headers.is_empty());
    }

    #[test]
    fn the_empty_hash_is_the_hash_of_no_bytes() {
        assert_eq!(ContentHash::EMPTY, ContentHash::of(b""));
        assert_eq!(ContentHash::EMPTY.as_str(), EMPTY_CONTENT_HASH);
    }
}
