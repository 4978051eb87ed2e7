//! [`NamespaceKey`]: the access key of a namespace or of one of its topics.

use std::fmt;

use http::HeaderValue;

/// A namespace access key, sent as `Authorization: SharedAccessKey <key>`. Its `Debug` prints `<redacted>` and
/// the header it makes is marked sensitive, so neither logs nor errors show it.
#[derive(Clone)]
pub struct NamespaceKey(HeaderValue);

impl NamespaceKey {
    /// The key as the portal and `az eventgrid namespace list-key` show it. An error when it holds characters a
    /// header cannot carry (the error does not repeat the key).
    pub fn new(key: &str) -> Result<Self, InvalidKey> {
        let key = key.trim();
        if key.is_empty() {
            return Err(InvalidKey(()));
        }
        let mut value = HeaderValue::try_from(format!("SharedAccessKey {key}")).map_err(|_| InvalidKey(()))?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// The `Authorization` header value.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for NamespaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamespaceKey(<redacted>)")
    }
}

/// A namespace key that is empty or cannot be sent in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKey(());

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the namespace key is empty or holds characters a header cannot carry")
    }
}

impl std::error::Error for InvalidKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_sent_as_shared_access_key_and_never_printed() {
        let key = NamespaceKey::new("c2VjcmV0LWtleQ==").unwrap();
        assert_eq!(key.header(), "SharedAccessKey c2VjcmV0LWtleQ==");
        assert!(key.header().is_sensitive());
        assert_eq!(format!("{key:?}"), "NamespaceKey(<redacted>)");
        assert!(NamespaceKey::new("bad\nkey").is_err());
        assert!(NamespaceKey::new("  ").is_err());
    }
}
