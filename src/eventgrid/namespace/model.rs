//! The bodies of the namespace data plane: received events with their broker properties, lock token results and
//! release delays.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::calling::ServiceError;

/// One event handed out by a receive, locked for this receiver until it is acknowledged, released, rejected or
/// its lock expires.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The lock token and delivery count.
    #[serde(rename = "brokerProperties")]
    pub broker_properties: BrokerProperties,
    /// The CloudEvent as the service sent it, unparsed: a source parses it once, and keeps its text when it
    /// cannot.
    pub event: Box<RawValue>,
}

/// What the broker says about one received event.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BrokerProperties {
    /// The token that acknowledges, releases, rejects or renews this delivery of the event.
    pub lock_token: String,
    /// How many times the event was delivered, this time included (1 the first time).
    pub delivery_count: u32,
}

/// The answer to a receive: `{"value":[...]}`.
#[derive(Debug, Deserialize)]
pub(super) struct ReceiveResult {
    #[serde(default)]
    pub(super) value: Vec<ReceivedEvent>,
}

/// The body of acknowledge, release, reject and renew: `{"lockTokens":[...]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LockTokens<'a> {
    pub(super) lock_tokens: &'a [String],
}

/// What an acknowledge, release, reject or lock renewal did, token by token: the service answers 200 even when
/// some of the tokens failed (an expired lock, an unknown token).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LockTokenResult {
    /// The tokens the operation applied to.
    #[serde(default)]
    pub succeeded_lock_tokens: Vec<String>,
    /// The tokens it did not apply to, each with the service's reason.
    #[serde(default)]
    pub failed_lock_tokens: Vec<FailedLockToken>,
}

impl LockTokenResult {
    /// Whether every token given succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed_lock_tokens.is_empty()
    }

    /// Whether `token` is among the succeeded ones.
    pub fn succeeded(&self, token: &str) -> bool {
        self.succeeded_lock_tokens.iter().any(|t| t == token)
    }
}

/// A token an operation did not apply to, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FailedLockToken {
    /// The token.
    pub lock_token: String,
    /// The service's error: `TokenLost` for a lock that expired or was never handed out, for instance.
    pub error: ServiceError,
}

impl FailedLockToken {
    /// A failed token with the service's error code and message.
    pub fn new(lock_token: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        let error = ServiceError { code: code.into(), message: message.into(), ..ServiceError::default() };
        Self { lock_token: lock_token.into(), error }
    }
}

/// How long a released event waits before it can be received again: the service accepts these five values only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseDelay {
    /// At once.
    #[default]
    None,
    /// 10 seconds.
    TenSeconds,
    /// One minute.
    OneMinute,
    /// Ten minutes.
    TenMinutes,
    /// One hour.
    OneHour,
}

impl ReleaseDelay {
    /// The delay in seconds, as `releaseDelayInSeconds` carries it.
    pub fn as_secs(self) -> u32 {
        match self {
            ReleaseDelay::None => 0,
            ReleaseDelay::TenSeconds => 10,
            ReleaseDelay::OneMinute => 60,
            ReleaseDelay::TenMinutes => 600,
            ReleaseDelay::OneHour => 3600,
        }
    }

    /// The delay for `releaseDelayInSeconds`, if it is one of the five the service accepts.
    pub fn from_secs(secs: u32) -> Option<Self> {
        [Self::None, Self::TenSeconds, Self::OneMinute, Self::TenMinutes, Self::OneHour]
            .into_iter()
            .find(|delay| delay.as_secs() == secs)
    }

    /// The shortest delay of at least `wanted`, one hour at most: what a source backs off with.
    pub fn at_least(wanted: std::time::Duration) -> Self {
        [Self::None, Self::TenSeconds, Self::OneMinute, Self::TenMinutes]
            .into_iter()
            .find(|delay| u64::from(delay.as_secs()) >= wanted.as_secs())
            .unwrap_or(Self::OneHour)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_delays_are_the_five_the_service_accepts() {
        let accepted: Vec<u32> = (0..=3600).filter(|secs| ReleaseDelay::from_secs(*secs).is_some()).collect();
        assert_eq!(accepted, [0, 10, 60, 600, 3600]);
        assert_eq!(ReleaseDelay::at_least(std::time::Duration::from_secs(11)), ReleaseDelay::OneMinute);
        assert_eq!(ReleaseDelay::at_least(std::time::Duration::from_secs(7200)), ReleaseDelay::OneHour);
    }

    #[test]
    fn a_partial_result_reads_token_by_token() {
        let body = br#"{"failedLockTokens":[{"lockToken":"b","error":{"code":"TokenLost","message":"gone"}}],
            "succeededLockTokens":["a"]}"#;
        let result: LockTokenResult = serde_json::from_slice(body).unwrap();
        assert!(result.succeeded("a") && !result.succeeded("b") && !result.is_complete());
        assert_eq!(result.failed_lock_tokens[0], FailedLockToken::new("b", "TokenLost", "gone"));
    }
}
