//! HMAC-SHA256 request signing and verification for Azure Communication Services (`SPEC.md` §2).
//!
//! [`HmacSigningLayer`] signs outgoing requests for any client `Service<http::Request<B>>` (hyper-util's client,
//! for instance); [`HmacVerifyLayer`] checks such signatures on a server. The pure functions
//! [`string_to_sign`] and [`compute_signature`] are the scheme itself.
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
//! assert_eq!(error.to_string(), "refused to sign a request: host `attacker.example` is not on the allow-list");
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

mod allow;
mod body;
mod error;
mod future;
mod layer;
mod sign;
mod verify;

pub use allow::{AllowList, InvalidHost, Refused, RefusedReason, DEFAULT_STORAGE_SUFFIXES};
pub use body::{ContentHash, SignableBody};
pub use error::{Error, ErrorKind};
pub use future::ResponseFuture;
pub use layer::{HmacSigning, HmacSigningLayer, DEFAULT_BODY_BUFFER_LIMIT};
pub use sign::{
    compute_signature, content_hash, format_date, string_to_sign, EMPTY_CONTENT_HASH, LEGACY_SIGNED_HEADERS,
    SIGNED_HEADERS,
};
pub use verify::{
    HmacVerify, HmacVerifyLayer, ResponseBody, VerifyFuture, VerifyRejection, DEFAULT_MAX_SKEW,
    DEFAULT_VERIFY_BODY_LIMIT,
};
