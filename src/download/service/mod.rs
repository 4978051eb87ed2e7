//! [`ChunkDownloader`]: a recording's chunks, in index order, into a sink.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use tower::Service;
use tracing::Instrument;

use super::body::ChunkBody;
use super::digest::replayed;
use super::error::{Detail, Error, ErrorKind, Location, Scope, Task};
use super::fetch::Fetch;
use super::future::ResponseFuture;
use super::location::Destinations;
use super::parts::ParallelPolicy;
use super::retry::{RetryPolicy, RetryState};
use super::sink::{extension_for_format, ChunkTarget, Existing, Sink, SinkWriter};
use super::{ChunkManifest, Outcome, Progress, RecordingManifest};
use crate::client::{HttpClient, RequestBody};
use crate::clock::{Clock, SharedClock};
use crate::credential::Endpoint;
use crate::recording::{Recording, RecordingChunk, RecordingFormatType};
use crate::signing::AllowList;
use crate::BoxError;

/// The largest metadata document accepted, by default.
pub const DEFAULT_METADATA_LIMIT: usize = 1 << 20;

pub(super) type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

#[derive(Clone)]
pub(super) struct Config {
    pub(super) destinations: Arc<Destinations>,
    pub(super) policy: RetryPolicy,
    pub(super) concurrency: usize,
    pub(super) delete_after_write: bool,
    pub(super) metadata_limit: usize,
    pub(super) parallel: Option<ParallelPolicy>,
    pub(super) progress: Option<ProgressFn>,
    pub(super) clock: SharedClock,
}

/// Downloads the chunks of a recording, media and metadata, into a [`Sink`]; see the [module docs](super).
///
/// `S` is any HTTP client service, normally hyper-util's client inside the
/// [`HmacSigningLayer`](crate::signing::HmacSigningLayer); `K` is the sink; `B` is the client's request body
/// type (requests are bodiless `GET`s and `DELETE`s built with `B::default()`). As a
/// `Service<`[`Recording`]`>` it answers a [`RecordingManifest`], so timeouts, concurrency limits and tracing
/// come from ordinary tower layers.
pub struct ChunkDownloader<S, K, B = Empty<Bytes>> {
    pub(super) client: S,
    pub(super) sink: Arc<K>,
    pub(super) config: Arc<Config>,
    _request_body: PhantomData<fn() -> B>,
}

impl<S: Clone, K, B> Clone for ChunkDownloader<S, K, B> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            sink: self.sink.clone(),
            config: self.config.clone(),
            _request_body: PhantomData,
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, B> fmt::Debug for ChunkDownloader<S, K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkDownloader")
            .field("client", &self.client)
            .field("sink", &self.sink)
            .field("endpoint", &self.config.destinations.endpoint)
            .field("allow", &self.config.destinations.allow)
            .field("policy", &self.config.policy)
            .field("concurrency", &self.config.concurrency)
            .field("delete_after_write", &self.config.delete_after_write)
            .finish()
    }
}

impl<S, K, B> ChunkDownloader<S, K, B> {
    /// A downloader sending requests through `client` and storing chunks in `sink`. By default it allows the
    /// storage hosts of [`AllowList::azure_defaults`], knows no endpoint (so chunks need their locations), retries
    /// with [`RetryPolicy::default`], downloads one chunk at a time and never deletes.
    pub fn new(client: S, sink: K) -> Self {
        Self {
            client,
            sink: Arc::new(sink),
            config: Arc::new(Config {
                destinations: Arc::new(Destinations { endpoint: None, allow: AllowList::azure_defaults() }),
                policy: RetryPolicy::default(),
                concurrency: 1,
                delete_after_write: false,
                metadata_limit: DEFAULT_METADATA_LIMIT,
                parallel: None,
                progress: None,
                clock: SharedClock::system(),
            }),
            _request_body: PhantomData,
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the ACS endpoint: always an allowed destination, and the base of the legacy URLs for chunks that come
    /// without locations (`SPEC.md` §3).
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        let destinations = &mut self.config_mut().destinations;
        *destinations = Arc::new(Destinations { endpoint: Some(endpoint), allow: destinations.allow.clone() });
        self
    }

    /// Sets the hosts, besides the endpoint, that locations and redirects may point at. Give the signing layer the
    /// same list.
    pub fn allow_list(mut self, allow: AllowList) -> Self {
        let destinations = &mut self.config_mut().destinations;
        *destinations = Arc::new(Destinations { endpoint: destinations.endpoint.clone(), allow });
        self
    }

    /// Sets the retry policy of every request.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config_mut().policy = policy;
        self
    }

    /// Uses this clock for the wall-clock time that a server's `Retry-After` date is read against (waits and retry
    /// budgets run on tokio's clock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.config_mut().clock = SharedClock::new(clock);
        self
    }

    /// Sets how many chunks of a recording download at once (at least 1; default 1).
    pub fn concurrency(mut self, chunks: usize) -> Self {
        self.config_mut().concurrency = chunks.max(1);
        self
    }

    /// Sends `DELETE <deleteLocation>` for each chunk once its media and metadata were committed durably.
    pub fn delete_after_write(mut self, delete: bool) -> Self {
        self.config_mut().delete_after_write = delete;
        self
    }

    /// Fetches chunks larger than the policy's threshold as parallel ranges (see [`ParallelPolicy`]) when the sink
    /// supports positional writes (the [`DirectorySink`](super::DirectorySink) does); `None`, the default, keeps one
    /// stream per chunk.
    pub fn parallel(mut self, policy: Option<ParallelPolicy>) -> Self {
        self.config_mut().parallel = policy;
        self
    }

    /// Sets the largest metadata document accepted (default [`DEFAULT_METADATA_LIMIT`]).
    pub fn metadata_limit(mut self, bytes: usize) -> Self {
        self.config_mut().metadata_limit = bytes;
        self
    }

    /// Calls `report` as bytes are stored. It runs on the download's task: keep it short (for a channel, send into
    /// a `tokio::sync::watch`, which never grows).
    pub fn on_progress(mut self, report: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        self.config_mut().progress = Some(Arc::new(report));
        self
    }

    /// Tells the progress callback, if one is set, where a chunk and its recording stand.
    pub(super) fn report(
        &self,
        state: &RecordingState,
        chunk: &RecordingChunk,
        chunk_bytes: u64,
        chunk_total: Option<u64>,
        recording_bytes: u64,
        chunks_done: usize,
    ) {
        if let Some(report) = &self.config.progress {
            report(&Progress {
                call_id: &state.call_id,
                document_id: chunk.document_id(),
                index: chunk.index(),
                chunk_bytes,
                chunk_total,
                recording_bytes,
                chunks_done,
                chunks_total: state.chunks_total,
            });
        }
    }

    /// The sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The HTTP client.
    pub fn client(&self) -> &S {
        &self.client
    }
}

/// Per-recording counters shared by its chunk tasks.
pub(super) struct RecordingState {
    pub(super) call_id: String,
    pub(super) recording_id: Option<String>,
    pub(super) format: Option<RecordingFormatType>,
    pub(super) chunks_total: usize,
    pub(super) bytes: AtomicU64,
    pub(super) chunks_done: AtomicUsize,
}

/// How a chunk's media stream ended.
pub(super) enum Streamed {
    /// Every byte is in the writer: its size and SHA-256, and the requests it took.
    Done { bytes: u64, sha256: [u8; 32], requests: u32 },
    /// The object changed under a parallel download, or failed a check: the chunk starts over. The cause ends up
    /// as the source of the error when it happens too often.
    Changed { requests: u32, cause: Option<BoxError> },
}

/// A chunk with its checked locations.
struct Planned {
    chunk: RecordingChunk,
    content: Uri,
    metadata: Uri,
    delete: Option<Uri>,
}

impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: Default + Send + 'static,
    K: Sink,
{
    /// Downloads every chunk of `recording` in `index` order, media and metadata, and returns a manifest per
    /// chunk. Every location is checked against the allow-list before the first request.
    pub async fn download(&self, recording: Recording) -> Result<RecordingManifest, Error> {
        let mut chunks = recording.chunks;
        chunks.sort_by(|a, b| a.index().cmp(&b.index()).then_with(|| a.document_id().cmp(b.document_id())));
        chunks.dedup_by(|a, b| a.index() == b.index() && a.document_id() == b.document_id());
        let plans = chunks.into_iter().map(|chunk| self.plan(chunk)).collect::<Result<Vec<_>, _>>()?;
        let state = Arc::new(RecordingState {
            call_id: recording.call_id,
            recording_id: recording.recording_id,
            format: recording.format,
            chunks_total: plans.len(),
            bytes: AtomicU64::new(0),
            chunks_done: AtomicUsize::new(0),
        });
        let mut manifests = Vec::with_capacity(plans.len());
        if self.config.concurrency <= 1 || plans.len() <= 1 {
            for plan in plans {
                manifests.push(self.clone().chunk(state.clone(), plan).await?);
            }
        } else {
            let mut tasks = tokio::task::JoinSet::new();
            let mut plans = plans.into_iter();
            loop {
                while tasks.len() < self.config.concurrency {
                    let Some(plan) = plans.next() else { break };
                    tasks.spawn(self.clone().chunk(state.clone(), plan));
                }
                let Some(joined) = tasks.join_next().await else { break };
                let manifest = joined.map_err(|e| Error::join(&Scope::default(), Task::Chunk, e))??;
                manifests.push(manifest);
            }
            manifests.sort_by_key(|m| m.index);
        }
        Ok(RecordingManifest { call_id: state.call_id.clone(), chunks: manifests })
    }

    /// Downloads one chunk of `recording` into the sink (what [`download`](Self::download) does for each chunk).
    pub async fn download_chunk(&self, recording: &Recording, chunk: RecordingChunk) -> Result<ChunkManifest, Error> {
        let plan = self.plan(chunk)?;
        let state = Arc::new(RecordingState {
            call_id: recording.call_id.clone(),
            recording_id: recording.recording_id.clone(),
            format: recording.format.clone(),
            chunks_total: 1,
            bytes: AtomicU64::new(0),
            chunks_done: AtomicUsize::new(0),
        });
        self.clone().chunk(state, plan).await
    }

    /// Sends `DELETE <deleteLocation>` for a chunk (with the retry policy; 404 counts as deleted): `Ok(false)` when
    /// the chunk has no delete location. For callers that delete as a step of their own, after their commit.
    pub async fn delete_chunk(&self, chunk: &RecordingChunk) -> Result<bool, Error> {
        let scope = Scope::chunk(chunk.index(), chunk.document_id());
        let uri = self.config.destinations.locate(chunk, Location::Delete)?;
        if uri.is_none() {
            return Ok(false);
        }
        self.delete(&scope, uri).await
    }

    /// A chunk's media as a resumable stream, bypassing the sink. The location is checked now; nothing is sent
    /// until the stream is polled.
    pub fn chunk_body(&self, chunk: &RecordingChunk) -> Result<ChunkBody, Error> {
        let content = self.locate(chunk, Location::Content)?;
        let scope = Scope::chunk(chunk.index(), chunk.document_id()).at(Location::Content);
        let fetch = self.fetch(scope.clone(), content);
        Ok(ChunkBody::new(fetch, scope))
    }
}

// Every method here is crate-private: the bounds name crate-private traits, which no public signature shows.
#[allow(private_bounds)]
impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: RequestBody,
    K: Sink,
{
    fn locate(&self, chunk: &RecordingChunk, which: Location) -> Result<Uri, Error> {
        let uri = self.config.destinations.locate(chunk, which)?;
        uri.ok_or_else(|| {
            Error::new(ErrorKind::InvalidLocation, Detail::Missing)
                .in_scope(&Scope::chunk(chunk.index(), chunk.document_id()).at(which))
        })
    }

    fn plan(&self, chunk: RecordingChunk) -> Result<Planned, Error> {
        let content = self.locate(&chunk, Location::Content)?;
        let metadata = self.locate(&chunk, Location::Metadata)?;
        let delete = if self.config.delete_after_write {
            self.config.destinations.locate(&chunk, Location::Delete)?
        } else {
            None
        };
        Ok(Planned { chunk, content, metadata, delete })
    }

    pub(super) fn fetch(&self, scope: Scope, uri: Uri) -> Fetch<S, B> {
        let retry = RetryState::new(self.config.policy, self.config.clock.clone());
        Fetch::new(self.client.clone(), self.config.destinations.clone(), retry, scope, uri)
    }

    async fn chunk(self, state: Arc<RecordingState>, plan: Planned) -> Result<ChunkManifest, Error> {
        let span = tracing::info_span!(
            "chunk",
            call_id = %state.call_id,
            document_id = %plan.chunk.document_id(),
            index = plan.chunk.index(),
            attempts = tracing::field::Empty,
            bytes = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self.chunk_inner(&state, &plan).instrument(span.clone()).await;
        match &result {
            Ok(manifest) => {
                span.record("attempts", manifest.attempts);
                span.record("bytes", manifest.bytes);
                span.record("outcome", tracing::field::debug(manifest.outcome));
                span.in_scope(|| tracing::info!("chunk stored"));
            }
            Err(error) => span.in_scope(|| tracing::warn!(error = %error, "chunk failed")),
        }
        result
    }

    async fn chunk_inner(&self, state: &RecordingState, plan: &Planned) -> Result<ChunkManifest, Error> {
        let chunk = &plan.chunk;
        let scope = Scope::chunk(chunk.index(), chunk.document_id());
        let mut metadata = None;
        let extension = match state.format.as_ref().map(RecordingFormatType::as_str) {
            Some(format) => extension_for_format(Some(format)),
            None => {
                let document = self.fetch_metadata(&scope, plan.metadata.clone()).await?;
                let extension = extension_for_format(
                    document.parsed.as_ref().and_then(|m| m.format()).map(RecordingFormatType::as_str),
                );
                metadata = Some(document);
                extension
            }
        };
        let target = ChunkTarget {
            call_id: &state.call_id,
            recording_id: state.recording_id.as_deref(),
            document_id: chunk.document_id(),
            index: chunk.index(),
            extension,
        };
        let sink_error = |e: io::Error| Error::sink(&scope, e);
        let mut fetch = self.content_fetch(&scope, &plan.content);
        let mut resume_parts = None;
        let (mut writer, outcome) = match self.sink.open(&target).await.map_err(sink_error)? {
            Existing::Complete(stored) => {
                state.bytes.fetch_add(stored.bytes, Ordering::Relaxed);
                let deleted = self.delete(&scope, plan.delete.clone()).await?;
                self.finish_chunk(state, chunk, stored.bytes, Some(stored.bytes));
                return Ok(ChunkManifest {
                    document_id: chunk.document_id().to_owned(),
                    index: chunk.index(),
                    bytes: stored.bytes,
                    sha256: stored.sha256,
                    location: stored.location,
                    metadata_location: None,
                    outcome: Outcome::Skipped,
                    attempts: 0,
                    deleted,
                    metadata: None,
                });
            }
            Existing::Absent(writer) => (writer, Outcome::Downloaded),
            Existing::Partial { mut writer, offset, version } if !writer.stored_extents().is_empty() => {
                // An earlier parallel download: fetch only the ranges it did not complete, when it can go on so.
                let extents = writer.stored_extents();
                match (self.config.parallel, version.total) {
                    (Some(policy), Some(total)) if writer.positional().is_some() => {
                        tracing::info!(offset, ranges = extents.len(), "resuming the missing parts of a chunk");
                        let stored: u64 = extents.iter().map(|(start, end)| end.saturating_sub(*start)).sum();
                        state.bytes.fetch_add(stored, Ordering::Relaxed);
                        resume_parts = Some((policy, version, total, extents));
                        (writer, Outcome::Resumed)
                    }
                    _ => {
                        writer.restart().await.map_err(sink_error)?;
                        (writer, Outcome::Downloaded)
                    }
                }
            }
            Existing::Partial { writer, offset, version }
                if version.content_md5.is_none() && writer.stored_digest().is_some_and(|s| s.bytes() == offset) =>
            {
                // The sink kept the hash state of what it stored: go on from it, nothing to read back.
                let kept = writer.stored_digest().unwrap_or_else(|| unreachable!("checked by the guard"));
                tracing::info!(offset, "resuming a partial chunk from the hash state its sink kept");
                fetch.resume_from(offset, version, kept, None);
                state.bytes.fetch_add(offset, Ordering::Relaxed);
                (writer, Outcome::Resumed)
            }
            Existing::Partial { mut writer, offset, version } => {
                // The stored bytes feed an MD5 too when the version records the whole object's MD5, so that the
                // resumed object is still checked against it.
                match replayed(&mut writer, version.content_md5.is_some()).await {
                    Ok((sha, md5, replayed)) if replayed == offset => {
                        tracing::info!(offset, "resuming a partial chunk from an earlier run");
                        fetch.resume_from(offset, version, sha, md5);
                        state.bytes.fetch_add(offset, Ordering::Relaxed);
                        (writer, Outcome::Resumed)
                    }
                    _ => {
                        writer.restart().await.map_err(sink_error)?;
                        (writer, Outcome::Downloaded)
                    }
                }
            }
        };
        let metadata = match metadata {
            Some(document) => document,
            None => self.fetch_metadata(&scope, plan.metadata.clone()).await?,
        };
        if let Some(parsed) = &metadata.parsed {
            writer.describe(parsed);
        }
        let metadata_location = self.sink.put_metadata(&target, metadata.bytes).await.map_err(sink_error)?;

        let mut requests = 0u32;
        let mut restarts = 0u32;
        let (bytes, sha256) = loop {
            let streamed = match resume_parts.take() {
                Some((policy, version, total, extents)) => {
                    self.resume_parts(state, chunk, &scope, &plan.content, &mut writer, policy, version, total, extents)
                        .await
                }
                None => self.stream_into(state, chunk, &scope, &mut fetch, &mut writer, &plan.content).await,
            };
            match streamed {
                Ok(Streamed::Done { bytes, sha256, requests: made }) => {
                    requests = requests.saturating_add(made);
                    break (bytes, sha256);
                }
                Ok(Streamed::Changed { requests: made, cause }) => {
                    // The object changed under a part, or a part failed its check: start the chunk over, as a
                    // single fetch would.
                    requests = requests.saturating_add(made);
                    restarts += 1;
                    if restarts >= self.config.policy.max_attempts.max(1) {
                        let _ = writer.restart().await;
                        let error = Error::new(ErrorKind::RetriesExhausted, Detail::ChangedTooOften(restarts))
                            .in_scope(&scope.at(Location::Content))
                            .with_host_of(&plan.content)
                            .with_attempts(restarts);
                        return Err(match cause {
                            Some(cause) => error.with_source(cause),
                            None => error,
                        });
                    }
                    tracing::warn!(restarts, "the object changed during a parallel download: restarting the chunk");
                    writer.restart().await.map_err(sink_error)?;
                    state.bytes.store(0, Ordering::Relaxed);
                    fetch = self.content_fetch(&scope, &plan.content);
                }
                Err(error) => {
                    // A later run would resume from these bytes and trust them: drop them when the fetch took them
                    // back.
                    if fetch.taken_back() {
                        if let Err(restart) = writer.restart().await {
                            tracing::warn!(error = %restart, "could not discard the bytes of the failed chunk");
                        }
                    }
                    // Keep the bytes already received for a later run; the error is what the caller needs to see.
                    if let Err(abandon) = writer.abandon().await {
                        tracing::warn!(error = %abandon, "could not keep the partial chunk");
                    }
                    return Err(error);
                }
            }
        };
        let location = writer.commit(bytes, sha256).await.map_err(sink_error)?;
        let deleted = self.delete(&scope, plan.delete.clone()).await?;
        self.finish_chunk(state, chunk, bytes, Some(bytes));
        Ok(ChunkManifest {
            document_id: chunk.document_id().to_owned(),
            index: chunk.index(),
            bytes,
            sha256,
            location,
            metadata_location,
            outcome,
            attempts: requests,
            deleted,
            metadata: metadata.parsed,
        })
    }

    fn finish_chunk(&self, state: &RecordingState, chunk: &RecordingChunk, bytes: u64, total: Option<u64>) {
        let chunks_done = state.chunks_done.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(state, chunk, bytes, total, state.bytes.load(Ordering::Relaxed), chunks_done);
    }
}

impl<S, B, K> Service<Recording> for ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: Default + Send + 'static,
    K: Sink,
{
    type Response = RecordingManifest;
    type Error = Error;
    type Future = ResponseFuture;

    /// Always ready: each request waits for the client's readiness itself, as it makes many requests.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, recording: Recording) -> Self::Future {
        let this = self.clone();
        ResponseFuture::new(Box::pin(async move { this.download(recording).await }))
    }
}

#[cfg(test)]
mod tests;
