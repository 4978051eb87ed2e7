//! The tenant's signing keys: a JSON Web Key Set, parsed once, cached, and fetched again on an unknown `kid` no
//! more often than a bounded interval allows.
//!
//! Deadlines use tokio's clock, so tests run on paused time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::time::Instant;

/// The most keys kept from one key set; Entra publishes a handful.
const MAX_KEYS: usize = 64;

/// RSA signing keys by `kid`.
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the RSA keys usable for RS256 signatures; other keys are skipped.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<Jwk>,
        }
        #[derive(Deserialize)]
        struct Jwk {
            kty: Option<String>,
            #[serde(rename = "use")]
            usage: Option<String>,
            alg: Option<String>,
            kid: Option<String>,
            n: Option<String>,
            e: Option<String>,
        }
        let document: Document =
            serde_json::from_slice(bytes).map_err(|error| format!("the key set is not a JWKS document: {error}"))?;
        let mut keys = HashMap::new();
        for jwk in document.keys {
            let rsa = jwk.kty.as_deref() == Some("RSA");
            let signing = jwk.usage.as_deref().is_none_or(|usage| usage == "sig");
            let rs256 = jwk.alg.as_deref().is_none_or(|alg| alg == "RS256");
            let (Some(kid), Some(n), Some(e), true) = (jwk.kid, jwk.n, jwk.e, rsa && signing && rs256) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
                keys.insert(kid, Arc::new(key));
            }
            if keys.len() == MAX_KEYS {
                break;
            }
        }
        if keys.is_empty() {
            return Err("the key set holds no RSA signing key".into());
        }
        Ok(Self { keys })
    }

    fn get(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.get(kid).cloned()
    }
}

/// How often the key set may be fetched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefreshPolicy {
    /// The least time between two fetches after a successful one: an unknown `kid` within it is refused without
    /// a fetch.
    pub(crate) min_interval: Duration,
    /// The least time between two fetches after a failed one.
    pub(crate) retry_interval: Duration,
    /// Keys older than this are fetched again before use; when that fails, they are used as they are.
    pub(crate) max_age: Duration,
}

/// Why no key was found for a `kid`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// No key set was ever fetched.
    NoKeys,
    /// The key set, fetched when the policy allowed, does not have it.
    Unknown,
    /// The key set does not have it, and fetching a newer one failed.
    NotRefreshed,
}

/// The cached key set and when it was fetched.
#[derive(Default)]
pub(crate) struct KeyCache {
    state: Mutex<State>,
    /// Held while fetching: one fetch at a time, the others wait and then use its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    failed: bool,
}

impl KeyCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain fields, consistent after every assignment: a panic elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key for `kid` when it is cached and young enough; no waiting.
    pub(crate) fn cached(&self, kid: &str, policy: &RefreshPolicy) -> Option<Arc<DecodingKey>> {
        let state = self.lock();
        let fresh = state.fetched.is_some_and(|at| at.elapsed() < policy.max_age);
        fresh.then(|| state.keys.as_ref()?.get(kid)).flatten()
    }

    /// The key for `kid` when it is cached, however old.
    fn cached_even_stale(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.lock().keys.as_ref()?.get(kid)
    }

    /// The key for `kid`, fetching the key set with `fetch` first when the policy allows it.
    ///
    /// While another request fetches, a cached key, however old, serves at once instead of waiting.
    pub(crate) async fn resolve<F, Fut>(
        &self,
        kid: &str,
        policy: &RefreshPolicy,
        fetch: F,
    ) -> Result<Arc<DecodingKey>, Missing>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<KeySet, String>>,
    {
        let _one_at_a_time = match self.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.cached_even_stale(kid) {
                Some(key) => return Ok(key),
                None => self.fetching.lock().await,
            },
        };
        if let Some(key) = self.cached(kid, policy) {
            // Fetched by the request we waited for.
            return Ok(key);
        }
        let allowed = {
            let state = self.lock();
            let interval = if state.failed { policy.retry_interval } else { policy.min_interval };
            state.attempted.is_none_or(|at| at.elapsed() >= interval)
        };
        if allowed {
            let result = fetch().await;
            let mut state = self.lock();
            let now = Instant::now();
            state.attempted = Some(now);
            match result {
                Ok(keys) => {
                    tracing::debug!(keys = keys.keys.len(), "entra signing keys fetched");
                    state.keys = Some(Arc::new(keys));
                    state.fetched = Some(now);
                    state.failed = false;
                }
                Err(error) => {
                    tracing::warn!(%error, "fetching the entra signing keys failed; cached keys stay in use");
                    state.failed = true;
                }
            }
        }
        let state = self.lock();
        match (&state.keys, state.failed) {
            (None, _) => Err(Missing::NoKeys),
            (Some(keys), failed) => match keys.get(kid) {
                // Stale keys still verify while no newer set can be had.
                Some(key) => Ok(key),
                None if failed => Err(Missing::NotRefreshed),
                None => Err(Missing::Unknown),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = include_str!("../../../tests/vectors/entra/jwks.json");

    #[test]
    fn only_rsa_signing_keys_for_rs256_are_kept() {
        let set = KeySet::parse(JWKS.as_bytes()).unwrap();
        assert!(set.get("test-key-1").is_some());

        let document: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let key = &document["keys"][0];
        let with = |field: &str, value: serde_json::Value| {
            let mut key = key.clone();
            key[field] = value;
            serde_json::json!({ "keys": [key] }).to_string()
        };
        for (case, document) in [
            ("encryption key", with("use", "enc".into())),
            ("elliptic curve", with("kty", "EC".into())),
            ("other algorithm", with("alg", "RS512".into())),
            ("no kid", with("kid", serde_json::Value::Null)),
        ] {
            let error = KeySet::parse(document.as_bytes()).err();
            assert_eq!(error.as_deref(), Some("the key set holds no RSA signing key"), "{case}");
        }
        let error = KeySet::parse(b"<html>").err().unwrap();
        assert!(error.starts_with("the key set is not a JWKS document: "), "{error}");
    }

    fn policy() -> RefreshPolicy {
        RefreshPolicy {
            min_interval: Duration::from_secs(300),
            retry_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(24 * 3600),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let cache = KeyCache::default();
        let fetches = std::cell::Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            async { KeySet::parse(JWKS.as_bytes()) }
        };
        assert!(cache.resolve("test-key-1", &policy(), fetch).await.is_ok());
        assert_eq!(cache.resolve("rotated", &policy(), fetch).await.err(), Some(Missing::Unknown));
        assert_eq!(fetches.get(), 1, "the first fetch is less than the interval ago");
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(cache.resolve("rotated", &policy(), fetch).await.err(), Some(Missing::Unknown));
        assert_eq!(cache.resolve("rotated", &policy(), fetch).await.err(), Some(Missing::Unknown));
        assert_eq!(fetches.get(), 2);
        assert!(cache.cached("test-key-1", &policy()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_fetches_keep_the_cached_keys_and_retry_sooner() {
        let cache = KeyCache::default();
        let fail = || async { Err::<KeySet, _>("down".to_owned()) };
        assert_eq!(cache.resolve("test-key-1", &policy(), fail).await.err(), Some(Missing::NoKeys));
        // Within the retry interval nothing is fetched, not even a good set.
        let good = || async { KeySet::parse(JWKS.as_bytes()) };
        assert_eq!(cache.resolve("test-key-1", &policy(), good).await.err(), Some(Missing::NoKeys));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(cache.resolve("test-key-1", &policy(), good).await.is_ok());

        // A day later the keys are stale: the refetch fails, and the cached key still verifies.
        tokio::time::advance(Duration::from_secs(25 * 3600)).await;
        assert!(cache.cached("test-key-1", &policy()).is_none());
        assert!(cache.resolve("test-key-1", &policy(), fail).await.is_ok());
        assert_eq!(cache.resolve("rotated", &policy(), fail).await.err(), Some(Missing::NotRefreshed));
    }
}
