//! The signing benches' floor: what a bare implementation does per request, with the same key and date as the
//! layers get from their fixed clock.

use std::time::{Duration, SystemTime};

use acs_recording::signing::EMPTY_CONTENT_HASH;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The benchmark key.
pub(crate) const KEY: &[u8] = b"acs-recording benchmark key, 32 bytes or so....";
/// The host every request is signed for.
pub(crate) const HOST: &str = "contoso.communication.azure.com";

/// A fixed instant (2026-11-26T08:43:10Z), so that every run formats the same date.
pub(crate) fn fixed_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_596_190)
}

/// HMAC-SHA256 over the string to sign, base64, and the date formatted; with a bare SHA-256 of a non-empty body.
/// Answers the date, the content hash and the signature.
pub(crate) fn floor_sign(method: &str, path_and_query: &str, body: &[u8], now: SystemTime) -> (String, String, String) {
    let date = httpdate::fmt_http_date(now);
    let hash = if body.is_empty() {
        EMPTY_CONTENT_HASH.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
    };
    let sts = format!("{method}\n{path_and_query}\n{date};{HOST};{hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
    mac.update(sts.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (date, hash, signature)
}

/// The verifier's floor: the same HMAC over the string to sign rebuilt from the received date and hash, compared in
/// constant time with the received signature (base64-decoded).
pub(crate) fn floor_verify(method: &str, path_and_query: &str, date: &str, hash: &str, signature: &str) -> bool {
    let sts = format!("{method}\n{path_and_query}\n{date};{HOST};{hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
    mac.update(sts.as_bytes());
    let Ok(received) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
    mac.verify_slice(&received).is_ok()
}
