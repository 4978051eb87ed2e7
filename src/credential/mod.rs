//! Connection strings, endpoints and access keys.
//!
//! An ACS connection string looks like
//! `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`. The rules:
//!
//! 1. Keys are case-insensitive and separated by `;`; values may contain `=` (base64 padding).
//! 2. A trailing `;`, empty parts and whitespace around parts are tolerated.
//! 3. The HMAC key is the base64-*decoded* access key.
//! 4. The endpoint is `https`, except for loopback hosts (`127.0.0.0/8`, `::1`, `localhost`), which may use
//!    `http` so that local emulators work. A trailing `/` is ignored.
//! 5. Errors name the missing or malformed part and never contain key material; `Debug` of every type here
//!    redacts the key.
//!
//! # Example
//!
//! ```
//! use acs_recording::credential::ConnectionString;
//!
//! let cs: ConnectionString =
//!     "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
//! assert_eq!(cs.endpoint().authority(), "contoso.communication.azure.com");
//! assert_eq!(cs.endpoint().url(), "https://contoso.communication.azure.com/");
//! assert_eq!(format!("{:?}", cs.access_key()), "AccessKey(<redacted>)");
//!
//! let err = "endpoint=https://contoso.communication.azure.com/".parse::<ConnectionString>().unwrap_err();
//! assert_eq!(err.to_string(), "connection string has no `accesskey` part");
//! # Ok::<(), acs_recording::credential::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// The environment variable read by [`ConnectionString::from_env`].
pub const CONNECTION_STRING_ENV: &str = "ACS_CONNECTION_STRING";

/// A parsed ACS connection string: an [`Endpoint`] and an [`AccessKey`].
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    endpoint: Endpoint,
    access_key: AccessKey,
}

impl ConnectionString {
    /// Parses `endpoint=...;accesskey=...` (see the module docs for the rules).
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut endpoint = None;
        let mut access_key = None;
        for (position, part) in input.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            // Never echo the part itself: it may be the key.
            let (key, value) = part.split_once('=').ok_or(Error::new(
                ErrorKind::MalformedPart,
                format!("connection string part {} is not `key=value`", position + 1),
            ))?;
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("endpoint") {
                endpoint = Some(Endpoint::parse(value)?);
            } else if key.eq_ignore_ascii_case("accesskey") {
                access_key = Some(AccessKey::from_base64(value)?);
            }
        }
        let endpoint =
            endpoint.ok_or(Error::new(ErrorKind::MissingPart, "connection string has no `endpoint` part".into()))?;
        let access_key =
            access_key.ok_or(Error::new(ErrorKind::MissingPart, "connection string has no `accesskey` part".into()))?;
        Ok(Self { endpoint, access_key })
    }

    /// Reads and parses the connection string in the `ACS_CONNECTION_STRING` environment variable.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(CONNECTION_STRING_ENV) {
            Ok(value) => Self::parse(&value),
            Err(_) => Err(Error::new(
                ErrorKind::MissingEnvironment,
                format!("environment variable `{CONNECTION_STRING_ENV}` is not set or not unicode"),
            )),
        }
    }

    /// Builds a connection string from its parts.
    pub fn new(endpoint: Endpoint, access_key: AccessKey) -> Self {
        Self { endpoint, access_key }
    }

    /// The resource endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The decoded access key.
    pub fn access_key(&self) -> &AccessKey {
        &self.access_key
    }

    /// Splits into the endpoint and the key.
    pub fn into_parts(self) -> (Endpoint, AccessKey) {
        (self.endpoint, self.access_key)
    }

    /// Writes the connection string in its canonical form, key included:
    /// `endpoint=<url>;accesskey=<padded standard base64>`, with no spaces.
    ///
    /// This is the only way to get key material out of the type; it exists for emulators that hand a connection
    /// string to other programs.
    pub fn to_secret_string(&self) -> String {
        format!("endpoint={};accesskey={}", self.endpoint.url(), self.access_key.to_base64())
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .finish()
    }
}

mod auth;
mod endpoint;

pub use auth::Credential;
pub(crate) use endpoint::{is_ip_literal, is_loopback_host};
pub use endpoint::{Endpoint, Scheme};

/// The decoded ACS access key: the HMAC-SHA256 key.
///
/// `Debug` prints `AccessKey(<redacted>)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(Vec<u8>);

impl AccessKey {
    /// Decodes a standard-alphabet base64 key; padding is optional.
    pub fn from_base64(encoded: &str) -> Result<Self, Error> {
        let encoded = encoded.trim();
        if encoded.is_empty() {
            return Err(Error::new(ErrorKind::InvalidAccessKey, "access key is empty".into()));
        }
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        engine.decode(encoded).map(Self).map_err(|_| {
            Error::new(ErrorKind::InvalidAccessKey, "access key is not valid base64 (standard alphabet)".into())
        })
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as padded standard base64.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKey(<redacted>)")
    }
}

/// What went wrong while reading a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A part is not `key=value`.
    MalformedPart,
    /// `endpoint` or `accesskey` is missing.
    MissingPart,
    /// The endpoint is not a valid URL of the expected shape.
    InvalidEndpoint,
    /// The endpoint uses `http` for a host that is not loopback.
    InsecureEndpoint,
    /// The access key is empty or not base64.
    InvalidAccessKey,
    /// `ACS_CONNECTION_STRING` is not set.
    MissingEnvironment,
}

/// A credential error. Its message never contains key material.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    fn new(kind: ErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "cHc9PQ=="; // "pw==" as bytes, base64 encoded

    #[test]
    fn parses_the_documented_form() {
        let cs = ConnectionString::parse(&format!("endpoint=https://contoso.communication.azure.com/;accesskey={KEY}"))
            .unwrap();
        assert_eq!(cs.endpoint().scheme(), Scheme::Https);
        assert_eq!(cs.endpoint().host(), "contoso.communication.azure.com");
        assert_eq!(cs.endpoint().port(), 443);
        assert_eq!(cs.access_key().as_bytes(), b"pw==");
    }

    #[test]
    fn tolerates_case_whitespace_trailing_semicolon_and_padding_inside_values() {
        let cases = [
            format!("EndPoint=https://a.communication.azure.com;AccessKey={KEY};"),
            format!("  endpoint = https://a.communication.azure.com/ ;  accesskey={KEY}  ; ;"),
            format!("accesskey={KEY};endpoint=https://a.communication.azure.com/"),
            "endpoint=https://a.communication.azure.com/;accesskey=cHc9PQ".to_string(),
        ];
        for case in cases {
            let cs = ConnectionString::parse(&case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(cs.endpoint().authority(), "a.communication.azure.com", "{case}");
            assert_eq!(cs.access_key().as_bytes(), b"pw==", "{case}");
        }
    }

    #[test]
    fn errors_name_the_part_and_never_the_key() {
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA==";
        let cases: [(String, ErrorKind, &str); 6] = [
            (format!("accesskey={secret}"), ErrorKind::MissingPart, "connection string has no `endpoint` part"),
            ("endpoint=https://a.b/".into(), ErrorKind::MissingPart, "connection string has no `accesskey` part"),
            (
                format!("endpoint=https://a.b/;{}", secret.trim_end_matches('=')),
                ErrorKind::MalformedPart,
                "connection string part 2 is not `key=value`",
            ),
            (
                "endpoint=https://a.b/;accesskey=@@not base64@@".into(),
                ErrorKind::InvalidAccessKey,
                "access key is not valid base64 (standard alphabet)",
            ),
            (
                format!("endpoint=ftp://a.b/;accesskey={secret}"),
                ErrorKind::InvalidEndpoint,
                "endpoint `ftp://a.b/` must use https",
            ),
            (
                format!("endpoint=http://a.b/;accesskey={secret}"),
                ErrorKind::InsecureEndpoint,
                "endpoint `http://a.b/` uses http; only loopback hosts may (use https)",
            ),
        ];
        for (input, kind, message) in cases {
            let err = ConnectionString::parse(&input).unwrap_err();
            assert_eq!(err.kind(), kind, "{input}");
            assert_eq!(err.to_string(), message, "{input}");
            assert!(!format!("{err:?}").contains("c2VjcmV0"), "{input}");
        }
    }

    #[test]
    fn http_is_allowed_for_loopback_only() {
        for ok in ["http://127.0.0.1:8080/", "http://127.5.6.7/", "http://[::1]:9/", "http://localhost:1"] {
            let e = Endpoint::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(e.scheme(), Scheme::Http);
        }
        for bad in ["http://10.0.0.1/", "http://example.com/", "http://[::2]/", "http://localhost.evil.com/"] {
            assert_eq!(Endpoint::parse(bad).unwrap_err().kind(), ErrorKind::InsecureEndpoint, "{bad}");
        }
    }

    #[test]
    fn authority_keeps_non_default_ports_only() {
        let cases = [
            ("https://a.com/", "a.com", 443),
            ("https://a.com:443", "a.com", 443),
            ("https://a.com:8443/", "a.com:8443", 8443),
            ("http://127.0.0.1:80/", "127.0.0.1", 80),
            ("http://127.0.0.1:40183/", "127.0.0.1:40183", 40183),
            ("HTTPS://A.COM/", "a.com", 443),
        ];
        for (input, authority, port) in cases {
            let e = Endpoint::parse(input).unwrap();
            assert_eq!((e.authority(), e.port()), (authority, port), "{input}");
        }
        assert_eq!(Endpoint::parse("http://127.0.0.1:40183").unwrap().url(), "http://127.0.0.1:40183/");
    }

    #[test]
    fn endpoint_shape_errors() {
        for bad in ["contoso.com", "https://a.com/path", "https://a.com/?q=1", "https://user@a.com/", "not a url"] {
            assert_eq!(Endpoint::parse(bad).unwrap_err().kind(), ErrorKind::InvalidEndpoint, "{bad}");
        }
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let cs = ConnectionString::parse("endpoint=https://a.com/;accesskey=c2VjcmV0LWtleS1tYXRlcmlhbA==").unwrap();
        for printed in [format!("{cs:?}"), format!("{cs:#?}"), format!("{:?}", cs.access_key())] {
            assert!(!printed.contains("c2VjcmV0"), "{printed}");
            assert!(!printed.contains("secret-key-material"), "{printed}");
            assert!(printed.contains("AccessKey(<redacted>)"), "{printed}");
        }
    }

    #[test]
    fn canonical_string_round_trips() {
        let cs = ConnectionString::parse("endpoint = http://127.0.0.1:4000 ; accesskey=cHc9PQ").unwrap();
        let printed = cs.to_secret_string();
        assert_eq!(printed, "endpoint=http://127.0.0.1:4000/;accesskey=cHc9PQ==");
        assert_eq!(ConnectionString::parse(&printed).unwrap(), cs);
    }

    #[test]
    fn loopback_and_ip_literal_detection() {
        assert!(is_loopback_host("LOCALHOST"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("[::ffff:10.0.0.1]"));
        assert!(is_ip_literal("10.1.2.3") && is_ip_literal("[fe80::1]"));
        assert!(!is_ip_literal("a.asm.skype.com"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_echoing_a_key(text in "\\PC{0,120}") {
            if let Err(error) = ConnectionString::parse(&text) {
                // An error names the part, never the value of `accesskey`.
                if let Some(at) = text.to_ascii_lowercase().find("accesskey=") {
                    let value: String = text[at + 10..].chars().take_while(|c| *c != ';').collect();
                    if value.len() >= 8 {
                        prop_assert!(!error.to_string().contains(&value), "{error}");
                    }
                }
            }
        }

        #[test]
        fn written_connection_strings_parse_back(
            host in "[a-z][a-z0-9-]{0,20}",
            key in proptest::collection::vec(any::<u8>(), 1..64),
            spaces in proptest::bool::ANY,
            upper in proptest::bool::ANY,
        ) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&key);
            let (endpoint_key, access_key) = if upper { ("ENDPOINT", "AccessKey") } else { ("endpoint", "accesskey") };
            let separator = if spaces { " ; " } else { ";" };
            let text = format!("{endpoint_key}=https://{host}.communication.azure.com/{separator}{access_key}={encoded};");
            let parsed = ConnectionString::parse(&text).unwrap();
            prop_assert_eq!(parsed.endpoint().url(), format!("https://{host}.communication.azure.com/"));
            prop_assert_eq!(parsed.access_key().to_base64(), encoded);
        }
    }
}
