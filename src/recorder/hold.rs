//! A worker's hold on the job it works on: lost when a renewal finds the lease taken over, or once the wall clock
//! passes the lease's expiry, whichever the worker notices first.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::clock::{Clock as _, SharedClock};
use crate::journal::{Journal, Lease};

/// What the attempt checks before each write to the journal, and the renewal keeps up to date.
#[derive(Debug)]
pub(super) struct Hold {
    /// The recorder's clock: what "the wall clock" means for this hold.
    clock: SharedClock,
    lost: AtomicBool,
    /// Milliseconds since the Unix epoch until which the lease holds; `u64::MAX` for one that never expires.
    until_ms: AtomicU64,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Hold {
    pub(super) fn new(lease: &Lease, clock: SharedClock) -> Self {
        let until_ms = AtomicU64::new(lease.expires_at().map_or(u64::MAX, millis));
        Self { clock, lost: AtomicBool::new(false), until_ms }
    }

    /// Whether the job may still be written now, by the recorder's clock.
    pub(super) fn is_held_now(&self) -> bool {
        self.is_held(self.clock.now())
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

    /// Runs `work` while renewing `lease` every `every`: `Err(why)` as soon as the lease is lost (the work is
    /// dropped there), else what the work answered, once a renewal already sent has its answer.
    pub(super) async fn keep_while<J: Journal, T>(
        &self,
        journal: &J,
        lease: &mut Lease,
        every: Duration,
        work: impl Future<Output = T>,
    ) -> Result<T, &'static str> {
        let stop = Notify::new();
        let mut renewal = pin!(self.renew_until_lost(journal, lease, every, &stop));
        let work = pin!(work);
        tokio::select! {
            biased;
            reason = &mut renewal => Err(reason.unwrap_or("the renewal stopped")),
            answer = work => {
                // Never dropped in the middle of a request: a renewal the store applied but whose answer was dropped
                // leaves the lease at the old version, and the release then finds the claim changed and leaves it.
                stop.notify_one();
                renewal.await;
                Ok(answer)
            }
        }
    }

    /// Renews `lease` every `every` until it is lost (answers why) or `stop` is notified between renewals (answers
    /// `None`).
    async fn renew_until_lost<J: Journal>(
        &self,
        journal: &J,
        lease: &mut Lease,
        every: Duration,
        stop: &Notify,
    ) -> Option<&'static str> {
        loop {
            tokio::select! {
                biased;
                () = stop.notified() => return None,
                () = tokio::time::sleep(every) => {}
            }
            // Checked by the wall clock first: a process that was stopped past its lease must not write on.
            if !lease.is_held(self.clock.now()) {
                self.lose();
                return Some("the lease lapsed before it could be renewed");
            }
            // A renewal still unanswered when the lease ends (a partition, a store that hangs) is given up there:
            // the holder stops at its lease's expiry, as another replica may take the job over from then on, and
            // no request of this attempt is left to land after it.
            let lapses = lease.expires_at().map(|at| at.duration_since(self.clock.now()).unwrap_or_default());
            let renewed = tokio::select! {
                renewed = journal.renew(lease) => renewed,
                () = sleep_or_never(lapses) => {
                    self.lose();
                    return Some("the lease lapsed before it could be renewed");
                }
            };
            match renewed {
                Ok(true) => {
                    self.until_ms.store(lease.expires_at().map_or(u64::MAX, millis), Ordering::Release);
                }
                Ok(false) => {
                    self.lose();
                    return Some("the lease was taken over");
                }
                Err(error) => tracing::warn!(%error, "cannot renew the job's lease; trying again"),
            }
        }
    }
}

/// Sleeps `duration`, or for ever without one.
async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JobId, LeaseVersion};

    /// A shared journal whose renewals take a while (each one moves the lease to the next generation), or never
    /// get an answer (a partition).
    enum Renewals {
        Slow,
        Hanging,
    }

    impl Journal for Renewals {
        async fn insert(&self, jobs: &[crate::journal::Job]) -> std::io::Result<Vec<bool>> {
            Ok(vec![true; jobs.len()])
        }
        async fn update(&self, _: &crate::journal::Job) -> std::io::Result<()> {
            Ok(())
        }
        async fn get(&self, _: &JobId) -> std::io::Result<Option<crate::journal::Job>> {
            Ok(None)
        }
        async fn list(&self) -> std::io::Result<Vec<crate::journal::Job>> {
            Ok(Vec::new())
        }
        async fn remove(&self, _: &JobId) -> std::io::Result<()> {
            Ok(())
        }
        async fn renew(&self, lease: &mut Lease) -> std::io::Result<bool> {
            if let Renewals::Hanging = self {
                return std::future::pending().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let LeaseVersion::Generation(number) = lease.version else { unreachable!("a timed lease") };
            lease.renewed(SystemTime::now() + Duration::from_secs(3), LeaseVersion::Generation(number + 1));
            Ok(true)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_during_a_renewal_leaves_the_lease_at_the_renewed_version() {
        let duration = Duration::from_secs(3);
        let expires = SystemTime::now() + duration;
        let mut lease =
            Lease::timed(JobId::for_event("e"), "me".into(), duration, expires, LeaseVersion::Generation(1));
        let hold = Hold::new(&lease, SharedClock::system());
        // The renewal starts at 1 s and is answered at 1.1 s; the work ends in between.
        let work = tokio::time::sleep(Duration::from_millis(1050));
        let kept = hold.keep_while(&Renewals::Slow, &mut lease, duration / 3, work).await;
        assert_eq!(kept, Ok(()));
        // The store holds the renewed claim: the release must compare against it, or it finds the claim changed.
        assert_eq!(lease.version, LeaseVersion::Generation(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_unanswered_at_the_lease_expiry_stops_the_work_there() {
        let duration = Duration::from_secs(3);
        let expires = SystemTime::now() + duration;
        let mut lease =
            Lease::timed(JobId::for_event("e"), "me".into(), duration, expires, LeaseVersion::Generation(1));
        let hold = Hold::new(&lease, SharedClock::system());
        let started = tokio::time::Instant::now();
        let work = tokio::time::sleep(Duration::from_secs(60));
        let kept = tokio::time::timeout(
            Duration::from_secs(120),
            hold.keep_while(&Renewals::Hanging, &mut lease, duration / 3, work),
        )
        .await;
        assert_eq!(kept, Ok(Err("the lease lapsed before it could be renewed")));
        // Paused time leaves the wall clock where it was: the lease is counted from the first renewal (1 s) here.
        assert_eq!(started.elapsed(), duration / 3 + duration);
        assert!(!hold.is_held(SystemTime::now()));
    }

    #[test]
    fn an_exclusive_lease_holds_until_lost() {
        let hold = Hold::new(&Lease::exclusive(JobId::for_event("e")), SharedClock::system());
        assert!(hold.is_held(SystemTime::now() + Duration::from_secs(1 << 30)));
        hold.lose();
        assert!(!hold.is_held(SystemTime::now()));
    }
}
