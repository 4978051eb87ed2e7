//! Polls a future in place, without a runtime, for benchmarks whose futures complete at once.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Polls `future` once; it must complete without waiting. The waker is the no-op one, which allocates nothing, so
/// that only the future's own work is measured.
pub(crate) fn run<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmark future did not complete at once"),
    }
}
