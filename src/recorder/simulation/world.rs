//! The simulated world: one seeded source of choices, the simulation's clock (tokio's paused time, skewed per
//! replica), and ACS storage served in process.

use std::future::Ready;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower::Service;

use crate::emulator::{Storage, StorageBody};

/// Choices and time, shared by every part of one run.
#[derive(Clone)]
pub(super) struct World {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<u64>,
    started: tokio::time::Instant,
    epoch: SystemTime,
    /// Each replica's clock error, in milliseconds (positive: ahead).
    skews: Vec<i64>,
}

impl World {
    /// A world for `seed`, with `replicas` clocks skewed by up to `max_skew`.
    pub(super) fn new(seed: u64, replicas: usize, max_skew: Duration) -> Self {
        let mut state = seed;
        let spread = max_skew.as_millis() as u64;
        let skews = (0..replicas).map(|_| (step(&mut state) % (2 * spread + 1)) as i64 - spread as i64).collect();
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                started: tokio::time::Instant::now(),
                epoch: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000),
                skews,
            }),
        }
    }

    pub(super) fn next(&self) -> u64 {
        step(&mut self.inner.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A number in `0..n` (0 for 0).
    pub(super) fn below(&self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// True `per_thousand` times in a thousand.
    pub(super) fn chance(&self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }

    /// A duration in `0..max`, in whole milliseconds.
    pub(super) fn duration(&self, max: Duration) -> Duration {
        Duration::from_millis(self.below(max.as_millis() as u64))
    }

    /// The true time.
    pub(super) fn now(&self) -> SystemTime {
        self.inner.epoch + self.inner.started.elapsed()
    }

    /// The time by replica `replica`'s clock.
    pub(super) fn replica_now(&self, replica: usize) -> SystemTime {
        let skew = self.inner.skews.get(replica).copied().unwrap_or(0);
        let now = self.now();
        match skew >= 0 {
            true => now + Duration::from_millis(skew as u64),
            false => now - Duration::from_millis(skew.unsigned_abs()),
        }
    }

    /// A point where other tasks may run first, for some simulated milliseconds or none: every call into the
    /// journal, the sink or the storage goes through one, so that the seed decides the interleaving.
    pub(super) async fn pause(&self) {
        match self.below(4) {
            0 => {}
            1 => tokio::task::yield_now().await,
            n => tokio::time::sleep(Duration::from_millis(n * self.below(40))).await,
        }
    }
}

/// The next value of a SplitMix64 sequence.
fn step(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    crate::random::splitmix(*state)
}

/// ACS storage as an HTTP client service: each request answered in process by the emulator's storage (its faults
/// included), and connections that fail now and then.
#[derive(Clone)]
pub(super) struct StorageClient {
    pub(super) storage: Storage,
    pub(super) world: World,
}

impl Service<Request<Empty<Bytes>>> for StorageClient {
    type Response = Response<StorageBody>;
    type Error = std::io::Error;
    type Future = Ready<Result<Response<StorageBody>, std::io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Empty<Bytes>>) -> Self::Future {
        if self.world.chance(15) {
            let refused = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated connection reset");
            return std::future::ready(Err(refused));
        }
        let (parts, _) = request.into_parts();
        std::future::ready(Ok(self.storage.handle(Request::from_parts(parts, Full::new(Bytes::new())))))
    }
}
