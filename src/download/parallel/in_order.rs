//! The in-order hash of a parallel download: parts arrive out of order, the SHA-256 covers the object from byte 0.
//! Bytes received ahead of the hash wait in memory while the [`MemoryBudget`](crate::download::MemoryBudget) holds
//! them (or their part's reservation covers them); otherwise they are only on disk, where their part wrote them,
//! and are read back in their turn.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::download::budget::Held;
use crate::download::digest::Digests;
use crate::download::error::{Detail, Error, ErrorKind, Scope};
use crate::download::sink::PositionalWriter;
use crate::Sha256Digest;

/// Bytes read back from disk at once.
const READ_BACK: u64 = 64 << 10;

/// A part started and not yet retired (done and hashed).
pub(super) struct Part {
    pub(super) end: u64,
    /// Its task stored every byte and said so.
    pub(super) done: bool,
    /// Started without a reservation: the one part a chunk may always run.
    pub(super) free: bool,
    /// Its reservation covers all its bytes (a sink that cannot read back): its bytes ahead always stay in memory.
    pub(super) whole: bool,
    /// What it holds of the budget: its streaming buffers, or all its bytes when `whole`.
    pub(super) reservation: Held,
}

/// The parts started and not retired, by their start.
pub(super) type Parts = BTreeMap<u64, Part>;

/// The part that holds byte `offset`.
fn part_of(parts: &Parts, offset: u64) -> Option<(u64, &Part)> {
    parts.range(..=offset).next_back().filter(|(_, part)| offset < part.end).map(|(start, part)| (*start, part))
}

/// What waits at one offset.
enum Waiting {
    /// Bytes kept in memory.
    Memory(Bytes),
    /// This many bytes, written by their part but not kept.
    Disk(u64),
}

/// The in-order hash and what waits for it.
pub(super) struct InOrder {
    digests: Digests,
    /// The next byte to hash.
    next: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// The budget held for bytes in memory that no reservation covers.
    held: Held,
    /// Bytes in memory that `held` holds for.
    kept: u64,
    /// Bytes further ahead of the hash than this are not kept even when the budget has room: they would pin memory
    /// for long, while reading them back costs little.
    window: u64,
    /// Whether the writer reads back what it wrote; if not, nothing can go to disk only.
    readable: bool,
}

impl InOrder {
    pub(super) fn new(digests: Digests, held: Held, window: u64, readable: bool) -> Self {
        Self { digests, next: 0, waiting: BTreeMap::new(), held, kept: 0, window, readable }
    }

    /// The next byte to hash: every byte before it is hashed.
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    /// Hashes `bytes` (from `offset`) now when their turn came, else keeps them in memory or leaves them to be
    /// read back; then hashes whatever their arrival made next.
    pub(super) async fn receive(
        &mut self,
        offset: u64,
        bytes: Bytes,
        parts: &Parts,
        writer: &dyn PositionalWriter,
        scope: &Scope,
    ) -> Result<(), Error> {
        if offset == self.next {
            self.next += bytes.len() as u64;
            self.digests.push(bytes).await?;
            return self.advance(parts, writer, scope).await;
        }
        let n = bytes.len() as u64;
        let (part_start, covered) = match part_of(parts, offset) {
            Some((start, part)) => (start, part.whole),
            None => (offset, false),
        };
        // A writer that cannot read back leaves no choice: its parts reserved all their bytes before starting.
        if covered || !self.readable {
            self.waiting.insert(offset, Waiting::Memory(bytes));
            return Ok(());
        }
        let near = (offset + n).saturating_sub(self.next) <= self.window;
        if near && self.held.try_grow(n) {
            self.kept += n;
            self.waiting.insert(offset, Waiting::Memory(bytes));
            debug_assert_eq!(self.kept, self.held.bytes(), "bytes kept in memory without the budget");
            return Ok(());
        }
        // Joined to the disk range just before, when it is of the same part: one read back, one entry.
        if let Some((start, Waiting::Disk(len))) = self.waiting.range_mut(part_start..offset).next_back() {
            if start + *len == offset {
                *len += n;
                return Ok(());
            }
        }
        self.waiting.insert(offset, Waiting::Disk(n));
        Ok(())
    }

    /// Hashes what waits from the next byte on: bytes in memory, and bytes on disk once their part is done.
    pub(super) async fn advance(
        &mut self,
        parts: &Parts,
        writer: &dyn PositionalWriter,
        scope: &Scope,
    ) -> Result<(), Error> {
        loop {
            let Some(entry) = self.waiting.first_entry() else { return Ok(()) };
            if *entry.key() != self.next {
                return Ok(());
            }
            match entry.get() {
                Waiting::Memory(_) => {
                    let Waiting::Memory(bytes) = entry.remove() else { unreachable!("matched above") };
                    let n = bytes.len() as u64;
                    let covered = part_of(parts, self.next).is_some_and(|(_, part)| part.whole) || !self.readable;
                    if !covered {
                        self.kept -= n;
                        self.held.shrink(n);
                    }
                    self.next += n;
                    self.digests.push(bytes).await?;
                }
                Waiting::Disk(len) => {
                    // Its part's writes may still be under way until the part says it is done.
                    if !part_of(parts, self.next).is_some_and(|(_, part)| part.done) {
                        return Ok(());
                    }
                    let end = self.next + *len;
                    entry.remove();
                    while self.next < end {
                        let n = (end - self.next).min(READ_BACK);
                        let bytes = writer.read_at(self.next, n as usize).await.map_err(|e| Error::sink(scope, e))?;
                        if bytes.len() as u64 != n {
                            let detail = Detail::HashedShort { hashed: self.next, total: end };
                            return Err(Error::new(ErrorKind::Sink, detail).in_scope(scope));
                        }
                        self.next += n;
                        self.digests.push(bytes).await?;
                    }
                }
            }
        }
    }

    /// The SHA-256 and, when computed, the MD5, once every byte up to `total` is hashed.
    pub(super) async fn finish(mut self, total: u64, scope: &Scope) -> Result<(Sha256Digest, Option<[u8; 16]>), Error> {
        if self.next != total {
            let detail = Detail::HashedShort { hashed: self.next, total };
            return Err(Error::new(ErrorKind::Sink, detail).in_scope(scope));
        }
        self.digests.finish().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::download::sink::{ReadFuture, WriteFuture};
    use crate::download::MemoryBudget;

    /// A writer over bytes already all written, counting what is read back.
    struct Written {
        bytes: Vec<u8>,
        readable: bool,
        read: AtomicU64,
        reads: Mutex<Vec<(u64, usize)>>,
    }

    impl PositionalWriter for Written {
        fn write_at(&self, _: u64, _: Vec<Bytes>) -> WriteFuture<'_> {
            Box::pin(async { Ok(()) })
        }
        fn complete(&self, _: u64, _: u64) -> WriteFuture<'_> {
            Box::pin(async { Ok(()) })
        }
        fn readable(&self) -> bool {
            self.readable
        }
        fn read_at(&self, offset: u64, len: usize) -> ReadFuture<'_> {
            self.read.fetch_add(len as u64, Ordering::Relaxed);
            self.reads.lock().unwrap().push((offset, len));
            let at = offset as usize;
            let bytes = Bytes::copy_from_slice(&self.bytes[at..at + len]);
            Box::pin(async move { Ok(bytes) })
        }
    }

    /// Four parts of 1000 bytes arriving last part first, in frames of 100, with a budget of 250 bytes; `window`
    /// bytes ahead of the hash at most are kept.
    async fn hash_backwards(readable: bool, window: u64) -> (Sha256Digest, Sha256Digest, Arc<Written>, MemoryBudget) {
        let object: Vec<u8> = (0..4000u32).map(|i| (i * 31 % 251) as u8).collect();
        let writer = Arc::new(Written { bytes: object.clone(), readable, read: 0.into(), reads: Mutex::default() });
        let budget = MemoryBudget::new(250);
        let mut parts = Parts::new();
        for start in (0..4000).step_by(1000) {
            // A writer that cannot read back covers its parts ahead with reservations of their own.
            let whole = !readable && start > 0;
            let part = Part { end: start + 1000, done: false, free: start == 0, whole, reservation: budget.hold() };
            parts.insert(start, part);
        }
        let mut hash = InOrder::new(Digests::new(Sha256::new(), None), budget.hold(), window, readable);
        let scope = Scope::default();
        for start in [3000u64, 2000, 1000, 0] {
            for at in (start..start + 1000).step_by(100) {
                let frame = Bytes::copy_from_slice(&object[at as usize..at as usize + 100]);
                hash.receive(at, frame, &parts, &*writer, &scope).await.unwrap();
                assert!(budget.available() <= budget.capacity());
            }
            parts.get_mut(&start).unwrap().done = true;
            hash.advance(&parts, &*writer, &scope).await.unwrap();
        }
        assert_eq!(hash.next(), 4000);
        let (sha, _) = hash.finish(4000, &scope).await.unwrap();
        (sha, Sha256Digest::from(Sha256::digest(&object)), writer, budget)
    }

    #[tokio::test]
    async fn bytes_ahead_beyond_the_budget_are_read_back_and_hash_like_one_pass() {
        let (sha, want, writer, budget) = hash_backwards(true, u64::MAX).await;
        assert_eq!(sha, want);
        // 250 bytes of budget keep two frames of 100: the other 2800 bytes ahead came back from the writer, each
        // part's run of them in one entry.
        assert_eq!(writer.read.load(Ordering::Relaxed), 2800);
        assert_eq!(*writer.reads.lock().unwrap(), [(1000, 1000), (2000, 1000), (3200, 800)]);
        assert_eq!((budget.peak(), budget.available()), (200, 250));
    }

    #[tokio::test]
    async fn bytes_beyond_the_window_are_read_back_even_with_budget_to_spare() {
        let (sha, want, writer, budget) = hash_backwards(true, 0).await;
        assert_eq!(sha, want);
        assert_eq!(writer.read.load(Ordering::Relaxed), 3000);
        assert_eq!((budget.peak(), budget.available()), (0, 250));
    }

    #[tokio::test]
    async fn a_writer_that_cannot_read_back_keeps_its_covered_parts_in_memory() {
        let (sha, want, writer, budget) = hash_backwards(false, u64::MAX).await;
        assert_eq!(sha, want);
        assert_eq!(writer.read.load(Ordering::Relaxed), 0);
        assert_eq!(budget.peak(), 0, "the parts' own reservations cover their bytes");
    }
}
