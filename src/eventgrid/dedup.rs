//! Dropping redelivered events by id: Event Grid delivers at least once, so the same event can come again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SharedClock};

/// Remembers the ids of recent events so that a handler can skip redeliveries.
///
/// Bounded twice: at most `max_entries` ids, each kept at most `max_age` (Event Grid retries for up to 24 hours).
/// The memory is **per process**: several replicas, or a restart, each see a redelivery as new, so handlers must
/// stay idempotent; use a shared store when that matters. Cloning shares the same memory.
///
/// ```
/// use std::time::Duration;
/// use acs_recording::eventgrid::Deduplicator;
///
/// let seen = Deduplicator::new(10_000, Duration::from_secs(24 * 60 * 60));
/// assert!(seen.first_delivery("7283825e-f8f1-4c61-a9ea-752c56890500"));
/// assert!(!seen.first_delivery("7283825e-f8f1-4c61-a9ea-752c56890500"));
/// // Handling failed: forget the id, so that Event Grid's retry is handled again.
/// seen.forget("7283825e-f8f1-4c61-a9ea-752c56890500");
/// assert!(seen.first_delivery("7283825e-f8f1-4c61-a9ea-752c56890500"));
/// ```
#[derive(Clone, Debug)]
pub struct Deduplicator {
    state: Arc<Mutex<State>>,
    max_entries: usize,
    max_age: Duration,
    clock: SharedClock,
}

#[derive(Debug, Default)]
struct State {
    /// Id to the sequence number of its live entry in `order`.
    seen: HashMap<Arc<str>, u64>,
    /// Oldest first; entries whose sequence number no longer matches `seen` were forgotten.
    order: VecDeque<(u64, Arc<str>, SystemTime)>,
    next: u64,
}

impl Default for Deduplicator {
    /// 10 000 ids for 24 hours.
    fn default() -> Self {
        Self::new(10_000, Duration::from_secs(24 * 60 * 60))
    }
}

impl Deduplicator {
    /// Remembers at most `max_entries` ids (at least one), each for at most `max_age`.
    pub fn new(max_entries: usize, max_age: Duration) -> Self {
        Self { state: Arc::default(), max_entries: max_entries.max(1), max_age, clock: SharedClock::system() }
    }

    /// Uses this clock for the age limit.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere does not poison it for us.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the id and says whether this is its first delivery within the limits.
    pub fn first_delivery(&self, id: &str) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        self.evict(&mut state, now);
        if state.seen.contains_key(id) {
            return false;
        }
        while state.order.len() >= self.max_entries {
            pop_oldest(&mut state);
        }
        let id: Arc<str> = Arc::from(id);
        let sequence = state.next;
        state.next += 1;
        state.seen.insert(id.clone(), sequence);
        state.order.push_back((sequence, id, now));
        true
    }

    /// Whether the id was seen within the limits, without recording it.
    pub fn contains(&self, id: &str) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        self.evict(&mut state, now);
        state.seen.contains_key(id)
    }

    /// Forgets an id, so that its next delivery counts as the first (call it when handling failed).
    pub fn forget(&self, id: &str) {
        self.lock().seen.remove(id);
    }

    /// The number of ids remembered.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        let mut state = self.lock();
        self.evict(&mut state, now);
        state.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, state: &mut State, now: SystemTime) {
        while let Some((_, _, at)) = state.order.front() {
            // A clock that went backwards makes entries younger, never older.
            if now.duration_since(*at).unwrap_or_default() < self.max_age {
                break;
            }
            pop_oldest(state);
        }
    }
}

fn pop_oldest(state: &mut State) {
    if let Some((sequence, id, _)) = state.order.pop_front() {
        if state.seen.get(&id) == Some(&sequence) {
            state.seen.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn manual_clock() -> (Arc<AtomicU64>, SharedClock) {
        let seconds = Arc::new(AtomicU64::new(1_000));
        let source = seconds.clone();
        let clock =
            SharedClock::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(source.load(Ordering::SeqCst)));
        (seconds, clock)
    }

    #[test]
    fn ids_older_than_the_age_limit_count_as_new() {
        let (seconds, clock) = manual_clock();
        let seen = Deduplicator::new(10, Duration::from_secs(60)).with_clock(clock);
        assert!(seen.first_delivery("a"));
        seconds.fetch_add(59, Ordering::SeqCst);
        assert!(!seen.first_delivery("a"));
        seconds.fetch_add(1, Ordering::SeqCst);
        assert!(!seen.contains("a"));
        assert!(seen.first_delivery("a"));
    }

    #[test]
    fn the_oldest_id_goes_when_the_size_limit_is_reached() {
        let seen = Deduplicator::new(2, Duration::from_secs(60));
        assert!(seen.first_delivery("a"));
        assert!(seen.first_delivery("b"));
        assert!(seen.first_delivery("c"));
        assert_eq!(seen.len(), 2);
        assert!(!seen.contains("a"));
        assert!(seen.contains("b") && seen.contains("c"));
    }

    #[test]
    fn forgotten_ids_leave_no_stale_entry_behind() {
        let seen = Deduplicator::new(2, Duration::from_secs(60));
        assert!(seen.first_delivery("a"));
        seen.forget("a");
        assert!(seen.first_delivery("a"));
        assert!(seen.first_delivery("b"));
        // The stale entry for the first "a" is evicted first and must not remove the live one.
        assert!(seen.contains("a"));
        assert!(seen.first_delivery("c"));
        assert!(!seen.contains("a"));
        assert_eq!(seen.len(), 2);
    }
}
