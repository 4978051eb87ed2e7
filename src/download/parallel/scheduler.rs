//! The scheduler of a parallel download: runs the parts of one chunk, a bounded number at once, and hashes the
//! whole object in order while parts arrive out of order.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::in_order::{InOrder, Part, Parts};
use super::plan::Missing;
use crate::client::{HttpClient, RequestBody};
use crate::download::budget::MemoryBudget;
use crate::download::digest::Digests;
use crate::download::error::{Detail, Error, ErrorKind, Scope, Task};
use crate::download::fetch::{Event, Fetch};
use crate::download::sink::PositionalWriter;
use crate::Sha256Digest;

/// Bytes of the first response after which its rate decides how many requests the chunk uses.
const PROBE: u64 = 4 << 20;

/// Requests at a time on a fast link: one hashed while the next arrives.
const FAST_PARALLELISM: usize = 2;

/// What a part task reports.
enum Message {
    Data { offset: u64, bytes: Bytes },
    Done { start: u64, requests: u32 },
}

/// How a parallel download ended.
pub(crate) enum Parallel {
    /// Every part is stored; the hashes when they were computed on the way.
    Complete { requests: u32, hashes: Option<(Sha256Digest, Option<[u8; 16]>)> },
    /// The object changed under a part, or a part failed its check: the chunk must restart from byte 0.
    Changed { requests: u32, cause: Error },
}

/// Frames on their way from the parts to the hash: outside the budget, so few (a frame is up to a few hundred KiB).
const REPORTS: usize = 8;

/// Bytes gathered before one positional write.
const WRITE_BATCH: usize = 1 << 20;

/// What one part in flight holds, whatever happens to its bytes: its write batch and its connection's buffers.
const PART_STREAM: u64 = WRITE_BATCH as u64 + (512 << 10);

/// One part: its fetch, into the positional writer, its bytes reported for the in-order hash.
async fn run_part<S, B>(
    mut fetch: Fetch<S, B>,
    (start, end): (u64, u64),
    scope: Scope,
    writer: Arc<dyn PositionalWriter>,
    report: mpsc::Sender<Message>,
) -> Result<(), Error>
where
    S: HttpClient<B>,
    B: RequestBody,
{
    let scope = scope.part(start, end);
    let sink = |e: io::Error| Error::sink(&scope, e);
    let gone = || Error::new(ErrorKind::Sink, Detail::Stopped).in_scope(&scope);
    let (mut at, mut batch_start, mut batch, mut batch_len) = (start, start, Vec::new(), 0usize);
    while let Some(event) = fetch.next().await? {
        let Event::Data(bytes) = event else { continue };
        batch_len += bytes.len();
        batch.push(bytes.clone());
        let offset = at;
        at += bytes.len() as u64;
        report.send(Message::Data { offset, bytes }).await.map_err(|_| gone())?;
        if batch_len >= WRITE_BATCH {
            writer.write_at(batch_start, std::mem::take(&mut batch)).await.map_err(sink)?;
            (batch_start, batch_len) = (at, 0);
        }
    }
    if at != end {
        return Err(Error::new(ErrorKind::RetriesExhausted, Detail::PartEndedEarly(at)).in_scope(&scope));
    }
    if !batch.is_empty() {
        writer.write_at(batch_start, batch).await.map_err(sink)?;
    }
    writer.complete(start, end).await.map_err(sink)?;
    report.send(Message::Done { start, requests: fetch.requests() }).await.map_err(|_| gone())
}

/// Runs the parts of one chunk.
pub(crate) struct Scheduler<F> {
    /// Builds the fetch of one part.
    pub(crate) part: F,
    /// The chunk's content, for errors.
    pub(crate) scope: Scope,
    pub(crate) writer: Arc<dyn PositionalWriter>,
    pub(crate) parallelism: usize,
    /// See [`ParallelPolicy::fast_stream`].
    pub(crate) fast_stream: Option<u64>,
    /// The object's size.
    pub(crate) total: u64,
    /// What parts in flight and bytes ahead of the hash draw from.
    pub(crate) budget: MemoryBudget,
    /// Bytes this far ahead of the hash at most are kept in memory (budget permitting) rather than read back.
    pub(crate) keep_ahead: u64,
}

impl<F> Scheduler<F> {
    /// Fetches `parts` (and the open `first` fetch of `0..first_end`, when given) into the writer. With `digests`,
    /// hashes every byte from 0 in order (`parts` and `first` must then cover the whole object); `progress` gets the
    /// bytes as they arrive.
    ///
    /// Every part but one holds budget while it runs: its streaming buffers, or, when its bytes cannot be read back
    /// from the writer, all its bytes. The one part a chunk may always run without budget keeps it going when the
    /// budget is spent, so that chunks sharing a budget never wait on each other for good.
    pub(crate) async fn run<S, B>(
        self,
        first: Option<(Fetch<S, B>, u64)>,
        queue: Missing,
        digests: Option<Digests>,
        mut progress: impl FnMut(u64),
    ) -> Result<Parallel, Error>
    where
        F: Fn(u64, u64) -> Fetch<S, B>,
        S: HttpClient<B>,
        B: RequestBody,
    {
        let (report, mut reports) = mpsc::channel::<Message>(REPORTS);
        let mut tasks = JoinSet::new();
        let mut queue = queue.peekable();
        let mut parts = Parts::new();
        let readable = self.writer.readable();
        // Parts whose bytes ahead of the hash cannot go to disk must reserve all of them.
        let whole = digests.is_some() && !readable;
        let mut hash = digests.map(|d| InOrder::new(d, self.budget.hold(), self.keep_ahead, readable));
        let (mut running, mut free_running) = (0usize, false);
        let start_part = |parts: &mut Parts, tasks: &mut JoinSet<_>, fetch, (start, end), free, reservation| {
            let future = run_part(fetch, (start, end), self.scope.clone(), self.writer.clone(), report.clone());
            tasks.spawn(future);
            parts.insert(start, Part { end, done: false, free, whole: whole && !free, reservation });
        };
        // While the first response shows how fast one connection is, no other part starts.
        let mut limit = self.parallelism.max(1);
        let mut probe = None;
        let mut first_end = 0;
        if let Some((fetch, end)) = first {
            start_part(&mut parts, &mut tasks, fetch, (0, end), true, self.budget.hold());
            (running, free_running, first_end) = (1, true, end);
            if let Some(fast) = self.fast_stream {
                probe = Some((fast, tokio::time::Instant::now(), 0u64));
                limit = 1;
            }
        }
        let mut requests = 0u32;
        loop {
            while running < limit {
                let Some(&(start, end)) = queue.peek() else { break };
                // Without reservations a part of a writer that cannot read back must be the next to hash, so it
                // may start only when nothing else runs.
                let free = !free_running && (!whole || running == 0);
                let mut reservation = self.budget.hold();
                if !free {
                    let need = if whole { end - start } else { (end - start).min(PART_STREAM) };
                    if !reservation.try_grow(need) {
                        break;
                    }
                }
                queue.next();
                start_part(&mut parts, &mut tasks, (self.part)(start, end), (start, end), free, reservation);
                running += 1;
                free_running |= free;
            }
            if running == 0 && queue.peek().is_none() {
                break;
            }
            tokio::select! {
                message = reports.recv() => match message {
                    Some(Message::Data { offset, bytes }) => {
                        progress(bytes.len() as u64);
                        if let Some((fast, since, seen)) = probe.as_mut() {
                            if offset < first_end {
                                *seen += bytes.len() as u64;
                                if *seen >= PROBE.min(first_end) {
                                    limit = self.decide(*fast, *since, *seen);
                                    probe = None;
                                }
                            }
                        }
                        if let Some(hash) = hash.as_mut() {
                            hash.receive(offset, bytes, &parts, &*self.writer, &self.scope).await?;
                        }
                    }
                    Some(Message::Done { start, requests: made }) => {
                        requests = requests.saturating_add(made);
                        if let (0, Some((fast, since, seen))) = (start, probe.take()) {
                            limit = self.decide(fast, since, seen);
                        }
                        running -= 1;
                        if let Some(part) = parts.get_mut(&start) {
                            part.done = true;
                            free_running &= !part.free;
                            // Its bytes are stored: only a reservation that covers bytes waiting for the hash stays.
                            if !part.whole {
                                part.reservation = self.budget.hold();
                            }
                        }
                        if let Some(hash) = hash.as_mut() {
                            hash.advance(&parts, &*self.writer, &self.scope).await?;
                        }
                        // Done and hashed: nothing of it waits any more.
                        let hashed = hash.as_ref().map_or(u64::MAX, InOrder::next);
                        parts.retain(|_, part| !part.done || part.end > hashed);
                    }
                    None => break,
                },
                joined = tasks.join_next(), if !tasks.is_empty() => match joined {
                    Some(Ok(Ok(()))) | None => {}
                    Some(Ok(Err(error))) => {
                        tasks.abort_all();
                        if error.kind() == ErrorKind::ObjectChanged {
                            return Ok(Parallel::Changed { requests, cause: error });
                        }
                        return Err(error);
                    }
                    Some(Err(failed)) => {
                        tasks.abort_all();
                        return Err(Error::join(&self.scope, Task::Part, failed));
                    }
                },
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                return Err(error);
            }
        }
        let hashes = match hash {
            Some(hash) => Some(hash.finish(self.total, &self.scope).await?),
            None => None,
        };
        Ok(Parallel::Complete { requests, hashes })
    }

    /// How many requests the chunk uses, from the first response's rate.
    fn decide(&self, fast: u64, since: tokio::time::Instant, seen: u64) -> usize {
        let elapsed = since.elapsed().as_secs_f64().max(1e-6);
        let rate = seen as f64 / elapsed;
        let limit =
            if rate >= fast as f64 { FAST_PARALLELISM.min(self.parallelism.max(1)) } else { self.parallelism.max(1) };
        tracing::debug!(rate_mb_s = rate / 1e6, parallelism = limit, "first response measured");
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};

    use crate::download::ParallelPolicy;

    #[tokio::test]
    async fn a_part_whose_task_panics_fails_the_chunk_as_a_task_panic() {
        use crate::download::{sink::DirectorySink, ChunkDownloader, ErrorKind, Location};
        use crate::recording::{Recording, RecordingChunk};
        use http_body_util::{Empty, Full};
        const OBJECT: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
        // A client that serves every range of the object but panics on the part that starts at byte 16.
        let client = tower::service_fn(|request: Request<Empty<Bytes>>| async move {
            if request.uri().path().ends_with("acsmetadata") {
                return Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))));
            }
            let range = request.headers()["range"].to_str().unwrap().trim_start_matches("bytes=").to_owned();
            let (first, last) = range.split_once('-').unwrap();
            let first: usize = first.parse().unwrap();
            assert_ne!(first, 16, "a bug in the client");
            let last: usize = last.parse::<usize>().map_or(OBJECT.len() - 1, |last| last.min(OBJECT.len() - 1));
            let response = Response::builder()
                .status(206)
                .header("content-range", format!("bytes {first}-{last}/{}", OBJECT.len()))
                .header("etag", "\"a\"")
                .body(Full::new(Bytes::copy_from_slice(&OBJECT[first..=last])))
                .unwrap();
            Ok(response)
        });
        let dir = tempfile::tempdir().unwrap();
        let downloader = ChunkDownloader::new(client, DirectorySink::new(dir.path()))
            .parallel(Some(ParallelPolicy::new(8, 8, 2).fast_stream(None)));
        let recording = Recording::new("call").format("Wav").chunk(
            RecordingChunk::new("d", 0)
                .with_content_location("https://eu.asm.skype.com/v1/objects/d/content/audio")
                .with_metadata_location("https://eu.asm.skype.com/v1/objects/d/content/acsmetadata"),
        );
        let error = downloader.download(recording).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TaskPanicked);
        assert!(!error.is_retryable());
        assert_eq!(error.to_string(), "chunk 0 (`d`) content: a part's download task panicked");
        assert_eq!(error.location(), Some(Location::Content));
        crate::download::error::assert_no_repeats(&error);
        assert!(!dir.path().join("call/0-d.wav").exists());
    }
}
