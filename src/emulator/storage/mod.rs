//! The recording storage of the emulator: documents, Range/ETag semantics, faults and a request log.
//!
//! This file keeps the documents and the [`Storage`] handle over them; `serve.rs` answers a request (routes,
//! preconditions, Range), `body.rs` streams the answer, `fault.rs` and `link.rs` say how it fails and how fast it
//! goes, `recording.rs` describes the synthetic recordings stored.

mod body;
mod fault;
mod link;
mod recording;
mod serve;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::header::RANGE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use md5::{Digest as _, Md5};

use crate::emulator::iso8601;
use crate::emulator::media::{Content, Tone, FRAME, SAMPLE_RATE, WAV_HEADER};
use crate::emulator::metadata::{after, ChunkMetadata};
use crate::Sha256Digest;

pub(crate) use body::Counted;
pub use body::StorageBody;
pub use fault::Fault;
pub use link::Link;
use link::{Latency, Throttle};
pub(in crate::emulator) use recording::participant_id;
pub use recording::{RecordingSpec, StoredChunk, StoredRecording};
pub(crate) use serve::StorageService;
use serve::{problem, route, serve, Route};

/// The default chunk limit, as ACS's: recordings larger than this arrive in several chunks.
pub(crate) const DEFAULT_CHUNK_LIMIT: u64 = 1_500_000_000;

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
    pub sha256: Sha256Digest,
    /// Whether it was deleted.
    pub deleted: bool,
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
        // Chunks are named after the recording when it has an id of its own, so that two recordings of one call
        // do not overwrite each other's documents.
        let stem = short_hash(spec.recording_id.as_deref().unwrap_or(&spec.call_id).as_bytes());
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
            recording_id: match spec.recording_id {
                Some(recording_id) => recording_id,
                None => format!("{:016x}", short_hash(format!("recording:{}", spec.call_id).as_bytes())),
            },
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

fn short_hash(bytes: &[u8]) -> u64 {
    let digest = sha2::Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
