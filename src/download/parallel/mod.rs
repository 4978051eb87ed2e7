//! The parallel ranged download of one chunk: its policy ([`ParallelPolicy`]), the plan of the parts still
//! missing (`plan.rs`), the scheduler that runs them within the [`MemoryBudget`](crate::download::MemoryBudget)
//! (`scheduler.rs`), and the in-order hash of the whole object while parts arrive out of order (`in_order.rs`).

mod in_order;
mod plan;
mod scheduler;

pub(crate) use plan::missing;
pub(crate) use scheduler::{Parallel, Scheduler};

/// How a large chunk is fetched as fixed-size ranges, several at once.
///
/// The first request of a chunk asks for its first `threshold` bytes. A chunk that is no larger is done in that one
/// request; a larger one goes on with parts of `part_size` bytes, `parallelism` requests in flight (the first one
/// included), every part pinned with `If-Match` to the version of the first response. The SHA-256 still covers the
/// whole object in order: bytes that arrive ahead of their turn wait in memory while the process's
/// [`MemoryBudget`](crate::download::MemoryBudget) holds them, and are otherwise read back from the written file in
/// their turn; when the budget is spent a chunk goes on with fewer parts in flight, at least one.
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
    /// uses `parallelism`. 256 MB/s (`256_000_000`) by default.
    pub fast_stream: Option<u64>,
}

impl Default for ParallelPolicy {
    /// Chunks over 32 MiB in parts of 8 MiB, 8 at once; a first response of 256 MB/s or more keeps a chunk to two.
    fn default() -> Self {
        Self { threshold: 32 << 20, part_size: 8 << 20, parallelism: 8, fast_stream: Some(DEFAULT_FAST_STREAM) }
    }
}

impl ParallelPolicy {
    /// A policy with these sizes (each at least 1), and the default `fast_stream` of 256 MB/s.
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

    /// The media bytes of the parts one chunk has in flight besides the one being hashed (`parallelism - 1`
    /// parts): what it could hold ahead of the hash without a budget. The
    /// [`MemoryBudget`](crate::download::MemoryBudget) bounds what every chunk of the process holds together.
    pub fn memory_bound(&self) -> u64 {
        (self.parallelism.max(1) as u64 - 1).saturating_mul(self.part_size)
    }
}

/// 256 MB/s: a single connection this fast already keeps the hash (one core) busy.
pub(crate) const DEFAULT_FAST_STREAM: u64 = 256_000_000;
