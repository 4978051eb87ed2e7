//! The network between the storage and its clients: a bandwidth per connection and a latency per answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The network between the storage and its clients, as one connection sees it: a bandwidth limit per response
/// (HTTP/1.1 sends one response at a time on a connection, so this is per connection) and a latency added before
/// each answer. Set it for the whole storage ([`Storage::set_link`](super::Storage::set_link)) or for one document
/// ([`Storage::set_document_link`](super::Storage::set_document_link)), to test and measure downloads over a long, slow link on loopback.
///
/// ```
/// use std::time::Duration;
/// use acs_recording::emulator::Link;
///
/// let link = Link::unlimited().bandwidth(40_000_000).latency(Duration::from_millis(30));
/// assert_eq!(link.bytes_per_second(), Some(40_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    pub(super) bytes_per_second: Option<u64>,
    pub(super) latency: Duration,
}

impl Link {
    /// No limit and no added latency (the default).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Sends each response's body at most this fast.
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bytes_per_second = Some(bytes_per_second.max(1));
        self
    }

    /// Waits this long before each answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The bandwidth limit, if any.
    pub fn bytes_per_second(&self) -> Option<u64> {
        self.bytes_per_second
    }

    /// The added latency.
    pub fn added_latency(&self) -> Duration {
        self.latency
    }
}

/// The latency an answer waits for, carried from the storage's handler to its service future.
#[derive(Debug, Clone, Copy)]
pub(super) struct Latency(pub(super) Duration);

/// Paces a body to a bandwidth: each frame waits until the bytes before it would have crossed the link.
pub(super) struct Throttle {
    pub(super) rate: u64,
    started: Option<tokio::time::Instant>,
    pub(super) sent: u64,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Throttle {
    pub(super) fn new(rate: u64) -> Self {
        Self { rate: rate.max(1), started: None, sent: 0, wait: None }
    }

    /// Ready once the next frame may go.
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let started = *self.started.get_or_insert_with(tokio::time::Instant::now);
        let due = started + Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        if tokio::time::Instant::now() >= due {
            self.wait = None;
            return Poll::Ready(());
        }
        let wait = self.wait.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        wait.as_mut().reset(due);
        match wait.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.wait = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
