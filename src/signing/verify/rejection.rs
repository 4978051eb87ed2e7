use std::fmt;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::ResponseBody;

/// Why [`HmacVerify`](super::HmacVerify) rejected a request; found in the rejection response's extensions.
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

    pub(super) fn into_response<B>(self) -> Response<ResponseBody<B>> {
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
