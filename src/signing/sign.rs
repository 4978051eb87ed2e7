//! The pure HMAC-SHA256 scheme: strings in, strings out, no `http` types.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::credential::AccessKey;

type HmacSha256 = Hmac<Sha256>;

/// `base64(SHA-256(""))`, the content hash of every request without a body.
pub const EMPTY_CONTENT_HASH: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/// The `SignedHeaders` list of the default scheme (`x-ms-date`).
pub(crate) const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// The `SignedHeaders` list of the legacy scheme of the original quickstart (`Date`).
pub(crate) const LEGACY_SIGNED_HEADERS: &str = "date;host;x-ms-content-sha256";

/// Length of a base64-encoded SHA-256 digest, padding included.
pub(crate) const DIGEST_BASE64_LEN: usize = 44;

/// Length of an IMF-fixdate such as `Thu, 26 Nov 2026 05:46:36 GMT`.
pub(crate) const HTTP_DATE_LEN: usize = 29;

/// Builds the string to sign: `METHOD\npath_and_query\ndate;host;content_hash`.
///
/// `method` is upper-cased; the other parts are used exactly as given.
///
/// ```
/// use acs_recording::signing::{string_to_sign, EMPTY_CONTENT_HASH};
///
/// let s = string_to_sign("get", "/testPath?testQuery=yes", "Wed, 13 Apr 2022 18:09:12 GMT",
///     "contoso.communicationservices.azure.com", EMPTY_CONTENT_HASH);
/// assert_eq!(s, "GET\n/testPath?testQuery=yes\nWed, 13 Apr 2022 18:09:12 GMT;\
///     contoso.communicationservices.azure.com;47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
/// ```
pub fn string_to_sign(method: &str, path_and_query: &str, date: &str, host: &str, content_hash: &str) -> String {
    let mut out = String::new();
    write_string_to_sign(&mut out, method, path_and_query, date, host, content_hash);
    out
}

/// Writes the string to sign into a reusable buffer (cleared first).
pub(crate) fn write_string_to_sign(
    out: &mut String,
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) {
    out.clear();
    out.reserve(method.len() + path_and_query.len() + date.len() + host.len() + content_hash.len() + 4);
    for b in method.chars() {
        out.push(b.to_ascii_uppercase());
    }
    out.push('\n');
    out.push_str(path_and_query);
    out.push('\n');
    out.push_str(date);
    out.push(';');
    out.push_str(host);
    out.push(';');
    out.push_str(content_hash);
}

/// Computes `base64(HMAC-SHA256(key, string_to_sign))`, the `Signature` of the `Authorization` header.
///
/// ```
/// use acs_recording::{credential::AccessKey, signing::compute_signature};
///
/// let key = AccessKey::from_base64("pw==")?;
/// let sts = "GET\n/\nWed, 13 Apr 2022 18:09:12 GMT;contoso.communicationservices.azure.com;\
///            47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
/// assert_eq!(compute_signature(&key, sts), "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4=");
/// # Ok::<(), acs_recording::credential::Error>(())
/// ```
pub fn compute_signature(key: &AccessKey, string_to_sign: &str) -> String {
    HmacKey::new(key).signature(string_to_sign).as_str().to_owned()
}

/// Computes `base64(SHA-256(body))`, the `x-ms-content-sha256` value.
///
/// ```
/// use acs_recording::signing::{content_hash, EMPTY_CONTENT_HASH};
/// assert_eq!(content_hash(b""), EMPTY_CONTENT_HASH);
/// ```
pub fn content_hash(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Formats a time as an IMF-fixdate (`Thu, 26 Nov 2026 05:46:36 GMT`), the `x-ms-date` value.
pub fn format_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

/// A base64 HMAC or digest held on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Base64Digest([u8; DIGEST_BASE64_LEN]);

impl Base64Digest {
    /// Holds a digest already in base64, such as [`EMPTY_CONTENT_HASH`]; `text` must be 44 ASCII bytes.
    pub(crate) const fn from_base64(text: &str) -> Self {
        let bytes = text.as_bytes();
        assert!(bytes.len() == DIGEST_BASE64_LEN, "a base64 SHA-256 digest is 44 bytes");
        let mut buf = [0u8; DIGEST_BASE64_LEN];
        let mut i = 0;
        while i < DIGEST_BASE64_LEN {
            buf[i] = bytes[i];
            i += 1;
        }
        Self(buf)
    }

    pub(crate) fn encode(digest: &[u8]) -> Self {
        let mut buf = [0u8; DIGEST_BASE64_LEN];
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(digest, &mut buf)
            .expect("a 32-byte digest encodes to 44 bytes");
        debug_assert_eq!(written, DIGEST_BASE64_LEN);
        Self(buf)
    }

    pub(crate) fn as_str(&self) -> &str {
        // base64 output is ASCII.
        std::str::from_utf8(&self.0).expect("base64 is ascii")
    }
}

impl fmt::Debug for Base64Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<digest>")
    }
}

/// An HMAC-SHA256 key prepared once (inner and outer pads hashed) and cloned per signature.
#[derive(Clone)]
pub(crate) struct HmacKey {
    mac: HmacSha256,
}

impl HmacKey {
    pub(crate) fn new(key: &AccessKey) -> Self {
        Self { mac: HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length") }
    }

    pub(crate) fn signature(&self, string_to_sign: &str) -> Base64Digest {
        let mut mac = self.mac.clone();
        mac.update(string_to_sign.as_bytes());
        Base64Digest::encode(&mac.finalize().into_bytes())
    }

    /// Checks a decoded signature in constant time.
    pub(crate) fn verify(&self, string_to_sign: &str, signature: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// The IMF-fixdate of `time`, reused within the same second on this thread.
pub(crate) fn cached_http_date(time: SystemTime) -> http::HeaderValue {
    thread_local! {
        static CACHE: RefCell<Option<(u64, http::HeaderValue)>> = const { RefCell::new(None) };
    }
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((cached, value)) = cache.as_ref() {
            if *cached == secs {
                return value.clone();
            }
        }
        let text = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        debug_assert_eq!(text.len(), HTTP_DATE_LEN);
        let value = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).expect("http dates are ascii");
        *cache = Some((secs, value.clone()));
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn official_python_sdk_vectors() {
        // The known answers of the official Python SDK's HMAC tests (azure-communication-identity, test_hmac.py).
        let key = AccessKey::from_base64("pw==").unwrap();
        let date = "Wed, 13 Apr 2022 18:09:12 GMT";
        let host = "contoso.communicationservices.azure.com";
        for (path, expected) in [
            ("/", "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4="),
            ("/testPath", "RoCrHjw7fb9fpHSbqvRUY2xa8RBS0YvI1cxI1x8AS38="),
            ("/testPath?testQuery=yes", "il99+rd6V5O136roX/zVePCNle78HmvC4B7tu9zRH3I="),
        ] {
            let sts = string_to_sign("GET", path, date, host, EMPTY_CONTENT_HASH);
            assert_eq!(compute_signature(&key, &sts), expected, "{path}");
        }
    }

    #[test]
    fn empty_hash_constant_matches_sha256() {
        assert_eq!(content_hash(b""), EMPTY_CONTENT_HASH);
    }

    #[test]
    fn verify_accepts_only_the_exact_signature() {
        let signer = HmacKey::new(&AccessKey::from_bytes(b"k".to_vec()));
        let sig = signer.signature("abc");
        let raw = base64::engine::general_purpose::STANDARD.decode(sig.as_str()).unwrap();
        assert!(signer.verify("abc", &raw));
        assert!(!signer.verify("abd", &raw));
        assert!(!signer.verify("abc", &raw[..31]));
    }

    #[test]
    fn cached_date_changes_with_the_second() {
        let t = UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        assert_eq!(cached_http_date(t), "Wed, 13 Apr 2022 18:09:12 GMT");
        assert_eq!(cached_http_date(t + Duration::from_millis(999)), "Wed, 13 Apr 2022 18:09:12 GMT");
        assert_eq!(cached_http_date(t + Duration::from_secs(1)), "Wed, 13 Apr 2022 18:09:13 GMT");
    }

    #[test]
    fn method_is_upper_cased() {
        assert!(string_to_sign("post", "/", "d", "h", "c").starts_with("POST\n"));
    }
}
