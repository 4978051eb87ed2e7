//! The faults the storage injects into a document's `GET`s, and how a faulty body ends.

/// A fault injected into one `GET` of a document's content. Faults of a document apply to its successive content
/// `GET`s, one each, in the order they were added; once they are used up the document is served normally.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Send the headers and this many body bytes, then drop the connection.
    DropAfter(u64),
    /// Answer this status (with a small JSON body) and, if given, `Retry-After: <seconds>`.
    Status {
        /// The status code.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Replace the object with a different one of the same length (a new ETag) before answering.
    ChangeObject,
    /// Answer `200` with the whole object, whatever the `Range`.
    IgnoreRange,
    /// Announce the full `Content-Length` but end the body cleanly after this many bytes.
    ShortBody(u64),
    /// Answer `307 Temporary Redirect` to this URL.
    Redirect(String),
    /// Send the headers and this many body bytes, then send nothing more (until the client gives up).
    StallAfter(u64),
    /// Answer a range with its total unknown, `Content-Range: bytes <first>-<last>/*` (RFC 9110 §14.4).
    UnknownTotal,
}

impl Fault {
    /// `count` faults answering `status` with an optional `Retry-After`.
    pub fn status_times(status: u16, count: usize, retry_after: Option<u64>) -> Vec<Fault> {
        vec![Fault::Status { status, retry_after }; count]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    None,
    Drop(u64),
    Short(u64),
    Stall(u64),
}
