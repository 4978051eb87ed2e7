//! Why a delivery was refused, and the problem response that says so.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// The media type of problem bodies ([RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A refused delivery: what was wrong, and the status it is answered with.
///
/// The webhook layer answers with [`Error::status`] and a short JSON problem body (see [`Error::to_problem_json`]),
/// and puts a clone of the error in the response extensions. The extractors return it as their rejection.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
    challenge: Option<&'static str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The delivery secret or a check failed (no credential, or one that is not valid): 401.
    Unauthorized,
    /// A valid credential of a caller that may not deliver (another application, a missing role): 403.
    Forbidden,
    /// Authentication cannot be decided now (the signing keys cannot be fetched): 503, so that Event Grid
    /// delivers again.
    Unavailable,
    /// The body is over the configured limit: 413.
    PayloadTooLarge,
    /// The content type is missing or not one Event Grid uses: 415.
    UnsupportedMediaType,
    /// A CloudEvents handshake from an origin that is not allowed: 403.
    OriginNotAllowed,
    /// The body is not JSON: 400, with the line and column.
    MalformedJson,
    /// The JSON is not an event, a batch of events, or misses a required field: 400.
    InvalidEvent,
    /// The body could not be read to its end (the connection failed): 503, so that Event Grid delivers again.
    BodyRead,
    /// The body did not arrive within the layer's body timeout (a slow or stalled sender): 408, which Event Grid
    /// retries.
    BodyTimeout,
    /// A validation handshake without a validation event: 400.
    MissingValidationCode,
    /// An extractor that needs the webhook layer ran without it: 500, a server misconfiguration.
    MissingLayer,
    /// A method other than `POST` (and the `OPTIONS` handshake): 405 with `Allow: POST, OPTIONS`. Nothing else
    /// reaches the service behind the webhook, authenticated or not.
    MethodNotAllowed,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), line: None, column: None, challenge: None, source: None }
    }

    /// Sets the `WWW-Authenticate` challenge of a 401 (by default `EventGridSecret`).
    pub(crate) fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<crate::BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Wraps a `serde_json` error, keeping where it happened.
    pub(crate) fn from_json(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => ErrorKind::MalformedJson,
            Category::Data => ErrorKind::InvalidEvent,
        };
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        // serde_json appends " at line L column C"; the position is reported in its own fields.
        let suffix = format!(" at line {line} column {column}");
        let detail = full.strip_suffix(&suffix).unwrap_or(&full);
        let message = match kind {
            ErrorKind::MalformedJson => format!("malformed JSON: {detail}"),
            _ => format!("not an event or a batch of events: {detail}"),
        };
        let mut this = Self::new(kind, message);
        if line > 0 {
            this.line = Some(line);
            this.column = Some(column);
        }
        this
    }

    /// A body that is not UTF-8 (so not JSON), with the position of the first bad byte.
    pub(crate) fn invalid_utf8(body: &[u8], valid_up_to: usize) -> Self {
        let before = &body[..valid_up_to];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&byte| byte == b'\n').map_or(0, |at| at + 1);
        let column = valid_up_to - line_start + 1;
        let mut this = Self::new(ErrorKind::MalformedJson, "malformed JSON: invalid UTF-8");
        this.line = Some(line);
        this.column = Some(column);
        this
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status the delivery is answered with.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::OriginNotAllowed => StatusCode::FORBIDDEN,
            ErrorKind::MalformedJson | ErrorKind::InvalidEvent | ErrorKind::MissingValidationCode => {
                StatusCode::BAD_REQUEST
            }
            // A transient fault, not bad input: Event Grid never retries a 400, and does retry a 503.
            ErrorKind::BodyRead | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The 1-based line of a JSON error in the body, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The 1-based column of a JSON error in the body, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// Whether the delivery secret or check failed.
    pub fn is_unauthorized(&self) -> bool {
        self.kind == ErrorKind::Unauthorized
    }

    /// Whether a valid credential was refused for its caller or role.
    pub fn is_forbidden(&self) -> bool {
        self.kind == ErrorKind::Forbidden
    }

    /// Whether the body was over the limit.
    pub fn is_payload_too_large(&self) -> bool {
        self.kind == ErrorKind::PayloadTooLarge
    }

    /// The problem body: `{"status":400,"title":"Bad Request","detail":"...","line":1,"column":5}`
    /// (`line` and `column` only for JSON errors).
    pub fn to_problem_json(&self) -> Bytes {
        #[derive(serde::Serialize)]
        struct Problem<'a> {
            status: u16,
            title: &'a str,
            detail: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            column: Option<usize>,
        }
        let status = self.status();
        let problem = Problem {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: &self.message,
            line: self.line,
            column: self.column,
        };
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(&problem).map(Bytes::from).unwrap_or_default()
    }

    /// The full response: status, `Content-Type: application/problem+json`, the problem body, and the error in the
    /// extensions.
    pub fn to_response(&self) -> Response<Bytes> {
        let mut response = Response::new(self.to_problem_json());
        *response.status_mut() = self.status();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        if self.kind == ErrorKind::Unauthorized {
            // RFC 9110 §15.5.2: a 401 carries a challenge: the subscription's shared secret unless a bearer-token
            // check refused.
            let challenge = self.challenge.unwrap_or("EventGridSecret");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.kind == ErrorKind::MethodNotAllowed {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        response.extensions_mut().insert(self.clone());
        response
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    fn into_response(self) -> axum_core::response::Response {
        self.to_response().map(axum_core::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_keep_line_and_column_out_of_the_detail() {
        let json_error = serde_json::from_str::<serde::de::IgnoredAny>("[\n  {,").unwrap_err();
        let error = Error::from_json(&json_error);
        assert_eq!(error.kind(), ErrorKind::MalformedJson);
        assert_eq!((error.line(), error.column()), (Some(2), Some(4)));
        assert_eq!(
            std::str::from_utf8(&error.to_problem_json()).unwrap(),
            r#"{"status":400,"title":"Bad Request","detail":"malformed JSON: key must be a string","line":2,"column":4}"#
        );
        assert_eq!(error.to_string(), "malformed JSON: key must be a string at line 2 column 4");
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let error = Error::invalid_utf8(b"[\n {\xff", 4);
        assert_eq!((error.kind(), error.line(), error.column()), (ErrorKind::MalformedJson, Some(2), Some(3)));
    }

    #[test]
    fn each_kind_maps_to_its_status() {
        let cases = [
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UnsupportedMediaType, 415),
            (ErrorKind::OriginNotAllowed, 403),
            (ErrorKind::MalformedJson, 400),
            (ErrorKind::InvalidEvent, 400),
            (ErrorKind::BodyRead, 503),
            (ErrorKind::BodyTimeout, 408),
            (ErrorKind::MissingValidationCode, 400),
            (ErrorKind::MissingLayer, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(Error::new(kind, "x").status().as_u16(), status, "{kind:?}");
        }
    }
}
