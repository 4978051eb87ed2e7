//! A chunk's media into its writer: one stream, or parallel ranges once the first response told a size past the
//! threshold, and the resume of the ranges an earlier parallel download left missing.

use std::io;
use std::sync::Arc;

use http::Uri;

use md5::Md5;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

use super::chunk::MissingParts;
use super::ChunkDownloader;
use super::{RecordingState, Streamed};
use crate::client::{HttpClient, RequestBody};
use crate::download::digest::{replayed, Digests};
use crate::download::error::{Detail, Error, ErrorKind, Location, Scope};
use crate::download::fetch::{Event, Fetch};
use crate::download::header::decode_md5;
use crate::download::parallel::{missing, Parallel, ParallelPolicy, Scheduler};
use crate::download::retry::Failure;
use crate::download::sink::Sink;
use crate::download::sink::{ObjectVersion, PositionalWriter, SinkWriter};
use crate::recording::RecordingChunk;

// Every method here is crate-private: the bounds name crate-private traits, which no public signature shows.
#[allow(private_bounds)]
impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: RequestBody,
    K: Sink,
{
    /// The fetch of a chunk's media; its first request asks for the parallel threshold when parts are on.
    pub(super) fn content_fetch(&self, scope: &Scope, uri: &Uri) -> Fetch<S, B> {
        let mut fetch = self.fetch(scope.at(Location::Content), uri.clone());
        if let Some(policy) = self.config.parallel {
            fetch.first_request(policy.threshold);
        }
        fetch
    }

    /// Goes on with parts once the first response told a size past the threshold.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn download_parts(
        &self,
        state: &RecordingState,
        chunk: &RecordingChunk,
        scope: &Scope,
        uri: &Uri,
        mut first: Fetch<S, B>,
        policy: ParallelPolicy,
        version: ObjectVersion,
        positional: Arc<dyn PositionalWriter>,
    ) -> Result<Streamed, Error> {
        let total = version.total.unwrap_or_default();
        let first_end = policy.threshold.min(total);
        first.limit_to_first_part(first_end);
        let parts = missing(total, first_end, &[], policy.part_size);
        let md5 = version.content_md5.as_deref().and_then(decode_md5);
        let digests = Digests::new(Sha256::new(), md5.map(|_| Md5::new())).with_budget(self.config.budget.clone());
        let scheduler = self.scheduler(scope, uri, &policy, &version, positional, total);
        let progress = self.part_progress(state, chunk, total);
        match scheduler.run(Some((first, first_end)), parts, Some(digests), progress).await? {
            Parallel::Changed { requests, cause } => Ok(Streamed::Changed { requests, cause: Some(cause.into()) }),
            Parallel::Complete { requests, hashes } => {
                let (sha256, computed_md5) = hashes.unwrap_or_default();
                if md5.is_some() && computed_md5 != md5 {
                    tracing::warn!("the object does not match its x-ms-blob-content-md5");
                    return Ok(Streamed::Changed { requests, cause: Some(Failure::BlobMd5Mismatch.into()) });
                }
                Ok(Streamed::Done { bytes: total, sha256, requests })
            }
        }
    }

    /// Fetches the ranges an earlier parallel download left missing, then hashes the whole stored object.
    pub(super) async fn resume_parts(
        &self,
        state: &RecordingState,
        chunk: &RecordingChunk,
        scope: &Scope,
        uri: &Uri,
        writer: &mut K::Writer,
        missing_parts: MissingParts,
    ) -> Result<Streamed, Error> {
        let MissingParts { policy, version, total, extents } = missing_parts;
        let sink_error = |e: io::Error| Error::sink(scope, e);
        let Some(positional) = writer.positional() else {
            return Ok(Streamed::Changed { requests: 0, cause: None });
        };
        let parts = missing(total, 0, &extents, policy.part_size);
        let scheduler = self.scheduler(scope, uri, &policy, &version, positional, total);
        let progress = self.part_progress(state, chunk, total);
        let requests = match scheduler.run(None, parts, None, progress).await? {
            Parallel::Changed { requests, cause } => {
                return Ok(Streamed::Changed { requests, cause: Some(cause.into()) })
            }
            Parallel::Complete { requests, .. } => requests,
        };
        // Parts of two runs cannot be hashed in arrival order: read the stored object back, in order, once.
        let md5 = version.content_md5.as_deref().and_then(decode_md5);
        let (sha, md5_state, replayed) = replayed(writer, md5.is_some()).await.map_err(sink_error)?;
        let computed_md5: Option<[u8; 16]> = md5_state.map(|md5| md5.finalize().into());
        if replayed != total || (md5.is_some() && computed_md5 != md5) {
            tracing::warn!(replayed, total, "the resumed parts do not make the object: restarting the chunk");
            let cause = if replayed != total {
                Failure::Short { at: replayed, expected: total }
            } else {
                Failure::BlobMd5Mismatch
            };
            return Ok(Streamed::Changed { requests, cause: Some(cause.into()) });
        }
        Ok(Streamed::Done { bytes: total, sha256: sha.finalize().into(), requests })
    }

    pub(super) fn scheduler(
        &self,
        scope: &Scope,
        uri: &Uri,
        policy: &ParallelPolicy,
        version: &ObjectVersion,
        positional: Arc<dyn PositionalWriter>,
        total: u64,
    ) -> Scheduler<impl Fn(u64, u64) -> Fetch<S, B> + '_> {
        let (scope, uri, version) = (scope.at(Location::Content), uri.clone(), version.clone());
        Scheduler {
            part: {
                let scope = scope.clone();
                move |start, end| self.fetch(scope.clone(), uri.clone()).into_part(version.clone(), start, end)
            },
            scope,
            writer: positional,
            parallelism: policy.parallelism,
            fast_stream: policy.fast_stream,
            total,
            budget: self.config.budget.clone(),
            keep_ahead: policy.part_size,
        }
    }

    /// Progress reports for the bytes of parts, in whatever order they arrive.
    pub(super) fn part_progress<'a>(
        &'a self,
        state: &'a RecordingState,
        chunk: &'a RecordingChunk,
        total: u64,
    ) -> impl FnMut(u64) + 'a {
        let mut chunk_bytes = 0u64;
        move |n| {
            chunk_bytes += n;
            let recording_bytes = state.bytes.fetch_add(n, Ordering::Relaxed) + n;
            let chunks_done = state.chunks_done.load(Ordering::Relaxed);
            self.report(state, chunk, chunk_bytes, Some(total), recording_bytes, chunks_done);
        }
    }

    /// Moves the fetch's events into the writer.
    pub(super) async fn stream_into(
        &self,
        state: &RecordingState,
        chunk: &RecordingChunk,
        scope: &Scope,
        fetch: &mut Fetch<S, B>,
        writer: &mut K::Writer,
        uri: &Uri,
    ) -> Result<Streamed, Error> {
        let sink_error = |e: io::Error| Error::sink(scope, e);
        let mut chunk_bytes = fetch.offset();
        while let Some(event) = fetch.next().await? {
            match event {
                Event::Pinned(version) => {
                    writer.begin(&version).await.map_err(sink_error)?;
                    let Some(policy) = self.config.parallel else { continue };
                    let large = version.total.is_some_and(|total| total > policy.threshold);
                    if large && version.is_pinnable() && fetch.answer_is_ranged() {
                        if let Some(positional) = writer.positional() {
                            let first = std::mem::replace(fetch, self.content_fetch(scope, uri));
                            return self
                                .download_parts(state, chunk, scope, uri, first, policy, version, positional)
                                .await;
                        }
                    }
                }
                Event::Restart => {
                    writer.restart().await.map_err(|e| {
                        if e.kind() == io::ErrorKind::Unsupported {
                            Error::new(ErrorKind::ObjectChanged, Detail::CannotRestart)
                                .in_scope(&scope.at(Location::Content))
                                .with_host_of(uri)
                                .with_source(e)
                        } else {
                            sink_error(e)
                        }
                    })?;
                    state.bytes.fetch_sub(chunk_bytes, Ordering::Relaxed);
                    chunk_bytes = 0;
                }
                Event::Data(bytes) => {
                    let n = bytes.len() as u64;
                    writer.write(bytes).await.map_err(sink_error)?;
                    chunk_bytes += n;
                    let recording_bytes = state.bytes.fetch_add(n, Ordering::Relaxed) + n;
                    let chunks_done = state.chunks_done.load(Ordering::Relaxed);
                    self.report(state, chunk, chunk_bytes, fetch.total(), recording_bytes, chunks_done);
                }
            }
        }
        let finished = fetch.finished();
        Ok(Streamed::Done { bytes: finished.bytes, sha256: finished.sha256, requests: fetch.requests() })
    }
}
