//! The crate's one source of randomness that needs no cryptography: backoff jitter and the emulator's ids.
//!
//! Values come from the standard library's randomly keyed hasher. A test on one thread can make them a seeded
//! sequence instead ([`seed_this_thread`]), so that a run that draws jitter is repeated exactly from its seed.

#[cfg(test)]
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

#[cfg(test)]
thread_local! {
    static SEEDED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A random `u64`.
pub(crate) fn next_u64() -> u64 {
    #[cfg(test)]
    if let Some(state) = SEEDED.with(Cell::get) {
        let next = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        SEEDED.with(|seeded| seeded.set(Some(next)));
        return splitmix(next);
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    splitmix(hasher.finish())
}

/// A uniform value in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Makes this thread's values the sequence of `seed` (`None`: random again), for a deterministic test.
#[cfg(test)]
pub(crate) fn seed_this_thread(seed: Option<u64>) {
    SEEDED.with(|seeded| seeded.set(seed));
}

/// SplitMix64's output function: a well-mixed `u64` from any `u64`.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_repeats_its_sequence_and_unit_stays_below_one() {
        seed_this_thread(Some(7));
        let first: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        seed_this_thread(Some(7));
        let again: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        assert_eq!(first, again);
        assert!((0..1000).map(|_| unit()).all(|u| (0.0..1.0).contains(&u)));
        seed_this_thread(None);
        assert_ne!(next_u64(), next_u64());
    }
}
