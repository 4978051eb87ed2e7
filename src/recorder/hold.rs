//! A worker's hold on the job it works on: lost when a renewal finds the lease taken over, or once the wall clock
//! passes the lease's expiry, whichever the worker notices first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::journal::{Journal, Lease};

/// What the attempt checks before each write to the journal, and the renewal keeps up to date.
#[derive(Debug)]
pub(super) struct Hold {
    lost: AtomicBool,
    /// Milliseconds since the Unix epoch until which the lease holds; `u64::MAX` for one that never expires.
    until_ms: AtomicU64,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Hold {
    pub(super) fn new(lease: &Lease) -> Self {
        Self { lost: AtomicBool::new(false), until_ms: AtomicU64::new(lease.expires_at().map_or(u64::MAX, millis)) }
    }

    /// Whether the job may still be written: not taken over, and not past the lease by the wall clock (a process
    /// resumed after a long pause writes nothing before its renewal could notice).
    pub(super) fn is_held(&self, now: SystemTime) -> bool {
        !self.lost.load(Ordering::Acquire) && millis(now) < self.until_ms.load(Ordering::Acquire)
    }

    /// Gives the hold up: nothing more is written under it.
    pub(super) fn lose(&self) {
        self.lost.store(true, Ordering::Release);
    }

    /// Renews `lease` every `every` until it is lost: answers why.
    pub(super) async fn renew_until_lost<J: Journal>(
        &self,
        journal: &J,
        lease: &mut Lease,
        every: Duration,
    ) -> &'static str {
        loop {
            tokio::time::sleep(every).await;
            // Checked by the wall clock first: a process that was stopped past its lease must not write on.
            if !lease.is_held(SystemTime::now()) {
                self.lose();
                return "the lease lapsed before it could be renewed";
            }
            match journal.renew(lease).await {
                Ok(true) => {
                    self.until_ms.store(lease.expires_at().map_or(u64::MAX, millis), Ordering::Release);
                }
                Ok(false) => {
                    self.lose();
                    return "the lease was taken over";
                }
                Err(error) => tracing::warn!(%error, "cannot renew the job's lease; trying again"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JobId;

    #[test]
    fn an_exclusive_lease_holds_until_lost() {
        let hold = Hold::new(&Lease::exclusive(JobId::for_event("e")));
        assert!(hold.is_held(SystemTime::now() + Duration::from_secs(1 << 30)));
        hold.lose();
        assert!(!hold.is_held(SystemTime::now()));
    }
}
