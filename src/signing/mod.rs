//! Authenticating requests to Azure Communication Services: HMAC-SHA256 signing and verification, and Microsoft
//! Entra ID bearer tokens (feature `entra`).
//!
//! [`HmacSigningLayer`] signs outgoing requests for any client `Service<http::Request<B>>` (hyper-util's client,
//! for instance); [`HmacVerifyLayer`] checks such signatures on a server. [`HmacSigner`] is what the layer signs
//! with, usable on its own to sign a request head for any client, tower or not. The pure functions
//! [`string_to_sign`] and [`compute_signature`] are the scheme itself. `BearerTokenLayer` sends an Entra access
//! token instead, for a resource reached with a managed identity or a developer's sign-in.

//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::{Duration, SystemTime};
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::signing::HmacSigningLayer;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cs: ConnectionString = "endpoint=https://contoso.communicationservices.azure.com/;accesskey=pw==".parse()?;
//! let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352); // Wed, 13 Apr 2022 18:09:12 GMT
//! let client = ServiceBuilder::new()
//!     .layer(HmacSigningLayer::from_connection_string(&cs).with_clock(move || at))
//!     // Any HTTP client goes here; this one echoes the request it was given.
//!     .service(service_fn(|request: http::Request<Empty<Bytes>>| async move { Ok::<_, Infallible>(request) }));
//!
//! let request = http::Request::get("https://contoso.communicationservices.azure.com/testPath?testQuery=yes")
//!     .body(Empty::new())?;
//! let sent = client.clone().oneshot(request).await?;
//! assert_eq!(sent.headers()["x-ms-date"], "Wed, 13 Apr 2022 18:09:12 GMT");
//! assert_eq!(sent.headers()["x-ms-content-sha256"], "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
//! assert_eq!(
//!     sent.headers()["authorization"],
//!     "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=il99+rd6V5O136roX/zVePCNle78HmvC4B7tu9zRH3I="
//! );
//!
//! // The key never signs a request for a host that is not allowed: the client is not called.
//! let request = http::Request::get("https://attacker.example/steal").body(Empty::new())?;
//! let error = client.oneshot(request).await.unwrap_err();
//! assert_eq!(error.to_string(), "refused to sign a request to `attacker.example`");
//! let why = std::error::Error::source(&error).unwrap(); // the refusal says why, once
//! assert_eq!(why.to_string(), "host `attacker.example` is not on the allow-list");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. `x-ms-content-sha256` is `base64(SHA-256(body))`: a constant for an empty body, the hash of the bytes for a
//!    body of known content, or a caller's precomputed [`ContentHash`]. Other bodies are read up to
//!    [`HmacSigningLayer::body_buffer_limit`]; past it the request fails, it is never buffered unbounded.
//! 2. `x-ms-date` is the IMF-fixdate of the layer's clock ([`HmacSigningLayer::legacy_date_header`] sends `Date`).
//! 3. The string to sign is `METHOD\npath?query\ndate;host;hash`; the signature is its HMAC-SHA256 under the
//!    decoded access key, sent as `Authorization: HMAC-SHA256 SignedHeaders=...&Signature=...`.
//! 4. A request for another host than the endpoint (recording storage) is signed as the endpoint's authority with
//!    the location's path only, and carries `x-ms-host: <endpoint authority>`.
//! 5. Only the endpoint and hosts on the [`AllowList`] get signed requests. Anything else fails with
//!    [`ErrorKind::RefusedHost`], naming the host, before the inner service is called.
//! 6. Signed headers are marked sensitive. Put the signing layer *inside* any retry layer, so that every attempt
//!    gets a fresh date.
//!
//! The verifier recomputes the signature over its own configured authority and accepts what the official SDKs
//! send: `x-ms-host` with or without the port and, for a storage request, a signature over the path alone or the
//! path and query. It compares in constant time, enforces a skew window (±15 minutes by default), checks the body
//! against `x-ms-content-sha256` under a size limit, and answers a failure with 401 and a short JSON reason that
//! never reveals the expected signature.
//!
//! ```
//! use std::convert::Infallible;
//! use acs_recording::credential::AccessKey;
//! use acs_recording::signing::HmacVerifyLayer;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let server = ServiceBuilder::new()
//!     .layer(HmacVerifyLayer::new(AccessKey::from_base64("pw==")?, "127.0.0.1:4000"))
//!     .service(service_fn(|_: http::Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"recording"))))
//!     }));
//! let unsigned = http::Request::get("/recording/download/doc").body(Empty::<Bytes>::new())?;
//! let response = server.oneshot(unsigned).await?;
//! assert_eq!(response.status(), 401);
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(body, r#"{"error":"missing_header","message":"missing header `authorization`"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Microsoft Entra ID
//!
//! With the `entra` feature, `BearerTokenLayer` takes the place of the HMAC layer: it asks an
//! `azure_core::credentials::TokenCredential` (any `azure_identity` credential) for tokens of the scope
//! `ACS_SCOPE`, `https://communication.azure.com//.default`.
//!
#![cfg_attr(
    feature = "entra",
    doc = r##"
```
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use acs_recording::credential::Endpoint;
use acs_recording::signing::{AllowList, BearerTokenLayer, ACS_SCOPE};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use bytes::Bytes;
use http_body_util::Empty;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// A stand-in for `azure_identity::ManagedIdentityCredential`: numbered tokens, valid for an hour.
#[derive(Debug, Default)]
struct Numbered(AtomicUsize);

#[async_trait::async_trait]
impl TokenCredential for Numbered {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, [ACS_SCOPE]);
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(format!("token-{n}"), OffsetDateTime::now_utc() + Duration::hours(1)))
    }
}

# tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
let credential = Arc::new(Numbered::default());
let endpoint = Endpoint::parse("https://contoso.communication.azure.com/")?;
let client = ServiceBuilder::new()
    .layer(BearerTokenLayer::new(endpoint, credential.clone()).allow_list(AllowList::azure_defaults()))
    // Any HTTP client goes here; this one answers with the request it was given.
    .service(service_fn(|request: http::Request<Empty<Bytes>>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(request))
    }));

// A recording on a storage host: the token, and `x-ms-host` naming the resource, as with HMAC.
let location = "https://eu.asm.skype.com/v1/objects/0-eu-d1/content/audio";
let sent = client.clone().oneshot(http::Request::get(location).body(Empty::new())?).await?.into_body();
assert_eq!(sent.headers()["authorization"], "Bearer token-1");
assert!(sent.headers()["authorization"].is_sensitive());
assert_eq!(sent.headers()["x-ms-host"], "contoso.communication.azure.com");

// The token is cached: the next request asks the credential for nothing.
client.clone().oneshot(http::Request::get(location).body(Empty::new())?).await?;
assert_eq!(credential.0.load(Ordering::SeqCst), 1);

// A host that is not allowed gets no token, and no request.
let request = http::Request::get("https://attacker.example/steal").body(Empty::new())?;
let error = client.oneshot(request).await.unwrap_err();
assert_eq!(error.to_string(), "refused to sign a request to `attacker.example`");
assert_eq!(error.refusal().unwrap().to_string(), "host `attacker.example` is not on the allow-list");
# Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
# }).unwrap();
```
"##
)]
//!
//! 1. Only the endpoint and hosts on the [`AllowList`] get a token; anything else fails with
//!    [`ErrorKind::RefusedHost`] before a token is looked up and before the inner service is called. The same
//!    scheme rules hold: `https`, or `http` for a loopback endpoint or a host named on the allow-list.
//! 2. A request for another host than the endpoint carries `x-ms-host: <endpoint authority>`, by the same rule
//!    as the HMAC layer.
//! 3. The token is cached and shared by every clone of the layer and its services. About 5 minutes before it
//!    expires (`BearerTokenLayer::refresh_before`) one refresh starts in the background; requests keep using
//!    the valid token meanwhile. Only a request that finds no valid token waits, and however many wait, the
//!    credential is asked once.
//! 4. A 401 drops the token and the request is sent once more with a new one, when its body is empty (the
//!    downloader's `GET` and `DELETE`; the body type must be `Default` to build the retry). A failed credential
//!    is [`ErrorKind::Credential`]; nothing is sent.
//! 5. The `Authorization` header is marked sensitive; `Debug` of the layer, its service and its future never
//!    shows a token, and neither do errors or logs.
//!
//! `azure_core` 1.x needs Rust 1.88, below this crate's 1.89.

mod allow;
#[cfg(feature = "entra")]
mod bearer;
mod body;
mod error;
mod hmac;
mod sign;
mod signer;
mod target;
mod verify;

pub use crate::body::ResponseBody;
pub use allow::{AllowList, InvalidHost, Refused, RefusedReason};
#[cfg(feature = "entra")]
pub use bearer::{BearerFuture, BearerToken, BearerTokenLayer, ACS_SCOPE};
#[cfg(all(feature = "entra", feature = "storage-queue"))]
pub(crate) use bearer::{TokenCache, DEFAULT_REFRESH_BEFORE};
pub use body::{ContentHash, SignableBody};
pub use error::{Error, ErrorKind};
pub use hmac::{HmacSigning, HmacSigningLayer, ResponseFuture};
#[cfg(feature = "storage-queue")]
pub(crate) use sign::HmacKey;
pub use sign::{compute_signature, content_hash, format_date, string_to_sign, EMPTY_CONTENT_HASH};
pub use signer::HmacSigner;
#[cfg(feature = "emulator")]
pub(crate) use verify::DEFAULT_VERIFY_BODY_LIMIT;
pub use verify::{HmacVerify, HmacVerifyLayer, VerifyFuture, VerifyRejection};
