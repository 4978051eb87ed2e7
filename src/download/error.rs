//! The download error: an opaque [`Error`] with a [`ErrorKind`].

use std::fmt;

use http::StatusCode;

use crate::signing::Refused;
use crate::BoxError;

/// What went wrong while downloading a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A location's host is neither the endpoint nor on the allow-list; no request was made to it.
    RefusedHost,
    /// A location is not an absolute URL, or a chunk has no location and no endpoint is configured.
    InvalidLocation,
    /// The server answered a status that retrying cannot fix (400, 401, 403, 404, 410, ...).
    Status,
    /// A redirect pointed at a host that is not allowed, or there were too many redirects.
    Redirect,
    /// Transient failures (resets, timeouts, 408/429/5xx, short bodies) outlasted the retry policy.
    RetriesExhausted,
    /// The object changed and the consumer could not restart from zero (a stream already handed out bytes, or a
    /// sink that cannot truncate).
    ObjectChanged,
    /// A metadata document was not JSON, or was larger than the limit.
    Metadata,
    /// The sink failed to store bytes.
    Sink,
    /// The HTTP client failed in a way that retrying cannot fix (for example the signing layer refused the host).
    Client,
}

/// An error from the [`ChunkDownloader`](super::ChunkDownloader).
///
/// `Display` is lower-case and names the chunk, the status or the host involved; the cause, if any, is the
/// [`source`](std::error::Error::source). It never contains signatures or keys.
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<StatusCode>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None, source: None }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn refused(what: &str, refused: Refused) -> Self {
        Self::new(ErrorKind::RefusedHost, format!("{what}: host `{}` is not allowed", refused.host()))
            .with_source(refused)
    }

    pub(crate) fn sink(what: &str, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Sink, format!("{what}: sink failed: {source}")).with_source(source)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status behind a [`ErrorKind::Status`] error, or the last status seen before retries ran out.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// Whether a location was refused by the allow-list (no request was made).
    pub fn is_refused(&self) -> bool {
        self.kind == ErrorKind::RefusedHost
    }

    /// Whether trying the same download again later may succeed: transient failures that outlasted the retry
    /// policy and sink failures are retryable; refused hosts, permanent statuses and invalid input are not.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::RetriesExhausted | ErrorKind::ObjectChanged | ErrorKind::Sink)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("status", &self.status)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Every `Display` and `Debug` along an error's `source()` chain, for tests that check what an error may show.
#[cfg(test)]
pub(crate) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut current = Some(error);
    while let Some(error) = current {
        text.push_str(&format!("{error}\n{error:?}\n"));
        current = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync_static() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Error>();
    }

    #[test]
    fn retryable_kinds() {
        assert!(Error::new(ErrorKind::RetriesExhausted, "x").is_retryable());
        assert!(!Error::new(ErrorKind::Status, "x").is_retryable());
        assert!(!Error::new(ErrorKind::RefusedHost, "x").is_retryable());
    }
}
