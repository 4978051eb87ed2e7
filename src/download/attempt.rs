//! Why one attempt failed, and why no further attempt is made: what the fetch and the retry state report, and what
//! an error carries when retries run out.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Why one attempt failed: the source of the error when retries run out. Its message never repeats its own source.
#[derive(Debug)]
pub(crate) enum Failure {
    Connect(crate::BoxError),
    Body(crate::BoxError),
    Timeout(Duration),
    Status(StatusCode),
    Changed(&'static str),
    Short { at: u64, expected: u64 },
    BadRange(String),
    Md5Mismatch,
    BlobMd5Mismatch,
}

impl Failure {
    /// The status of a failure that was a transient status.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Status(status) => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(_) => f.write_str("request failed"),
            Failure::Body(_) => f.write_str("response body failed"),
            Failure::Timeout(t) => write!(f, "no response or bytes within {} ms", t.as_millis()),
            Failure::Status(s) => write!(f, "status {s}"),
            Failure::Changed(why) => write!(f, "object changed ({why})"),
            Failure::Short { at, expected } => write!(f, "body ended at byte {at} of {expected}"),
            Failure::BadRange(why) => f.write_str(why),
            Failure::Md5Mismatch => f.write_str("body does not match its Content-MD5"),
            Failure::BlobMd5Mismatch => f.write_str("object does not match its x-ms-blob-content-md5"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Connect(e) | Failure::Body(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhausted {
    /// This many requests failed.
    Attempts(u32),
    /// The next wait would end after the policy's `max_total`.
    Budget(Duration),
}
