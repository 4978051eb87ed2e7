//! The queue client's error: what failed, never the URL's query or a credential.

use std::fmt;

use crate::BoxError;

/// What kind of failure a queue [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The queue URL cannot be used: not http(s), plain http to a host that is not loopback, no queue name.
    InvalidUrl,
    /// No usable credential: a key that is not base64, a token that could not be had.
    Credential,
    /// The request did not complete: connection refused or reset, a body cut short.
    Transport,
    /// The service answered with an unexpected status.
    Status,
    /// The service's XML could not be read.
    Xml,
}

/// An error of the queue client. `Display` names the operation and the queue; the cause is in `source()`.
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    source: Option<BoxError>,
}

impl Error {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None, source: None }
    }

    pub(super) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(super) fn status(message: impl Into<String>, status: u16) -> Self {
        Self { status: Some(status), ..Self::new(ErrorKind::Status, message) }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status the service answered, for [`ErrorKind::Status`].
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// Whether trying again later may succeed: transport failures, throttling (429, 503) and server errors.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Transport | ErrorKind::Credential => true,
            ErrorKind::Status => self.status.is_some_and(|status| status == 408 || status == 429 || status >= 500),
            ErrorKind::InvalidUrl | ErrorKind::Xml => false,
        }
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.status {
            write!(f, " (status {status})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}
