//! The resumable fetch of one object: requests, Range resume, version pinning, retries and verification
//! (`SPEC.md` §5). Everything above it (streams, sinks, recordings) consumes its events.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{CONTENT_RANGE, IF_MATCH, IF_UNMODIFIED_SINCE, LOCATION, RANGE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use md5::Md5;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::client::{HttpClient, RequestBody};
use super::digest::Digests;
use super::error::{Detail, Error, ErrorKind, Scope};
use super::header::{blob_md5, content_length, content_md5, decode_md5, parse_content_range};
use super::location::Destinations;
use super::retry::{is_transient, Failure, RetryState};
use super::ObjectVersion;
use crate::BoxError;

/// Redirects followed for one object, in all.
const MAX_REDIRECTS: u32 = 5;

/// What a fetch hands to its consumer.
#[derive(Debug)]
pub(crate) enum Event {
    /// The object's version was pinned (first response, or after a restart); persist it to resume later.
    Pinned(ObjectVersion),
    /// The object changed: everything handed out so far must be discarded, the next data starts at byte 0.
    Restart,
    /// The next bytes, in order.
    Data(Bytes),
}

/// The result of a completed fetch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finished {
    pub(crate) bytes: u64,
    pub(crate) sha256: [u8; 32],
}

/// One object being fetched.
pub(crate) struct Fetch<S: HttpClient<B>, B: RequestBody> {
    client: S,
    destinations: Arc<Destinations>,
    /// The chunk and location (and part) this fetch is about, for its errors.
    scope: Scope,
    uri: Uri,
    /// Bytes handed to the consumer (of the pinned version).
    offset: u64,
    version: Option<ObjectVersion>,
    body: Option<Pin<Box<S::ResponseBody>>>,
    /// Bytes still to drop from the current body (a 200 answer to a Range request).
    skip: u64,
    /// The offset at which the current response ends, when known.
    response_end: Option<u64>,
    /// The current response's `Content-MD5`, and the MD5 of its body so far.
    md5: Option<(Md5, [u8; 16])>,
    /// The whole object's MD5 (`x-ms-blob-content-md5` of the pinned version), checked once every byte arrived.
    blob_md5: Option<[u8; 16]>,
    /// Whether the fetch already restarted once to compute the whole object's MD5 from byte 0.
    restarted_for_md5: bool,
    digest: Digests,
    /// Whether this fetch hashes what it hands out (a part of a parallel download leaves that to its coordinator).
    hashing: bool,
    /// The fetch ends at this offset (exclusive) instead of the object's end: one part of a parallel download.
    limit: Option<u64>,
    /// The first request of the object asks for at most this many bytes (`bytes=0-{n-1}`), so that a parallel
    /// download can take over the rest once the size is known.
    first_request: Option<u64>,
    /// A part cannot restart alone: a version change ends it with [`ErrorKind::ObjectChanged`] instead.
    part: bool,
    changed: bool,
    no_range: bool,
    retry: RetryState,
    requests: u32,
    redirects: u32,
    done: bool,
    pending: VecDeque<Event>,
    _request_body: PhantomData<fn() -> B>,
}

impl<S: HttpClient<B>, B: RequestBody> Fetch<S, B> {
    pub(crate) fn new(client: S, destinations: Arc<Destinations>, retry: RetryState, scope: Scope, uri: Uri) -> Self {
        Self {
            client,
            destinations,
            scope,
            uri,
            offset: 0,
            version: None,
            body: None,
            skip: 0,
            response_end: None,
            md5: None,
            blob_md5: None,
            restarted_for_md5: false,
            digest: Digests::new(Sha256::new(), None),
            hashing: true,
            limit: None,
            first_request: None,
            part: false,
            changed: false,
            no_range: false,
            retry,
            requests: 0,
            redirects: 0,
            done: false,
            pending: VecDeque::new(),
            _request_body: PhantomData,
        }
    }

    /// Continues after `offset` bytes of `version` that are already stored; `sha256` is their SHA-256 state and
    /// `md5` their MD5 state, given when `version` records the whole object's MD5.
    pub(crate) fn resume_from(&mut self, offset: u64, version: ObjectVersion, sha256: Sha256, md5: Option<Md5>) {
        // Without the MD5 of the stored bytes the object cannot be checked: a server announcing one restarts it.
        self.blob_md5 = md5.as_ref().and(version.content_md5.as_deref()).and_then(decode_md5);
        let md5 = md5.filter(|_| self.blob_md5.is_some());
        self.offset = offset;
        self.retry.already_delivered(offset);
        self.version = Some(version);
        self.digest = Digests::new(sha256, md5);
    }

    /// Makes the first request ask for at most `bytes` (a closed range), so that a parallel download can take over
    /// the rest once the first response told the size.
    pub(crate) fn first_request(&mut self, bytes: u64) {
        self.first_request = Some(bytes.max(1));
    }

    /// Makes this fetch one part of a parallel download of its pinned `version`: bytes `start..end`, not hashed, and
    /// ended with [`ErrorKind::ObjectChanged`] when the object changes.
    pub(crate) fn into_part(mut self, version: ObjectVersion, start: u64, end: u64) -> Self {
        self.blob_md5 = version.content_md5.as_deref().and_then(decode_md5);
        self.version = Some(version);
        self.offset = start;
        self.retry.already_delivered(start);
        self.limit = Some(end);
        self.part = true;
        self.hashing = false;
        self.scope = self.scope.part(start, end);
        self
    }

    /// Turns a fetch whose first response is open into the first part of a parallel download: it stops at `end`
    /// and leaves hashing to the coordinator. Only before any byte was handed out.
    pub(crate) fn limit_to_first_part(&mut self, end: u64) {
        self.limit = Some(end);
        self.part = true;
        self.hashing = false;
    }

    /// Whether the current response is a range of the object rather than all of it.
    pub(crate) fn answer_is_ranged(&self) -> bool {
        match (self.response_end, self.total()) {
            (Some(end), Some(total)) => self.body.is_some() && end < total,
            _ => false,
        }
    }

    /// HTTP requests made so far.
    pub(crate) fn requests(&self) -> u32 {
        self.requests
    }

    /// Bytes handed out so far (of the current version).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The object's size, once known.
    pub(crate) fn total(&self) -> Option<u64> {
        self.version.as_ref().and_then(|v| v.total)
    }

    /// Whether bytes already handed out were taken back by a restart the consumer has not seen (the fetch gave up
    /// right after it): they failed a check or belong to another version, and must not be kept.
    pub(crate) fn taken_back(&self) -> bool {
        self.pending.iter().any(|event| matches!(event, Event::Restart))
    }

    /// The size and SHA-256 of a completed fetch.
    pub(crate) fn finished(&self) -> Finished {
        Finished { bytes: self.offset, sha256: self.digest.result.unwrap_or_default() }
    }

    /// The next event, or `None` once every byte of the object was handed out and verified.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.changed {
                return Err(self.object_changed());
            }
            if self.done && !self.hashing {
                return Ok(None);
            }
            if self.done {
                if self.digest.result.is_none() {
                    self.digest.finish().await?;
                    if self.blob_md5.is_some() && self.digest.md5_result != self.blob_md5 {
                        self.restart();
                        self.failed(Failure::BlobMd5Mismatch, None).await?;
                        continue;
                    }
                }
                return Ok(None);
            }
            let Some(body) = self.body.as_mut() else {
                self.request().await?;
                continue;
            };
            let next = async { body.frame().await.map(|frame| frame.map_err(Into::<BoxError>::into)) };
            let read_timeout = self.retry.policy().read_timeout;
            let frame = match tokio::time::timeout(read_timeout, next).await {
                Err(_) => {
                    self.body = None;
                    self.failed(Failure::Timeout(read_timeout), None).await?;
                    continue;
                }
                Ok(Some(Err(error))) => {
                    self.body = None;
                    self.failed(Failure::Body(error), None).await?;
                    continue;
                }
                Ok(None) => {
                    self.body = None;
                    self.response_ended().await?;
                    continue;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(mut data) = frame.into_data() else {
                continue; // trailers carry nothing we use
            };
            if let Some((md5, _)) = &mut self.md5 {
                md5.update(&data);
            }
            if self.skip > 0 {
                let n = data.len().min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                data.advance(n);
                self.skip -= n as u64;
            }
            if data.is_empty() {
                continue;
            }
            if let Some(limit) = self.limit {
                // A part ends at its limit, even when the server sends more (a 200 to a Range request).
                let room = usize::try_from(limit.saturating_sub(self.offset)).unwrap_or(usize::MAX);
                if data.len() >= room {
                    data.truncate(room);
                    self.body = None;
                    self.done = true;
                    if data.is_empty() {
                        continue;
                    }
                    self.offset = self.offset.saturating_add(data.len() as u64);
                    return Ok(Some(Event::Data(data)));
                }
            }
            if let Some(end) = self.response_end {
                if self.offset.saturating_add(data.len() as u64) > end {
                    // More bytes than announced: never hand them out.
                    self.body = None;
                    let why = format!("body runs past its announced end at byte {end}");
                    self.restart();
                    self.failed(Failure::BadRange(why), None).await?;
                    continue;
                }
            }
            if self.hashing {
                self.digest.push(data.clone()).await?;
            }
            self.offset = self.offset.saturating_add(data.len() as u64);
            return Ok(Some(Event::Data(data)));
        }
    }

    /// The current response's body ended cleanly.
    async fn response_ended(&mut self) -> Result<(), Error> {
        let total = self.total();
        let complete_response = match self.response_end {
            Some(end) => self.offset == end && self.skip == 0,
            None => true, // a body of unannounced length (chunked): its framing says it ended
        };
        if !complete_response {
            let expected = self.response_end.unwrap_or(0);
            return self.failed(Failure::Short { at: self.offset, expected }, None).await;
        }
        if let Some((md5, expected)) = self.md5.take() {
            if md5.finalize().as_slice() != expected {
                self.restart();
                return self.failed(Failure::Md5Mismatch, None).await;
            }
        }
        if let Some(limit) = self.limit {
            // A part: done at its limit, otherwise ask for the rest of it.
            self.done = self.offset >= limit;
            return Ok(());
        }
        match total {
            Some(total) if self.offset < total => Ok(()), // a shorter range than asked: ask for the rest
            Some(total) if self.offset > total => {
                self.restart();
                self.failed(Failure::BadRange(format!("received more than the {total} bytes announced")), None).await
            }
            _ => {
                self.done = true;
                Ok(())
            }
        }
    }

    /// Sends the next request and takes its response apart.
    async fn request(&mut self) -> Result<(), Error> {
        let mut builder = Request::get(self.uri.clone());
        if !self.no_range {
            let range = match (self.limit, self.first_request) {
                (Some(limit), _) => format!("bytes={}-{}", self.offset, limit.saturating_sub(1)),
                (None, Some(first)) if self.offset == 0 && self.version.is_none() => format!("bytes=0-{}", first - 1),
                _ => format!("bytes={}-", self.offset),
            };
            builder = builder.header(RANGE, range);
        }
        if let Some(version) = &self.version {
            // Pin the version on every request (SPEC §5): a changed object answers 412, never a spliced body.
            if let Some(etag) = &version.etag {
                if let Ok(value) = HeaderValue::from_str(etag) {
                    builder = builder.header(IF_MATCH, value);
                }
            } else if let Some(modified) = &version.last_modified {
                if let Ok(value) = HeaderValue::from_str(modified) {
                    builder = builder.header(IF_UNMODIFIED_SINCE, value);
                }
            }
        }
        let request = builder.body(B::default()).map_err(|e| {
            Error::new(ErrorKind::InvalidLocation, Detail::Request)
                .in_scope(&self.scope)
                .with_host_of(&self.uri)
                .with_source(e)
        })?;
        self.requests += 1;
        tracing::debug!(
            attempt = self.requests,
            offset = self.offset,
            host = self.uri.host().unwrap_or(""),
            path = self.uri.path(),
            "requesting"
        );
        let timeout = self.retry.policy().read_timeout;
        let client = &mut self.client;
        let send = async move {
            let ready = client.ready().await.map_err(Into::<BoxError>::into)?;
            ready.call(request).await.map_err(Into::<BoxError>::into)
        };
        let sent = tokio::time::timeout(timeout, send).await;
        let response = match sent {
            Err(_) => return self.failed(Failure::Timeout(timeout), None).await,
            Ok(Err(error)) => {
                if is_permanent_client_error(error.as_ref()) {
                    let error = Error::new(ErrorKind::Client, Detail::ClientFailed).with_source(error);
                    return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
                }
                return self.failed(Failure::Connect(error), None).await;
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        tracing::debug!(attempt = self.requests, status = status.as_u16(), "response");
        match status {
            StatusCode::OK => self.accept_full(response),
            StatusCode::PARTIAL_CONTENT => self.accept_partial(response).await,
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => self.follow(response.headers()),
            StatusCode::PRECONDITION_FAILED => {
                self.restart();
                self.failed(Failure::Changed("412 Precondition Failed"), None).await
            }
            StatusCode::RANGE_NOT_SATISFIABLE => self.range_not_satisfiable(response.headers()).await,
            status if is_transient(status) => {
                let wait = self.retry.retry_after(response.headers());
                self.failed(Failure::Status(status), wait).await
            }
            status => Err(Error::new(ErrorKind::Status, Detail::PermanentStatus)
                .in_scope(&self.scope)
                .with_host_of(&self.uri)
                .with_status(Some(status))),
        }
    }

    fn follow(&mut self, headers: &HeaderMap) -> Result<(), Error> {
        self.redirects += 1;
        let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
            let error = Error::new(ErrorKind::Redirect, Detail::RedirectWithoutLocation);
            return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
        };
        if self.redirects > MAX_REDIRECTS {
            let error = Error::new(ErrorKind::Redirect, Detail::TooManyRedirects(MAX_REDIRECTS));
            return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
        }
        self.uri = self.destinations.redirect(&self.uri, location, &self.scope)?;
        Ok(())
    }

    async fn range_not_satisfiable(&mut self, headers: &HeaderMap) -> Result<(), Error> {
        if self.offset == 0 && !self.no_range {
            // An empty object cannot satisfy `bytes=0-` (SPEC §5): ask again without Range.
            self.no_range = true;
            return Ok(());
        }
        let total = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes */"))
            .and_then(|t| t.parse::<u64>().ok());
        if self.offset > 0 && total == Some(self.offset) && self.version.is_some() {
            // Preconditions come before Range (RFC 9110 §13.2.2): the pinned version is intact and every byte of
            // it is already stored.
            self.done = true;
            return Ok(());
        }
        self.restart();
        self.failed(Failure::BadRange("416 Range Not Satisfiable".to_owned()), None).await
    }

    /// A 200: the whole object from byte 0.
    fn accept_full(&mut self, response: Response<S::ResponseBody>) -> Result<(), Error> {
        let (parts, body) = response.into_parts();
        let fresh = ObjectVersion::from_headers(&parts.headers, content_length(&parts.headers));
        if self.part {
            // A part never pins another version: the whole object it belongs to would be spliced.
            let same = matches!((&self.version, &fresh.etag), (Some(pinned), Some(etag))
                if pinned.etag.as_deref() == Some(etag.as_str()) && !etag.starts_with("W/"))
                && self.total().is_some()
                && self.total() == fresh.total;
            if !same {
                self.restart();
                return Ok(());
            }
            self.skip = self.offset;
            self.response_end = fresh.total;
            self.md5 = content_md5(&parts.headers);
            self.body = Some(Box::pin(body));
            return Ok(());
        }
        if self.offset > 0 {
            // The server ignored Range (SPEC §5): drop the bytes already stored, but only for the very same version,
            // and only when the whole object's MD5 can still be checked.
            let same = matches!((&self.version, &fresh.etag), (Some(pinned), Some(etag))
                if pinned.etag.as_deref() == Some(etag.as_str()) && !etag.starts_with("W/"))
                && self.total().is_some()
                && self.total() == fresh.total
                && self.blob_md5_allows_resume(&parts.headers);
            if same {
                self.skip = self.offset;
                self.response_end = fresh.total;
                self.md5 = content_md5(&parts.headers);
                self.body = Some(Box::pin(body));
                return Ok(());
            }
            self.restart();
        }
        self.pin(fresh);
        self.skip = 0;
        self.response_end = self.total();
        self.md5 = content_md5(&parts.headers);
        self.body = Some(Box::pin(body));
        Ok(())
    }

    /// A 206: must continue exactly where we are, of the pinned version.
    async fn accept_partial(&mut self, response: Response<S::ResponseBody>) -> Result<(), Error> {
        let (parts, body) = response.into_parts();
        let range = parts.headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some((first, last, total)) = parse_content_range(range) else {
            return self.failed(Failure::BadRange(format!("206 with an invalid Content-Range `{range}`")), None).await;
        };
        if first != self.offset {
            let why = format!("Content-Range `{range}` does not start at byte {}", self.offset);
            return self.failed(Failure::BadRange(why), None).await;
        }
        // `parse_content_range` keeps `last` below u64::MAX; checked anyway, as the header is the server's.
        let (Some(length), Some(end)) = ((last - first).checked_add(1), last.checked_add(1)) else {
            return self.failed(Failure::BadRange(format!("206 with an invalid Content-Range `{range}`")), None).await;
        };
        if content_length(&parts.headers).is_some_and(|declared| declared != length) {
            let why = format!("Content-Length does not match Content-Range `{range}`");
            return self.failed(Failure::BadRange(why), None).await;
        }
        let fresh = ObjectVersion::from_headers(&parts.headers, total);
        if let Some(pinned) = &self.version {
            let etag_changed = matches!((&pinned.etag, &fresh.etag), (Some(a), Some(b)) if a != b);
            let total_changed = matches!((pinned.total, total), (Some(a), Some(b)) if a != b);
            let md5_changed = matches!((self.blob_md5, blob_md5(&parts.headers)), (Some(a), Some(b)) if a != b);
            if etag_changed || total_changed || md5_changed {
                self.restart();
                let why = "a different ETag, size or x-ms-blob-content-md5 than the first response";
                return self.failed(Failure::Changed(why), None).await;
            }
        }
        if self.offset == 0 && !self.part {
            self.pin(fresh);
        } else if !self.part && !self.blob_md5_allows_resume(&parts.headers) {
            // The stored bytes were never hashed into an MD5 (an earlier run, or a first response without the
            // header): start over rather than skip the check. Once is no failure of the server; again means it
            // announces the MD5 only after byte 0, and counting it keeps such a server from looping forever.
            self.restart();
            if std::mem::replace(&mut self.restarted_for_md5, true) {
                return self.failed(Failure::Changed("x-ms-blob-content-md5 announced only after byte 0"), None).await;
            }
            tracing::info!("the whole object's MD5 is announced: restarting from byte 0 to check it");
            return Ok(());
        }
        self.skip = 0;
        self.response_end = Some(end);
        self.md5 = content_md5(&parts.headers);
        self.body = Some(Box::pin(body));
        Ok(())
    }

    /// Takes `version` as the one to fetch, at byte 0.
    fn pin(&mut self, version: ObjectVersion) {
        self.blob_md5 = version.content_md5.as_deref().and_then(decode_md5);
        // Nothing is hashed yet at byte 0: start both digests here, the MD5 only when there is one to check.
        self.digest = Digests::new(Sha256::new(), self.blob_md5.map(|_| Md5::new()));
        self.version = Some(version.clone());
        self.pending.push_back(Event::Pinned(version));
    }

    /// Whether a response continuing after the stored bytes keeps the whole-object MD5 check possible: it announces
    /// none, or the very one being computed.
    fn blob_md5_allows_resume(&self, headers: &HeaderMap) -> bool {
        match (self.blob_md5, blob_md5(headers)) {
            (_, None) => true,
            (Some(pinned), Some(announced)) => pinned == announced,
            (None, Some(_)) => false,
        }
    }

    /// Forgets everything received: the object changed. A part cannot forget alone: it ends instead.
    fn restart(&mut self) {
        if self.part {
            self.changed = true;
            self.body = None;
            return;
        }
        let had_bytes = self.offset > 0;
        self.offset = 0;
        self.version = None;
        self.digest = Digests::new(Sha256::new(), None);
        self.blob_md5 = None;
        self.done = false;
        self.skip = 0;
        self.response_end = None;
        self.md5 = None;
        self.no_range = false;
        self.body = None;
        if had_bytes {
            self.pending.push_back(Event::Restart);
        }
    }

    fn object_changed(&self) -> Error {
        Error::new(ErrorKind::ObjectChanged, Detail::ChangedUnderParts).in_scope(&self.scope).with_host_of(&self.uri)
    }

    /// Counts a failed attempt, then waits, or gives up.
    async fn failed(&mut self, cause: Failure, retry_after: Option<Duration>) -> Result<(), Error> {
        if self.changed {
            return Err(self.object_changed().with_source(cause));
        }
        let (scope, uri) = (&self.scope, &self.uri);
        self.retry.wait_after(cause, self.offset, retry_after).await.map_err(|e| e.in_scope(scope).with_host_of(uri))
    }
}

impl<S: HttpClient<B>, B: RequestBody> fmt::Debug for Fetch<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("scope", &self.scope)
            .field("offset", &self.offset)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// Client errors that retrying cannot fix: the signing layer refused the host or cannot sign the body.
fn is_permanent_client_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(signing) = error.downcast_ref::<crate::signing::Error>() {
            return matches!(
                signing.kind(),
                crate::signing::ErrorKind::RefusedHost | crate::signing::ErrorKind::BodyTooLarge
            );
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SharedClock;
    use crate::download::error::{chain_line, Location};
    use crate::download::RetryPolicy;
    use crate::signing::AllowList;
    use base64::Engine as _;
    use http_body::Body;
    use http_body::Frame;
    use http_body_util::Empty;
    use std::convert::Infallible;
    use std::sync::Mutex;
    use std::task::{Context, Poll};
    use tokio::time::Instant;

    type Script = Arc<Mutex<(VecDeque<Response<Scripted>>, Vec<http::HeaderMap>)>>;

    /// How a scripted body ends once its bytes are out.
    #[derive(Clone, Copy, PartialEq)]
    enum End {
        Clean,
        Reset,
        Stall,
    }

    /// A response body: its bytes in one frame, then `end`.
    struct Scripted {
        data: Option<Bytes>,
        end: End,
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if let Some(data) = self.data.take() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match std::mem::replace(&mut self.end, End::Clean) {
                End::Clean => Poll::Ready(None),
                End::Reset => Poll::Ready(Some(Err(std::io::ErrorKind::ConnectionReset.into()))),
                End::Stall => {
                    self.end = End::Stall;
                    Poll::Pending // never woken: only the read timeout ends it
                }
            }
        }
    }

    fn ending(status: u16, headers: &[(&str, &str)], body: &[u8], end: End) -> Response<Scripted> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let data = (!body.is_empty()).then(|| Bytes::copy_from_slice(body));
        builder.body(Scripted { data, end }).unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response<Scripted> {
        ending(status, headers, body, End::Clean)
    }

    /// Fetches with a client that answers the scripted responses in order; returns the bytes (restarts applied),
    /// the result and the request headers seen.
    async fn run(responses: Vec<Response<Scripted>>) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
        run_with(RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1)), responses).await
    }

    async fn run_with(
        policy: RetryPolicy,
        responses: Vec<Response<Scripted>>,
    ) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
        run_with_clock(policy, SharedClock::system(), responses).await
    }

    async fn run_with_clock(
        policy: RetryPolicy,
        clock: SharedClock,
        responses: Vec<Response<Scripted>>,
    ) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
        let script: Script = Arc::new(Mutex::new((responses.into(), Vec::new())));
        let seen = script.clone();
        let client = tower::service_fn(move |request: Request<Empty<Bytes>>| {
            let script = seen.clone();
            async move {
                let mut script = script.lock().unwrap();
                script.1.push(request.headers().clone());
                Ok::<_, Infallible>(script.0.pop_front().unwrap_or_else(|| response(500, &[], b"")))
            }
        });
        let destinations = Arc::new(Destinations { endpoint: None, allow: AllowList::azure_defaults() });
        let uri: Uri = "https://eu.asm.skype.com/v1/objects/d/content/audio".parse().unwrap();
        let retry = RetryState::new(policy, clock);
        let mut fetch = Fetch::new(client, destinations, retry, Scope::chunk(0, "d").at(Location::Content), uri);
        let mut bytes = Vec::new();
        let result = loop {
            match fetch.next().await {
                Ok(Some(Event::Data(data))) => bytes.extend_from_slice(&data),
                Ok(Some(Event::Restart)) => bytes.clear(),
                Ok(Some(Event::Pinned(_))) => {}
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        let headers = script.lock().unwrap().1.clone();
        (bytes, result, headers)
    }

    fn ranges(headers: &[http::HeaderMap]) -> Vec<Option<&str>> {
        headers.iter().map(|h| h.get("range").map(|v| v.to_str().unwrap())).collect()
    }

    #[tokio::test]
    async fn a_206_that_does_not_start_where_asked_is_retried() {
        let (bytes, result, headers) = run(vec![
            response(206, &[("content-range", "bytes 2-4/5"), ("etag", "\"a\"")], b"cde"),
            response(206, &[("content-range", "bytes 0-4/5"), ("etag", "\"a\"")], b"abcde"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abcde");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-")]);
    }

    #[tokio::test]
    async fn a_different_total_on_resume_restarts_the_object() {
        let (bytes, result, headers) = run(vec![
            response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"),
            response(206, &[("content-range", "bytes 2-5/6"), ("etag", "\"a\"")], b"CDEF"),
            response(206, &[("content-range", "bytes 0-5/6"), ("etag", "\"b\"")], b"ABCDEF"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"ABCDEF");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
        assert_eq!(headers[1]["if-match"], "\"a\"");
        assert!(!headers[2].contains_key("if-match"));
    }

    #[tokio::test]
    async fn a_content_length_that_contradicts_content_range_is_rejected() {
        let (_, result, _) = run(vec![
            response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
            response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
            response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
        ])
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(
            chain_line(&error),
            "chunk 0 (`d`) content: gave up after 3 failed attempts: \
             Content-Length does not match Content-Range `bytes 0-4/5`"
        );
    }

    #[tokio::test]
    async fn a_body_longer_than_announced_is_never_handed_out() {
        let (bytes, result, _) = run(vec![
            response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abcdef"),
            response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abc"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abc");
    }

    #[tokio::test]
    async fn a_wrong_content_md5_restarts_and_then_fails() {
        let md5 = [("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="), ("etag", "\"a\"")];
        let (_, result, _) =
            run(vec![response(200, &md5, b"abc"), response(200, &md5, b"abc"), response(200, &md5, b"abc")]).await;
        let error = result.unwrap_err();
        assert!(chain_line(&error).ends_with(": body does not match its Content-MD5"), "{error}");
    }

    fn md5_of(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
    }

    #[tokio::test]
    async fn a_whole_object_md5_is_checked_across_a_resume() {
        let md5 = md5_of(b"abcde");
        let (bytes, result, headers) = run(vec![
            response(
                206,
                &[("content-range", "bytes 0-1/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
                b"ab",
            ),
            response(
                206,
                &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
                b"cde",
            ),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abcde");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-")]);
    }

    #[tokio::test]
    async fn a_wrong_whole_object_md5_restarts_and_then_fails() {
        let wrong = md5_of(b"abcdX");
        let answer = || {
            response(
                206,
                &[("content-range", "bytes 0-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &wrong)],
                b"abcde",
            )
        };
        let (bytes, result, headers) = run(vec![answer(), answer(), answer()]).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(
            chain_line(&error),
            "chunk 0 (`d`) content: gave up after 3 failed attempts: \
             object does not match its x-ms-blob-content-md5"
        );
        // Every attempt started over from byte 0: the bytes of the earlier ones were taken back, never appended.
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-"), Some("bytes=0-")]);
        assert_eq!(bytes, b"abcde");
    }

    #[tokio::test]
    async fn a_different_whole_object_md5_on_resume_restarts_the_object() {
        let (old, new) = (md5_of(b"abcde"), md5_of(b"vwxyz"));
        let (bytes, result, headers) = run(vec![
            response(
                206,
                &[("content-range", "bytes 0-1/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &old)],
                b"ab",
            ),
            response(
                206,
                &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &new)],
                b"xyz",
            ),
            response(
                206,
                &[("content-range", "bytes 0-4/5"), ("etag", "\"b\""), ("x-ms-blob-content-md5", &new)],
                b"vwxyz",
            ),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"vwxyz");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
    }

    #[tokio::test]
    async fn a_whole_object_md5_first_announced_on_resume_restarts_from_byte_zero() {
        let md5 = md5_of(b"abcde");
        let (bytes, result, headers) = run(vec![
            response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"),
            response(
                206,
                &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
                b"cde",
            ),
            response(
                206,
                &[("content-range", "bytes 0-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
                b"abcde",
            ),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abcde");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
    }

    #[tokio::test]
    async fn a_whole_object_md5_announced_only_after_byte_zero_fails_after_one_free_restart() {
        let md5 = md5_of(b"abcde");
        let mut script = Vec::new();
        for _ in 0..4 {
            script.push(response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"));
            script.push(response(
                206,
                &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
                b"cde",
            ));
        }
        let (_, result, headers) = run(script).await;
        assert_eq!(
            chain_line(&result.unwrap_err()),
            "chunk 0 (`d`) content: gave up after 3 failed attempts: \
             object changed (x-ms-blob-content-md5 announced only after byte 0)"
        );
        // One free restart, then three counted ones.
        assert_eq!(headers.len(), 8);
    }

    #[tokio::test]
    async fn a_200_with_another_etag_on_resume_restarts_cleanly() {
        let (bytes, result, _) = run(vec![
            response(206, &[("content-range", "bytes 0-1/4"), ("etag", "\"a\"")], b"ab"),
            response(200, &[("etag", "\"b\"")], b"WXYZ"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"WXYZ");
    }

    #[tokio::test]
    async fn a_content_range_ending_at_u64_max_is_a_failed_attempt() {
        let (bytes, result, headers) = run(vec![
            response(206, &[("content-range", "bytes 0-18446744073709551615/*"), ("etag", "\"a\"")], b"abc"),
            response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abc"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abc");
        assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-")]);

        let hostile = || response(206, &[("content-range", "bytes 0-18446744073709551615/*")], b"abc");
        let (_, result, _) = run(vec![hostile(), hostile(), hostile()]).await;
        assert_eq!(
            chain_line(&result.unwrap_err()),
            "chunk 0 (`d`) content: gave up after 3 failed attempts: \
             206 with an invalid Content-Range `bytes 0-18446744073709551615/*`"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_absurd_retry_after_is_a_bounded_wait() {
        let started = Instant::now();
        let (bytes, result, headers) = run(vec![
            response(503, &[("retry-after", "18446744073709551615")], b""),
            response(200, &[("etag", "\"a\""), ("content-length", "5")], b"abcde"),
        ])
        .await;
        result.unwrap();
        assert_eq!(bytes, b"abcde");
        assert_eq!(headers.len(), 2);
        // The default policy's `max_backoff`.
        assert_eq!(started.elapsed().as_secs(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_date_is_read_against_the_injected_clock() {
        let started = Instant::now();
        // 18:09:12 by the injected clock; the server asks for 18:09:22.
        let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        let clock = SharedClock::new(move || at);
        let policy = RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
        let (bytes, result, headers) = run_with_clock(
            policy,
            clock,
            vec![
                response(503, &[("retry-after", "Wed, 13 Apr 2022 18:09:22 GMT")], b""),
                response(200, &[("etag", "\"a\""), ("content-length", "3")], b"abc"),
            ],
        )
        .await;
        result.unwrap();
        assert_eq!((bytes.as_slice(), headers.len()), (&b"abc"[..], 2));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_refused_or_invalid_redirect_never_shows_its_query() {
        let table = [
            ("https://evil.example/b?sig=SECRET", "refused to follow a redirect to host `evil.example`"),
            (
                "https://eu.asm.skype.com/b c?sig=SECRET",
                "redirect to `https://eu.asm.skype.com/b c?…` is not a valid URL",
            ),
        ];
        for (location, message) in table {
            let (_, result, _) = run(vec![response(307, &[("location", location)], b"")]).await;
            let error = result.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Redirect);
            assert_eq!(error.to_string(), format!("chunk 0 (`d`) content: {message}"));
            chain_line(&error);
            let text = crate::download::error::chain_text(&error);
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    const OBJECT: &[u8; 21] = b"abcdefghijklmnopqrstu";

    /// One 206 per byte of [`OBJECT`] from `first` on, each ending with `end` after its byte, the last one clean.
    fn byte_by_byte(first: usize, end: End) -> Vec<Response<Scripted>> {
        (first..OBJECT.len())
            .map(|at| {
                let range = format!("bytes {at}-20/21");
                let headers = [("content-range", range.as_str()), ("etag", "\"a\"")];
                let end = if at + 1 == OBJECT.len() { End::Clean } else { end };
                ending(206, &headers, &OBJECT[at..at + 1], end)
            })
            .collect()
    }

    fn expected_ranges(first: usize) -> Vec<String> {
        (first..OBJECT.len()).map(|at| format!("bytes={at}-")).collect()
    }

    fn sent_ranges(headers: &[http::HeaderMap]) -> Vec<String> {
        ranges(headers).into_iter().map(|r| r.unwrap_or_default().to_owned()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_keeps_receiving_bytes_never_runs_out_of_attempts() {
        let policy = RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
        let (bytes, result, headers) = run_with(policy, byte_by_byte(0, End::Reset)).await;
        result.unwrap();
        assert_eq!(bytes, OBJECT);
        // 20 resets, each after a new byte, against a limit of 3 failed attempts.
        assert_eq!(sent_ranges(&headers), expected_ranges(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_keeps_receiving_bytes_never_runs_out_of_time() {
        let started = Instant::now();
        let policy = RetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(1))
            .read_timeout(Duration::from_secs(4))
            .max_total(Duration::from_secs(10));
        let (bytes, result, headers) = run_with(policy, byte_by_byte(0, End::Stall)).await;
        result.unwrap();
        assert_eq!(bytes, OBJECT);
        assert_eq!(sent_ranges(&headers), expected_ranges(0));
        // 20 read timeouts of 4 s each: eight times the budget, which starts again after each new byte.
        assert!(started.elapsed() >= Duration::from_secs(80), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_without_progress_gives_up_after_max_attempts() {
        let reset = || ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"", End::Reset);
        let (bytes, result, headers) = run(vec![reset(), reset(), reset(), reset()]).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(
            chain_line(&error),
            "chunk 0 (`d`) content: gave up after 3 failed attempts: response body failed: \
             connection reset"
        );
        assert_eq!(error.to_string(), "chunk 0 (`d`) content: gave up after 3 failed attempts");
        assert_eq!((error.attempts(), error.chunk_index(), error.document_id()), (Some(3), Some(0), Some("d")));
        assert_eq!((bytes.len(), headers.len()), (0, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_that_stops_progressing_gives_up_max_attempts_after_its_last_new_byte() {
        // One byte, then resets that bring nothing new: the reset after the new byte is the first of three.
        let first = ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"a", End::Reset);
        let reset = || ending(206, &[("content-range", "bytes 1-20/21"), ("etag", "\"a\"")], b"", End::Reset);
        let (bytes, result, headers) = run(vec![first, reset(), reset(), reset(), reset()]).await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::RetriesExhausted);
        assert_eq!(bytes, b"a");
        assert_eq!(sent_ranges(&headers), ["bytes=0-", "bytes=1-", "bytes=1-"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_without_progress_still_runs_out_of_time() {
        let started = Instant::now();
        let policy = RetryPolicy::default()
            .max_attempts(100)
            .initial_backoff(Duration::from_millis(1))
            .read_timeout(Duration::from_secs(4))
            .max_total(Duration::from_secs(10));
        let stall = || ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"", End::Stall);
        let (_, result, headers) = run_with(policy, vec![stall(), stall(), stall(), stall()]).await;
        assert_eq!(
            chain_line(&result.unwrap_err()),
            "chunk 0 (`d`) content: retry time budget of 10 s exhausted: no response or bytes within \
             4000 ms"
        );
        // Timeouts at 4 s and 8 s are retried; after the one at 12 s no wait fits in 10 s.
        assert_eq!(headers.len(), 3);
        assert_eq!(started.elapsed().as_secs(), 12);
    }

    #[tokio::test]
    async fn permanent_statuses_are_not_retried() {
        for status in [400u16, 401, 403, 404, 410] {
            let (_, result, headers) = run(vec![response(status, &[], b"{}")]).await;
            let error = result.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Status);
            assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
            assert_eq!((error.host(), error.location()), (Some("eu.asm.skype.com"), Some(Location::Content)));
            assert_eq!(error.attempts(), None);
            let reason = error.status().unwrap();
            assert_eq!(
                error.to_string(),
                format!("chunk 0 (`d`) content: permanent status {reason} from `eu.asm.skype.com`")
            );
            assert_eq!(headers.len(), 1);
        }
    }
}
