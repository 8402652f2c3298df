//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, in safe code the compiler vectorizes.

/// XORs `buf` with `key`, as if `buf` started at a multiple of 4 bytes into the payload.
///
/// To continue a payload that was partly unmasked already, rotate the key left by
/// `offset % 4` first (see [`rotate_key`]).
#[inline]
pub(crate) fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    // A 64-byte repetition of the key: whole chunks XOR lane by lane, which LLVM turns into SIMD
    // on every target with vector registers; the tail reuses the same pattern.
    const CHUNK: usize = 64;
    if buf.len() < CHUNK {
        // Too short to pay for building the pattern.
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
        return;
    }
    let mut pattern = [0u8; CHUNK];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i & 3];
    }
    let mut chunks = buf.chunks_exact_mut(CHUNK);
    for chunk in &mut chunks {
        for (b, k) in chunk.iter_mut().zip(pattern.iter()) {
            *b ^= k;
        }
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(pattern.iter()) {
        *b ^= k;
    }
}

/// The key to continue masking at byte `offset` of a payload.
pub(crate) const fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    u32::from_be_bytes(key)
        .rotate_left(8 * (offset % 4) as u32)
        .to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_bytewise_masking_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..200 {
            for offset in 0..4 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, rotate_key(key, offset));
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let key = [1, 2, 3, 4];
        let mut data = b"Hello, masking".to_vec();
        apply_mask(&mut data, key);
        assert_ne!(&data, b"Hello, masking");
        apply_mask(&mut data, key);
        assert_eq!(&data, b"Hello, masking");
    }

    #[test]
    fn split_masking_equals_whole_masking() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key);
            apply_mask(b, rotate_key(key, split));
            assert_eq!(parts, whole, "split at {split}");
        }
    }
}
