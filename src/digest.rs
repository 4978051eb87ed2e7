//! [`Sha256Digest`]: the one type for a SHA-256 the crate keeps or hands out (chunk manifests, sink records,
//! journal progress, the emulator's recordings).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Digest as _;

/// A SHA-256: 32 bytes, shown and serialised as 64 lower-case hex digits.
///
/// 1. Text form: 64 lower-case hex digits, for `Display` and serde alike, so that manifests and journals written
///    before this type existed read and write back byte for byte.
/// 2. Parsing accepts either case, and nothing else: exactly 64 hex digits.
///
/// ```
/// use acs_recording::Sha256Digest;
///
/// let digest = Sha256Digest::of(b"abc");
/// let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
/// assert_eq!(digest.to_string(), hex);
/// assert_eq!(hex.parse::<Sha256Digest>(), Ok(digest));
/// assert_eq!(hex.to_uppercase().parse::<Sha256Digest>(), Ok(digest));
/// assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"{hex}\""));
/// assert!("abc".parse::<Sha256Digest>().is_err());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest with these bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The SHA-256 of `data`.
    pub fn of(data: impl AsRef<[u8]>) -> Self {
        Self(sha2::Sha256::digest(data.as_ref()).into())
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

impl From<[u8; 32]> for Sha256Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl From<Sha256Digest> for [u8; 32] {
    fn from(digest: Sha256Digest) -> Self {
        digest.0
    }
}

impl From<sha2::digest::Output<sha2::Sha256>> for Sha256Digest {
    fn from(output: sha2::digest::Output<sha2::Sha256>) -> Self {
        Self(output.into())
    }
}

impl AsRef<[u8]> for Sha256Digest {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8; 32]> for Sha256Digest {
    fn eq(&self, other: &[u8; 32]) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Sha256Digest> for [u8; 32] {
    fn eq(&self, other: &Sha256Digest) -> bool {
        self == &other.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 15)];
        }
        // Only ASCII digits were written.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// A text that is not 64 hex digits, given as a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseDigestError;

impl fmt::Display for ParseDigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sha-256 is 64 hex digits")
    }
}

impl std::error::Error for ParseDigestError {}

impl FromStr for Sha256Digest {
    type Err = ParseDigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(ParseDigestError);
        }
        let value = |digit: u8| (digit as char).to_digit(16).ok_or(ParseDigestError);
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            // Each digit is below 16, so the pair fits a byte.
            *byte = (value(pair[0])? << 4 | value(pair[1])?) as u8;
        }
        Ok(Self(bytes))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;
        impl Visitor<'_> for Hex {
            type Value = Sha256Digest;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sha-256 as 64 hex digits")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Sha256Digest, E> {
                text.parse().map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_in_lower_case() {
        let digest = Sha256Digest::new(std::array::from_fn(|i| (i * 8) as u8));
        let text = digest.to_string();
        assert_eq!(text, "0008101820283038404850586068707880889098a0a8b0b8c0c8d0d8e0e8f0f8");
        assert_eq!(text.parse(), Ok(digest));
        assert_eq!(serde_json::from_str::<Sha256Digest>(&format!("\"{text}\"")).unwrap(), digest);
        assert_eq!(format!("{digest:?}"), format!("Sha256Digest({text})"));
    }

    #[test]
    fn only_sixty_four_hex_digits_parse() {
        for bad in ["", "xyz", &"0".repeat(63), &"0".repeat(65), &format!("{}g", "0".repeat(63)), &"é".repeat(32)] {
            assert_eq!(bad.parse::<Sha256Digest>(), Err(ParseDigestError), "{bad}");
        }
        assert!(serde_json::from_str::<Sha256Digest>("\"xyz\"").is_err());
        assert!(serde_json::from_str::<Sha256Digest>("12").is_err());
    }
}
