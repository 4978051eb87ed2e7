//! A worker's hold on a job while it works on it.

use std::time::{Duration, SystemTime};

use super::JobId;

/// A worker's hold on a job, from [`Journal::claim`](super::Journal::claim): while it is held (and renewed in
/// time), no other worker sharing the journal works on the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    job: JobId,
    owner: String,
    expires_at: Option<SystemTime>,
    duration: Option<Duration>,
    pub(crate) version: LeaseVersion,
}

/// What a renewal or release compares against, per store.
#[derive(Debug, Clone, PartialEq, Eq)]
// Only the shared journal (feature `object-store`) makes timed leases.
#[cfg_attr(not(feature = "object-store"), allow(dead_code))]
pub(crate) enum LeaseVersion {
    /// Held for the journal's lifetime: nothing to compare.
    Exclusive,
    /// The claim object's ETag (and version), for a compare-and-swap.
    ETag { e_tag: Option<String>, version: Option<String> },
    /// The generation key this lease wrote.
    Generation(u64),
}

impl Lease {
    /// A lease that never expires: for a journal only one process holds (such as the
    /// [`FileJournal`](super::FileJournal)).
    pub fn exclusive(job: JobId) -> Self {
        Self { job, owner: String::new(), expires_at: None, duration: None, version: LeaseVersion::Exclusive }
    }

    /// A lease whose claim in the store ends at `expires_at`: computed before the request that wrote the claim was
    /// sent, so that the holder never counts on more than the store grants.
    #[cfg_attr(not(feature = "object-store"), allow(dead_code))]
    pub(crate) fn timed(
        job: JobId,
        owner: String,
        duration: Duration,
        expires_at: SystemTime,
        version: LeaseVersion,
    ) -> Self {
        Self { job, owner, expires_at: Some(expires_at), duration: Some(duration), version }
    }

    /// The job it holds.
    pub fn job(&self) -> &JobId {
        &self.job
    }

    /// Who holds it (empty for an exclusive lease).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When it lapses unless renewed; `None` for an exclusive lease.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// How long each renewal extends it; `None` for an exclusive lease, which needs no renewal.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// Whether it is still held by the clock: exclusive leases always are.
    pub fn is_held(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Renewed until `expires_at`, the expiry of the renewed claim in the store.
    #[cfg_attr(not(feature = "object-store"), allow(dead_code))]
    pub(crate) fn renewed(&mut self, expires_at: SystemTime, version: LeaseVersion) {
        if self.duration.is_some() {
            self.expires_at = Some(expires_at);
        }
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_lease_is_always_held_and_a_timed_one_lapses() {
        let id = JobId::for_event("e");
        let exclusive = Lease::exclusive(id.clone());
        let far = SystemTime::now() + Duration::from_secs(1 << 30);
        assert!(exclusive.is_held(far));
        assert_eq!(exclusive.duration(), None);
        let expires = SystemTime::now() + Duration::from_secs(5);
        let timed = Lease::timed(id, "me".into(), Duration::from_secs(5), expires, LeaseVersion::Generation(1));
        assert!(timed.is_held(SystemTime::now()));
        assert!(!timed.is_held(SystemTime::now() + Duration::from_secs(6)));
    }
}
