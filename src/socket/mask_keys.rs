//! Client masking keys (RFC 6455 §5.3): fresh for every frame and, as §10.3 requires, drawn from
//! a strong source of entropy, the operating system's, 32 keys per system call.

use std::hash::{BuildHasher, Hasher};

use crate::proto::MaskSource;

const KEYS: usize = 32;

/// The operating system's masking keys, fetched 32 at a time.
#[derive(Debug)]
pub(super) struct MaskKeys {
    buf: [u8; KEYS * 4],
    next: usize,
}

impl MaskKeys {
    pub(super) fn new() -> Self {
        Self {
            buf: [0; KEYS * 4],
            next: KEYS * 4,
        }
    }

    fn refill(&mut self) {
        self.next = 0;
        if getrandom::fill(&mut self.buf).is_ok() {
            return;
        }
        // The OS source failed (it does not on the platforms tokio supports); fall back to
        // SipHash under keys std drew from that same source when the process started.
        for (i, chunk) in self.buf.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
}

impl MaskSource for MaskKeys {
    fn next_key(&mut self) -> [u8; 4] {
        if self.next == self.buf.len() {
            self.refill();
        }
        let i = self.next;
        self.next += 4;
        [
            self.buf[i],
            self.buf[i + 1],
            self.buf[i + 2],
            self.buf[i + 3],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_across_refills_and_connections() {
        let mut a = MaskKeys::new();
        let mut b = MaskKeys::new();
        let ka: Vec<[u8; 4]> = (0..3 * KEYS).map(|_| a.next_key()).collect();
        let kb: Vec<[u8; 4]> = (0..3 * KEYS).map(|_| b.next_key()).collect();
        let distinct: std::collections::HashSet<_> = ka.iter().chain(&kb).collect();
        // 192 random 32-bit keys: a repeat has probability ~4e-6.
        assert!(
            distinct.len() >= 6 * KEYS - 1,
            "{} distinct",
            distinct.len()
        );
    }
}
