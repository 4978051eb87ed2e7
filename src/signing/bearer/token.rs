//! The bearer layer's token cache: one token per layer, replaced ahead of its expiry.
//!
//! Time is read from tokio's clock for deadlines (so tests run on paused time) and from the layer's [`Clock`] for
//! turning the credential's wall-clock expiry into a lifetime.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use azure_core::credentials::TokenCredential;
use azure_core::time::OffsetDateTime;
use http::HeaderValue;
use tokio::time::Instant;

use crate::clock::{Clock, SharedClock};
use crate::signing::error::Error;

/// After a failed refresh in the background, the next try waits this long; the valid token stays in use.
const BACKGROUND_RETRY: Duration = Duration::from_secs(10);

/// Holds the current token of a [`TokenCredential`] for one scope.
pub(crate) struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    refresh_before: Duration,
    clock: SharedClock,
    state: Mutex<State>,
    /// Held while the credential is asked, so that there is one request for a token at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    generation: u64,
    refreshing: bool,
    retry_at: Option<Instant>,
}

/// A token as sent: the `Authorization` value, marked sensitive, and its deadlines.
#[derive(Clone)]
pub(crate) struct Token {
    header: HeaderValue,
    expires: Instant,
    refresh_at: Instant,
    generation: u64,
}

impl Token {
    /// `Bearer <token>`, marked sensitive.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// Which token this is; a 401 drops the token of this generation only.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl TokenCache {
    pub(crate) fn new(
        credential: Arc<dyn TokenCredential>,
        scope: String,
        refresh_before: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            credential,
            scope,
            refresh_before,
            clock,
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    pub(crate) fn refresh_before(&self) -> Duration {
        self.refresh_before
    }

    pub(crate) fn credential(&self) -> &Arc<dyn TokenCredential> {
        &self.credential
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields, consistent after every assignment: a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current token while it is valid. Inside the refresh window this also starts one refresh in the
    /// background (when running on a tokio runtime); the valid token keeps being handed out meanwhile.
    pub(crate) fn cached(self: &Arc<Self>) -> Option<Token> {
        let now = Instant::now();
        let mut state = self.lock();
        let token = state.token.as_ref().filter(|token| now < token.expires)?.clone();
        let due = now >= token.refresh_at && !state.refreshing && state.retry_at.is_none_or(|at| now >= at);
        if due {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                state.refreshing = true;
                drop(state);
                let cache = self.clone();
                runtime.spawn(async move { cache.refresh_in_background().await });
            }
        }
        Some(token)
    }

    /// Forgets the token of `generation` (the service answered 401 to it); a newer one is kept.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut state = self.lock();
        if state.token.as_ref().is_some_and(|token| token.generation == generation) {
            state.token = None;
        }
    }

    /// A token that is valid and not due for refresh: the cached one, or a new one from the credential. Callers
    /// queue here, so the credential is asked once however many requests wait.
    pub(crate) async fn fetch(self: Arc<Self>) -> Result<Token, Error> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let now = Instant::now();
            let state = self.lock();
            if let Some(token) = state.token.as_ref().filter(|token| now < token.refresh_at) {
                return Ok(token.clone());
            }
        }
        let access = self.credential.get_token(&[self.scope.as_str()], None).await.map_err(Error::credential)?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", access.token.secret()))
            .map_err(|_| Error::credential("the access token is not a valid header value"))?;
        header.set_sensitive(true);
        let lifetime = system_time(access.expires_on).duration_since(self.clock.now()).unwrap_or(Duration::ZERO);
        let now = Instant::now();
        let expires = now + lifetime;
        // A short-lived token is refreshed at half its life rather than at once.
        let refresh_at = expires - self.refresh_before.min(lifetime / 2);
        let mut state = self.lock();
        state.generation += 1;
        let token = Token { header, expires, refresh_at, generation: state.generation };
        state.token = Some(token.clone());
        state.retry_at = None;
        tracing::debug!(scope = %self.scope, lifetime_s = lifetime.as_secs(), "access token acquired");
        Ok(token)
    }

    async fn refresh_in_background(self: Arc<Self>) {
        let guard = Refreshing(self.clone());
        if let Err(error) = self.clone().fetch().await {
            self.lock().retry_at = Some(Instant::now() + BACKGROUND_RETRY);
            tracing::warn!(%error, "refreshing the access token failed; the current token stays in use");
        }
        drop(guard);
    }
}

/// Clears the `refreshing` mark when the background refresh ends, also when its task is dropped unfinished (a
/// runtime shutting down), so that a later window can start another.
struct Refreshing(Arc<TokenCache>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.lock().refreshing = false;
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.lock().token.as_ref().map(|_| "<redacted>");
        f.debug_struct("TokenCache")
            .field("scope", &self.scope)
            .field("refresh_before", &self.refresh_before)
            .field("token", &token)
            .finish()
    }
}

fn system_time(at: OffsetDateTime) -> SystemTime {
    match u64::try_from(at.unix_timestamp_nanos()) {
        Ok(nanos) => SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
        // Before 1970, or past year 2554: already expired, or as good as never.
        Err(_) if at.unix_timestamp() < 0 => SystemTime::UNIX_EPOCH,
        Err(_) => SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::MAX),
    }
}
