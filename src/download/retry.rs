//! When and how long to wait before the next attempt: the bounds of a [`RetryPolicy`], counted by a `RetryState`.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

pub(crate) use super::attempt::{Exhausted, Failure};
use super::backoff::Backoff;
use super::error::{Detail, Error, ErrorKind};
use crate::clock::{Clock, SharedClock};

/// Bounds and pacing of retries for one chunk.
///
/// Every failed request counts as one attempt: a connection reset, a body cut short, a read timeout, a transient
/// status (408, 429, 500, 502, 503, 504) or an object that changed. The waits between attempts follow the
/// [`Backoff`] curve (`backoff`): a random value in `[d/2, d]` with `d = min(initial * 2^(n-1), maximum)` before
/// attempt `n + 1`, or the server's `Retry-After` when it asks for longer, but never more than the backoff's
/// `maximum`: a server asking for an absurd wait gets a bounded one, and the recording is not given up for it.
///
/// Both bounds count from the last progress: the chunk fails once `max_attempts` requests failed in a row without
/// delivering new bytes, or when the next wait would end more than `max_total` after the chunk started or after the
/// last failure that followed new bytes. An attempt that failed after delivering bytes beyond any earlier failure
/// starts the count and the time budget again, so a long transfer that keeps moving never runs out of either,
/// while one that makes no progress still gives up.
///
/// ```
/// use std::time::Duration;
/// use acs_recording::download::RetryPolicy;
///
/// let policy = RetryPolicy::default().max_attempts(4).initial_backoff(Duration::from_millis(50));
/// assert_eq!(policy.max_attempts, 4);
///
/// let mut patient = RetryPolicy::default();
/// patient.max_total = Duration::from_secs(3600);
/// assert_eq!(patient.read_timeout, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Failed requests in a row without new bytes after which the chunk fails (at least 1 is used).
    pub max_attempts: u32,
    /// The waits between attempts; its `maximum` also bounds a server's `Retry-After`.
    pub backoff: Backoff,
    /// The longest time a chunk may go without progress, waits included.
    pub max_total: Duration,
    /// How long to wait for a response head or for the next bytes of a body.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 250 ms doubling up to 30 s, 10 minutes in all, 60 s without a byte is a timeout.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            max_total: Duration::from_secs(600),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: the first failure is final.
    pub fn never() -> Self {
        Self::default().max_attempts(1)
    }

    /// Sets the number of failed requests in a row without new bytes after which the chunk fails (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the waits between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the delay before the second attempt (the backoff's `initial`).
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.backoff.initial = delay;
        self
    }

    /// Sets the longest wait between two attempts, a server's `Retry-After` included (the backoff's `maximum`).
    pub fn max_backoff(mut self, delay: Duration) -> Self {
        self.backoff.maximum = delay;
        self
    }

    /// Sets the longest time a chunk may go without progress, waits included: counted from its start, and again from
    /// each failure that followed new bytes.
    pub fn max_total(mut self, total: Duration) -> Self {
        self.max_total = total;
        self
    }

    /// Sets how long to wait for a response head or for the next bytes of a body before the attempt counts as
    /// failed.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The jittered delay after `failures` failed attempts, or the server's `Retry-After` when longer, capped at
    /// the backoff's `maximum`.
    pub(crate) fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let computed = self.backoff.delay(failures);
        match retry_after {
            // `Retry-After` is input: `18446744073709551615` must not become a wait that outlives the process.
            Some(asked) if asked > computed => asked.min(self.backoff.maximum.max(computed)),
            _ => computed,
        }
    }
}

/// The retry state of one object, shared by the fetch and the `DELETE`: its failed attempts and the start of its
/// time budget, both since the last progress, and the clock that dates a server's `Retry-After`. The bounds
/// themselves are the [`RetryPolicy`]'s, which never changes while this state does.
///
/// Waits and the time budget run on tokio's clock (paused in tests); the wall-clock time that an HTTP-date
/// `Retry-After` is read against comes from the injected [`Clock`].
#[derive(Debug)]
pub(crate) struct RetryState {
    policy: RetryPolicy,
    clock: SharedClock,
    failures: u32,
    since: Instant,
    /// The most bytes delivered at any earlier failure (or already stored when resuming): going past it is progress.
    delivered: u64,
}

impl RetryState {
    /// No failure yet; the time budget starts now.
    pub(crate) fn new(policy: RetryPolicy, clock: SharedClock) -> Self {
        Self { policy, clock, failures: 0, since: Instant::now(), delivered: 0 }
    }

    /// The bounds this state counts against.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The first `bytes` were there before any attempt (a resume): delivering them again is no progress.
    pub(crate) fn already_delivered(&mut self, bytes: u64) {
        self.delivered = self.delivered.max(bytes);
    }

    /// Failed attempts counted since the last progress.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait a response asks for with `Retry-After`, read against the injected clock.
    pub(crate) fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers, self.clock.now())
    }

    /// Counts one failed attempt, after `delivered` bytes in all, and answers the wait before the next one, or why
    /// there is none.
    pub(crate) fn fail(&mut self, delivered: u64, retry_after: Option<Duration>) -> Result<Duration, Exhausted> {
        if delivered > self.delivered {
            // New bytes since the previous failure: a slow transfer that keeps moving is not a failing one, so the
            // count and the budget start again. Bytes delivered again after a restart do not count.
            self.delivered = delivered;
            self.failures = 0;
            self.since = Instant::now();
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.max_attempts {
            return Err(Exhausted::Attempts(self.failures));
        }
        let delay = self.policy.delay(self.failures, retry_after);
        // Checked: `max_total` and the delay are configuration and input, their sum may not fit.
        let resumes_at = self.since.elapsed().checked_add(delay);
        if resumes_at.is_none_or(|at| at > self.policy.max_total) {
            return Err(Exhausted::Budget(self.policy.max_total));
        }
        Ok(delay)
    }

    /// Counts `failure` and sleeps until the next attempt may go, or answers the error that ends the retries (its
    /// source is `failure`; the caller adds the chunk and the host).
    pub(crate) async fn wait_after(
        &mut self,
        failure: Failure,
        delivered: u64,
        retry_after: Option<Duration>,
    ) -> Result<(), Error> {
        match self.fail(delivered, retry_after) {
            Ok(delay) => {
                tracing::warn!(
                    failures = self.failures,
                    delivered,
                    delay_ms = delay.as_millis() as u64,
                    cause = %failure,
                    "attempt failed, retrying"
                );
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Err(why) => Err(Error::new(ErrorKind::RetriesExhausted, Detail::GaveUp(why))
                .with_status(failure.status())
                .with_attempts(self.failures)
                .with_source(failure)),
        }
    }
}

/// Whether a status is worth retrying: a timeout (408), throttling (429) or a server error that passes (500, 502,
/// 503, 504). Every other status is final for the request.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a past date means "now".
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default().initial_backoff(Duration::from_millis(100)).max_backoff(Duration::from_secs(1));
        let table = [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)];
        for (failures, ms) in table {
            assert_eq!(p.backoff.ceiling(failures), Duration::from_millis(ms), "{failures}");
        }
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let p = RetryPolicy::default().initial_backoff(Duration::from_millis(100));
        for _ in 0..100 {
            let d = p.delay(1, None);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
        }
    }

    #[test]
    fn a_longer_retry_after_wins() {
        let p = RetryPolicy::default().initial_backoff(Duration::from_millis(100));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert!(p.delay(1, Some(Duration::ZERO)) <= Duration::from_millis(100));
    }

    #[test]
    fn an_absurd_retry_after_is_a_bounded_wait() {
        let p = RetryPolicy::default().initial_backoff(Duration::from_millis(100)).max_backoff(Duration::from_secs(5));
        let table = [(u64::MAX, 5), (3600, 5), (6, 5), (4, 4)];
        for (asked, waited) in table {
            assert_eq!(p.delay(1, Some(Duration::from_secs(asked))), Duration::from_secs(waited), "{asked}");
        }
        assert_eq!(RetryPolicy::default().delay(1, Some(Duration::MAX)), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert("retry-after", "Wed, 13 Apr 2022 18:09:22 GMT".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        h.insert("retry-after", "Wed, 13 Apr 2022 18:00:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    fn state(policy: RetryPolicy) -> RetryState {
        RetryState::new(policy, SharedClock::system())
    }

    #[tokio::test(start_paused = true)]
    async fn new_bytes_start_the_count_and_the_budget_again() {
        let policy = RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_secs(1));
        let mut retry = state(policy.max_total(Duration::from_secs(5)));
        assert!(retry.fail(0, None).is_ok());
        assert!(retry.fail(0, None).is_ok());
        tokio::time::advance(Duration::from_secs(4)).await;
        // Bytes arrived since the last failure: this is the first failure of a new count, with a fresh budget.
        assert!(retry.fail(10, None).is_ok());
        assert_eq!(retry.failures(), 1);
        assert!(retry.fail(10, None).is_ok());
        assert_eq!(retry.fail(10, None), Err(Exhausted::Attempts(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_delivered_again_are_no_progress() {
        let mut retry = state(RetryPolicy::default().max_attempts(2));
        retry.already_delivered(100);
        assert_eq!(retry.fail(100, None).map(|_| ()), Ok(()));
        assert_eq!(retry.fail(50, None), Err(Exhausted::Attempts(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_counts_on_tokio_time() {
        let policy = RetryPolicy::default()
            .max_attempts(100)
            .initial_backoff(Duration::from_secs(2))
            .max_backoff(Duration::from_secs(2))
            .max_total(Duration::from_secs(10));
        let mut retry = state(policy);
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(retry.fail(0, Some(Duration::from_secs(2))).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(retry.fail(0, Some(Duration::from_secs(2))), Err(Exhausted::Budget(Duration::from_secs(10))));
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_carries_the_attempts_the_status_and_the_last_failure() {
        let started = Instant::now();
        let policy = RetryPolicy::default().max_attempts(2).initial_backoff(Duration::from_secs(1));
        let mut retry = state(policy);
        retry.wait_after(Failure::Status(StatusCode::BAD_GATEWAY), 0, None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(500) && started.elapsed() <= Duration::from_secs(1));
        let error = retry.wait_after(Failure::Status(StatusCode::BAD_GATEWAY), 0, None).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
        assert_eq!((error.attempts(), error.status()), (Some(2), Some(StatusCode::BAD_GATEWAY)));
        assert_eq!(
            crate::download::error::chain_line(&error),
            "gave up after 2 failed attempts: status 502 Bad Gateway"
        );
    }

    #[test]
    fn a_retry_after_date_is_read_against_the_injected_clock() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        let retry = RetryState::new(RetryPolicy::default(), SharedClock::new(move || at));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "Wed, 13 Apr 2022 18:09:22 GMT".parse().unwrap());
        assert_eq!(retry.retry_after(&headers), Some(Duration::from_secs(10)));
    }

    #[test]
    fn transient_statuses_follow_the_spec() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 412, 501] {
            assert!(!is_transient(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_wait_is_bounded_by_the_largest_backoff(
            failures in any::<u32>(),
            asked in proptest::option::of(prop_oneof![Just(Duration::MAX), (0u64..u64::MAX).prop_map(Duration::from_secs)]),
            initial_ms in 0u64..100_000,
            max_ms in 0u64..100_000,
        ) {
            let policy = RetryPolicy::default()
                .initial_backoff(Duration::from_millis(initial_ms))
                .max_backoff(Duration::from_millis(max_ms));
            prop_assert!(policy.delay(failures, asked) <= Duration::from_millis(max_ms));
        }

        #[test]
        fn any_retry_after_text_is_a_wait_or_nothing_never_a_panic(text in "\\PC{0,40}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&text) {
                headers.insert(http::header::RETRY_AFTER, value);
                let _ = retry_after(&headers, SystemTime::now());
            }
        }
    }
}
