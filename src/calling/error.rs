//! [`Error`]: why a recording operation failed, with the operation, the status, the service's error body and the
//! number of attempts.

use std::fmt;

use http::StatusCode;

use super::model::ServiceError;
use crate::BoxError;

/// A recording operation of Call Automation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /calling/recordings`.
    Start,
    /// `POST /calling/recordings/{id}:pause`.
    Pause,
    /// `POST /calling/recordings/{id}:resume`.
    Resume,
    /// `DELETE /calling/recordings/{id}`.
    Stop,
    /// `GET /calling/recordings/{id}`.
    State,
}

impl Operation {
    /// The operation in words, as errors name it: `start recording`, `get recording state`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Start => "start recording",
            Operation::Pause => "pause recording",
            Operation::Resume => "resume recording",
            Operation::Stop => "stop recording",
            Operation::State => "get recording state",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, in kinds a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404: the call or the recording does not exist (any more).
    NotFound,
    /// 409: the request conflicts with the recording's state (a recording already running, for instance).
    Conflict,
    /// Any other status that is not the operation's success, after the retries a transient one gets.
    Status,
    /// No answer: the connection failed or the attempt timed out, on every attempt allowed.
    Transport,
    /// The request was never sent: the signing layer refused its host or had no credential to sign with.
    Credential,
    /// The answer's body is not the JSON the operation answers.
    InvalidAnswer,
    /// The request could not be built (an unencodable body, or an endpoint and id that make no URL).
    InvalidRequest,
}

/// Why a recording operation failed.
///
/// `Display` is one lower-case line naming the operation and, when there was an answer, its status and the
/// service's error code: `stop recording answered 404 not found (8522)`. The service's message is in
/// [`service_error`](Self::service_error); the cause of a transport failure in `source()`. Neither the request's
/// URL nor any header appears.
pub struct Error {
    kind: ErrorKind,
    operation: Operation,
    status: Option<StatusCode>,
    /// Boxed: it is rare, and the error stays small on the happy path's `Result`.
    service: Option<Box<ServiceError>>,
    attempts: u32,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, operation: Operation) -> Self {
        Self { kind, operation, status: None, service: None, attempts: 1, source: None }
    }

    /// An answer with a status that is not the operation's success; `service` is its parsed error body, if any.
    pub(crate) fn status(operation: Operation, status: StatusCode, service: Option<ServiceError>) -> Self {
        let kind = match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::CONFLICT => ErrorKind::Conflict,
            _ => ErrorKind::Status,
        };
        Self { status: Some(status), service: service.map(Box::new), ..Self::new(kind, operation) }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
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

    /// The status of the last answer, if there was one.
    pub fn status_code(&self) -> Option<StatusCode> {
        self.status
    }

    /// The service's error body (`{"error":{"code":..,"message":..}}`) of the last answer, when it sent one.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.service.as_deref()
    }

    /// How many requests were sent, the first one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// 404: the call or the recording does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// 409: the request conflicts with the recording's state.
    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }

    /// Whether the same request may succeed later: a transport failure, or a status the client retries (408, 429,
    /// 5xx) once its retries ran out.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Transport => true,
            ErrorKind::Status => self.status.is_some_and(is_transient),
            _ => false,
        }
    }
}

/// Whether a status is worth another attempt: a timeout (408), throttling (429) or a server error (5xx). Every
/// `POST` is repeatable, so retrying one the server may have executed does not execute it twice.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => {
                write!(f, "{} answered {}", self.operation, status.as_u16())?;
                if let Some(reason) = status.canonical_reason() {
                    write!(f, " {}", reason.to_ascii_lowercase())?;
                }
                if let Some(code) = self.service.as_ref().map(|s| s.code.as_str()).filter(|c| !c.is_empty()) {
                    write!(f, " ({code})")?;
                }
            }
            None => {
                let what = match self.kind {
                    ErrorKind::InvalidRequest => "could not be built",
                    ErrorKind::Credential => "could not be signed",
                    ErrorKind::InvalidAnswer => "got an answer it could not read",
                    _ => "got no answer",
                };
                write!(f, "{} {what}", self.operation)?;
            }
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("service", &self.service)
            .field("attempts", &self.attempts)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calling::ErrorResponse;

    #[test]
    fn messages_name_the_operation_the_status_the_code_and_the_attempts() {
        let service = ErrorResponse::new("8522", "Recording not found").error;
        let cases = [
            (
                Error::status(Operation::Stop, StatusCode::NOT_FOUND, Some(service)),
                "stop recording answered 404 not found (8522)",
            ),
            (
                Error::status(Operation::Start, StatusCode::SERVICE_UNAVAILABLE, None).with_attempts(3),
                "start recording answered 503 service unavailable after 3 attempts",
            ),
            (
                Error::new(ErrorKind::Transport, Operation::Pause).with_attempts(2),
                "pause recording got no answer after 2 attempts",
            ),
            (
                Error::new(ErrorKind::InvalidAnswer, Operation::State),
                "get recording state got an answer it could not read",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn not_found_and_conflict_are_kinds_of_their_own() {
        let conflict = Error::status(Operation::Start, StatusCode::CONFLICT, None);
        assert!(conflict.is_conflict() && !conflict.is_not_found() && !conflict.is_retryable());
        let missing = Error::status(Operation::Resume, StatusCode::NOT_FOUND, None);
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(Error::status(Operation::Start, StatusCode::TOO_MANY_REQUESTS, None).is_retryable());
        assert!(!Error::status(Operation::Start, StatusCode::BAD_REQUEST, None).is_retryable());
    }

    #[test]
    fn transient_statuses_are_408_429_and_5xx() {
        for (status, transient) in
            [(408, true), (429, true), (500, true), (503, true), (599, true), (400, false), (404, false), (409, false)]
        {
            assert_eq!(is_transient(StatusCode::from_u16(status).unwrap()), transient, "{status}");
        }
    }
}
