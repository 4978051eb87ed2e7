//! Deterministic synthetic media: a WAV tone whose bytes are a function of their offset, served without holding
//! the file in memory.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::Sha256Digest;

/// Sample rate of the synthetic tone (16-bit mono PCM).
pub(crate) const SAMPLE_RATE: u32 = 48_000;
/// Size of a canonical PCM WAV header.
pub(crate) const WAV_HEADER: usize = 44;
/// The largest frame served at once.
pub(crate) const FRAME: usize = 256 * 1024;
/// Tone frequencies, all dividing the sample rate so that one period is a whole number of samples. A changed
/// object moves to the next one.
const FREQUENCIES: [u32; 4] = [1000, 750, 600, 500];

/// The bytes of one stored object.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// Exactly these bytes.
    Bytes(Bytes),
    /// A WAV file: header, then `data_len` bytes of a sine tone starting `phase` bytes into its period.
    Tone(Tone),
}

#[derive(Clone, Debug)]
pub(crate) struct Tone {
    header: Bytes,
    data_len: u64,
    phase: u64,
    frequency: usize,
    /// Whole periods of the tone, at least `FRAME` plus one period long, so any offset can be sliced zero-copy.
    pattern: Arc<Bytes>,
    period: u64,
}

impl Tone {
    /// A tone of `data_len` bytes (rounded down to whole samples) starting `phase` bytes into the period.
    pub(crate) fn new(frequency_index: usize, data_len: u64, phase: u64) -> Self {
        let frequency = FREQUENCIES[frequency_index % FREQUENCIES.len()];
        let samples_per_period = (SAMPLE_RATE / frequency) as usize;
        let period = samples_per_period * 2;
        let mut one = BytesMut::with_capacity(period);
        for n in 0..samples_per_period {
            let angle = 2.0 * std::f64::consts::PI * n as f64 / samples_per_period as f64;
            one.put_i16_le((angle.sin() * 12_000.0).round() as i16);
        }
        let repeats = FRAME.div_ceil(period) + 1;
        let mut pattern = BytesMut::with_capacity(repeats * period);
        for _ in 0..repeats {
            pattern.extend_from_slice(&one);
        }
        let data_len = data_len & !1;
        Self {
            header: wav_header(data_len),
            data_len,
            phase: phase % period as u64,
            frequency: frequency_index,
            pattern: Arc::new(pattern.freeze()),
            period: period as u64,
        }
    }
}

/// A canonical 44-byte PCM WAV header (16-bit mono at [`SAMPLE_RATE`]).
fn wav_header(data_len: u64) -> Bytes {
    let data = u32::try_from(data_len).unwrap_or(u32::MAX);
    let mut h = BytesMut::with_capacity(WAV_HEADER);
    h.put_slice(b"RIFF");
    h.put_u32_le(data.saturating_add(36));
    h.put_slice(b"WAVEfmt ");
    h.put_u32_le(16);
    h.put_u16_le(1); // PCM
    h.put_u16_le(1); // mono
    h.put_u32_le(SAMPLE_RATE);
    h.put_u32_le(SAMPLE_RATE * 2);
    h.put_u16_le(2);
    h.put_u16_le(16);
    h.put_slice(b"data");
    h.put_u32_le(data);
    h.freeze()
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Tone(t) => WAV_HEADER as u64 + t.data_len,
        }
    }

    /// Up to `max` bytes starting at `start` (fewer at the end, or at a pattern boundary); empty past the end.
    pub(crate) fn slice(&self, start: u64, max: usize) -> Bytes {
        let len = self.len();
        if start >= len {
            return Bytes::new();
        }
        let max = max.min(usize::try_from(len - start).unwrap_or(usize::MAX));
        match self {
            Content::Bytes(b) => b.slice(start as usize..start as usize + max),
            Content::Tone(t) => {
                if start < WAV_HEADER as u64 {
                    let end = (start as usize + max).min(WAV_HEADER);
                    return t.header.slice(start as usize..end);
                }
                let at = ((start - WAV_HEADER as u64 + t.phase) % t.period) as usize;
                let max = max.min(t.pattern.len() - at);
                t.pattern.slice(at..at + max)
            }
        }
    }

    /// A different object of the same length (the "changed between attempts" fault).
    pub(crate) fn changed(&self) -> Content {
        match self {
            Content::Bytes(b) => Content::Bytes(b.iter().map(|x| x ^ 0x5a).collect::<Vec<u8>>().into()),
            Content::Tone(t) => Content::Tone(Tone::new(t.frequency + 1, t.data_len, t.phase)),
        }
    }

    /// A short stable fingerprint of the content's identity, for ETags.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut sha = Sha256::new();
        match self {
            Content::Bytes(b) => {
                sha.update(b"bytes");
                sha.update(b);
            }
            Content::Tone(t) => {
                sha.update(b"tone");
                sha.update((t.frequency as u64).to_le_bytes());
                sha.update(t.data_len.to_le_bytes());
                sha.update(t.phase.to_le_bytes());
            }
        }
        u64::from_le_bytes(sha.finalize()[..8].try_into().expect("8 bytes"))
    }

    /// SHA-256 of every byte, computed in frames.
    pub(crate) fn sha256(&self) -> Sha256Digest {
        let mut sha = Sha256::new();
        let mut at = 0;
        let len = self.len();
        while at < len {
            let part = self.slice(at, FRAME);
            sha.update(&part);
            at += part.len() as u64;
        }
        sha.finalize().into()
    }

    /// Every byte (tests and small objects only).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.len() {
            let part = self.slice(at, FRAME);
            out.extend_from_slice(&part);
            at += part.len() as u64;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_is_a_valid_wav_of_the_asked_length() {
        let tone = Content::Tone(Tone::new(0, 1000, 0));
        let bytes = tone.to_vec();
        assert_eq!(bytes.len(), 1044);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 1036);
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 1000);
        // 1 kHz at 48 kHz: the samples repeat every 96 bytes.
        assert_eq!(bytes[44..140], bytes[140..236]);
    }

    #[test]
    fn slices_at_any_offset_agree_with_the_whole() {
        let tone = Content::Tone(Tone::new(1, 3 * FRAME as u64 + 17, 10));
        let whole = tone.to_vec();
        for start in [0u64, 1, 43, 44, 45, 1000, FRAME as u64 - 3, whole.len() as u64 - 1] {
            let part = tone.slice(start, 5000);
            assert_eq!(&part[..], &whole[start as usize..start as usize + part.len()], "{start}");
            assert!(!part.is_empty());
        }
        assert!(tone.slice(whole.len() as u64, 10).is_empty());
    }

    #[test]
    fn a_changed_object_differs_with_the_same_length() {
        for content in [Content::Bytes(Bytes::from_static(b"abc")), Content::Tone(Tone::new(0, 500, 0))] {
            let changed = content.changed();
            assert_eq!(changed.len(), content.len());
            assert_ne!(changed.sha256(), content.sha256());
            assert_ne!(changed.fingerprint(), content.fingerprint());
        }
    }
}
