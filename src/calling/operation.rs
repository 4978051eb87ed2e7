//! [`Operation`]: the recording operations, each with its method, the statuses of its success, and whether it is
//! sent repeatable.

use std::fmt;

use http::{Method, StatusCode};

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

    /// The operation's method.
    pub(crate) fn method(self) -> Method {
        match self {
            Operation::Start | Operation::Pause | Operation::Resume => Method::POST,
            Operation::Stop => Method::DELETE,
            Operation::State => Method::GET,
        }
    }

    /// The statuses of a success: start answers 200, or 202 when the service starts the recording later; pause and
    /// resume 202; stop 204; get 200.
    pub(crate) fn success(self) -> &'static [StatusCode] {
        match self {
            Operation::Start => &[StatusCode::OK, StatusCode::ACCEPTED],
            Operation::Pause | Operation::Resume => &[StatusCode::ACCEPTED],
            Operation::Stop => &[StatusCode::NO_CONTENT],
            Operation::State => &[StatusCode::OK],
        }
    }

    /// Whether the operation carries the repeatability headers: every `POST`, so that a retry is executed once.
    pub(crate) fn is_repeatable(self) -> bool {
        self.method() == Method::POST
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
