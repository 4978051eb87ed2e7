//! SHA-256 whose state can be saved at a block boundary and taken up again in another process: what lets a sink
//! that cannot read back what it stored (an object store's uncommitted parts) resume a chunk without hashing it
//! again.

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::{typenum::U64, GenericArray};

use crate::Sha256Digest;

/// The initial hash value (FIPS 180-4, 5.3.3).
const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Blocks compressed per call: the input is copied through this many blocks on the stack (4 KiB).
const BATCH: usize = 64;

type Block = GenericArray<u8, U64>;

/// The state of a SHA-256 after a whole number of 64-byte blocks: small enough to store beside a partial upload,
/// and all a [`ResumableSha256`] needs to go on.
///
/// ```
/// use acs_recording::download::ResumableSha256;
/// use acs_recording::Sha256Digest;
///
/// let mut first = ResumableSha256::new();
/// first.update(&[7u8; 128]);
/// let saved = first.state().expect("at a block boundary");
/// let json = serde_json::to_string(&saved)?;
///
/// // Later, elsewhere: the rest of the object.
/// let mut resumed = ResumableSha256::from_state(serde_json::from_str(&json)?);
/// resumed.update(b"tail");
/// let whole: Vec<u8> = [&[7u8; 128][..], b"tail"].concat();
/// assert_eq!(resumed.finalize(), Sha256Digest::of(&whole));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha256State {
    state: [u32; 8],
    bytes: u64,
}

impl Sha256State {
    /// Bytes hashed so far (a multiple of 64).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// SHA-256 that can say its [`Sha256State`] whenever the bytes fed so far are a whole number of blocks, and start
/// from one. The result equals `sha2::Sha256` over the same bytes.
#[derive(Debug, Clone)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes fed so far, buffered ones included.
    bytes: u64,
    buffer: [u8; 64],
    buffered: usize,
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl ResumableSha256 {
    /// A hash of nothing yet.
    pub fn new() -> Self {
        Self { state: INITIAL, bytes: 0, buffer: [0; 64], buffered: 0 }
    }

    /// Goes on from a saved state.
    pub fn from_state(saved: Sha256State) -> Self {
        Self { state: saved.state, bytes: saved.bytes, buffer: [0; 64], buffered: 0 }
    }

    /// The state to save, when the bytes fed so far are a whole number of blocks.
    pub fn state(&self) -> Option<Sha256State> {
        (self.buffered == 0).then_some(Sha256State { state: self.state, bytes: self.bytes })
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = *Block::from_slice(&self.buffer);
            sha2::compress256(&mut self.state, std::slice::from_ref(&block));
            self.buffered = 0;
        }
        let mut blocks = [Block::default(); BATCH];
        let mut whole = data.chunks_exact(64);
        loop {
            let mut filled = 0;
            for (slot, block) in blocks.iter_mut().zip(whole.by_ref()) {
                slot.copy_from_slice(block);
                filled += 1;
            }
            if filled == 0 {
                break;
            }
            sha2::compress256(&mut self.state, &blocks[..filled]);
        }
        let rest = whole.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The digest (FIPS 180-4 padding: `0x80`, zeros, the length in bits).
    pub fn finalize(mut self) -> Sha256Digest {
        let bits = self.bytes.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.buffer[..self.buffered]);
        tail[self.buffered] = 0x80;
        let len = if self.buffered < 56 { 64 } else { 128 };
        tail[len - 8..len].copy_from_slice(&bits.to_be_bytes());
        let blocks: Vec<Block> = tail[..len].chunks_exact(64).map(|b| *Block::from_slice(b)).collect();
        sha2::compress256(&mut self.state, &blocks);
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(4).zip(self.state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        Sha256Digest::new(out)
    }
}

/// The downloader's SHA-256: `sha2`'s own, or a [`ResumableSha256`] taken up from a state a sink kept.
#[derive(Debug, Clone)]
pub(crate) enum Sha256Hasher {
    Fresh(sha2::Sha256),
    Resumed(ResumableSha256),
}

impl Default for Sha256Hasher {
    fn default() -> Self {
        Self::Fresh(sha2::Sha256::default())
    }
}

impl From<sha2::Sha256> for Sha256Hasher {
    fn from(hasher: sha2::Sha256) -> Self {
        Self::Fresh(hasher)
    }
}

impl From<Sha256State> for Sha256Hasher {
    fn from(state: Sha256State) -> Self {
        Self::Resumed(ResumableSha256::from_state(state))
    }
}

impl Sha256Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Fresh(hasher) => sha2::Digest::update(hasher, data),
            Self::Resumed(hasher) => hasher.update(data),
        }
    }

    pub(crate) fn finalize(self) -> Sha256Digest {
        match self {
            Self::Fresh(hasher) => sha2::Digest::finalize(hasher).into(),
            Self::Resumed(hasher) => hasher.finalize(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> Sha256Digest {
        Sha256::digest(data).into()
    }

    #[test]
    fn known_answers() {
        // FIPS 180-4 examples: "abc", the empty string and the two-block message.
        let cases: [&[u8]; 3] = [b"abc", b"", b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"];
        for data in cases {
            let mut hash = ResumableSha256::new();
            hash.update(data);
            assert_eq!(hash.finalize(), reference(data), "{:?}", String::from_utf8_lossy(data));
        }
        let mut hash = ResumableSha256::new();
        hash.update(b"abc");
        let hex = hash.finalize().to_string();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_state_exists_only_at_block_boundaries() {
        let mut hash = ResumableSha256::new();
        assert_eq!(hash.state().map(|s| s.bytes()), Some(0));
        hash.update(&[1; 63]);
        assert_eq!(hash.state(), None);
        hash.update(&[1]);
        assert_eq!(hash.state().map(|s| s.bytes()), Some(64));
    }

    proptest! {
        #[test]
        fn any_split_and_any_resume_equals_sha2(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            cuts in proptest::collection::vec(0usize..20_000, 0..6),
            resume_block in 0usize..300,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut hash = ResumableSha256::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                hash.update(&data[at..cut]);
                at = cut;
            }
            prop_assert_eq!(hash.finalize(), reference(&data));

            // Saved at a block boundary, serialised, resumed.
            let split = (resume_block * 64).min(data.len() / 64 * 64);
            let mut first = ResumableSha256::new();
            first.update(&data[..split]);
            let saved: Sha256State = serde_json::from_str(&serde_json::to_string(&first.state().unwrap()).unwrap()).unwrap();
            let mut resumed = ResumableSha256::from_state(saved);
            resumed.update(&data[split..]);
            prop_assert_eq!(resumed.finalize(), reference(&data));
        }
    }
}
