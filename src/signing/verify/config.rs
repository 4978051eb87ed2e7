//! The verifier's configuration and its check of a request head.

use std::time::Duration;

use base64::Engine as _;
use http::header::{AUTHORIZATION, DATE};
use http::HeaderMap;

use super::rejection::VerifyRejection;
use crate::clock::{Clock, SharedClock};
use crate::signing::body::ContentHash;
use crate::signing::sign::{write_string_to_sign, HmacKey, LEGACY_SIGNED_HEADERS, SIGNED_HEADERS};
use crate::signing::target::{signing_target, X_MS_DATE, X_MS_HOST};

/// The default allowed difference between a request's date and the server's clock: 15 minutes.
pub(crate) const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The default limit on a verified request body: 1 MiB.
pub(crate) const DEFAULT_VERIFY_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub(super) struct VerifyConfig {
    pub(super) key: HmacKey,
    /// `host[:port]` of the endpoint this server stands for, as clients sign it.
    pub(super) authority: String,
    pub(super) clock: SharedClock,
    pub(super) max_skew: Duration,
    pub(super) body_limit: usize,
}

impl VerifyConfig {
    /// Checks everything but the body: headers, date, host and signature. The body is only read once the
    /// signature holds, so an unauthenticated client cannot make the server buffer anything.
    pub(super) fn check_head(&self, request: &http::request::Parts) -> Result<ContentHash, VerifyRejection> {
        let headers = &request.headers;
        let authorization = header_str(headers, "authorization")?;
        let (legacy, signature) = parse_authorization(authorization)?;
        let (date_name, date_header) = if legacy { ("date", DATE) } else { ("x-ms-date", X_MS_DATE) };
        let date = headers
            .get(&date_header)
            .ok_or(VerifyRejection::MissingHeader(date_name))?
            .to_str()
            .map_err(|_| VerifyRejection::BadDate)?;
        let hash = header_str(headers, "x-ms-content-sha256")?;
        let claimed_hash = decode_digest(hash).ok_or(VerifyRejection::BodyHashMismatch)?;

        let signed_at = httpdate::parse_http_date(date).map_err(|_| VerifyRejection::BadDate)?;
        let now = self.clock.now();
        let skew = now.duration_since(signed_at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
        if skew > self.max_skew {
            return Err(VerifyRejection::DateSkew);
        }

        // A request for a storage location carries `x-ms-host`. The official SDKs disagree on its form: they send
        // it with or without the port, and sign either the path alone (.NET, JS) or the path and query (Python).
        // The verifier accepts each of them, so that a client of any SDK can be tested against it.
        let cross_host = match headers.get(X_MS_HOST) {
            None => false,
            Some(value) => {
                let value = value.to_str().map_err(|_| VerifyRejection::HostMismatch)?;
                if !self.names_this_endpoint(value) {
                    return Err(VerifyRejection::HostMismatch);
                }
                true
            }
        };
        let (host, with_query) = signing_target(&self.authority, &request.uri, false);
        let mut sts = String::new();
        write_string_to_sign(&mut sts, request.method.as_str(), with_query, date, host, hash);
        let mut valid = self.key.verify(&sts, &signature);
        if cross_host {
            let (_, path_only) = signing_target(&self.authority, &request.uri, true);
            write_string_to_sign(&mut sts, request.method.as_str(), path_only, date, host, hash);
            // Both candidates are always computed, so the timing does not tell which one matched.
            valid |= self.key.verify(&sts, &signature);
        }
        if !valid {
            return Err(VerifyRejection::BadSignature);
        }
        Ok(ContentHash::from_digest(claimed_hash))
    }

    fn names_this_endpoint(&self, value: &str) -> bool {
        let value = value.trim();
        if value.eq_ignore_ascii_case(&self.authority) {
            return true;
        }
        let host_only = match self.authority.rfind(':') {
            Some(colon) if !self.authority[colon..].contains(']') => &self.authority[..colon],
            _ => self.authority.as_str(),
        };
        value.eq_ignore_ascii_case(host_only)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyRejection> {
    let value = headers.get(name).ok_or(VerifyRejection::MissingHeader(name))?;
    value.to_str().map_err(|_| {
        if name == AUTHORIZATION.as_str() {
            VerifyRejection::MalformedAuthorization
        } else {
            VerifyRejection::BodyHashMismatch
        }
    })
}

/// Parses `HMAC-SHA256 SignedHeaders=<list>&Signature=<base64>`; returns whether the legacy `date` list was used
/// and the decoded signature.
fn parse_authorization(value: &str) -> Result<(bool, [u8; 32]), VerifyRejection> {
    let malformed = VerifyRejection::MalformedAuthorization;
    let (scheme, params) = value.trim().split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(malformed);
    }
    let mut signed_headers = None;
    let mut signature = None;
    for param in params.trim().split('&') {
        let (name, value) = param.split_once('=').ok_or(malformed)?;
        if name.eq_ignore_ascii_case("SignedHeaders") {
            signed_headers = Some(value);
        } else if name.eq_ignore_ascii_case("Signature") {
            signature = Some(value);
        } else {
            return Err(malformed);
        }
    }
    let legacy = match signed_headers.ok_or(malformed)? {
        list if list.eq_ignore_ascii_case(SIGNED_HEADERS) => false,
        list if list.eq_ignore_ascii_case(LEGACY_SIGNED_HEADERS) => true,
        _ => return Err(malformed),
    };
    let signature = decode_digest(signature.ok_or(malformed)?).ok_or(malformed)?;
    Ok((legacy, signature))
}

fn decode_digest(encoded: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 33];
    let len = base64::engine::general_purpose::STANDARD.decode_slice(encoded.trim(), &mut out).ok()?;
    (len == 32).then(|| out[..32].try_into().expect("32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::AccessKey;

    #[test]
    fn authorization_parsing() {
        let sig = "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4=";
        let ok = format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}");
        assert!(matches!(parse_authorization(&ok), Ok((false, _))));
        let legacy = format!("HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={sig}");
        assert!(matches!(parse_authorization(&legacy), Ok((true, _))));
        for bad in [
            String::new(),
            format!("Bearer SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"),
            format!("HMAC-SHA256 SignedHeaders=host&Signature={sig}"),
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=abc".into(),
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256".into(),
            format!("HMAC-SHA256 Signature={sig}"),
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}&x=y"),
        ] {
            assert_eq!(parse_authorization(&bad).unwrap_err(), VerifyRejection::MalformedAuthorization, "{bad}");
        }
    }

    #[test]
    fn x_ms_host_with_or_without_port_names_the_endpoint() {
        let config = VerifyConfig {
            key: HmacKey::new(&AccessKey::from_bytes(b"k".to_vec())),
            authority: "127.0.0.1:40183".into(),
            clock: SharedClock::system(),
            max_skew: DEFAULT_MAX_SKEW,
            body_limit: 0,
        };
        assert!(config.names_this_endpoint("127.0.0.1:40183"));
        assert!(config.names_this_endpoint("127.0.0.1"));
        assert!(!config.names_this_endpoint("127.0.0.2"));
        assert!(!config.names_this_endpoint("127.0.0.1:1"));
    }
}
