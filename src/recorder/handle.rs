//! [`RecorderHandle`]: the recorder's workers running in a task of their own.

use std::fmt;
use std::io;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The recorder's workers running in a tokio task, from [`Recorder::spawn`](super::Recorder::spawn).
///
/// [`shutdown`](RecorderHandle::shutdown) stops them gracefully and waits. Dropping the handle starts the same
/// shutdown without waiting for it.
#[must_use = "dropping the handle shuts the workers down"]
pub struct RecorderHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl RecorderHandle {
    pub(crate) fn new(stop: oneshot::Sender<()>, task: JoinHandle<io::Result<()>>) -> Self {
        Self { stop: Some(stop), task }
    }

    /// Stops the workers: the intake answers 503 from now on, running downloads get the
    /// [grace period](super::RecorderBuilder::shutdown_grace) to finish (then stop where they are, to resume on
    /// the next start), and this returns once the workers are gone. It fails as [`Recorder::run`] fails (when the
    /// recorder was already running).
    ///
    /// [`Recorder::run`]: super::Recorder::run
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Aborted: stopped where it was, as a crash would.
            Err(_) => Ok(()),
        }
    }

    /// Whether the workers stopped (after a shutdown, or because they could not start).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the workers at once, where they are, as a crash would (for tests of recovery): the journal and the
    /// sink's partial files let the next start resume.
    #[cfg(all(test, feature = "emulator"))]
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

impl fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecorderHandle").field("finished", &self.task.is_finished()).finish_non_exhaustive()
    }
}
