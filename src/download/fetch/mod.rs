//! The resumable fetch of one object: requests, Range resume, version pinning, retries and verification
//! (the rules are the module docs' rules 5 to 7). Everything above it (streams, sinks, recordings) consumes its events.
//!
//! `mod.rs` holds the state machine, `request.rs` what each request asks for and how its status is dispatched,
//! `answer.rs` how a 200, a 206 or a 416 is taken apart.

mod answer;
mod request;

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::Uri;
use http_body_util::BodyExt;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::digest::Digests;
use super::error::{Detail, Error, ErrorKind, Scope};
use super::header::decode_md5;
use super::location::Destinations;
use super::resumable_sha256::Sha256Hasher;
use super::retry::{Failure, RetryState};
use super::sink::ObjectVersion;
use crate::client::{HttpClient, RequestBody};
use crate::{BoxError, Sha256Digest};

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
    pub(crate) sha256: Sha256Digest,
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
    /// The response being read, if any.
    response: Option<OpenResponse<S::ResponseBody>>,
    /// The whole object's MD5 (`x-ms-blob-content-md5` of the pinned version), checked once every byte arrived.
    blob_md5: Option<[u8; 16]>,
    /// Whether the fetch already restarted once to compute the whole object's MD5 from byte 0.
    restarted_for_md5: bool,
    digest: Digests,
    /// The whole object, or one part of it.
    mode: Mode,
    /// The first request of the object asks for at most this many bytes (`bytes=0-{n-1}`), so that a parallel
    /// download can take over the rest once the size is known.
    first_request: Option<u64>,
    /// A part saw its object change: it ends with [`ErrorKind::ObjectChanged`].
    changed: bool,
    no_range: bool,
    retry: RetryState,
    requests: u32,
    redirects: u32,
    done: bool,
    pending: VecDeque<Event>,
    _request_body: PhantomData<fn() -> B>,
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The whole object, hashed as it is handed out; a version change restarts it from byte 0.
    Object,
    /// One part of a parallel download: the bytes up to `end` (exclusive), not hashed (its coordinator hashes the
    /// parts in order). A part cannot restart alone: a version change ends it with [`ErrorKind::ObjectChanged`].
    Part { end: u64 },
}

/// The response being read, and what its head said about its body.
struct OpenResponse<RB> {
    body: Pin<Box<RB>>,
    /// Bytes still to drop from the body (a 200 answer to a Range request).
    skip: u64,
    /// The offset at which the response ends, when known.
    end: Option<u64>,
    /// The response is a 206 whose `Content-Range` total is `*` (RFC 9110 §14.4): where it ends says nothing about
    /// where the object ends, so more is asked for until a 416 says there is no more.
    total_unknown: bool,
    /// The response's `Content-MD5`, and the MD5 of its body so far.
    md5: Option<(Md5, [u8; 16])>,
}

impl<RB> OpenResponse<RB> {
    fn new(body: RB, skip: u64, end: Option<u64>, total_unknown: bool, md5: Option<(Md5, [u8; 16])>) -> Self {
        Self { body: Box::pin(body), skip, end, total_unknown, md5 }
    }
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
            response: None,
            blob_md5: None,
            restarted_for_md5: false,
            digest: Digests::new(Sha256::new(), None),
            mode: Mode::Object,
            first_request: None,
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
    pub(crate) fn resume_from(
        &mut self,
        offset: u64,
        version: ObjectVersion,
        sha256: impl Into<Sha256Hasher>,
        md5: Option<Md5>,
    ) {
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
        self.mode = Mode::Part { end };
        self.scope = self.scope.part(start, end);
        self
    }

    /// Turns a fetch whose first response is open into the first part of a parallel download: it stops at `end`
    /// and leaves hashing to the coordinator. Only before any byte was handed out.
    pub(crate) fn limit_to_first_part(&mut self, end: u64) {
        self.scope = self.scope.part(0, end);
        self.mode = Mode::Part { end };
    }

    /// Whether the current response is a range of the object rather than all of it.
    pub(crate) fn answer_is_ranged(&self) -> bool {
        match (self.response.as_ref().and_then(|response| response.end), self.total()) {
            (Some(end), Some(total)) => end < total,
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
            if self.done && self.is_part() {
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
            let read_timeout = self.retry.policy().read_timeout;
            let Some(response) = self.response.as_mut() else {
                self.request().await?;
                continue;
            };
            let next = async { response.body.frame().await.map(|frame| frame.map_err(Into::<BoxError>::into)) };
            let frame = match tokio::time::timeout(read_timeout, next).await {
                Err(_) => {
                    self.response = None;
                    self.failed(Failure::Timeout(read_timeout), None).await?;
                    continue;
                }
                Ok(Some(Err(error))) => {
                    self.response = None;
                    self.failed(Failure::Body(error), None).await?;
                    continue;
                }
                Ok(None) => {
                    if let Some(ended) = self.response.take() {
                        self.response_ended(ended).await?;
                    }
                    continue;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(mut data) = frame.into_data() else {
                continue; // trailers carry nothing we use
            };
            if let Some((md5, _)) = &mut response.md5 {
                md5.update(&data);
            }
            if response.skip > 0 {
                let n = data.len().min(usize::try_from(response.skip).unwrap_or(usize::MAX));
                data.advance(n);
                response.skip -= n as u64;
            }
            if data.is_empty() {
                continue;
            }
            if let Mode::Part { end: limit } = self.mode {
                // A part ends at its limit, even when the server sends more (a 200 to a Range request).
                let room = usize::try_from(limit.saturating_sub(self.offset)).unwrap_or(usize::MAX);
                if data.len() >= room {
                    let response_ends_here = data.len() == room && response.end == Some(limit);
                    let md5 = response.md5.take();
                    data.truncate(room);
                    self.response = None;
                    self.done = true;
                    // The response ends with the part: its Content-MD5 is checked here, as `response_ended` does
                    // for a whole object, before the last bytes are handed out.
                    if let Some((md5, expected)) = md5.filter(|_| response_ends_here) {
                        if md5.finalize().as_slice() != expected {
                            self.done = false;
                            self.restart();
                            self.failed(Failure::Md5Mismatch, None).await?;
                            continue;
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    self.offset = self.offset.saturating_add(data.len() as u64);
                    return Ok(Some(Event::Data(data)));
                }
            }
            if let Some(end) = response.end {
                if self.offset.saturating_add(data.len() as u64) > end {
                    // More bytes than announced: never hand them out.
                    self.response = None;
                    let why = format!("body runs past its announced end at byte {end}");
                    self.restart();
                    self.failed(Failure::BadRange(why), None).await?;
                    continue;
                }
            }
            if !self.is_part() {
                self.digest.push(data.clone()).await?;
            }
            self.offset = self.offset.saturating_add(data.len() as u64);
            return Ok(Some(Event::Data(data)));
        }
    }

    /// Whether this fetch is one part of a parallel download.
    fn is_part(&self) -> bool {
        matches!(self.mode, Mode::Part { .. })
    }

    /// The body of `ended` ended cleanly.
    async fn response_ended(&mut self, ended: OpenResponse<S::ResponseBody>) -> Result<(), Error> {
        let total = self.total();
        let complete_response = match ended.end {
            Some(end) => self.offset == end && ended.skip == 0,
            None => true, // a body of unannounced length (chunked): its framing says it ended
        };
        if !complete_response {
            let expected = ended.end.unwrap_or(0);
            return self.failed(Failure::Short { at: self.offset, expected }, None).await;
        }
        if let Some((md5, expected)) = ended.md5 {
            if md5.finalize().as_slice() != expected {
                self.restart();
                return self.failed(Failure::Md5Mismatch, None).await;
            }
        }
        if let Mode::Part { end: limit } = self.mode {
            // A part: done at its limit, otherwise ask for the rest of it.
            self.done = self.offset >= limit;
            return Ok(());
        }
        match total {
            None if ended.total_unknown => Ok(()), // a range of an object of unknown size: ask for the rest
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

    /// Takes `version` as the one to fetch, at byte 0.
    fn pin(&mut self, version: ObjectVersion) {
        self.blob_md5 = version.content_md5.as_deref().and_then(decode_md5);
        // Nothing is hashed yet at byte 0: start both digests here, the MD5 only when there is one to check.
        self.digest = Digests::new(Sha256::new(), self.blob_md5.map(|_| Md5::new()));
        self.version = Some(version.clone());
        self.pending.push_back(Event::Pinned(version));
    }

    /// Forgets everything received: the object changed. A part cannot forget alone: it ends instead.
    fn restart(&mut self) {
        if self.is_part() {
            self.changed = true;
            self.response = None;
            return;
        }
        let had_bytes = self.offset > 0;
        self.offset = 0;
        self.version = None;
        self.digest = Digests::new(Sha256::new(), None);
        self.blob_md5 = None;
        self.done = false;
        self.response = None;
        self.no_range = false;
        if had_bytes {
            self.pending.push_back(Event::Restart);
        }
    }

    fn object_changed(&self) -> Error {
        self.part_ended(Detail::ChangedUnderParts)
    }

    /// The error that ends a part that cannot go on alone: the chunk restarts from byte 0.
    fn part_ended(&self, detail: Detail) -> Error {
        Error::new(ErrorKind::ObjectChanged, detail).in_scope(&self.scope).with_host_of(&self.uri)
    }

    /// Counts a failed attempt, then waits, or gives up.
    async fn failed(&mut self, cause: Failure, retry_after: Option<Duration>) -> Result<(), Error> {
        if self.changed {
            let detail = match cause {
                Failure::Md5Mismatch | Failure::BlobMd5Mismatch => Detail::PartFailedCheck,
                _ => Detail::ChangedUnderParts,
            };
            return Err(self.part_ended(detail).with_source(cause));
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

#[cfg(test)]
mod tests;
