//! The scheduler of a parallel download: runs the parts of one chunk, a bounded number at once, and hashes the
//! whole object in order while parts arrive out of order.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::plan::Missing;
use crate::client::{HttpClient, RequestBody};
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

/// Bytes gathered before one positional write.
const WRITE_BATCH: usize = 1 << 20;

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
}

impl<F> Scheduler<F> {
    /// Fetches `parts` (and the open `first` fetch of `0..first_end`, when given) into the writer. With `digests`,
    /// hashes every byte from 0 in order (`parts` and `first` must then cover the whole object); `progress` gets the
    /// bytes as they arrive.
    pub(crate) async fn run<S, B>(
        self,
        first: Option<(Fetch<S, B>, u64)>,
        parts: Missing,
        mut digests: Option<Digests>,
        mut progress: impl FnMut(u64),
    ) -> Result<Parallel, Error>
    where
        F: Fn(u64, u64) -> Fetch<S, B>,
        S: HttpClient<B>,
        B: RequestBody,
    {
        let (report, mut reports) = mpsc::channel::<Message>(32);
        let mut tasks = JoinSet::new();
        let mut queue = parts.peekable();
        // Parts started and not yet hashed (or, without hashing, not yet done), by their end.
        let mut open: Vec<u64> = Vec::new();
        let mut running = 0usize;
        let spawn = |tasks: &mut JoinSet<Result<(), Error>>, fetch: Fetch<S, B>, range: (u64, u64)| {
            let future = run_part(fetch, range, self.scope.clone(), self.writer.clone(), report.clone());
            tasks.spawn(future);
        };
        // While the first response shows how fast one connection is, no other part starts.
        let mut limit = self.parallelism.max(1);
        let mut probe = None;
        let mut first_end = 0;
        if let Some((fetch, end)) = first {
            spawn(&mut tasks, fetch, (0, end));
            open.push(end);
            running += 1;
            first_end = end;
            if let Some(fast) = self.fast_stream {
                probe = Some((fast, tokio::time::Instant::now(), 0u64));
                limit = 1;
            }
        }
        let mut next_hash = 0u64;
        let mut waiting: BTreeMap<u64, Bytes> = BTreeMap::new();
        let mut requests = 0u32;
        loop {
            while open.len() < limit {
                let Some((start, end)) = queue.next() else { break };
                spawn(&mut tasks, (self.part)(start, end), (start, end));
                open.push(end);
                running += 1;
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
                        if let Some(digests) = digests.as_mut() {
                            if offset == next_hash {
                                next_hash += bytes.len() as u64;
                                digests.push(bytes).await?;
                                while let Some(entry) = waiting.first_entry() {
                                    if *entry.key() != next_hash {
                                        break;
                                    }
                                    let bytes = entry.remove();
                                    next_hash += bytes.len() as u64;
                                    digests.push(bytes).await?;
                                }
                                open.retain(|end| *end > next_hash);
                            } else {
                                waiting.insert(offset, bytes);
                            }
                        }
                    }
                    Some(Message::Done { start, requests: made }) => {
                        requests = requests.saturating_add(made);
                        if let (0, Some((fast, since, seen))) = (start, probe.take()) {
                            limit = self.decide(fast, since, seen);
                        }
                        running -= 1;
                        if digests.is_none() {
                            // Without hashing, a part's slot frees once it is stored; the smallest end is as good as
                            // its own, since only the count matters.
                            open.pop();
                        }
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
        let hashes = match digests.as_mut() {
            Some(digests) => {
                if next_hash != self.total {
                    let detail = Detail::HashedShort { hashed: next_hash, total: self.total };
                    return Err(Error::new(ErrorKind::Sink, detail).in_scope(&self.scope));
                }
                Some(digests.finish().await?)
            }
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
