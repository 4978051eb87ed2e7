//! The parallel ranged download of one chunk: the part plan, the scheduler, and the SHA-256 over the whole object
//! computed in order while parts arrive out of order.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::digest::Digests;
use super::error::{Detail, Error, ErrorKind, Scope, Task};
use super::fetch::{Event, Fetch};
use super::sink::PositionalWriter;
use crate::client::{HttpClient, RequestBody};

/// How a large chunk is fetched as fixed-size ranges, several at once.
///
/// The first request of a chunk asks for its first `threshold` bytes. A chunk that is no larger is done in that one
/// request; a larger one goes on with parts of `part_size` bytes, `parallelism` requests in flight (the first one
/// included), every part pinned with `If-Match` to the version of the first response. The SHA-256 still covers the
/// whole object in order: a part that arrives ahead of its turn waits in memory, and no new part starts until one
/// was hashed, so a chunk holds at most [`ParallelPolicy::memory_bound`] bytes of parts however large it is (plus
/// connection and hashing buffers: 76–81 MiB peak RSS in all with the defaults, at 256 MiB as at 1 GiB, in the
/// download benchmark).
///
/// ```
/// use acs_recording::download::ParallelPolicy;
///
/// let policy = ParallelPolicy::default();
/// assert_eq!((policy.threshold, policy.part_size, policy.parallelism), (32 << 20, 8 << 20, 8));
/// assert_eq!(policy.memory_bound(), 56 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParallelPolicy {
    /// Chunks larger than this are fetched in parts; the first request asks for this many bytes.
    pub threshold: u64,
    /// The size of every part after the first.
    pub part_size: u64,
    /// Requests in flight for one chunk, the first one included.
    pub parallelism: usize,
    /// A first response that delivers at least this many bytes per second over its first 4 MiB keeps the chunk to
    /// two requests at a time: on such a link more connections only compete with the hash for CPU. `None` always
    /// uses `parallelism`.
    pub fast_stream: Option<u64>,
}

impl Default for ParallelPolicy {
    /// Chunks over 32 MiB in parts of 8 MiB, 8 at once.
    fn default() -> Self {
        Self { threshold: 32 << 20, part_size: 8 << 20, parallelism: 8, fast_stream: Some(DEFAULT_FAST_STREAM) }
    }
}

impl ParallelPolicy {
    /// A policy with these sizes (each at least 1).
    pub fn new(threshold: u64, part_size: u64, parallelism: usize) -> Self {
        Self {
            threshold: threshold.max(1),
            part_size: part_size.max(1),
            parallelism: parallelism.max(1),
            fast_stream: Some(DEFAULT_FAST_STREAM),
        }
    }

    /// Sets the rate of a first response past which the chunk keeps to two requests at a time (`None`: never).
    pub fn fast_stream(mut self, bytes_per_second: Option<u64>) -> Self {
        self.fast_stream = bytes_per_second;
        self
    }

    /// The most media bytes one chunk holds in memory: parts received ahead of the hash, at most
    /// `parallelism - 1` of them.
    pub fn memory_bound(&self) -> u64 {
        (self.parallelism.max(1) as u64 - 1).saturating_mul(self.part_size)
    }
}

/// 256 MB/s: a single connection this fast already keeps the hash (one core) busy on the machines we measure on.
pub const DEFAULT_FAST_STREAM: u64 = 256_000_000;

/// Bytes of the first response after which its rate decides how many requests the chunk uses.
const PROBE: u64 = 4 << 20;

/// Requests at a time on a fast link: one hashed while the next arrives.
const FAST_PARALLELISM: usize = 2;

/// The ranges of `from..total` not covered by `done`, cut into parts of at most `part_size` bytes, in order. Lazy:
/// `total` comes from the server, and a hostile one may announce 2^64 bytes, so the parts are never all listed at
/// once; only the gaps between done extents are (at most one more than `done`).
pub(crate) fn missing(total: u64, from: u64, done: &[(u64, u64)], part_size: u64) -> Missing {
    let mut done: Vec<(u64, u64)> = done.iter().copied().filter(|(start, end)| start < end).collect();
    done.sort_unstable();
    let mut gaps = Vec::with_capacity(done.len() + 1);
    let mut at = from;
    for (start, end) in done {
        if start > at {
            gaps.push((at, start.min(total)));
        }
        at = at.max(end);
    }
    if at < total {
        gaps.push((at, total));
    }
    gaps.retain(|(start, end)| start < end);
    Missing { gaps: gaps.into_iter(), current: None, part: part_size.max(1) }
}

/// The parts [`missing`] yields, one at a time.
#[derive(Debug)]
pub(crate) struct Missing {
    gaps: std::vec::IntoIter<(u64, u64)>,
    /// What is left of the gap being cut.
    current: Option<(u64, u64)>,
    part: u64,
}

impl Iterator for Missing {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        loop {
            match self.current {
                Some((at, end)) if at < end => {
                    let stop = end.min(at.saturating_add(self.part));
                    self.current = Some((stop, end));
                    return Some((at, stop));
                }
                _ => self.current = Some(self.gaps.next()?),
            }
        }
    }
}

/// What a part task reports.
enum Message {
    Data { offset: u64, bytes: Bytes },
    Done { start: u64, requests: u32 },
}

/// How a parallel download ended.
pub(crate) enum Parallel {
    /// Every part is stored; the hashes when they were computed on the way.
    Complete { requests: u32, hashes: Option<([u8; 32], Option<[u8; 16]>)> },
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

    #[test]
    fn missing_ranges_are_cut_into_parts_in_order() {
        let parts = |total, from, done: &[(u64, u64)], part| missing(total, from, done, part).collect::<Vec<_>>();
        assert_eq!(parts(10, 0, &[], 4), [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(parts(10, 4, &[], 4), [(4, 8), (8, 10)]);
        assert_eq!(parts(12, 0, &[(4, 8)], 4), [(0, 4), (8, 12)]);
        assert_eq!(parts(12, 0, &[(8, 12), (0, 4)], 3), [(4, 7), (7, 8)]);
        assert_eq!(parts(8, 0, &[(0, 8)], 4), []);
        assert_eq!(parts(1, 0, &[], 4), [(0, 1)]);
        assert_eq!(parts(0, 0, &[], 4), []);
        assert_eq!(parts(10, 0, &[(2, 3), (2, 5)], 100), [(0, 2), (5, 10)]);
    }

    #[test]
    fn a_server_announcing_an_object_of_two_to_the_64_bytes_costs_no_memory() {
        let mut parts = missing(u64::MAX - 1, 0, &[], 1);
        assert_eq!(parts.next(), Some((0, 1)));
        assert_eq!(parts.next(), Some((1, 2)));
        let mut tail = missing(u64::MAX - 1, u64::MAX - 3, &[], 8 << 20);
        assert_eq!(tail.next(), Some((u64::MAX - 3, u64::MAX - 1)));
        assert_eq!(tail.next(), None);
    }

    #[tokio::test]
    async fn a_part_whose_task_panics_fails_the_chunk_as_a_task_panic() {
        use crate::download::{ChunkDownloader, DirectorySink, ErrorKind, Location};
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_missing_parts_and_the_done_ranges_cover_the_object_once(
            total in 0u64..10_000,
            part in 1u64..1_000,
            done in proptest::collection::vec((0u64..10_000, 0u64..2_000), 0..8),
        ) {
            let done: Vec<(u64, u64)> = done.into_iter().map(|(start, len)| (start.min(total), (start + len).min(total))).collect();
            let parts: Vec<_> = missing(total, 0, &done, part).collect();
            let mut covered = vec![0u8; total as usize];
            for (start, end) in &done {
                for byte in &mut covered[*start as usize..*end as usize] {
                    *byte = 1;
                }
            }
            let mut at = 0;
            for (start, end) in &parts {
                prop_assert!(start < end && end - start <= part && *start >= at && *end <= total);
                at = *end;
                for byte in &mut covered[*start as usize..*end as usize] {
                    prop_assert_eq!(*byte, 0, "a part overlaps a done range");
                    *byte = 1;
                }
            }
            prop_assert!(covered.iter().all(|byte| *byte == 1));
        }
    }
}
