//! Authenticating deliveries: a shared secret, or a check of your own.

use std::fmt;

use http::request::Parts;
use http::HeaderName;
use percent_encoding::percent_decode_str;

use crate::secret::SecretDigest;

/// The query parameter [`DeliverySecret::query`] reads.
pub(crate) const DEFAULT_SECRET_PARAMETER: &str = "code";

/// A check every delivery must pass before its body is read; failing it is a 401.
///
/// Implemented by [`DeliverySecret`] and by any `Fn(&http::request::Parts) -> bool + Send + Sync`, so a check of
/// your own can be plugged in (a check that must wait, for keys say, is an
/// [`AsyncDeliveryCheck`](super::AsyncDeliveryCheck)):
///
/// ```
/// use acs_recording::eventgrid::EventGridWebhookLayer;
///
/// let layer = EventGridWebhookLayer::new().require(|parts: &http::request::Parts| {
///     parts.headers.get("authorization").is_some_and(|value| value == "Bearer expected-token")
/// });
/// # let _ = layer;
/// ```
pub trait DeliveryCheck: Send + Sync + 'static {
    /// Whether the request, seen before its body, may deliver events.
    fn check(&self, request: &Parts) -> bool;
}

impl<F> DeliveryCheck for F
where
    F: Fn(&Parts) -> bool + Send + Sync + 'static,
{
    fn check(&self, request: &Parts) -> bool {
        self(request)
    }
}

#[derive(Clone)]
enum Location {
    Query(String),
    Header(HeaderName),
}

/// A shared secret that deliveries carry in a query parameter or a header, as configured on the Event Grid
/// subscription's endpoint URL or delivery headers.
///
/// Two secrets can be accepted at once, so the subscription can move to a new secret without losing deliveries.
/// The comparison takes the same time whichever byte differs: both sides are hashed with SHA-256 and the digests
/// compared with a fold over all bytes. Query values are percent-decoded (`+` stays `+`). `Debug` never prints a
/// secret.
///
/// ```
/// use acs_recording::eventgrid::DeliverySecret;
///
/// let secret = DeliverySecret::query("new-secret").or_previous("old-secret");
/// let (parts, ()) = http::Request::post("/events?code=old-secret").body(()).unwrap().into_parts();
/// assert!(secret.matches(&parts));
/// assert_eq!(format!("{secret:?}"), r#"DeliverySecret { query: "code", secrets: 2 }"#);
/// ```
#[derive(Clone)]
pub struct DeliverySecret {
    location: Location,
    current: SecretDigest,
    previous: Option<SecretDigest>,
}

impl DeliverySecret {
    /// A secret in the `code` query parameter: `https://example.com/events?code=<secret>`.
    pub fn query(secret: impl AsRef<[u8]>) -> Self {
        Self::query_parameter(DEFAULT_SECRET_PARAMETER, secret)
    }

    /// A secret in the named query parameter.
    pub fn query_parameter(name: impl Into<String>, secret: impl AsRef<[u8]>) -> Self {
        Self { location: Location::Query(name.into()), current: SecretDigest::of(secret.as_ref()), previous: None }
    }

    /// A secret in the named header (an Event Grid delivery header set on the subscription).
    pub fn header(name: HeaderName, secret: impl AsRef<[u8]>) -> Self {
        Self { location: Location::Header(name), current: SecretDigest::of(secret.as_ref()), previous: None }
    }

    /// Also accepts a second secret, for rotation: deliveries carrying either one pass.
    pub fn or_previous(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.previous = Some(SecretDigest::of(secret.as_ref()));
        self
    }

    /// Whether the request carries one of the secrets.
    pub fn matches(&self, request: &Parts) -> bool {
        let presented = match &self.location {
            Location::Query(name) => request.uri.query().and_then(|query| query_value(query, name)),
            Location::Header(name) => request.headers.get(name).map(|value| value.as_bytes().to_vec()),
        };
        let Some(presented) = presented else { return false };
        let presented = SecretDigest::of(&presented);
        // Both comparisons always run, so timing does not tell which secret matched.
        let current = self.current.matches_digest(&presented);
        let previous = self.previous.as_ref().is_some_and(|previous| previous.matches_digest(&presented));
        current | previous
    }
}

impl DeliveryCheck for DeliverySecret {
    fn check(&self, request: &Parts) -> bool {
        self.matches(request)
    }
}

impl fmt::Debug for DeliverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("DeliverySecret");
        match &self.location {
            Location::Query(name) => debug.field("query", name),
            Location::Header(name) => debug.field("header", name),
        };
        debug.field("secrets", &(1 + usize::from(self.previous.is_some()))).finish()
    }
}

/// The percent-decoded value of the first `name=value` pair in a query string.
fn query_value(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_matches = key == name || percent_decode_str(key).decode_utf8().is_ok_and(|key| key == name);
        key_matches.then(|| percent_decode_str(value).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, header: Option<(&str, &str)>) -> Parts {
        let mut builder = http::Request::post(uri);
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn query_secrets_are_found_decoded_among_other_parameters() {
        let secret = DeliverySecret::query_parameter("key", "a+b/c");
        let cases = [
            ("/e?key=a%2Bb%2Fc", true),
            ("/e?api-version=2018-01-01&key=a+b/c", true),
            ("/e?k%65y=a+b/c", true),
            ("/e?key=a%20b/c", false),
            ("/e?key=", false),
            ("/e?key", false),
            ("/e?code=a+b/c", false),
            ("/e", false),
        ];
        for (uri, expected) in cases {
            assert_eq!(secret.matches(&parts(uri, None)), expected, "{uri}");
        }
    }

    #[test]
    fn header_secrets_and_both_rotation_secrets_are_accepted() {
        let name = HeaderName::from_static("x-delivery-secret");
        let secret = DeliverySecret::header(name, "new").or_previous("old");
        assert!(secret.matches(&parts("/", Some(("x-delivery-secret", "new")))));
        assert!(secret.matches(&parts("/", Some(("x-delivery-secret", "old")))));
        assert!(!secret.matches(&parts("/", Some(("x-delivery-secret", "older")))));
        assert!(!secret.matches(&parts("/?code=new", None)));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let secret = DeliverySecret::header(HeaderName::from_static("x-s"), "hunter2");
        let text = format!("{secret:?}");
        assert_eq!(text, r#"DeliverySecret { header: "x-s", secrets: 1 }"#);
    }
}
