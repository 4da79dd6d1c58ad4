//! MurmurHash3 x86 32-bit, streaming.
//!
//! Hand-written rather than taken from a crate because `fractional` hashes
//! `flagKey + targetingKey` (v2) or a CBOR encoding (v3) without building the
//! input in a buffer: bytes are fed in pieces and nothing is allocated.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// A streaming MurmurHash3 x86 32-bit hasher.
///
/// # Example
/// ```
/// use flagyard_core::murmur3::Murmur3;
///
/// let mut h = Murmur3::new(0);
/// h.write(b"hello, ");
/// h.write(b"world");
/// assert_eq!(h.finish(), flagyard_core::murmur3::hash(b"hello, world", 0));
/// ```
#[derive(Debug, Clone)]
pub struct Murmur3 {
    h1: u32,
    /// The bytes of an unfinished block, little-endian (`tail_len` of them).
    tail: u32,
    tail_len: usize,
    len: usize,
}

#[inline]
fn mix_k1(mut k1: u32) -> u32 {
    k1 = k1.wrapping_mul(C1);
    k1 = k1.rotate_left(15);
    k1.wrapping_mul(C2)
}

impl Murmur3 {
    /// A hasher with the given seed (flagd uses 0).
    pub fn new(seed: u32) -> Self {
        Murmur3 {
            h1: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline]
    fn block(&mut self, k1: u32) {
        self.h1 ^= mix_k1(k1);
        self.h1 = self.h1.rotate_left(13);
        self.h1 = self.h1.wrapping_mul(5).wrapping_add(0xe654_6b64);
    }

    /// Feeds bytes. Short pieces are merged into the pending block with
    /// shifts, not copies (no `memcpy` call on the read path).
    #[inline]
    pub fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        // Complete a block started by an earlier piece.
        while self.tail_len > 0 {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            self.tail |= u32::from(byte) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = rest;
            if self.tail_len == 4 {
                self.block(self.tail);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut chunks = bytes.chunks_exact(4);
        for chunk in &mut chunks {
            let k1 = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.block(k1);
        }
        let rest = chunks.remainder();
        for (i, &byte) in rest.iter().enumerate() {
            self.tail |= u32::from(byte) << (8 * i);
        }
        self.tail_len = rest.len();
    }

    /// The hash of everything fed so far.
    #[inline]
    pub fn finish(&self) -> u32 {
        let mut h1 = self.h1;
        if self.tail_len > 0 {
            h1 ^= mix_k1(self.tail);
        }
        h1 ^= self.len as u32;
        h1 ^= h1 >> 16;
        h1 = h1.wrapping_mul(0x85eb_ca6b);
        h1 ^= h1 >> 13;
        h1 = h1.wrapping_mul(0xc2b2_ae35);
        h1 ^ (h1 >> 16)
    }
}

/// Hashes one byte string.
pub fn hash(bytes: &[u8], seed: u32) -> u32 {
    let mut h = Murmur3::new(seed);
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of MurmurHash3_x86_32 (SMHasher).
        assert_eq!(hash(b"", 0), 0);
        assert_eq!(hash(b"", 1), 0x514e_28b7);
        assert_eq!(hash(b"hello", 0), 0x248b_fa47);
        assert_eq!(hash(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            hash(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
        // The flagd testbed's brute-forced edge keys.
        assert_eq!(hash(b"ejOoVL", 0), 0);
        assert_eq!(hash(b"bY9fO-", 0), 1);
        assert_eq!(hash(b"SI7p-", 0), 2_147_483_647);
        assert_eq!(hash(b"6LvT0", 0), 2_147_483_648);
        assert_eq!(hash(b"ceQdGm", 0), 4_294_967_295);
    }

    #[test]
    fn streaming_equals_one_shot_for_every_split() {
        let text = b"flag-key-with-a-longer-targeting-key@example.com";
        let whole = hash(text, 0);
        for a in 0..text.len() {
            for b in a..text.len() {
                let mut h = Murmur3::new(0);
                h.write(&text[..a]);
                h.write(&text[a..b]);
                h.write(&text[b..]);
                assert_eq!(h.finish(), whole, "split at {a}/{b}");
            }
        }
    }
}
