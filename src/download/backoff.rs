//! [`Backoff`]: the curve of waits between attempts, exponential with jitter. It knows nothing of how many attempts
//! are allowed: the [`RetryPolicy`](super::RetryPolicy) keeps those bounds.

use std::time::Duration;

/// Waits that double from `initial` up to `maximum`, with "equal jitter": the wait after failure `n` (1 for the
/// first) is a random value in `[d/2, d]`, with `d = min(initial * 2^(n-1), maximum)`. Half of the wait is
/// always kept, so that clients failing together spread out without ever retrying at once.
///
/// ```
/// use std::time::Duration;
/// use acs_recording::download::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(4), Duration::from_millis(800));
/// assert_eq!(backoff.ceiling(5), Duration::from_secs(1));
/// let wait = backoff.delay(3);
/// assert!(wait >= Duration::from_millis(200) && wait <= Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure, before jitter.
    pub initial: Duration,
    /// The longest wait, before jitter.
    pub maximum: Duration,
}

impl Backoff {
    /// Waits that double from `initial` up to `maximum`.
    pub const fn new(initial: Duration, maximum: Duration) -> Self {
        Self { initial, maximum }
    }

    /// The wait after `failures` failed attempts (1 for the first), before jitter: `initial * 2^(failures-1)`, at
    /// most `maximum`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << shift).min(self.maximum)
    }

    /// The wait after `failures` failed attempts (1 for the first): a random value between half of
    /// [`ceiling`](Self::ceiling) and all of it.
    pub fn delay(&self, failures: u32) -> Duration {
        let full = self.ceiling(failures);
        let half = full / 2;
        let jitter = if half.is_zero() { Duration::ZERO } else { half.mul_f64(crate::random::unit()) };
        half.saturating_add(jitter)
    }
}
