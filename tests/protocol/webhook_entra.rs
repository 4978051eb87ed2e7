//! Entra-secured Event Grid deliveries: tokens signed with the throwaway key in `tests/vectors/entra`, the tenant's
//! OpenID configuration and key set served by a loopback server, the webhook behind a real axum server.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support;
use crate::support::{fixture, send, Reply, TestServer};
use acs_recording::cloud::AzureCloud;
use acs_recording::eventgrid::{
    EntraDeliveryCheck, EventGridWebhookLayer, Events, EVENT_GRID_APP_ID, EVENT_GRID_SUBSCRIBER_ROLE,
    EVENT_GRID_US_GOV_APP_ID,
};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Empty;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const TENANT: &str = "3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60";
const OTHER_TENANT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const APP_ID_URI: &str = "api://acs-recorder";
const APP_ID: &str = "8d2f7c4e-5b6a-4c3d-9e8f-7a6b5c4d3e2f";
const KID: &str = "test-key-1";
const PRIVATE_KEY: &[u8] = include_bytes!("../vectors/entra/test_key.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("../vectors/entra/test_key.pub.pem");
const JWKS: &str = include_str!("../vectors/entra/jwks.json");

/// The webhook's wall clock; tokens are minted around it.
const NOW: u64 = 1_800_000_000;

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// What the key server does with each request.
const SERVE: u8 = 0;
const HANG: u8 = 1;
const FAIL: u8 = 2;

/// The tenant's OpenID configuration and key set on loopback, counting requests.
struct KeyServer {
    server: TestServer,
    configurations: Arc<AtomicUsize>,
    key_sets: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

#[derive(Clone)]
struct KeyState {
    configurations: Arc<AtomicUsize>,
    key_sets: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl KeyState {
    async fn answer(&self, body: String) -> (StatusCode, [(&'static str, &'static str); 1], String) {
        match self.mode.load(Ordering::SeqCst) {
            HANG => std::future::pending().await,
            FAIL => (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], "down".into()),
            _ => (StatusCode::OK, [("content-type", "application/json")], body),
        }
    }
}

impl KeyServer {
    async fn start() -> Self {
        let state =
            KeyState { configurations: Arc::default(), key_sets: Arc::default(), mode: Arc::new(AtomicU8::new(SERVE)) };
        let app = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(|State(state): State<KeyState>, Path(tenant): Path<String>, headers: HeaderMap| async move {
                    state.configurations.fetch_add(1, Ordering::SeqCst);
                    let host = headers["host"].to_str().unwrap();
                    let body = json!({
                        "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                        "jwks_uri": format!("http://{host}/{tenant}/discovery/v2.0/keys"),
                    });
                    state.answer(body.to_string()).await
                }),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                get(|State(state): State<KeyState>| async move {
                    state.key_sets.fetch_add(1, Ordering::SeqCst);
                    state.answer(JWKS.to_owned()).await
                }),
            )
            .with_state(state.clone());
        let server = TestServer::axum(app).await;
        Self { server, configurations: state.configurations, key_sets: state.key_sets, mode: state.mode }
    }

    fn authority(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    fn key_sets(&self) -> usize {
        self.key_sets.load(Ordering::SeqCst)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// The webhook behind the Entra check, counting the deliveries its handler saw.
struct Webhook {
    server: TestServer,
    delivered: Arc<AtomicUsize>,
}

impl Webhook {
    async fn start(check: EntraDeliveryCheck) -> Self {
        let delivered = Arc::new(AtomicUsize::new(0));
        let counted = delivered.clone();
        let handler = move |events: Events| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { format!("delivered {} events", events.len()) }
        };
        let app =
            Router::new().route("/api/events", post(handler).layer(EventGridWebhookLayer::new().require_async(check)));
        Self { server: TestServer::axum(app).await, delivered }
    }

    async fn deliver(&self, authorization: Option<&str>) -> Reply {
        self.post(authorization, "official_recording_file_status_updated.eventgrid.json", "Notification").await
    }

    async fn handshake(&self, authorization: Option<&str>) -> Reply {
        self.post(authorization, "subscription_validation.eventgrid.json", "SubscriptionValidation").await
    }

    async fn post(&self, authorization: Option<&str>, fixture_name: &str, event_type: &str) -> Reply {
        let mut headers = vec![("content-type", "application/json"), ("aeg-event-type", event_type)];
        if let Some(authorization) = authorization {
            headers.push(("authorization", authorization));
        }
        send(Method::POST, &self.server.url("/api/events"), &headers, fixture(fixture_name)).await
    }

    fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }
}

fn check(keys: &KeyServer) -> EntraDeliveryCheck {
    let client = support::client::<Empty<Bytes>>();
    EntraDeliveryCheck::new(TENANT, [APP_ID_URI, APP_ID], client)
        .unwrap()
        .authority(&keys.authority())
        .unwrap()
        .with_clock(wall)
}

/// The claims of a v2 token Event Grid would send for this webhook.
fn claims() -> Value {
    json!({
        "aud": APP_ID_URI,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + 3600,
        "azp": EVENT_GRID_APP_ID,
        "azpacr": "2",
        "oid": "c7e0d1a2-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
        "roles": [EVENT_GRID_SUBSCRIBER_ROLE],
        "sub": "c7e0d1a2-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
        "tid": TENANT,
        "ver": "2.0",
    })
}

/// The claims of a v1 token: `sts.windows.net` issuer, `appid` instead of `azp`, the application id as audience.
fn v1_claims() -> Value {
    let mut claims = claims();
    let object = claims.as_object_mut().unwrap();
    object.remove("azp");
    object.insert("appid".into(), EVENT_GRID_APP_ID.into());
    object.insert("aud".into(), APP_ID.into());
    object.insert("iss".into(), format!("https://sts.windows.net/{TENANT}/").into());
    object.insert("ver".into(), "1.0".into());
    claims
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn signed(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(PRIVATE_KEY).unwrap()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a refusal: status, the bearer challenge on 401, and the exact problem body, which never holds the token.
fn assert_refused(reply: &Reply, status: StatusCode, detail: &str, token: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let challenge = (status == StatusCode::UNAUTHORIZED).then_some("Bearer");
    assert_eq!(reply.header("www-authenticate"), challenge);
    let title = status.canonical_reason().unwrap();
    assert_eq!(reply.json(), json!({"status": status.as_u16(), "title": title, "detail": detail}));
    if !token.is_empty() {
        for part in token.split('.').filter(|part| part.len() > 8) {
            assert!(!reply.text().contains(part), "the problem body echoes the token");
        }
    }
}

#[tokio::test]
async fn a_valid_token_delivers_and_answers_the_validation_handshake() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys).require_subscriber_role()).await;
    let token = signed(KID, &claims());

    let reply = webhook.deliver(Some(&bearer(&token))).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, "delivered 1 events"));

    let reply = webhook.handshake(Some(&bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), r#"{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}"#);

    // A v1 token of the same tenant and caller is as good.
    let reply = webhook.deliver(Some(&bearer(&signed(KID, &v1_claims())))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(webhook.delivered(), 2);
    // One fetch of the configuration and the keys served all three.
    assert_eq!((keys.configurations.load(Ordering::SeqCst), keys.key_sets()), (1, 1));
}

#[tokio::test]
async fn the_validation_handshake_without_a_token_is_refused() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys)).await;
    let reply = webhook.handshake(None).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "the delivery carries no bearer token", "");
    let reply = webhook.handshake(Some("Basic dXNlcjpwYXNz")).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "the authorization header is not a bearer token", "");
    assert_eq!(keys.key_sets(), 0, "no key is fetched for a request without a token");
}

#[tokio::test]
async fn tokens_that_are_not_valid_here_get_401_with_the_reason() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys)).await;
    let table = [
        ("expired", with(claims(), json!({"exp": NOW - 61})), "the token has expired"),
        ("not yet valid", with(claims(), json!({"nbf": NOW + 61})), "the token is not valid yet (`nbf`)"),
        (
            "wrong audience",
            with(claims(), json!({"aud": "api://another-app"})),
            "the token audience (`aud`) is not this application",
        ),
        (
            "wrong issuer",
            with(claims(), json!({"iss": "https://login.example.net/issuer"})),
            "the token issuer `https://login.example.net/issuer` is not tenant `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60`",
        ),
        (
            "other tenant",
            with(claims(), json!({"iss": format!("https://sts.windows.net/{OTHER_TENANT}/"), "tid": OTHER_TENANT})),
            "the token issuer `https://sts.windows.net/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/` is not tenant \
             `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60`",
        ),
        (
            "other tenant's id with this tenant's issuer",
            with(claims(), json!({"tid": OTHER_TENANT})),
            "the token was issued for another tenant than `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60`",
        ),
    ];
    for (case, claims, detail) in table {
        let token = signed(KID, &claims);
        let reply = webhook.deliver(Some(&bearer(&token))).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, detail, &token);
        let reply = webhook.handshake(Some(&bearer(&token))).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, detail, &token);
        assert_eq!(webhook.delivered(), 0, "{case}");
    }
}

#[tokio::test]
async fn a_valid_token_of_another_caller_or_without_the_role_gets_403() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys).require_subscriber_role()).await;
    let other_app = "00000000-0000-0000-0000-0000000000aa";
    let table = [
        (
            with(claims(), json!({"azp": other_app})),
            "the token's calling application `00000000-0000-0000-0000-0000000000aa` is not Event Grid",
        ),
        (
            with(v1_claims(), json!({"appid": other_app})),
            "the token's calling application `00000000-0000-0000-0000-0000000000aa` is not Event Grid",
        ),
        (
            with(claims(), json!({"azp": EVENT_GRID_US_GOV_APP_ID})),
            "the token's calling application `54316b56-3481-47f9-8f30-0300f5542a7b` is not Event Grid",
        ),
        (
            with(claims(), json!({"roles": null})),
            "the token has no `roles` claim; the role `AzureEventGridSecureWebhookSubscriber` is required (assign it \
             to Event Grid's application)",
        ),
        (
            with(claims(), json!({"roles": ["Reader"]})),
            "the token's roles do not include `AzureEventGridSecureWebhookSubscriber`",
        ),
    ];
    for (claims, detail) in table {
        let token = signed(KID, &claims);
        let reply = webhook.deliver(Some(&bearer(&token))).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, detail, &token);
    }
    assert_eq!(webhook.delivered(), 0);
}

#[tokio::test]
async fn the_us_government_caller_and_a_missing_role_pass_when_configured_so() {
    let keys = KeyServer::start().await;
    let check = check(&keys).allowed_callers([EVENT_GRID_APP_ID, EVENT_GRID_US_GOV_APP_ID]).without_role();
    let webhook = Webhook::start(check).await;
    let claims = with(claims(), json!({"azp": EVENT_GRID_US_GOV_APP_ID, "roles": null}));
    let reply = webhook.deliver(Some(&bearer(&signed(KID, &claims)))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn the_subscriber_role_is_required_unless_the_check_says_otherwise() {
    let keys = KeyServer::start().await;
    let token = signed(KID, &with(claims(), json!({"roles": null})));
    let webhook = Webhook::start(check(&keys)).await;
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    assert_refused(
        &reply,
        StatusCode::FORBIDDEN,
        "the token has no `roles` claim; the role `AzureEventGridSecureWebhookSubscriber` is required (assign it \
         to Event Grid's application)",
        &token,
    );
    assert_eq!(webhook.delivered(), 0);
    let webhook = Webhook::start(check(&keys).without_role()).await;
    assert_eq!(webhook.deliver(Some(&bearer(&token))).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused_before_any_key_is_fetched() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys)).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);

    // `alg: none`, no signature.
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims().to_string().as_bytes()));
    let reply = webhook.deliver(Some(&bearer(&none))).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "the token is signed with `none`; only RS256 is accepted", &none);

    // HS256 with the tenant's public key as the HMAC secret: the classic algorithm confusion.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.into());
    let confused = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(PUBLIC_KEY).unwrap()).unwrap();
    let reply = webhook.deliver(Some(&bearer(&confused))).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "the token is signed with `HS256`; only RS256 is accepted",
        &confused,
    );

    // RS256 in the header over a forged signature.
    let valid = signed(KID, &claims());
    let (signed_part, _) = valid.rsplit_once('.').unwrap();
    let forged = format!("{signed_part}.{}", b64(&[7u8; 256]));
    let reply = webhook.deliver(Some(&bearer(&forged))).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "the token signature does not verify with the tenant's key",
        &forged,
    );

    let reply = webhook.deliver(Some("Bearer not-a-jwt")).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "the bearer token is not a JSON Web Token", "");
    assert_eq!(keys.key_sets(), 1, "only the forged RS256 token needed the keys");
    assert_eq!(webhook.delivered(), 0);
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_keys_once_then_gets_401() {
    let keys = KeyServer::start().await;
    let webhook = Webhook::start(check(&keys)).await;
    let reply = webhook.deliver(Some(&bearer(&signed(KID, &claims())))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(keys.key_sets(), 1);

    // Past the refresh interval an unknown kid fetches the key set once more; it still lacks the key.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(5 * 60 + 1)).await;
    let rotated = signed("rotated-key", &claims());
    let reply = webhook.deliver(Some(&bearer(&rotated))).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "the token's signing key `rotated-key` is not the tenant's",
        &rotated,
    );
    assert_eq!(keys.key_sets(), 2, "exactly one refresh for the unknown kid");

    let another = signed("another-key", &claims());
    let reply = webhook.deliver(Some(&bearer(&another))).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "the token's signing key `another-key` is not the tenant's",
        &another,
    );
    assert_eq!(keys.key_sets(), 2, "no second refresh within the interval");
    assert_eq!(webhook.delivered(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_server_that_hangs_gets_503_after_the_fetch_timeout() {
    let keys = KeyServer::start().await;
    keys.set(HANG);
    let webhook = Webhook::start(check(&keys).fetch_timeout(Duration::from_secs(10))).await;
    let token = signed(KID, &claims());
    let started = tokio::time::Instant::now();
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    assert_refused(
        &reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "the signing keys of tenant `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60` could not be fetched",
        &token,
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10), "bounded by the fetch timeout, no longer");
    assert_eq!(webhook.delivered(), 0);
}

#[tokio::test]
async fn a_key_server_that_fails_gets_503_and_cached_keys_outlive_it() {
    let keys = KeyServer::start().await;
    keys.set(FAIL);
    let webhook = Webhook::start(check(&keys)).await;
    let token = signed(KID, &claims());
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    let unavailable = "the signing keys of tenant `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60` could not be fetched";
    assert_refused(&reply, StatusCode::SERVICE_UNAVAILABLE, unavailable, &token);

    // The server recovers; after the retry interval the keys are fetched and the same token passes.
    keys.set(SERVE);
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(webhook.deliver(Some(&bearer(&token))).await.status, StatusCode::OK);

    // Down again, even for a day: the cached key keeps verifying (the stale set's refetch fails, within a bound).
    keys.set(HANG);
    assert_eq!(webhook.deliver(Some(&bearer(&token))).await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(25 * 3600)).await;
    assert_eq!(webhook.deliver(Some(&bearer(&token))).await.status, StatusCode::OK);

    // A key the cached set does not have, while no newer set can be had: 503, so Event Grid delivers again.
    let rotated = signed("rotated-key", &claims());
    tokio::time::advance(Duration::from_secs(11)).await;
    let reply = webhook.deliver(Some(&bearer(&rotated))).await;
    assert_refused(
        &reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "the token's signing key `rotated-key` is unknown and the keys of tenant \
         `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60` could not be refreshed",
        &rotated,
    );
    assert_eq!(webhook.delivered(), 3);
}

#[test]
fn configurations_that_cannot_work_are_refused_with_the_value() {
    let client = || support::client::<Empty<Bytes>>();
    let table = [
        ("common", vec![APP_ID], None, "`common` names no tenant: give the directory (tenant) id"),
        (
            "contoso.onmicrosoft.com",
            vec![APP_ID],
            None,
            "`contoso.onmicrosoft.com` is not a directory (tenant) id: give the GUID that tokens carry in `tid`",
        ),
        ("a/b", vec![APP_ID], None, "`a/b` is not a directory (tenant) id: give the GUID that tokens carry in `tid`"),
        ("", vec![APP_ID], None, "`` is not a directory (tenant) id: give the GUID that tokens carry in `tid`"),
        (TENANT, vec![" "], None, "no audience: give the application id or its id URI"),
        (
            TENANT,
            vec![APP_ID],
            Some("http://login.example.net"),
            "authority `http://login.example.net` must use https (http only for a loopback host)",
        ),
        (
            TENANT,
            vec![APP_ID],
            Some("https://login.example.net/tenant"),
            "authority `https://login.example.net/tenant` must be `scheme://host[:port]` alone",
        ),
    ];
    for (tenant, audiences, authority, message) in table {
        let result = EntraDeliveryCheck::new(tenant, audiences, client()).and_then(|check| match authority {
            Some(authority) => check.authority(authority),
            None => Ok(check),
        });
        assert_eq!(result.unwrap_err().to_string(), message, "{tenant} {authority:?}");
    }
    let check = EntraDeliveryCheck::new(TENANT, [APP_ID], client()).unwrap();
    assert_eq!(
        format!("{check:?}"),
        format!(
            "EntraDeliveryCheck {{ tenant: \"{TENANT}\", authority: https://login.microsoftonline.com/, audiences: \
             [\"{APP_ID}\"], callers: [\"{EVENT_GRID_APP_ID}\"], role: Some(\"AzureEventGridSecureWebhookSubscriber\"), leeway: 60s, .. }}"
        )
    );
}

#[tokio::test]
async fn a_key_set_over_the_size_limit_is_refused_with_503() {
    let keys = KeyServer::start().await;
    // The configuration (about 190 bytes) fits; the key set (about 470) does not.
    let webhook = Webhook::start(check(&keys).max_key_set_bytes(300)).await;
    let token = signed(KID, &claims());
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    let unavailable = "the signing keys of tenant `3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60` could not be fetched";
    assert_refused(&reply, StatusCode::SERVICE_UNAVAILABLE, unavailable, &token);
    assert_eq!((keys.configurations.load(Ordering::SeqCst), keys.key_sets()), (1, 1));
}

#[tokio::test]
async fn a_us_government_check_takes_that_cloud_issuers_and_event_grid_application_only() {
    let keys = KeyServer::start().await;
    let client = support::client::<Empty<Bytes>>();
    let check = EntraDeliveryCheck::new(TENANT, [APP_ID_URI, APP_ID], client)
        .unwrap()
        .cloud(AzureCloud::UsGovernment)
        .authority(&keys.authority())
        .unwrap()
        .with_clock(wall);
    let webhook = Webhook::start(check).await;
    let gov = with(
        claims(),
        json!({"iss": format!("https://login.microsoftonline.us/{TENANT}/v2.0"), "azp": EVENT_GRID_US_GOV_APP_ID}),
    );
    let reply = webhook.deliver(Some(&bearer(&signed(KID, &gov)))).await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, "delivered 1 events"));
    // The public cloud's Event Grid is another application there.
    let token = signed(KID, &with(gov.clone(), json!({"azp": EVENT_GRID_APP_ID})));
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    let detail = format!("the token's calling application `{EVENT_GRID_APP_ID}` is not Event Grid");
    assert_refused(&reply, StatusCode::FORBIDDEN, &detail, &token);
    // A public-cloud issuer is not this cloud's.
    let token = signed(KID, &with(gov, json!({"iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0")})));
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert!(reply.text().contains("the token issuer"), "{}", reply.text());
    assert_eq!(webhook.delivered(), 1);
}

#[tokio::test]
async fn a_china_check_allows_no_caller_until_one_is_named() {
    let keys = KeyServer::start().await;
    let china = |callers: &[&str]| {
        let check = EntraDeliveryCheck::new(TENANT, [APP_ID_URI], support::client::<Empty<Bytes>>())
            .unwrap()
            .cloud(AzureCloud::China)
            .authority(&keys.authority())
            .unwrap()
            .with_clock(wall);
        match callers {
            [] => check,
            named => check.allowed_callers(named.iter().copied()),
        }
    };
    let claims = with(claims(), json!({"iss": format!("https://login.chinacloudapi.cn/{TENANT}/v2.0")}));
    let token = signed(KID, &claims);
    let webhook = Webhook::start(china(&[])).await;
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    let detail = format!("the token's calling application `{EVENT_GRID_APP_ID}` is not Event Grid");
    assert_refused(&reply, StatusCode::FORBIDDEN, &detail, &token);
    let webhook = Webhook::start(china(&[EVENT_GRID_APP_ID])).await;
    let reply = webhook.deliver(Some(&bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
