//! Waiting, bounded, for something another task or process does: the one polling loop every test uses.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long to sleep between two attempts: short next to the work waited for, long enough not to spin.
const POLL: Duration = Duration::from_millis(10);

/// Calls `attempt` until it answers `Some`, and returns that; panics with `what` when `timeout` has passed first.
///
/// The deadline is on the wall clock, so that a test on tokio's paused clock still waits for real work (a process,
/// a server, the file system) instead of timing out as soon as its runtime is idle.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, what: impl Display, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A `what` for [`eventually`] worked out only when the wait times out: the state at that moment (a log, the parts
/// so far) tells more than the state when the wait began.
pub(crate) fn at_timeout(describe: impl Fn() -> String) -> impl Display {
    struct AtTimeout<F>(F);
    impl<F: Fn() -> String> Display for AtTimeout<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&(self.0)())
        }
    }
    AtTimeout(describe)
}
