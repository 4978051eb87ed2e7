//! Entra-secured Event Grid deliveries: the bearer token Event Grid sends, validated against the tenant's keys
//! (feature `entra`); the rules are those of `EntraDeliveryCheck`.

mod claims;
mod fetch;
mod keys;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::Empty;
use tower_service::Service;

use super::check::{AsyncDeliveryCheck, CheckFuture, CheckOutcome};
use crate::clock::{Clock, SharedClock};
use crate::cloud::AzureCloud;
use crate::credential::is_loopback_host;
use crate::BoxError;
use claims::Rules;
use fetch::{ClientFetch, Fetch};
use keys::{KeyCache, Missing, RefreshPolicy};

/// Event Grid's first-party application in the public cloud: the caller (`azp`/`appid`) of its tokens.
pub const EVENT_GRID_APP_ID: &str = "4962773b-9cdb-44cf-a8bf-237846a00ab7";

/// Event Grid's first-party application in Azure US Government.
pub const EVENT_GRID_US_GOV_APP_ID: &str = "54316b56-3481-47f9-8f30-0300f5542a7b";

/// The app role Event Grid's application is given on the webhook's application, when that role allows
/// applications.
pub const EVENT_GRID_SUBSCRIBER_ROLE: &str = "AzureEventGridSecureWebhookSubscriber";

/// The Entra authority whose OpenID configuration names the tenant's keys.
pub(crate) const DEFAULT_ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The clock skew allowed on `exp` and `nbf` by default: 60 seconds.
pub(crate) const DEFAULT_TOKEN_LEEWAY: Duration = Duration::from_secs(60);

const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_KEY_SET_BYTES: usize = 256 * 1024;

/// Requires the Microsoft Entra token that an Entra-secured Event Grid subscription sends with every delivery
/// and with the validation handshake; for [`EventGridWebhookLayer::require_async`](super::EventGridWebhookLayer::require_async).
///
/// ```
/// use std::time::Duration;
/// use acs_recording::eventgrid::{EntraDeliveryCheck, EventGridWebhookLayer, EVENT_GRID_APP_ID};
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
///
/// // Any client service for the key set (hyper-util's with an https connector on Azure).
/// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
/// let check = EntraDeliveryCheck::new(
///     "72f988bf-86f1-41af-91ab-2d7cd011db47",                // the directory (tenant) id
///     ["api://acs-recorder", "11111111-2222-3333-4444-555555555555"], // the webhook application's id URI and id
///     client,
/// )? // requires the AzureEventGridSecureWebhookSubscriber role by default
/// .leeway(Duration::from_secs(60));
/// let webhook = EventGridWebhookLayer::new().require_async(check);
/// # let _ = (webhook, EVENT_GRID_APP_ID);
/// # Ok::<(), acs_recording::eventgrid::InvalidEntraConfig>(())
/// ```
///
/// # Rules
///
/// 1. `Authorization: Bearer <JWT>` is required; without it, 401.
/// 2. The header must say `alg: RS256` and name a `kid`: `none`, HMAC (an HS256 token signed with the public key
///    as secret) and every other algorithm are refused before any key is used, with 401.
/// 3. The signature must verify with the tenant's key of that `kid`. The keys come from the `jwks_uri` of
///    `{authority}/{tenant}/v2.0/.well-known/openid-configuration` (on the authority's own host), are cached,
///    and are fetched again for an unknown `kid` at most once per [`refresh_interval`](Self::refresh_interval)
///    (10 s after a failed fetch), and when older than a day. A fetch is bounded in time
///    ([`fetch_timeout`](Self::fetch_timeout)) and size. When no keys can be had, 503 (Event Grid delivers
///    again); cached keys keep verifying while the key server is down.
/// 4. `exp` must be in the future and `nbf`, when present, in the past, both with a [`leeway`](Self::leeway); the
///    issuer must be the tenant's, in its v1 (`https://sts.windows.net/{tenant}/`) or v2
///    (`https://login.microsoftonline.com/{tenant}/v2.0`) form ([`issuers`](Self::issuers) to change them), a
///    `tid` claim must name the tenant, and `aud` one of the configured audiences. Otherwise, 401.
/// 5. The caller, `azp` (v2) or `appid` (v1), must be Event Grid ([`EVENT_GRID_APP_ID`] unless
///    [`allowed_callers`](Self::allowed_callers) says otherwise), and the required role must be in `roles`:
///    [`EVENT_GRID_SUBSCRIBER_ROLE`] by default, another with [`require_role`](Self::require_role), none only
///    with [`without_role`](Self::without_role). Otherwise, 403: the token is valid, its holder may not deliver.
///
/// Reasons go into the problem body and never contain the token.
#[derive(Clone)]
pub struct EntraDeliveryCheck {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    authority: Uri,
    rules: Rules,
    fetch: Arc<dyn Fetch>,
    keys: Arc<KeyCache>,
    policy: RefreshPolicy,
    fetch_timeout: Duration,
    max_key_set_bytes: usize,
    clock: SharedClock,
}

impl EntraDeliveryCheck {
    /// Requires tokens of `tenant` (the directory id) for one of `audiences` (the webhook application's id and
    /// id URI), fetching the tenant's keys with `client` from the public cloud's authority,
    /// `https://login.microsoftonline.com`.
    ///
    /// Fails for a tenant that is not a directory id (a GUID; not `common`, not a domain name), for no audience,
    /// and when `jsonwebtoken` has no crypto backend to verify with.
    pub fn new<C, RB, I>(tenant: &str, audiences: I, client: C) -> Result<Self, InvalidEntraConfig>
    where
        C: Service<Request<Empty<Bytes>>, Response = Response<RB>> + Clone + Send + Sync + 'static,
        C::Future: Send + 'static,
        C::Error: Into<BoxError>,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let tenant = tenant.trim();
        if ["common", "organizations", "consumers"].iter().any(|multi| tenant.eq_ignore_ascii_case(multi)) {
            return Err(InvalidEntraConfig(format!("`{tenant}` names no tenant: give the directory (tenant) id")));
        }
        // Tokens name their tenant by id in `iss` and `tid`: a domain name would fetch the right keys and then
        // refuse every token.
        if !is_guid(tenant) {
            return Err(InvalidEntraConfig(format!(
                "`{}` is not a directory (tenant) id: give the GUID that tokens carry in `tid`",
                claims::shown(tenant)
            )));
        }
        let tenant = tenant.to_ascii_lowercase();
        let tenant = tenant.as_str();
        let audiences: Vec<String> = audiences
            .into_iter()
            .map(Into::into)
            .map(|a: String| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(InvalidEntraConfig("no audience: give the application id or its id URI".into()));
        }
        // A build that enables both of jsonwebtoken's backends has no default and would panic on the first token.
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(InvalidEntraConfig(
                "jsonwebtoken has no default crypto provider (install one with `CryptoProvider::install_default`)"
                    .into(),
            ));
        }
        let rules = Rules {
            tenant: tenant.to_owned(),
            issuers: AzureCloud::Public.entra_issuers(tenant),
            audiences,
            callers: vec![EVENT_GRID_APP_ID.to_owned()],
            // Secure by default: a token of Event Grid's application is not enough, the webhook application must
            // have granted it the subscriber role.
            role: Some(EVENT_GRID_SUBSCRIBER_ROLE.to_owned()),
            leeway: DEFAULT_TOKEN_LEEWAY,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                authority: Uri::from_static(DEFAULT_ENTRA_AUTHORITY),
                rules,
                fetch: Arc::new(ClientFetch(client)),
                keys: Arc::default(),
                policy: RefreshPolicy {
                    min_interval: Duration::from_secs(5 * 60),
                    retry_interval: Duration::from_secs(10),
                    max_age: Duration::from_secs(24 * 60 * 60),
                },
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
                max_key_set_bytes: DEFAULT_MAX_KEY_SET_BYTES,
                clock: SharedClock::system(),
            }),
        })
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Fetches the keys from another authority (a sovereign cloud's, or a test server): `https://host[:port]`,
    /// or `http` for a loopback host. The issuers stay as they are; see [`issuers`](Self::issuers).
    pub fn authority(mut self, authority: &str) -> Result<Self, InvalidEntraConfig> {
        let invalid = |why: &str| InvalidEntraConfig(format!("authority `{authority}` {why}"));
        let uri: Uri = authority.trim().trim_end_matches('/').parse().map_err(|_| invalid("is not a URL"))?;
        let host = uri.host().ok_or_else(|| invalid("has no host"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback_host(host) => {}
            _ => return Err(invalid("must use https (http only for a loopback host)")),
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) || !matches!(uri.path(), "" | "/") {
            return Err(invalid("must be `scheme://host[:port]` alone"));
        }
        let inner = self.inner_mut();
        inner.authority = uri;
        inner.keys = Arc::default();
        Ok(self)
    }

    /// Checks tokens as `cloud` issues them: its Entra authority for the keys, its issuers
    /// ([`AzureCloud::entra_issuers`]) and Event Grid's application there as the only caller. Where that
    /// application is not documented (China) no caller is allowed until [`allowed_callers`](Self::allowed_callers)
    /// names it: every token gets 403 with the reason.
    pub fn cloud(mut self, cloud: AzureCloud) -> Self {
        let issuers = cloud.entra_issuers(&self.inner.rules.tenant);
        let inner = self.inner_mut();
        inner.authority = Uri::from_static(cloud.entra_authority());
        inner.keys = Arc::default();
        inner.rules.issuers = issuers;
        inner.rules.callers = cloud.event_grid_app_id().into_iter().map(str::to_owned).collect();
        self
    }

    /// Replaces the accepted issuers (by default the tenant's v1 and v2 issuers in the public cloud).
    pub fn issuers<I>(mut self, issuers: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.inner_mut().rules.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the applications allowed to deliver (by default [`EVENT_GRID_APP_ID`]; add
    /// [`EVENT_GRID_US_GOV_APP_ID`] for Azure US Government).
    pub fn allowed_callers<I>(mut self, app_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.inner_mut().rules.callers = app_ids.into_iter().map(Into::into).collect();
        self
    }

    /// Requires `role` in the token's `roles` claim (403 otherwise).
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.inner_mut().rules.role = Some(role.into());
        self
    }

    /// Requires [`EVENT_GRID_SUBSCRIBER_ROLE`], the app role of the Entra-secured webhook setup: the default, so
    /// this only undoes [`require_role`](Self::require_role) or [`without_role`](Self::without_role).
    pub fn require_subscriber_role(self) -> Self {
        self.require_role(EVENT_GRID_SUBSCRIBER_ROLE)
    }

    /// Accepts tokens without any role: any token the caller check allows may deliver. Only for a webhook
    /// application that cannot grant Event Grid the subscriber role; the default requires
    /// [`EVENT_GRID_SUBSCRIBER_ROLE`].
    pub fn without_role(mut self) -> Self {
        self.inner_mut().rules.role = None;
        self
    }

    /// Sets the clock skew allowed on `exp` and `nbf` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.inner_mut().rules.leeway = leeway;
        self
    }

    /// Sets the least time between two key set fetches for unknown keys (default 5 minutes).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.inner_mut().policy.min_interval = interval;
        self
    }

    /// Sets how long fetching the key set (configuration and keys together) may take (default 10 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().fetch_timeout = timeout;
        self
    }

    /// Sets the largest configuration or key set document read (default 256 KiB).
    pub fn max_key_set_bytes(mut self, limit: usize) -> Self {
        self.inner_mut().max_key_set_bytes = limit;
        self
    }

    /// Takes the time that `exp` and `nbf` are compared with from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.inner_mut().clock = SharedClock::new(clock);
        self
    }
}

impl Inner {
    fn validate(&self, token: &str, key: &jsonwebtoken::DecodingKey) -> CheckOutcome {
        match claims::verify(token, key) {
            Ok(claims) => self.rules.check(&claims, self.clock.now()),
            Err(outcome) => outcome,
        }
    }

    async fn fetch_keys(&self) -> Result<keys::KeySet, String> {
        let fetching = fetch::key_set(&*self.fetch, &self.authority, &self.rules.tenant, self.max_key_set_bytes);
        match tokio::time::timeout(self.fetch_timeout, fetching).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", self.fetch_timeout.as_secs_f64())),
        }
    }

    fn missing(&self, kid: &str, missing: Missing) -> CheckOutcome {
        match missing {
            Missing::NoKeys => CheckOutcome::Unavailable(format!(
                "the signing keys of tenant `{}` could not be fetched",
                self.rules.tenant
            )),
            Missing::NotRefreshed => CheckOutcome::Unavailable(format!(
                "the token's signing key `{}` is unknown and the keys of tenant `{}` could not be refreshed",
                claims::shown(kid),
                self.rules.tenant
            )),
            Missing::Unknown => CheckOutcome::Unauthorized(format!(
                "the token's signing key `{}` is not the tenant's",
                claims::shown(kid)
            )),
        }
    }
}

impl AsyncDeliveryCheck for EntraDeliveryCheck {
    fn check(&self, request: &Parts) -> CheckFuture {
        let token = match claims::bearer_token(&request.headers) {
            Ok(token) => token,
            Err(outcome) => return CheckFuture::ready(outcome),
        };
        let header = match claims::header(token) {
            Ok(header) => header,
            Err(outcome) => return CheckFuture::ready(outcome),
        };
        let inner = &self.inner;
        if let Some(key) = inner.keys.cached(&header.kid, &inner.policy) {
            return CheckFuture::ready(inner.validate(token, &key));
        }
        let inner = inner.clone();
        let token = token.to_owned();
        CheckFuture::new(async move {
            let fetch = || inner.fetch_keys();
            match inner.keys.resolve(&header.kid, &inner.policy, fetch).await {
                Ok(key) => inner.validate(&token, &key),
                Err(missing) => inner.missing(&header.kid, missing),
            }
        })
    }
}

impl fmt::Debug for EntraDeliveryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("EntraDeliveryCheck")
            .field("tenant", &inner.rules.tenant)
            .field("authority", &inner.authority)
            .field("audiences", &inner.rules.audiences)
            .field("callers", &inner.rules.callers)
            .field("role", &inner.rules.role)
            .field("leeway", &inner.rules.leeway)
            .finish_non_exhaustive()
    }
}

/// Whether `value` is a GUID: 8-4-4-4-12 hexadecimal digits.
fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// A configuration of [`EntraDeliveryCheck`] that cannot work; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntraConfig(String);

impl fmt::Display for InvalidEntraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidEntraConfig {}
