//! The download error: an opaque [`Error`] with a [`ErrorKind`] and the fields that place it (chunk, location,
//! host, status, attempts).

use std::fmt;
use std::sync::Arc;

use http::{StatusCode, Uri};

use super::attempt::Exhausted;
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
    /// The server answered a status that retrying cannot fix (400, 404, 410, ...).
    Status,
    /// The server refused the credentials (401 or 403). Not retried request by request, but
    /// [retryable](Error::is_retryable) later: during a key rotation, or while a role assignment propagates, the
    /// same request succeeds again after a while. A caller retrying with backoff until the recording expires (as
    /// the recorder does) keeps this error's message as the reason.
    AccessDenied,
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
    /// A task the download spawned (a chunk, a part, or hashing) panicked.
    TaskPanicked,
}

/// Which of a chunk's locations an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// `contentLocation`: the media.
    Content,
    /// `metadataLocation`: the metadata document.
    Metadata,
    /// `deleteLocation`.
    Delete,
}

impl Location {
    /// `content`, `metadata` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Content => "content",
            Location::Metadata => "metadata",
            Location::Delete => "delete",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which chunk, which of its locations, which part: what every error of one object carries. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    chunk: Option<Arc<(i64, Box<str>)>>,
    location: Option<Location>,
    part: Option<(u64, u64)>,
}

impl Scope {
    /// The scope of a whole chunk.
    pub(crate) fn chunk(index: i64, document_id: &str) -> Self {
        Self { chunk: Some(Arc::new((index, document_id.into()))), location: None, part: None }
    }

    /// The same chunk, about one of its locations.
    pub(crate) fn at(&self, location: Location) -> Self {
        Self { location: Some(location), ..self.clone() }
    }

    /// The same location, about the bytes `start..end`.
    pub(crate) fn part(&self, start: u64, end: u64) -> Self {
        Self { part: Some((start, end)), ..self.clone() }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut space = "";
        if let Some(chunk) = &self.chunk {
            write!(f, "chunk {} (`{}`)", chunk.0, chunk.1)?;
            space = " ";
        }
        if let Some(location) = self.location {
            write!(f, "{space}{location}")?;
            space = " ";
        }
        if let Some((start, end)) = self.part {
            write!(f, "{space}bytes {start}-{end}")?;
        }
        Ok(())
    }
}

/// The tasks a download spawns, for [`ErrorKind::TaskPanicked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    Chunk,
    Part,
    Hashing,
}

/// What exactly went wrong: the words of the message, the values it names. The cause is never in here.
#[derive(Debug)]
pub(crate) enum Detail {
    Refused,
    Missing,
    MissingWithoutEndpoint,
    NotUrl(Box<str>),
    NotAbsolute(Box<str>),
    Request,
    PermanentStatus,
    AccessRefused,
    RedirectWithoutLocation,
    TooManyRedirects(u32),
    InvalidRedirect(Box<str>),
    RefusedRedirect,
    GaveUp(Exhausted),
    ChangedTooOften(u32),
    PartEndedEarly(u64),
    ChangedUnderParts,
    PartFailedCheck,
    ChangedAfterYield(u64),
    CannotRestart,
    MetadataTooLarge(usize),
    MetadataNotJson,
    SinkFailed,
    Stopped,
    HashedShort { hashed: u64, total: u64 },
    Panicked(Task),
    ClientFailed,
}

struct Inner {
    kind: ErrorKind,
    scope: Scope,
    host: Option<Box<str>>,
    status: Option<StatusCode>,
    attempts: Option<u32>,
    detail: Detail,
    source: Option<BoxError>,
}

/// An error from the [`ChunkDownloader`](super::ChunkDownloader).
///
/// It carries what places it — the chunk, which of its [`Location`]s, the host, the status, the failed attempts —
/// as fields. `Display` is lower-case and names the chunk and the offending value (a host, a status, a URL shown as
/// `scheme://host/path` with its query replaced by `?…`); the cause, if any, is the
/// [`source`](std::error::Error::source) and is never repeated in the message. It never contains signatures, keys or
/// query strings.
///
/// ```
/// use acs_recording::download::{Error, ErrorKind};
///
/// fn report(error: &Error) -> String {
///     // Each link of the chain says its own part once: join them for a log line.
///     let mut line = error.to_string();
///     let mut source = std::error::Error::source(error);
///     while let Some(cause) = source {
///         line = format!("{line}: {cause}");
///         source = cause.source();
///     }
///     line
/// }
/// # let _ = report;
/// ```
pub struct Error(Box<Inner>);

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: Detail) -> Self {
        Self(Box::new(Inner {
            kind,
            scope: Scope::default(),
            host: None,
            status: None,
            attempts: None,
            detail,
            source: None,
        }))
    }

    pub(crate) fn in_scope(mut self, scope: &Scope) -> Self {
        self.0.scope = scope.clone();
        self
    }

    pub(crate) fn with_host(mut self, host: &str) -> Self {
        self.0.host = (!host.is_empty()).then(|| host.into());
        self
    }

    pub(crate) fn with_host_of(self, uri: &Uri) -> Self {
        match uri.host() {
            Some(host) => self.with_host(host),
            None => self,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    pub(crate) fn with_status(mut self, status: Option<StatusCode>) -> Self {
        self.0.status = status;
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.0.attempts = Some(attempts);
        self
    }

    pub(crate) fn refused(scope: &Scope, refused: Refused) -> Self {
        Self::new(ErrorKind::RefusedHost, Detail::Refused)
            .in_scope(scope)
            .with_host(refused.host())
            .with_source(refused)
    }

    /// A status that no request-level retry fixes: refused credentials ([`ErrorKind::AccessDenied`], retryable
    /// later), or any other ([`ErrorKind::Status`], permanent).
    pub(crate) fn final_status(status: StatusCode) -> Self {
        let error = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Self::new(ErrorKind::AccessDenied, Detail::AccessRefused)
            }
            _ => Self::new(ErrorKind::Status, Detail::PermanentStatus),
        };
        error.with_status(Some(status))
    }

    pub(crate) fn sink(scope: &Scope, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Sink, Detail::SinkFailed).in_scope(scope).with_source(source)
    }

    /// A spawned task that did not return: it panicked, or the runtime is shutting down.
    pub(crate) fn join(scope: &Scope, task: Task, failed: tokio::task::JoinError) -> Self {
        let error = if failed.is_panic() {
            Self::new(ErrorKind::TaskPanicked, Detail::Panicked(task))
        } else {
            Self::new(ErrorKind::Sink, Detail::Stopped)
        };
        error.in_scope(scope).with_source(failed)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The HTTP status behind a [`ErrorKind::Status`] error, or the last status seen before retries ran out.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The index of the chunk involved.
    pub fn chunk_index(&self) -> Option<i64> {
        self.0.scope.chunk.as_ref().map(|chunk| chunk.0)
    }

    /// The document id of the chunk involved.
    pub fn document_id(&self) -> Option<&str> {
        self.0.scope.chunk.as_ref().map(|chunk| &*chunk.1)
    }

    /// Which of the chunk's locations was being fetched, deleted or checked.
    pub fn location(&self) -> Option<Location> {
        self.0.scope.location
    }

    /// The bytes `start..end` of the part of a parallel download that failed.
    pub fn part(&self) -> Option<std::ops::Range<u64>> {
        self.0.scope.part.map(|(start, end)| start..end)
    }

    /// The host that was asked, refused or redirected to.
    pub fn host(&self) -> Option<&str> {
        self.0.host.as_deref()
    }

    /// Failed attempts counted when retries ran out.
    pub fn attempts(&self) -> Option<u32> {
        self.0.attempts
    }

    /// Whether a location was refused by the allow-list (no request was made).
    pub fn is_refused(&self) -> bool {
        self.0.kind == ErrorKind::RefusedHost
    }

    /// Whether trying the same download again later may succeed: transient failures that outlasted the retry
    /// policy, sink failures and refused credentials ([`ErrorKind::AccessDenied`]: a key may be being rotated)
    /// are retryable; refused hosts, permanent statuses and invalid input are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::RetriesExhausted | ErrorKind::ObjectChanged | ErrorKind::Sink | ErrorKind::AccessDenied
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.0;
        let scope = inner.scope.to_string();
        if !scope.is_empty() {
            write!(f, "{scope}: ")?;
        }
        let host = inner.host.as_deref().unwrap_or("");
        match &inner.detail {
            Detail::Refused => write!(f, "location on refused host `{host}`"),
            Detail::Missing => f.write_str("location is missing"),
            Detail::MissingWithoutEndpoint => {
                f.write_str("location is missing and no endpoint is configured to build it")
            }
            Detail::NotUrl(shown) => write!(f, "location `{shown}` is not a valid URL"),
            Detail::NotAbsolute(shown) => write!(f, "location `{shown}` is not an absolute URL"),
            Detail::Request => write!(f, "cannot build a request to `{host}`"),
            Detail::AccessRefused => match inner.status {
                Some(status) => write!(f, "access refused with status {status} by `{host}`"),
                None => write!(f, "access refused by `{host}`"),
            },
            Detail::PermanentStatus => match inner.status {
                Some(status) => write!(f, "permanent status {status} from `{host}`"),
                None => write!(f, "permanent status from `{host}`"),
            },
            Detail::RedirectWithoutLocation => write!(f, "redirect from `{host}` without a Location"),
            Detail::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            Detail::InvalidRedirect(shown) => write!(f, "redirect to `{shown}` is not a valid URL"),
            Detail::RefusedRedirect => write!(f, "refused to follow a redirect to host `{host}`"),
            Detail::GaveUp(Exhausted::Attempts(n)) => write!(f, "gave up after {n} failed attempts"),
            Detail::GaveUp(Exhausted::Budget(total)) => {
                write!(f, "retry time budget of {} s exhausted", total.as_secs())
            }
            Detail::ChangedTooOften(n) => write!(f, "the chunk started over {n} times"),
            Detail::PartEndedEarly(at) => write!(f, "the part ended at byte {at}"),
            Detail::ChangedUnderParts => f.write_str("the object changed during a parallel download"),
            Detail::PartFailedCheck => f.write_str("the part failed its integrity check"),
            Detail::ChangedAfterYield(n) => write!(f, "object changed after {n} bytes were yielded by the stream"),
            Detail::CannotRestart => f.write_str("object changed and the sink cannot start over"),
            Detail::MetadataTooLarge(limit) => write!(f, "document is larger than {limit} bytes"),
            Detail::MetadataNotJson => f.write_str("document is not JSON"),
            Detail::SinkFailed => f.write_str("sink failed"),
            Detail::Stopped => f.write_str("the download was stopped"),
            Detail::HashedShort { hashed, total } => write!(f, "hashed {hashed} of {total} bytes"),
            Detail::Panicked(Task::Chunk) => f.write_str("the chunk's download task panicked"),
            Detail::Panicked(Task::Part) => f.write_str("a part's download task panicked"),
            Detail::Panicked(Task::Hashing) => f.write_str("the hashing task panicked"),
            Detail::ClientFailed => write!(f, "the HTTP client refused the request to `{host}`"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.0;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("chunk", &inner.scope.chunk.as_deref())
            .field("location", &inner.scope.location)
            .field("part", &inner.scope.part)
            .field("host", &inner.host)
            .field("status", &inner.status)
            .field("attempts", &inner.attempts)
            .field("detail", &inner.detail)
            .field("source", &inner.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
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

/// Panics when a message along the chain contains the message of its source: a chain printer would show it twice.
#[cfg(test)]
pub(crate) fn assert_no_repeats(error: &(dyn std::error::Error + 'static)) {
    let mut current = error;
    while let Some(source) = current.source() {
        let (message, cause) = (current.to_string(), source.to_string());
        assert!(!cause.is_empty() && !message.contains(&cause), "`{message}` repeats its source `{cause}`");
        current = source;
    }
}

/// The messages along an error's chain joined by `: `, as a log line would print it, once checked for repeats.
#[cfg(test)]
pub(crate) fn chain_line(error: &(dyn std::error::Error + 'static)) -> String {
    assert_no_repeats(error);
    let mut line = error.to_string();
    let mut current = error.source();
    while let Some(source) = current {
        line = format!("{line}: {source}");
        current = source.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::attempt::Failure;
    use crate::signing::AllowList;
    use std::time::Duration;

    #[test]
    fn errors_are_send_sync_static() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Error>();
        assert::<Location>();
    }

    #[test]
    fn an_error_is_one_word() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<Result<(), Error>>() <= 2 * std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<Result<Option<bytes::Bytes>, Error>>() <= 5 * std::mem::size_of::<usize>());
    }

    #[test]
    fn retryable_kinds() {
        assert!(Error::new(ErrorKind::RetriesExhausted, Detail::GaveUp(Exhausted::Attempts(3))).is_retryable());
        assert!(!Error::new(ErrorKind::Status, Detail::PermanentStatus).is_retryable());
        assert!(!Error::final_status(StatusCode::NOT_FOUND).is_retryable());
        assert!(Error::final_status(StatusCode::FORBIDDEN).is_retryable());
        assert!(Error::final_status(StatusCode::UNAUTHORIZED).is_retryable());
        assert!(!Error::new(ErrorKind::RefusedHost, Detail::Refused).is_retryable());
        assert!(!Error::new(ErrorKind::TaskPanicked, Detail::Panicked(Task::Part)).is_retryable());
    }

    /// One error of each shape the download builds, with the causes it carries.
    fn representative() -> Vec<Error> {
        let scope = Scope::chunk(2, "doc").at(Location::Content);
        let refused = AllowList::azure_defaults().check(&"https://attacker.example/x?sig=S".parse().unwrap());
        let io = || std::io::Error::other("disk full");
        let reset = || -> BoxError { Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) };
        let json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let request = http::Request::get("http://a b").body(()).unwrap_err();
        vec![
            Error::refused(&scope, refused.unwrap_err()),
            Error::sink(&scope, io()),
            Error::new(ErrorKind::RetriesExhausted, Detail::GaveUp(Exhausted::Attempts(3)))
                .in_scope(&scope)
                .with_attempts(3)
                .with_source(Failure::Body(reset())),
            Error::new(ErrorKind::RetriesExhausted, Detail::GaveUp(Exhausted::Budget(Duration::from_secs(60))))
                .in_scope(&scope.part(8, 16))
                .with_source(Failure::Connect(reset())),
            Error::new(ErrorKind::RetriesExhausted, Detail::GaveUp(Exhausted::Attempts(2)))
                .in_scope(&scope)
                .with_status(Some(StatusCode::SERVICE_UNAVAILABLE))
                .with_source(Failure::Status(StatusCode::SERVICE_UNAVAILABLE)),
            Error::new(ErrorKind::ObjectChanged, Detail::ChangedUnderParts)
                .in_scope(&scope)
                .with_source(Failure::Changed("412 Precondition Failed")),
            Error::new(ErrorKind::ObjectChanged, Detail::CannotRestart)
                .in_scope(&scope)
                .with_source(std::io::Error::new(std::io::ErrorKind::Unsupported, "this sink cannot start over")),
            Error::new(ErrorKind::Metadata, Detail::MetadataNotJson).in_scope(&scope).with_source(json),
            Error::new(ErrorKind::InvalidLocation, Detail::Request).in_scope(&scope).with_source(request),
            Error::new(ErrorKind::Client, Detail::ClientFailed)
                .in_scope(&scope)
                .with_host("eu.asm.skype.com")
                .with_source(crate::signing::Error::body(reset())),
        ]
    }

    #[test]
    fn no_message_repeats_its_source() {
        for error in representative() {
            assert!(std::error::Error::source(&error).is_some(), "{error}");
            assert_no_repeats(&error);
            assert!(!chain_text(&error).contains("sig="), "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_panicked_task_has_its_own_kind() {
        let failed = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let error = Error::join(&Scope::chunk(0, "d").at(Location::Content).part(0, 8), Task::Part, failed);
        assert_eq!(error.kind(), ErrorKind::TaskPanicked);
        assert_eq!(error.to_string(), "chunk 0 (`d`) content bytes 0-8: a part's download task panicked");
        assert_eq!(error.part(), Some(0..8));
        assert_no_repeats(&error);
    }

    #[test]
    fn the_fields_place_the_error() {
        let error = Error::new(ErrorKind::Status, Detail::PermanentStatus)
            .in_scope(&Scope::chunk(4, "gone").at(Location::Metadata))
            .with_host_of(&"https://eu.asm.skype.com/v1/x?sig=SECRET".parse().unwrap())
            .with_status(Some(StatusCode::NOT_FOUND));
        assert_eq!(
            error.to_string(),
            "chunk 4 (`gone`) metadata: permanent status 404 Not Found from `eu.asm.skype.com`"
        );
        assert_eq!((error.chunk_index(), error.document_id()), (Some(4), Some("gone")));
        assert_eq!((error.location(), error.host()), (Some(Location::Metadata), Some("eu.asm.skype.com")));
        assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
        assert!(!format!("{error:?}").contains("SECRET"));
    }
}
