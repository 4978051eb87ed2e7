//! What can stop a pass over the dead-letter container.

use std::fmt;

use crate::recorder::AdmitError;
use crate::BoxError;

/// Why a pass over the dead-letter blobs stopped before the end. The blob in hand is not marked processed, so
/// the next pass reads it again (its events then count as duplicates).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    blob: String,
    source: Option<BoxError>,
}

/// The kind of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The container could not be listed.
    List,
    /// A blob could not be read.
    Read,
    /// A blob's marker could not be written.
    Mark,
    /// The journal did not take a blob's events (an [`AdmitError`]: temporary).
    Admit,
}

impl Error {
    pub(super) fn new(kind: ErrorKind, blob: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self { kind, blob: blob.into(), source: Some(source.into()) }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The blob in hand (the listed prefix for [`ErrorKind::List`]).
    pub fn blob(&self) -> &str {
        &self.blob
    }

    /// Whether the recorder is shutting down: the pass stopped on purpose.
    pub fn is_shutting_down(&self) -> bool {
        self.source
            .as_deref()
            .and_then(|source| source.downcast_ref::<AdmitError>())
            .is_some_and(AdmitError::is_shutting_down)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blob = &self.blob;
        match self.kind {
            ErrorKind::List => write!(f, "cannot list the dead-letter blobs under `{blob}`"),
            ErrorKind::Read => write!(f, "cannot read dead-letter blob `{blob}`"),
            ErrorKind::Mark => write!(f, "cannot mark dead-letter blob `{blob}` processed"),
            ErrorKind::Admit => write!(f, "the journal did not take the events of dead-letter blob `{blob}`"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}
