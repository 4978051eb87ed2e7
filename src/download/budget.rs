//! The memory budget that every parallel download of a process draws its buffered parts from.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// The default budget: 64 MiB for the parts of every parallel download of a process together.
pub const DEFAULT_MEMORY_BUDGET: u64 = 64 << 20;

/// Bytes that the parallel downloads of a process may hold in memory, all chunks and workers together.
///
/// A part of a parallel download holds some of the budget while it is in flight and for the bytes it received ahead
/// of the in-order hash. When the budget is spent a chunk goes on with fewer parts (always at least one, which
/// streams into the hash in constant memory), and bytes received ahead of the hash are read back from the written
/// file when their turn comes instead of waiting in memory. Clones share the same budget; without one,
/// downloaders use [`MemoryBudget::global`].
///
/// ```
/// use acs_recording::download::MemoryBudget;
///
/// let budget = MemoryBudget::new(16 << 20);
/// assert_eq!((budget.capacity(), budget.available(), budget.peak()), (16 << 20, 16 << 20, 0));
/// assert_eq!(MemoryBudget::global().capacity(), 64 << 20);
/// ```
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    /// One permit per byte.
    bytes: Semaphore,
    capacity: u64,
    peak: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `bytes` (at most `usize::MAX >> 3`, tokio's largest semaphore).
    pub fn new(bytes: u64) -> Self {
        let capacity = bytes.min(Semaphore::MAX_PERMITS as u64);
        let inner = Inner { bytes: Semaphore::new(capacity as usize), capacity, peak: AtomicU64::new(0) };
        Self { inner: Arc::new(inner) }
    }

    /// The budget of the process, [`DEFAULT_MEMORY_BUDGET`]: what a downloader uses unless given another.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<MemoryBudget> = OnceLock::new();
        GLOBAL.get_or_init(|| MemoryBudget::new(DEFAULT_MEMORY_BUDGET)).clone()
    }

    /// The bytes this budget allows.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The bytes not held right now.
    pub fn available(&self) -> u64 {
        self.inner.bytes.available_permits() as u64
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> u64 {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// Holds nothing yet; grows with [`Held::try_grow`].
    pub(crate) fn hold(&self) -> Held {
        Held { budget: self.clone(), bytes: 0 }
    }
}

impl Default for MemoryBudget {
    /// The [global](MemoryBudget::global) budget.
    fn default() -> Self {
        Self::global()
    }
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("peak", &self.peak())
            .finish()
    }
}

/// Bytes held from a budget, given back when dropped.
pub(crate) struct Held {
    budget: MemoryBudget,
    bytes: u64,
}

impl Held {
    /// Holds `n` more bytes if the budget has them now; never waits.
    pub(crate) fn try_grow(&mut self, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(permits) = u32::try_from(n) else { return false };
        let inner = &self.budget.inner;
        match inner.bytes.try_acquire_many(permits) {
            Ok(permit) => {
                // The bytes are given back by `shrink`, not by the permit's drop.
                permit.forget();
                self.bytes += n;
                let in_use = inner.capacity - inner.bytes.available_permits() as u64;
                inner.peak.fetch_max(in_use, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives `n` of the held bytes back.
    pub(crate) fn shrink(&mut self, n: u64) {
        let n = n.min(self.bytes);
        if n > 0 {
            self.bytes -= n;
            self.budget.inner.bytes.add_permits(n as usize);
        }
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shrink(self.bytes);
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held").field("bytes", &self.bytes).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_come_back_on_shrink_and_drop_and_the_peak_stays() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.hold();
        assert!(a.try_grow(60));
        let mut b = budget.hold();
        assert!(!b.try_grow(41), "more than is left");
        assert!(b.try_grow(40));
        assert_eq!((budget.available(), budget.peak()), (0, 100));
        a.shrink(10);
        assert_eq!((a.bytes(), budget.available()), (50, 10));
        drop(a);
        drop(b);
        assert_eq!((budget.available(), budget.peak()), (100, 100));
        assert!(!budget.hold().try_grow(101));
        assert!(budget.hold().try_grow(0));
    }
}
