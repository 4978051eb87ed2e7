use std::fmt;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{combinators::BoxBody, combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use sha2::{Digest, Sha256};

use super::sign::{Base64Digest, EMPTY_CONTENT_HASH};

/// A precomputed `x-ms-content-sha256` value, attached to a request's extensions so that the signing layer does
/// not read the body (for streaming uploads whose hash the caller already knows).
///
/// ```
/// use acs_recording::signing::ContentHash;
///
/// let hash = ContentHash::of(b"{}");
/// assert_eq!(hash.as_str(), "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=");
/// let request = http::Request::post("https://contoso.communication.azure.com/x")
///     .extension(hash)
///     .body(())
///     .unwrap();
/// assert!(request.extensions().get::<ContentHash>().is_some());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentHash(Base64Digest);

impl ContentHash {
    /// The hash of an empty body, [`EMPTY_CONTENT_HASH`](super::EMPTY_CONTENT_HASH).
    pub const EMPTY: ContentHash = ContentHash(Base64Digest::from_base64(EMPTY_CONTENT_HASH));

    /// Hashes `body`.
    pub fn of(body: &[u8]) -> Self {
        Self::from_digest(Sha256::digest(body).into())
    }

    /// Wraps a SHA-256 digest computed elsewhere.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(Base64Digest::encode(&digest))
    }

    /// The base64 form sent in `x-ms-content-sha256`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContentHash").field(&self.as_str()).finish()
    }
}

/// A request body the signing layer can rebuild after hashing its bytes.
///
/// Bodies that are known to be empty, or that come with a [`ContentHash`], are passed through untouched. Any other
/// body is read, up to the layer's buffer limit, hashed, and rebuilt with [`SignableBody::from_bytes`]. For
/// [`Full<Bytes>`] the single frame is moved, not copied.
pub trait SignableBody: Body + Sized {
    /// Rebuilds the body from the bytes read out of it.
    fn from_bytes(bytes: Bytes) -> Self;
}

impl SignableBody for Full<Bytes> {
    fn from_bytes(bytes: Bytes) -> Self {
        Full::new(bytes)
    }
}

impl SignableBody for Empty<Bytes> {
    fn from_bytes(bytes: Bytes) -> Self {
        // An `Empty` body is always at its end, so the layer never reads one; its bytes are always empty.
        debug_assert!(bytes.is_empty());
        Empty::new()
    }
}

impl<E: 'static> SignableBody for BoxBody<Bytes, E> {
    fn from_bytes(bytes: Bytes) -> Self {
        Full::new(bytes).map_err(|never| match never {}).boxed()
    }
}

impl<E: 'static> SignableBody for UnsyncBoxBody<Bytes, E> {
    fn from_bytes(bytes: Bytes) -> Self {
        Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
    }
}

#[cfg(feature = "axum")]
impl SignableBody for axum_core::body::Body {
    fn from_bytes(bytes: Bytes) -> Self {
        axum_core::body::Body::from(bytes)
    }
}
