//! The emulator's stand-in for Microsoft Entra ID: one configured test token, accepted as
//! `Authorization: Bearer <token>` beside HMAC signatures, as ACS accepts either.

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};

use crate::body::ResponseBody;
use crate::secret::SecretDigest;

/// What a request's `Authorization` says about the bearer token.
pub(crate) enum BearerCheck {
    /// No bearer token (HMAC, or nothing): the HMAC verifier decides.
    Absent,
    /// The configured token, compared in constant time.
    Accepted,
    /// A bearer token that is not the configured one.
    Rejected,
}

/// Checks the `Authorization` header against the configured token, if any. Without a configured token every
/// request goes to the HMAC verifier, which refuses a bearer token as a malformed authorization.
pub(crate) fn check(headers: &HeaderMap, expected: Option<&SecretDigest>) -> BearerCheck {
    let Some(expected) = expected else { return BearerCheck::Absent };
    let Some(value) = headers.get(AUTHORIZATION) else { return BearerCheck::Absent };
    let value = value.as_bytes();
    // RFC 6750 §2.1: `Bearer` is case-insensitive, followed by one space.
    let is_bearer = value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ");
    if !is_bearer {
        return BearerCheck::Absent;
    }
    if expected.matches(&value[7..]) {
        BearerCheck::Accepted
    } else {
        BearerCheck::Rejected
    }
}

/// 401 for a bearer token that is not the emulator's, shaped like the HMAC verifier's refusals.
pub(crate) fn rejection<B>() -> Response<ResponseBody<B>> {
    let body = Bytes::from_static(br#"{"error":"bad_token","message":"the bearer token is not accepted"}"#);
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(authorization: Option<&str>, expected: Option<&str>) -> &'static str {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, value.parse().unwrap());
        }
        let expected = expected.map(|token| SecretDigest::of(token.as_bytes()));
        match check(&headers, expected.as_ref()) {
            BearerCheck::Absent => "absent",
            BearerCheck::Accepted => "accepted",
            BearerCheck::Rejected => "rejected",
        }
    }

    #[test]
    fn only_the_configured_token_is_accepted() {
        let table = [
            (Some("Bearer test-token"), Some("test-token"), "accepted"),
            (Some("bearer test-token"), Some("test-token"), "accepted"),
            (Some("Bearer test-token2"), Some("test-token"), "rejected"),
            (Some("Bearer "), Some("test-token"), "absent"),
            (Some("Bearer test-token"), None, "absent"),
            (Some("HMAC-SHA256 SignedHeaders=x&Signature=y"), Some("test-token"), "absent"),
            (None, Some("test-token"), "absent"),
        ];
        for (authorization, expected, want) in table {
            assert_eq!(outcome(authorization, expected), want, "{authorization:?} {expected:?}");
        }
    }
}
