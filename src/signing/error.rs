use std::fmt;

use super::allow::Refused;
use crate::BoxError;

/// What went wrong while signing or sending a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The destination is neither the endpoint nor on the allow-list; nothing was sent.
    RefusedHost,
    /// The body is larger than the signing buffer limit and carried no precomputed [`ContentHash`].
    ///
    /// [`ContentHash`]: super::ContentHash
    BodyTooLarge,
    /// Reading the request body to hash it failed.
    Body,
    /// The Microsoft Entra credential did not give an access token; nothing was sent.
    Credential,
    /// The inner service failed.
    Inner,
}

/// An error from [`HmacSigning`](super::HmacSigning) or `BearerToken`. It never contains key material, signatures
/// or tokens.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    refused: Option<Refused>,
    limit: usize,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn refused(refused: Refused) -> Self {
        Self { kind: ErrorKind::RefusedHost, refused: Some(refused), limit: 0, source: None }
    }

    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self { kind: ErrorKind::BodyTooLarge, refused: None, limit, source: None }
    }

    pub(crate) fn body(source: BoxError) -> Self {
        Self { kind: ErrorKind::Body, refused: None, limit: 0, source: Some(source) }
    }

    #[cfg_attr(not(feature = "entra"), allow(dead_code))]
    pub(crate) fn credential(source: impl Into<BoxError>) -> Self {
        Self { kind: ErrorKind::Credential, refused: None, limit: 0, source: Some(source.into()) }
    }

    pub(crate) fn inner(source: impl Into<BoxError>) -> Self {
        Self { kind: ErrorKind::Inner, refused: None, limit: 0, source: Some(source.into()) }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the destination was refused (the inner service was never called).
    pub fn is_refused(&self) -> bool {
        self.kind == ErrorKind::RefusedHost
    }

    /// Whether the Entra credential failed to give a token; its error is the
    /// [`source`](std::error::Error::source).
    pub fn is_credential(&self) -> bool {
        self.kind == ErrorKind::Credential
    }

    /// The refusal, naming the host, when the destination was refused.
    pub fn refusal(&self) -> Option<&Refused> {
        self.refused.as_ref()
    }

    /// Whether the inner service failed; its error is the [`source`](std::error::Error::source).
    pub fn is_inner(&self) -> bool {
        self.kind == ErrorKind::Inner
    }

    /// Takes the inner service's error out, when that is what failed.
    pub fn into_inner(self) -> Option<BoxError> {
        if self.kind == ErrorKind::Inner {
            self.source
        } else {
            None
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.refused) {
            (ErrorKind::RefusedHost, Some(refused)) => write!(f, "refused to sign a request: {refused}"),
            (ErrorKind::RefusedHost, None) => f.write_str("refused to sign a request"),
            (ErrorKind::BodyTooLarge, _) => write!(
                f,
                "request body exceeds the signing buffer limit of {} bytes; attach a precomputed content hash",
                self.limit
            ),
            (ErrorKind::Body, _) => f.write_str("reading the request body to hash it failed"),
            (ErrorKind::Credential, _) => f.write_str("the credential did not give an access token"),
            (ErrorKind::Inner, _) => f.write_str("the inner service failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            Some(source) => Some(&**source),
            None => self.refused.as_ref().map(|r| r as &(dyn std::error::Error + 'static)),
        }
    }
}
