//! One chunk, from its target in the sink to its commit: opening the target (complete, absent or partial), then
//! the media with its restarts, then the commit and the delete.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::Instrument;

use super::{ChunkDownloader, Planned, RecordingState, Streamed};
use crate::client::{HttpClient, RequestBody};
use crate::download::digest::replayed;
use crate::download::error::{Detail, Error, ErrorKind, Location, Scope};
use crate::download::fetch::Fetch;
use crate::download::parallel::ParallelPolicy;
use crate::download::sink::{ChunkTarget, Existing, ObjectVersion, Sink, SinkWriter, Stored};
use crate::download::{ChunkManifest, Outcome};
use crate::recording::{RecordingChunk, RecordingFormatType};
use crate::Sha256Digest;

/// What the sink holds of a chunk, once its target is open.
enum Opened<W> {
    /// The chunk is complete: nothing to download.
    Complete(Stored),
    /// A writer to store the media through.
    Writer {
        writer: W,
        /// Whether the media starts at byte 0 or goes on from bytes of an earlier run.
        outcome: Outcome,
        /// The ranges an earlier parallel download left missing, when it can go on so.
        missing_parts: Option<MissingParts>,
    },
}

/// A chunk's media, stored: its size, its SHA-256 and the requests it took.
struct Media {
    bytes: u64,
    sha256: Sha256Digest,
    requests: u32,
}

/// An earlier parallel download to complete: the ranges it stored, of which version.
pub(super) struct MissingParts {
    pub(super) policy: ParallelPolicy,
    pub(super) version: ObjectVersion,
    pub(super) total: u64,
    pub(super) extents: Vec<(u64, u64)>,
}

// Every method here is crate-private: the bounds name crate-private traits, which no public signature shows.
#[allow(private_bounds)]
impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: RequestBody,
    K: Sink,
{
    pub(super) async fn chunk(self, state: Arc<RecordingState>, plan: Planned) -> Result<ChunkManifest, Error> {
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
        let extension = match state.format.as_ref() {
            Some(format) => format.extension(),
            None => {
                let document = self.fetch_metadata(&scope, plan.metadata.clone()).await?;
                // A document without a format names the media as an unknown format does.
                let format = document.parsed.as_ref().and_then(|m| m.format());
                let extension = format.map_or("bin", RecordingFormatType::extension);
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
        let (mut writer, outcome, missing_parts) = match self.open_target(state, &scope, &target, &mut fetch).await? {
            Opened::Complete(stored) => {
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
            Opened::Writer { writer, outcome, missing_parts } => (writer, outcome, missing_parts),
        };
        let metadata = match metadata {
            Some(document) => document,
            None => self.fetch_metadata(&scope, plan.metadata.clone()).await?,
        };
        if let Some(parsed) = &metadata.parsed {
            writer.describe(parsed);
        }
        let metadata_location = self.sink.put_metadata(&target, metadata.bytes).await.map_err(sink_error)?;

        let (writer, Media { bytes, sha256, requests }) =
            self.media_with_restarts(state, plan, &scope, fetch, writer, missing_parts).await?;
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

    /// Opens the chunk's target in the sink and decides where its media starts: complete (nothing to do), absent
    /// (from byte 0), or partial (from the stored bytes, or the missing ranges of an earlier parallel download, when
    /// they can be trusted; otherwise from byte 0 again). The bytes already stored count towards the progress.
    async fn open_target(
        &self,
        state: &RecordingState,
        scope: &Scope,
        target: &ChunkTarget<'_>,
        fetch: &mut Fetch<S, B>,
    ) -> Result<Opened<K::Writer>, Error> {
        let sink_error = |e: io::Error| Error::sink(scope, e);
        let opened = match self.sink.open(target).await.map_err(sink_error)? {
            Existing::Complete(stored) => {
                state.bytes.fetch_add(stored.bytes, Ordering::Relaxed);
                return Ok(Opened::Complete(stored));
            }
            Existing::Absent(writer) => Opened::Writer { writer, outcome: Outcome::Downloaded, missing_parts: None },
            Existing::Partial { mut writer, offset, version } if !writer.stored_extents().is_empty() => {
                // An earlier parallel download: fetch only the ranges it did not complete, when it can go on so.
                let extents = writer.stored_extents();
                match (self.config.parallel, version.total) {
                    (Some(policy), Some(total)) if writer.positional().is_some() => {
                        tracing::info!(offset, ranges = extents.len(), "resuming the missing parts of a chunk");
                        let stored: u64 = extents.iter().map(|(start, end)| end.saturating_sub(*start)).sum();
                        state.bytes.fetch_add(stored, Ordering::Relaxed);
                        let missing_parts = Some(MissingParts { policy, version, total, extents });
                        Opened::Writer { writer, outcome: Outcome::Resumed, missing_parts }
                    }
                    _ => {
                        writer.restart().await.map_err(sink_error)?;
                        Opened::Writer { writer, outcome: Outcome::Downloaded, missing_parts: None }
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
                Opened::Writer { writer, outcome: Outcome::Resumed, missing_parts: None }
            }
            Existing::Partial { mut writer, offset, version } => {
                // The stored bytes feed an MD5 too when the version records the whole object's MD5, so that the
                // resumed object is still checked against it.
                match replayed(&mut writer, version.content_md5.is_some()).await {
                    Ok((sha, md5, replayed)) if replayed == offset => {
                        tracing::info!(offset, "resuming a partial chunk from an earlier run");
                        fetch.resume_from(offset, version, sha, md5);
                        state.bytes.fetch_add(offset, Ordering::Relaxed);
                        Opened::Writer { writer, outcome: Outcome::Resumed, missing_parts: None }
                    }
                    _ => {
                        writer.restart().await.map_err(sink_error)?;
                        Opened::Writer { writer, outcome: Outcome::Downloaded, missing_parts: None }
                    }
                }
            }
        };
        Ok(opened)
    }

    /// Streams the media into the writer, starting the chunk over when the object changed under a parallel
    /// download (at most as many times as the retry policy allows attempts): its size, SHA-256 and the requests
    /// made, with the writer to commit them. On failure the writer keeps what a later run can trust, and nothing
    /// else.
    async fn media_with_restarts(
        &self,
        state: &RecordingState,
        plan: &Planned,
        scope: &Scope,
        mut fetch: Fetch<S, B>,
        mut writer: K::Writer,
        mut missing_parts: Option<MissingParts>,
    ) -> Result<(K::Writer, Media), Error> {
        let chunk = &plan.chunk;
        let sink_error = |e: io::Error| Error::sink(scope, e);
        let mut requests = 0u32;
        let mut restarts = 0u32;
        loop {
            let streamed = match missing_parts.take() {
                Some(missing) => self.resume_parts(state, chunk, scope, &plan.content, &mut writer, missing).await,
                None => self.stream_into(state, chunk, scope, &mut fetch, &mut writer, &plan.content).await,
            };
            match streamed {
                Ok(Streamed::Done { bytes, sha256, requests: made }) => {
                    requests = requests.saturating_add(made);
                    return Ok((writer, Media { bytes, sha256, requests }));
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
                    fetch = self.content_fetch(scope, &plan.content);
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
        }
    }

    fn finish_chunk(&self, state: &RecordingState, chunk: &RecordingChunk, bytes: u64, total: Option<u64>) {
        let chunks_done = state.chunks_done.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(state, chunk, bytes, total, state.bytes.load(Ordering::Relaxed), chunks_done);
    }
}
