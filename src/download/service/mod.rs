//! [`ChunkDownloader`]: a recording's chunks, in index order, into a sink.
//!
//! `mod.rs` holds the service and its configuration, `chunk.rs` one chunk from its target to its commit,
//! `media.rs` the media stream (one stream or parallel parts), `metadata.rs` the metadata document, `delete.rs` the
//! delete after the commit.

mod chunk;
mod delete;
mod media;
mod metadata;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use tower::Service;

use super::body::ChunkBody;
use super::budget::MemoryBudget;
use super::error::{Detail, Error, ErrorKind, Location, Scope, Task};
use super::fetch::Fetch;
use super::future::ResponseFuture;
use super::location::Destinations;
use super::parallel::ParallelPolicy;
use super::retry::{RetryPolicy, RetryState};
use super::sink::Sink;
use super::{ChunkManifest, Progress, RecordingManifest};
use crate::client::{HttpClient, RequestBody};
use crate::clock::{Clock, SharedClock};
use crate::credential::Endpoint;
use crate::recording::{Recording, RecordingChunk, RecordingFormatType};
use crate::signing::AllowList;
use crate::{BoxError, Sha256Digest};

/// The largest metadata document accepted, by default.
pub(crate) const DEFAULT_METADATA_LIMIT: usize = 1 << 20;

pub(super) type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

#[derive(Clone)]
pub(super) struct Config {
    pub(super) destinations: Arc<Destinations>,
    pub(super) policy: RetryPolicy,
    pub(super) concurrency: usize,
    pub(super) delete_after_write: bool,
    pub(super) metadata_limit: usize,
    pub(super) parallel: Option<ParallelPolicy>,
    pub(super) budget: MemoryBudget,
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
            .field("budget", &self.config.budget)
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
                budget: MemoryBudget::global(),
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
    /// without locations (the 2021 event carried none; see [`legacy_content_location`](super::legacy_content_location)).
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
    /// supports positional writes (the [`DirectorySink`](super::sink::DirectorySink) does); `None`, the default, keeps one
    /// stream per chunk.
    pub fn parallel(mut self, policy: Option<ParallelPolicy>) -> Self {
        self.config_mut().parallel = policy;
        self
    }

    /// Sets the memory budget the parts of parallel downloads draw from (default [`MemoryBudget::global`], shared by
    /// every downloader of the process): give several downloaders one budget to bound them together.
    pub fn memory_budget(mut self, budget: MemoryBudget) -> Self {
        self.config_mut().budget = budget;
        self
    }

    /// Sets the largest metadata document accepted, in bytes (default 1 MiB, `1 << 20`).
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
    Done { bytes: u64, sha256: Sha256Digest, requests: u32 },
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
