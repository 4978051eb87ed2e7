//! An injectable source of the current time, so that signing and freshness checks are testable.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A source of the current wall-clock time.
///
/// Implemented by [`SystemClock`] and by any `Fn() -> SystemTime + Send + Sync`, so a test can pin the time:
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use acs_recording::clock::{Clock, SharedClock};
///
/// let fixed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
/// let clock = SharedClock::new(move || fixed);
/// assert_eq!(clock.now(), fixed);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// A cheaply cloneable handle to a [`Clock`].
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    /// Wraps a clock.
    pub fn new(clock: impl Clock) -> Self {
        Self(Arc::new(clock))
    }

    /// The system clock.
    pub fn system() -> Self {
        Self::new(SystemClock)
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock for SharedClock {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedClock")
    }
}
