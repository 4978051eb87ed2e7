//! [`Error`]: why a namespace operation failed, with the operation, the status and the service's error.

use std::fmt;

use http::StatusCode;

use crate::calling::ServiceError;
use crate::BoxError;

/// The data plane operations of a namespace topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /topics/{topic}:publish`.
    Publish,
    /// `:receive`.
    Receive,
    /// `:acknowledge`.
    Acknowledge,
    /// `:release`.
    Release,
    /// `:reject`.
    Reject,
    /// `:renewLock`.
    RenewLock,
}

impl Operation {
    /// The action segment after the `:` of the path, as the API names it.
    pub fn action(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Receive => "receive",
            Operation::Acknowledge => "acknowledge",
            Operation::Release => "release",
            Operation::Reject => "reject",
            Operation::RenewLock => "renewLock",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::RenewLock => "renew lock",
            other => other.action(),
        })
    }
}

/// What went wrong, in kinds a caller branches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401 or 403: the key or token was refused.
    Unauthorized,
    /// 404: no such topic or event subscription.
    NotFound,
    /// Any other status that is not a success.
    Status,
    /// No answer: the connection failed, or the answer did not come in time.
    Transport,
    /// The answer is larger than the client reads.
    TooLarge,
    /// The answer's body is not the JSON the operation answers.
    InvalidAnswer,
    /// The request could not be built.
    InvalidRequest,
}

/// Why a namespace operation failed.
///
/// `Display` is one lower-case line naming the operation, and when there was an answer its status and the
/// service's error code and message: `receive answered 401 Unauthorized (Unauthorized: the key is not valid)`.
/// Neither the URL nor any header appears, so the key never does.
pub struct Error {
    kind: ErrorKind,
    operation: Operation,
    status: Option<StatusCode>,
    service: Option<Box<ServiceError>>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, operation: Operation) -> Self {
        Self { kind, operation, status: None, service: None, source: None }
    }

    pub(crate) fn status(operation: Operation, status: StatusCode, service: Option<ServiceError>) -> Self {
        let kind = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Unauthorized,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            _ => ErrorKind::Status,
        };
        Self { status: Some(status), service: service.map(Box::new), ..Self::new(kind, operation) }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The status of the answer, if there was one.
    pub fn status_code(&self) -> Option<StatusCode> {
        self.status
    }

    /// The service's error (`{"error":{"code","message"}}`), when the answer carried one.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.service.as_deref()
    }

    /// 401 or 403: the key or token was refused.
    pub fn is_unauthorized(&self) -> bool {
        self.kind == ErrorKind::Unauthorized
    }

    /// Whether the same request may succeed later: no answer, or 408, 429 or a 5xx.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Transport => true,
            ErrorKind::Status => self.status.is_some_and(|s| {
                s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
            }),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.kind) {
            (Some(status), _) => {
                write!(f, "{} answered {status}", self.operation)?;
                if let Some(service) = self.service.as_deref().filter(|s| !s.code.is_empty() || !s.message.is_empty()) {
                    write!(f, " ({}: {})", service.code, service.message)?;
                }
                Ok(())
            }
            (None, ErrorKind::Transport) => write!(f, "{} got no answer", self.operation),
            (None, ErrorKind::TooLarge) => write!(f, "the answer to {} is too large", self.operation),
            (None, ErrorKind::InvalidAnswer) => write!(f, "the answer to {} is not what it answers", self.operation),
            (None, _) => write!(f, "{} could not be sent", self.operation),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("service", &self.service)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}
