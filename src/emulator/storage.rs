//! The recording storage of the emulator: documents, Range/ETag semantics, faults and a request log.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
    RANGE, RETRY_AFTER,
};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use md5::{Digest as _, Md5};
use percent_encoding::percent_decode_str;

use super::media::{Content, Tone, FRAME, SAMPLE_RATE, WAV_HEADER};
use super::metadata::{after, ChunkMetadata};
use crate::recording::{ChunkEndReason, Recording, RecordingChunk, RecordingStorageType};

/// The default chunk limit: recordings larger than this arrive in several chunks (`SPEC.md` §3).
pub const DEFAULT_CHUNK_LIMIT: u64 = 1_500_000_000;

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
}

impl Fault {
    /// `count` faults answering `status` with an optional `Retry-After`.
    pub fn status_times(status: u16, count: usize, retry_after: Option<u64>) -> Vec<Fault> {
        vec![Fault::Status { status, retry_after }; count]
    }
}

/// The network between the storage and its clients, as one connection sees it: a bandwidth limit per response
/// (HTTP/1.1 sends one response at a time on a connection, so this is per connection) and a latency added before
/// each answer. Set it for the whole storage ([`Storage::set_link`]) or for one document
/// ([`Storage::set_document_link`]), to test and measure downloads over a long, slow link on loopback.
///
/// ```
/// use std::time::Duration;
/// use acs_recording::emulator::Link;
///
/// let link = Link::unlimited().bandwidth(40_000_000).latency(Duration::from_millis(30));
/// assert_eq!(link.bytes_per_second(), Some(40_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    bytes_per_second: Option<u64>,
    latency: Duration,
}

impl Link {
    /// No limit and no added latency (the default).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Sends each response's body at most this fast.
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bytes_per_second = Some(bytes_per_second.max(1));
        self
    }

    /// Waits this long before each answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The bandwidth limit, if any.
    pub fn bytes_per_second(&self) -> Option<u64> {
        self.bytes_per_second
    }

    /// The added latency.
    pub fn added_latency(&self) -> Duration {
        self.latency
    }
}

/// The latency an answer waits for, carried from the storage's handler to its service future.
#[derive(Debug, Clone, Copy)]
struct Latency(Duration);

/// One request the storage received, as tests assert on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// The method.
    pub method: Method,
    /// Path and query, as sent.
    pub path: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-Match` header.
    pub if_match: Option<String>,
    /// The `If-Unmodified-Since` header.
    pub if_unmodified_since: Option<String>,
    /// The `x-ms-host` header.
    pub x_ms_host: Option<String>,
    /// The status answered (after signature verification).
    pub status: u16,
    /// Body bytes handed to the connection.
    pub bytes_sent: u64,
    /// When it arrived, since the storage started.
    pub at: Duration,
}

/// What the storage knows about a document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DocumentInfo {
    /// Its size.
    pub size: u64,
    /// Its current ETag, quotes included.
    pub etag: String,
    /// SHA-256 of its current content.
    pub sha256: [u8; 32],
    /// Whether it was deleted.
    pub deleted: bool,
}

/// One stored chunk of a recording, with everything a `RecordingFileStatusUpdated` event says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredChunk {
    /// `documentId`.
    pub document_id: String,
    /// `index`.
    pub index: i64,
    /// `endReason`: `ChunkMaximumSizeExceeded` for all but the last chunk, then `SessionEnded`.
    pub end_reason: String,
    /// `contentLocation`.
    pub content_location: String,
    /// `metadataLocation`.
    pub metadata_location: String,
    /// `deleteLocation`.
    pub delete_location: String,
    /// Media size in bytes.
    pub size: u64,
    /// SHA-256 of the media.
    pub sha256: [u8; 32],
}

/// A recording stored by [`Storage::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRecording {
    /// The call id.
    pub call_id: String,
    /// The server call id.
    pub server_call_id: String,
    /// The recording id.
    pub recording_id: String,
    /// `recordingStartTime`, ISO 8601.
    pub start_time: String,
    /// `recordingDurationMs`.
    pub duration_ms: u64,
    /// `recordingFormatType` (`Wav`).
    pub format: String,
    /// `recordingContentType` (`Audio`).
    pub content_type: String,
    /// `recordingChannelType` (`Mixed`, or `Unmixed` with [`RecordingSpec::unmixed`]).
    pub channel_type: String,
    /// `storageType`, when the recording is announced as exported (or not) to the customer's storage.
    pub storage_type: Option<String>,
    /// The participants' raw ids, in channel order for an unmixed recording.
    pub participants: Vec<String>,
    /// The chunks, in index order.
    pub chunks: Vec<StoredChunk>,
}

impl StoredRecording {
    /// Total media bytes.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    /// What a `RecordingFileStatusUpdated` event for this recording asks to download.
    pub fn to_recording(&self) -> Recording {
        let recording = Recording::new(&self.call_id)
            .recording_id(&self.recording_id)
            .start_time(&self.start_time)
            .format(self.format.as_str())
            .chunks(self.chunks.iter().map(StoredChunk::to_recording_chunk));
        match &self.storage_type {
            Some(storage_type) => recording.storage_type(RecordingStorageType::parse(storage_type)),
            None => recording,
        }
    }
}

impl StoredChunk {
    /// The chunk as a `RecordingFileStatusUpdated` event lists it, every location included.
    pub fn to_recording_chunk(&self) -> RecordingChunk {
        RecordingChunk::new(&self.document_id, self.index)
            .with_end_reason(ChunkEndReason::parse(&self.end_reason))
            .with_locations(&self.content_location, &self.metadata_location, &self.delete_location)
    }
}

/// The synthetic recording to store: a WAV tone of `bytes` audio bytes, split at the storage's chunk limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingSpec {
    /// The call id.
    pub call_id: String,
    /// Audio bytes in all (16-bit mono at 48 kHz: 96,000 bytes a second).
    pub bytes: u64,
    /// The participants of an unmixed recording, one channel each in this order; `None` for a mixed recording
    /// with one participant.
    pub participants: Option<Vec<String>>,
    /// The `storageType` the event announces (`AzureBlob` for a recording exported to the customer's storage,
    /// `acsstorage` when the export failed); `None` leaves it out, as before bring your own storage.
    pub storage_type: Option<String>,
}

impl RecordingSpec {
    /// A mixed recording of `call_id` with `bytes` of audio.
    pub fn new(call_id: impl Into<String>, bytes: u64) -> Self {
        Self { call_id: call_id.into(), bytes, participants: None, storage_type: None }
    }

    /// Makes the recording unmixed: participant `i` of `participants` on channel `i` (ACS allows up to 5).
    pub fn unmixed(mut self, participants: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.participants = Some(participants.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the `storageType` of the event (`AzureBlob`, `acsstorage`, ...).
    pub fn storage_type(mut self, storage_type: impl Into<String>) -> Self {
        self.storage_type = Some(storage_type.into());
        self
    }
}

/// A made-up ACS raw id for participant `n` of a call.
fn participant_id(call_id: &str, n: u64) -> String {
    format!("8:acs:{:016x}", short_hash(call_id.as_bytes()) ^ n)
}

struct Document {
    content: Content,
    /// Bumped by [`Fault::ChangeObject`]; part of the ETag and Last-Modified.
    version: u64,
    deleted: bool,
    faults: VecDeque<Fault>,
    /// Statuses answered to the next `DELETE`s, one each.
    delete_faults: VecDeque<u16>,
    /// This document's link, instead of the storage's.
    link: Option<Link>,
    /// Faults for the content `GET`s whose range starts at a given byte, before the general ones.
    range_faults: HashMap<u64, VecDeque<Fault>>,
    content_md5: bool,
    blob_content_md5: bool,
    /// The whole content's MD5 (base64) and the version it was computed for: a tone is hashed once, not per GET.
    blob_md5_cache: Option<(u64, String)>,
    send_etag: bool,
    content_type: &'static str,
}

impl Document {
    fn new(content: Content, content_type: &'static str) -> Self {
        Self {
            content,
            version: 0,
            deleted: false,
            faults: VecDeque::new(),
            delete_faults: VecDeque::new(),
            link: None,
            range_faults: HashMap::new(),
            content_md5: false,
            blob_content_md5: false,
            blob_md5_cache: None,
            send_etag: true,
            content_type,
        }
    }

    fn etag(&self) -> String {
        format!("\"0x{:016X}\"", self.content.fingerprint() ^ self.version)
    }

    /// The MD5 of the whole current content, base64.
    fn blob_md5(&mut self) -> String {
        match &self.blob_md5_cache {
            Some((version, md5)) if *version == self.version => md5.clone(),
            _ => {
                let mut md5 = Md5::new();
                let mut at = 0;
                while at < self.content.len() {
                    let part = self.content.slice(at, FRAME);
                    md5.update(&part);
                    at += part.len() as u64;
                }
                let value = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
                self.blob_md5_cache = Some((self.version, value.clone()));
                value
            }
        }
    }
}

struct Entry {
    request: LoggedRequest,
    sent: Arc<AtomicU64>,
}

struct State {
    documents: HashMap<String, Document>,
    /// Metadata documents, by the document id of their chunk.
    metadata: HashMap<String, Document>,
    log: Vec<Entry>,
    /// While set, every request is answered 503: the storage is down.
    outage: bool,
    link: Link,
}

struct Shared {
    state: Mutex<State>,
    base_url: String,
    chunk_limit: u64,
    resource_id: String,
    started: Instant,
    epoch: SystemTime,
}

/// The emulator's storage: add documents and recordings, inject faults, read the request log. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    shared: Arc<Shared>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("base_url", &self.shared.base_url)
            .field("chunk_limit", &self.shared.chunk_limit)
            .finish_non_exhaustive()
    }
}

impl Storage {
    pub(crate) fn new(base_url: String, chunk_limit: u64, resource_id: String) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    documents: HashMap::new(),
                    metadata: HashMap::new(),
                    log: Vec::new(),
                    outage: false,
                    link: Link::default(),
                }),
                base_url,
                chunk_limit,
                resource_id,
                started: Instant::now(),
                epoch: SystemTime::now(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The storage's base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The chunk limit in bytes.
    pub fn chunk_limit(&self) -> u64 {
        self.shared.chunk_limit
    }

    /// The media URL of a document: `<base>/v1/objects/<id>/content/audio`.
    pub fn content_location(&self, document_id: &str) -> String {
        format!("{}/v1/objects/{document_id}/content/audio", self.shared.base_url)
    }

    /// The metadata URL of a document: `<base>/v1/objects/<id>/content/acsmetadata`.
    pub fn metadata_location(&self, document_id: &str) -> String {
        format!("{}/v1/objects/{document_id}/content/acsmetadata", self.shared.base_url)
    }

    /// The delete URL of a document: `<base>/v1/objects/<id>`.
    pub fn delete_location(&self, document_id: &str) -> String {
        format!("{}/v1/objects/{document_id}", self.shared.base_url)
    }

    /// Stores a document with exactly these bytes (and a small metadata document), replacing any previous one.
    pub fn put_document(&self, document_id: &str, bytes: impl Into<Bytes>) -> DocumentInfo {
        let content = Content::Bytes(bytes.into());
        let metadata = self.lone_metadata(document_id, &content);
        self.insert(document_id, content, "application/octet-stream", metadata)
    }

    /// Stores a synthetic WAV document of `bytes` audio bytes (plus a 44-byte header).
    pub fn put_tone(&self, document_id: &str, bytes: u64) -> DocumentInfo {
        let content = Content::Tone(Tone::new(0, bytes, 0));
        let metadata = self.lone_metadata(document_id, &content);
        self.insert(document_id, content, "audio/wav", metadata)
    }

    /// The metadata document of a document stored on its own, outside a recording.
    fn lone_metadata(&self, document_id: &str, content: &Content) -> Bytes {
        ChunkMetadata {
            resource_id: &self.shared.resource_id,
            call_id: "unknown-call",
            document_id,
            index: 0,
            start: self.shared.epoch,
            duration_ms: content.len().saturating_sub(WAV_HEADER as u64) * 1000 / (u64::from(SAMPLE_RATE) * 2),
            participants: &[participant_id("unknown-call", 0)],
            unmixed: false,
        }
        .to_bytes()
    }

    fn insert(&self, document_id: &str, content: Content, content_type: &'static str, metadata: Bytes) -> DocumentInfo {
        let document = Document::new(content, content_type);
        let info = info(&document);
        let mut state = self.state();
        state.documents.insert(document_id.to_owned(), document);
        state.metadata.insert(document_id.to_owned(), Document::new(Content::Bytes(metadata), "application/json"));
        info
    }

    /// Stores a synthetic recording, split into chunks of at most [`chunk_limit`](Self::chunk_limit) bytes.
    pub fn record(&self, spec: RecordingSpec) -> StoredRecording {
        let per_chunk = (self.shared.chunk_limit.saturating_sub(WAV_HEADER as u64).max(2)) & !1;
        let total = spec.bytes & !1;
        let count = total.div_ceil(per_chunk).max(1);
        let stem = short_hash(spec.call_id.as_bytes());
        let start_time = iso8601(self.shared.epoch);
        let participants = match &spec.participants {
            Some(participants) => participants.clone(),
            None => vec![participant_id(&spec.call_id, 0)],
        };
        let mut chunks = Vec::new();
        let mut done = 0u64;
        for index in 0..count {
            let data = per_chunk.min(total - done);
            let document_id = format!("0-eus-d{}-{stem:016x}{:016x}", index % 20, short_hash(&index.to_le_bytes()));
            let content = Content::Tone(Tone::new(0, data, done));
            let start_ms = done * 1000 / (u64::from(SAMPLE_RATE) * 2);
            let duration_ms = data * 1000 / (u64::from(SAMPLE_RATE) * 2);
            let metadata = ChunkMetadata {
                resource_id: &self.shared.resource_id,
                call_id: &spec.call_id,
                document_id: &document_id,
                index: index as i64,
                start: after(self.shared.epoch, start_ms),
                duration_ms,
                participants: &participants,
                unmixed: spec.participants.is_some(),
            }
            .to_bytes();
            let stored = self.insert(&document_id, content, "audio/wav", metadata);
            chunks.push(StoredChunk {
                content_location: self.content_location(&document_id),
                metadata_location: self.metadata_location(&document_id),
                delete_location: self.delete_location(&document_id),
                document_id,
                index: index as i64,
                end_reason: if index + 1 == count { "SessionEnded" } else { "ChunkMaximumSizeExceeded" }.to_owned(),
                size: stored.size,
                sha256: stored.sha256,
            });
            done += data;
        }
        StoredRecording {
            server_call_id: format!("aHR0cHM6Ly9lbXVsYXRvci8{stem:016x}"),
            recording_id: format!("{:016x}", short_hash(format!("recording:{}", spec.call_id).as_bytes())),
            call_id: spec.call_id,
            start_time,
            duration_ms: total * 1000 / (u64::from(SAMPLE_RATE) * 2),
            format: "Wav".to_owned(),
            content_type: "Audio".to_owned(),
            channel_type: if spec.participants.is_some() { "Unmixed" } else { "Mixed" }.to_owned(),
            storage_type: spec.storage_type,
            participants,
            chunks,
        }
    }

    /// Adds faults to a document's next content `GET`s (see [`Fault`]).
    pub fn inject(&self, document_id: &str, faults: impl IntoIterator<Item = Fault>) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.faults.extend(faults);
        }
    }

    /// Answers the next `DELETE`s of a document with these statuses, one each, before deleting for real.
    pub fn inject_delete(&self, document_id: &str, statuses: impl IntoIterator<Item = u16>) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.delete_faults.extend(statuses);
        }
    }

    /// Sets the link every response of the storage goes through (documents with their own link keep it).
    pub fn set_link(&self, link: Link) {
        self.state().link = link;
    }

    /// Sets the link of one document's content responses.
    pub fn set_document_link(&self, document_id: &str, link: Link) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.link = Some(link);
        }
    }

    /// Takes the whole storage down (`true`: every request is answered 503) or brings it back.
    pub fn set_outage(&self, down: bool) {
        self.state().outage = down;
    }

    /// Adds faults to the next content `GET`s of a document whose `Range` starts at byte `start`, one each: how a
    /// test reaches one part of a parallel download, whatever order the parts' requests arrive in.
    pub fn inject_at(&self, document_id: &str, start: u64, faults: impl IntoIterator<Item = Fault>) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.range_faults.entry(start).or_default().extend(faults);
        }
    }

    /// Removes a document's remaining faults.
    pub fn clear_faults(&self, document_id: &str) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.faults.clear();
        }
    }

    /// Sends `Content-MD5` (of the bytes in each response) for a document.
    pub fn send_content_md5(&self, document_id: &str, send: bool) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.content_md5 = send;
        }
    }

    /// Sends `x-ms-blob-content-md5` (the MD5 of the whole object, as Azure Blob storage does on ranged answers) on
    /// every answer with content for a document.
    pub fn send_blob_content_md5(&self, document_id: &str, send: bool) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.blob_content_md5 = send;
        }
    }

    /// Whether responses for a document carry an `ETag` (default `true`); without one, clients pin the version
    /// with `If-Unmodified-Since` and the `Last-Modified` date.
    pub fn send_etag(&self, document_id: &str, send: bool) {
        if let Some(document) = self.state().documents.get_mut(document_id) {
            document.send_etag = send;
        }
    }

    /// What the storage holds for a document now (its SHA-256 is computed, so this reads the whole content).
    pub fn document(&self, document_id: &str) -> Option<DocumentInfo> {
        let content_and_rest = {
            let state = self.state();
            let d = state.documents.get(document_id)?;
            (d.content.clone(), d.etag(), d.deleted)
        };
        let (content, etag, deleted) = content_and_rest;
        Some(DocumentInfo { size: content.len(), etag, sha256: content.sha256(), deleted })
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state()
            .log
            .iter()
            .map(|e| LoggedRequest { bytes_sent: e.sent.load(Ordering::Relaxed), ..e.request.clone() })
            .collect()
    }

    /// The requests whose path mentions `document_id`.
    pub fn requests_for(&self, document_id: &str) -> Vec<LoggedRequest> {
        self.requests().into_iter().filter(|r| r.path.contains(document_id)).collect()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// Logs a request as it arrives; returns the entry's index and byte counter.
    pub(crate) fn log_request<B>(&self, request: &Request<B>) -> (usize, Arc<AtomicU64>) {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let sent = Arc::new(AtomicU64::new(0));
        let entry = LoggedRequest {
            method: request.method().clone(),
            path: request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            range: header("range"),
            if_match: header("if-match"),
            if_unmodified_since: header("if-unmodified-since"),
            x_ms_host: header("x-ms-host"),
            status: 0,
            bytes_sent: 0,
            at: self.shared.started.elapsed(),
        };
        let mut state = self.state();
        state.log.push(Entry { request: entry, sent: sent.clone() });
        (state.log.len() - 1, sent)
    }

    pub(crate) fn log_status(&self, index: usize, status: StatusCode) {
        if let Some(entry) = self.state().log.get_mut(index) {
            entry.request.status = status.as_u16();
        }
    }

    /// Answers one verified request.
    pub(crate) fn handle(&self, request: Request<Full<Bytes>>) -> Response<StorageBody> {
        let path = request.uri().path().to_owned();
        let Some(route) = route(&path) else {
            return problem(StatusCode::NOT_FOUND, "not_found", "no such path");
        };
        let method = request.method().clone();
        let mut state = self.state();
        let State { documents, metadata, outage, link, .. } = &mut *state;
        let storage_link = *link;
        if *outage {
            return problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the storage is down");
        }
        match (route, &method) {
            (Route::Object(id), &Method::DELETE) => match documents.get_mut(&id) {
                Some(document) if !document.deleted && !document.delete_faults.is_empty() => {
                    let status = document.delete_faults.pop_front().unwrap_or(500);
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    problem(status, "injected", "an injected fault")
                }
                Some(document) if !document.deleted => {
                    document.deleted = true;
                    if let Some(meta) = metadata.get_mut(&id) {
                        meta.deleted = true;
                    }
                    let mut response = Response::new(StorageBody::empty());
                    *response.status_mut() = StatusCode::OK;
                    response
                }
                _ => problem(StatusCode::NOT_FOUND, "not_found", "no such document"),
            },
            (Route::Content(id), &Method::GET | &Method::HEAD) => match documents.get_mut(&id) {
                Some(document) if !document.deleted => {
                    let start = request
                        .headers()
                        .get(RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().strip_prefix("bytes="))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let targeted = match start {
                        Some(start) if method == Method::GET => {
                            document.range_faults.get_mut(&start).and_then(VecDeque::pop_front)
                        }
                        _ => None,
                    };
                    let fault = match targeted {
                        Some(fault) => Some(fault),
                        None if method == Method::GET => document.faults.pop_front(),
                        None => None,
                    };
                    let link = document.link.unwrap_or(storage_link);
                    let mut response =
                        serve(document, request.headers(), fault, method == Method::HEAD, self.shared.epoch);
                    if let Some(rate) = link.bytes_per_second {
                        response.body_mut().throttle = Some(Throttle::new(rate));
                    }
                    if !link.latency.is_zero() {
                        response.extensions_mut().insert(Latency(link.latency));
                    }
                    response
                }
                _ => problem(StatusCode::NOT_FOUND, "not_found", "no such document"),
            },
            (Route::Metadata(id), &Method::GET | &Method::HEAD) => match metadata.get_mut(&id) {
                Some(document) if !document.deleted => {
                    serve(document, request.headers(), None, method == Method::HEAD, self.shared.epoch)
                }
                _ => problem(StatusCode::NOT_FOUND, "not_found", "no such document"),
            },
            _ => problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here"),
        }
    }
}

fn info(document: &Document) -> DocumentInfo {
    DocumentInfo {
        size: document.content.len(),
        etag: document.etag(),
        sha256: document.content.sha256(),
        deleted: document.deleted,
    }
}

enum Route {
    Content(String),
    Metadata(String),
    Object(String),
}

/// `/v1/objects/{id}/content/{audio|video|acsmetadata}`, `/v1/objects/{id}`, and the legacy
/// `/recording/download/{id}[/metadata]` (`SPEC.md` §3).
fn route(path: &str) -> Option<Route> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "objects", id] => Some(Route::Object(decode(id)?)),
        ["v1", "objects", id, "content", "acsmetadata"] => Some(Route::Metadata(decode(id)?)),
        ["v1", "objects", id, "content", "audio" | "video"] => Some(Route::Content(decode(id)?)),
        ["recording", "download", id] => Some(Route::Content(decode(id)?)),
        ["recording", "download", id, "metadata"] => Some(Route::Metadata(decode(id)?)),
        _ => None,
    }
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response<StorageBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(StorageBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// GET/HEAD of a document: faults, preconditions, Range (RFC 9110 §13, §14).
fn serve(
    document: &mut Document,
    headers: &http::HeaderMap,
    fault: Option<Fault>,
    head: bool,
    epoch: SystemTime,
) -> Response<StorageBody> {
    let mut ignore_range = false;
    let mut cut = Cut::None;
    match fault {
        Some(Fault::Status { status, retry_after }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = problem(status, "injected", "injected fault");
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, seconds.into());
            }
            return response;
        }
        Some(Fault::Redirect(location)) => {
            let mut response = problem(StatusCode::TEMPORARY_REDIRECT, "moved", "temporarily elsewhere");
            if let Ok(value) = http::HeaderValue::from_str(&location) {
                response.headers_mut().insert(http::header::LOCATION, value);
            }
            return response;
        }
        Some(Fault::ChangeObject) => {
            document.content = document.content.changed();
            document.version += 1;
        }
        Some(Fault::IgnoreRange) => ignore_range = true,
        Some(Fault::DropAfter(n)) => cut = Cut::Drop(n),
        Some(Fault::ShortBody(n)) => cut = Cut::Short(n),
        Some(Fault::StallAfter(n)) => cut = Cut::Stall(n),
        None => {}
    }
    let etag = document.etag();
    let last_modified = epoch - Duration::from_secs(3600) + Duration::from_secs(document.version);
    let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
    if let Some(expected) = header(IF_MATCH) {
        if !expected.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate == etag) {
            return problem(StatusCode::PRECONDITION_FAILED, "condition_not_met", "the object changed");
        }
    } else if let Some(since) = header(IF_UNMODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok()) {
        if last_modified > since + Duration::from_millis(999) {
            return problem(StatusCode::PRECONDITION_FAILED, "condition_not_met", "the object changed");
        }
    }
    let len = document.content.len();
    let range = if ignore_range { None } else { header(RANGE).and_then(|r| parse_range(r, len)) };
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Err(())) => {
            let mut response = problem(StatusCode::RANGE_NOT_SATISFIABLE, "invalid_range", "range not satisfiable");
            response.headers_mut().insert(CONTENT_RANGE, format!("bytes */{len}").parse().expect("ascii"));
            return response;
        }
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let blob_md5 = document.blob_content_md5.then(|| document.blob_md5());
    let mut response = Response::new(StorageBody::empty());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, http::HeaderValue::from_static(document.content_type));
    if document.send_etag {
        h.insert(ETAG, etag.parse().expect("ascii"));
    }
    h.insert(LAST_MODIFIED, httpdate::fmt_http_date(last_modified).parse().expect("ascii"));
    h.insert(ACCEPT_RANGES, http::HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, (end - start).into());
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(CONTENT_RANGE, format!("bytes {start}-{}/{len}", end - 1).parse().expect("ascii"));
    }
    if let Some(md5) = blob_md5 {
        h.insert("x-ms-blob-content-md5", md5.parse().expect("base64 is ascii"));
    }
    if document.content_md5 {
        if let Content::Bytes(bytes) = &document.content {
            let digest = Md5::digest(&bytes[start as usize..end as usize]);
            let value = base64::engine::general_purpose::STANDARD.encode(digest);
            h.insert("content-md5", value.parse().expect("ascii"));
        }
    }
    if !head {
        *response.body_mut() = StorageBody::content(document.content.clone(), start, end, cut);
    }
    response
}

/// `Some(Ok((start, end_exclusive)))`, `Some(Err(()))` for an unsatisfiable range, `None` to ignore the header
/// (malformed or several ranges: RFC 9110 §14.2 lets a server answer 200).
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(suffix), len)));
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() { len } else { last.parse::<u64>().ok()?.saturating_add(1).min(len) };
    if last.parse::<u64>().is_ok_and(|l| l < start) {
        return None;
    }
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    None,
    Drop(u64),
    Short(u64),
    Stall(u64),
}

/// The storage's response body: a JSON problem, nothing, or a range of a document served in frames.
pub struct StorageBody {
    kind: Kind,
    throttle: Option<Throttle>,
}

/// Paces a body to a bandwidth: each frame waits until the bytes before it would have crossed the link.
struct Throttle {
    rate: u64,
    started: Option<tokio::time::Instant>,
    sent: u64,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Throttle {
    fn new(rate: u64) -> Self {
        Self { rate: rate.max(1), started: None, sent: 0, wait: None }
    }

    /// Ready once the next frame may go.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let started = *self.started.get_or_insert_with(tokio::time::Instant::now);
        let due = started + Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        if tokio::time::Instant::now() >= due {
            self.wait = None;
            return Poll::Ready(());
        }
        let wait = self.wait.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        wait.as_mut().reset(due);
        match wait.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.wait = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

enum Kind {
    Full(Option<Bytes>),
    Content { content: Content, at: u64, end: u64, cut: Cut, pause: Option<Pin<Box<tokio::time::Sleep>>> },
}

/// How long a cut body waits before failing, so the connection flushes the bytes already given to it: the client
/// then receives exactly the bytes the log counts.
const FLUSH_PAUSE: Duration = Duration::from_millis(20);

impl StorageBody {
    fn empty() -> Self {
        Self { kind: Kind::Full(None), throttle: None }
    }

    fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full(Some(bytes)), throttle: None }
    }

    fn content(content: Content, start: u64, end: u64, cut: Cut) -> Self {
        let (end, cut) = match cut {
            Cut::Drop(n) | Cut::Short(n) | Cut::Stall(n) if start.saturating_add(n) < end => (start + n, cut),
            _ => (end, Cut::None),
        };
        Self { kind: Kind::Content { content, at: start, end, cut, pause: None }, throttle: None }
    }
}

impl fmt::Debug for StorageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageBody").finish_non_exhaustive()
    }
}

impl Body for StorageBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Content { content, at, end, cut, pause } => {
                if *at >= *end {
                    if let Cut::Stall(_) = cut {
                        // Never wakes: the connection stays open and silent until the client closes it.
                        return Poll::Pending;
                    }
                    if *cut != Cut::None {
                        let sleep = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_PAUSE)));
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    return Poll::Ready(match *cut {
                        Cut::Drop(_) => {
                            *cut = Cut::None;
                            Some(Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected connection drop")))
                        }
                        Cut::Short(_) | Cut::Stall(_) => {
                            *cut = Cut::None;
                            None
                        }
                        Cut::None => None,
                    });
                }
                let mut max = usize::try_from(*end - *at).unwrap_or(FRAME).min(FRAME);
                if let Some(throttle) = &mut this.throttle {
                    if throttle.poll_ready(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Small frames on a slow link, so that the pace is even within a frame's time.
                    max = max.min(usize::try_from(throttle.rate / 100).unwrap_or(FRAME).clamp(16 * 1024, FRAME));
                    throttle.sent += max as u64;
                }
                let part = content.slice(*at, max);
                *at += part.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(part))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Content { at, end, cut, .. } => at >= end && *cut == Cut::None,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Content { at, end, cut: Cut::None, .. } => SizeHint::with_exact(end - at),
            Kind::Content { .. } => SizeHint::default(),
        }
    }
}

/// A body that counts the bytes it hands to the connection into the request log.
pub(crate) struct Counted<B> {
    inner: B,
    sent: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, sent: Arc<AtomicU64>) -> Self {
        Self { inner, sent }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The storage as a `tower::Service` over verified requests.
#[derive(Clone, Debug)]
pub(crate) struct StorageService(pub(crate) Storage);

impl tower::Service<Request<Full<Bytes>>> for StorageService {
    type Response = Response<StorageBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<StorageBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let response = self.0.handle(request);
        let latency = response.extensions().get::<Latency>().map(|latency| latency.0);
        Box::pin(async move {
            if let Some(latency) = latency {
                tokio::time::sleep(latency).await;
            }
            Ok(response)
        })
    }
}

fn short_hash(bytes: &[u8]) -> u64 {
    let digest = sha2::Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// `2026-11-26T08:28:18.000Z` from a system time (UTC).
pub(crate) fn iso8601(time: SystemTime) -> String {
    crate::time::format_rfc3339(time, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let table = [
            ("bytes=0-", 10, Some(Ok((0, 10)))),
            ("bytes=3-", 10, Some(Ok((3, 10)))),
            ("bytes=3-5", 10, Some(Ok((3, 6)))),
            ("bytes=3-50", 10, Some(Ok((3, 10)))),
            ("bytes=-4", 10, Some(Ok((6, 10)))),
            ("bytes=10-", 10, Some(Err(()))),
            ("bytes=0-", 0, Some(Err(()))),
            ("bytes=5-3", 10, None),
            ("bytes=0-1,3-4", 10, None),
            ("items=0-1", 10, None),
        ];
        for (value, len, expected) in table {
            assert_eq!(parse_range(value, len), expected, "{value} of {len}");
        }
    }

    #[test]
    fn routes_cover_storage_and_legacy_paths() {
        assert!(matches!(route("/v1/objects/a%2Fb/content/audio"), Some(Route::Content(id)) if id == "a/b"));
        assert!(matches!(route("/v1/objects/x/content/acsmetadata"), Some(Route::Metadata(id)) if id == "x"));
        assert!(matches!(route("/v1/objects/x"), Some(Route::Object(id)) if id == "x"));
        assert!(matches!(route("/recording/download/x"), Some(Route::Content(id)) if id == "x"));
        assert!(matches!(route("/recording/download/x/metadata"), Some(Route::Metadata(id)) if id == "x"));
        assert!(route("/other").is_none());
    }

    #[test]
    fn iso8601_formats_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_649_873_352_123);
        assert_eq!(iso8601(t), "2022-04-13T18:09:12.123Z");
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn recordings_split_at_the_chunk_limit() {
        let storage = Storage::new("http://127.0.0.1:1".into(), 1000, "r".into());
        let recording = storage.record(RecordingSpec::new("call", 2500));
        let sizes: Vec<u64> = recording.chunks.iter().map(|c| c.size).collect();
        assert_eq!(sizes, [1000, 1000, 44 + 2500 - 2 * 956]);
        let reasons: Vec<&str> = recording.chunks.iter().map(|c| c.end_reason.as_str()).collect();
        assert_eq!(reasons, ["ChunkMaximumSizeExceeded", "ChunkMaximumSizeExceeded", "SessionEnded"]);
        let metadata = storage.state().metadata[&recording.chunks[1].document_id].content.clone();
        let Content::Bytes(raw) = metadata else { panic!("metadata is bytes") };
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        for field in [
            "resourceId",
            "callId",
            "chunkDocumentId",
            "chunkIndex",
            "chunkStartTime",
            "chunkDuration",
            "pauseResumeIntervals",
            "recordingInfo",
            "participants",
        ] {
            assert!(value.get(field).is_some(), "{field}");
        }
        assert_eq!(value["chunkIndex"], 1);
        assert_eq!(value["recordingInfo"]["format"], "wav");
    }
}
