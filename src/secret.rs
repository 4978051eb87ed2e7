//! A shared secret held as its SHA-256 digest and compared in constant time (delivery secrets, the emulator's
//! bearer token).

use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 of a secret. Comparing digests makes the time taken independent of where the presented value
/// differs, and of its length. `Debug` prints `<redacted>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub(crate) fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// Whether `presented` is the secret, touching every byte of the digests without an early exit.
    #[cfg_attr(not(feature = "emulator"), allow(dead_code))]
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        self.matches_digest(&Self::of(presented))
    }

    /// Whether two digests are equal, in constant time.
    pub(crate) fn matches_digest(&self, presented: &SecretDigest) -> bool {
        let difference = self.0.iter().zip(presented.0.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(difference) == 0
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_match() {
        let secret = SecretDigest::of(b"hunter2");
        assert!(secret.matches(b"hunter2"));
        for other in [&b"hunter3"[..], b"hunter", b"hunter22", b""] {
            assert!(!secret.matches(other), "{other:?}");
        }
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }
}
