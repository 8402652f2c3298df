//! The outgoing byte queue: headers and small payloads copied into one buffer, large payloads
//! kept as the caller's `Bytes`, all written with as few (vectored) write calls as possible.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

use crate::proto::apply_mask;

/// Payloads up to this size are copied next to their header; larger ones are written from the
/// caller's buffer without a copy.
const COPY_THRESHOLD: usize = 2048;

/// How many slices one vectored write passes at most (Linux accepts 1024; this is plenty).
pub(crate) const MAX_SLICES: usize = 64;

/// Empty buffers kept per thread for the next queue to fill (see [`WriteBuf::release`]).
const SPARES: usize = 8;
/// Larger buffers are freed, not kept.
const MAX_SPARE: usize = 64 * 1024;

thread_local! {
    /// Buffers of queues that wrote everything out, lent to the next queue this thread fills:
    /// a thread that writes to many connections in turn (a hub's drain) fills the same few
    /// buffers, warm in its cache, instead of one per connection, and an idle connection
    /// holds none.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Bytes waiting to be written, in order.
///
/// Bound: the queue itself takes whatever it is given; the socket bounds it. Its `poll_ready`
/// writes out once the queue holds `write_buffer_size` bytes and waits while it holds
/// `max_write_buffer_size` or more, so the queue never passes `max_write_buffer_size` plus one
/// message; pongs are queued only below `write_buffer_size` (beyond it, one is owed), and one
/// close frame at most. Above `max_write_buffer_size` and not draining, the socket stops
/// reading the peer.
///
/// The output is `flat[flat_pos..at(0)]`, `big[0]`, `flat[at(0)..at(1)]`, `big[1]`, ...,
/// `flat[at(n-1)..]`, where `at(i)` is the offset into `flat` recorded with `big[i]`.
#[derive(Debug, Default)]
pub(crate) struct WriteBuf {
    flat: Vec<u8>,
    flat_pos: usize,
    big: VecDeque<(usize, Bytes)>,
    big_pos: usize,
    len: usize,
}

impl WriteBuf {
    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a whole small unmasked frame: the two-byte header (first byte `b0`, then the
    /// payload length) and a payload of at most 125 bytes, in one reservation. The header is of
    /// constant length, so no call copies it (the common frame's path).
    #[inline]
    pub(crate) fn push_small_frame(&mut self, b0: u8, payload: &[u8]) {
        debug_assert!(payload.len() <= 125, "not a small frame");
        let flat = self.flat();
        flat.reserve(2 + payload.len());
        flat.extend_from_slice(&[b0, payload.len() as u8]);
        flat.extend_from_slice(payload);
        self.len += 2 + payload.len();
    }

    /// Queues an encoded frame header; its payload follows with
    /// [`push_payload`](Self::push_payload) or [`push_masked`](Self::push_masked).
    #[inline]
    pub(crate) fn push_header(&mut self, header: &[u8]) {
        self.flat().extend_from_slice(header);
        self.len += header.len();
    }

    /// Queues an unmasked payload: copied when small, otherwise written from the caller's
    /// buffer without a copy.
    #[inline]
    pub(crate) fn push_payload(&mut self, payload: &Bytes) {
        self.len += payload.len();
        if payload.len() <= COPY_THRESHOLD {
            self.flat().extend_from_slice(payload);
        } else {
            self.big.push_back((self.flat.len(), payload.clone()));
        }
    }

    /// Queues a payload masked with `key` (a masked copy: the caller's bytes stay as they are).
    pub(crate) fn push_masked(&mut self, payload: &[u8], key: [u8; 4]) {
        self.len += payload.len();
        let flat = self.flat();
        let start = flat.len();
        flat.extend_from_slice(payload);
        apply_mask(&mut flat[start..], key);
    }

    /// Everything queued, in order, as one vector (for tests and fuzz targets that compare
    /// the bytes an encoder produced).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        let mut pos = self.flat_pos;
        let mut big_pos = self.big_pos;
        for (at, data) in &self.big {
            out.extend_from_slice(&self.flat[pos..*at]);
            out.extend_from_slice(&data[big_pos..]);
            pos = *at;
            big_pos = 0;
        }
        out.extend_from_slice(&self.flat[pos..]);
        out
    }

    /// Fills `out` with the next slices to write; returns how many.
    pub(crate) fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut n = 0;
        let mut pos = self.flat_pos;
        let mut big_pos = self.big_pos;
        for (at, data) in &self.big {
            if n + 2 > MAX_SLICES {
                return n;
            }
            if *at > pos {
                out[n] = IoSlice::new(&self.flat[pos..*at]);
                n += 1;
            }
            out[n] = IoSlice::new(&data[big_pos..]);
            n += 1;
            pos = *at;
            big_pos = 0;
        }
        if self.flat.len() > pos {
            out[n] = IoSlice::new(&self.flat[pos..]);
            n += 1;
        }
        n
    }

    /// The first contiguous run of bytes, for writers without vectored writes.
    pub(crate) fn first_slice(&self) -> &[u8] {
        match self.big.front() {
            Some((at, _)) if *at > self.flat_pos => &self.flat[self.flat_pos..*at],
            Some((_, data)) => &data[self.big_pos..],
            None => &self.flat[self.flat_pos..],
        }
    }

    /// Marks `n` bytes as written.
    pub(crate) fn advance(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let flat_end = self.big.front().map_or(self.flat.len(), |(at, _)| *at);
            if self.flat_pos < flat_end {
                let k = n.min(flat_end - self.flat_pos);
                self.flat_pos += k;
                n -= k;
            } else if let Some((_, data)) = self.big.front() {
                let k = n.min(data.len() - self.big_pos);
                self.big_pos += k;
                n -= k;
                if self.big_pos == data.len() {
                    self.big.pop_front();
                    self.big_pos = 0;
                }
            } else {
                break;
            }
        }
        if self.len == 0 {
            self.flat.clear();
            self.flat_pos = 0;
        } else if self.flat_pos >= 64 * 1024 && self.flat_pos * 2 >= self.flat.len() {
            // Give the written front back so a never-empty queue does not grow forever.
            self.flat.drain(..self.flat_pos);
            for (at, _) in &mut self.big {
                *at -= self.flat_pos;
            }
            self.flat_pos = 0;
        }
    }

    /// The buffer that headers and small payloads are copied into: when the queue holds none
    /// (it was released), one of the thread's spares.
    #[inline]
    fn flat(&mut self) -> &mut Vec<u8> {
        if self.flat.capacity() == 0 {
            self.flat = take_spare();
        }
        &mut self.flat
    }

    /// Once everything was written: hands the buffer to the thread's spares (or frees it), so
    /// an idle connection holds no write buffer and the next queue filled on this thread
    /// reuses it while it is still in the cache.
    pub(crate) fn release(&mut self) {
        if !self.is_empty() {
            return;
        }
        if self.big.capacity() > 16 {
            self.big = VecDeque::new();
        }
        let mut flat = std::mem::take(&mut self.flat);
        self.flat_pos = 0;
        if flat.capacity() == 0 || flat.capacity() > MAX_SPARE {
            return;
        }
        flat.clear();
        // A thread being torn down has no spares left to keep it in: it is freed.
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARES {
                spare.push(flat);
            }
        });
    }
}

/// One of the thread's spare buffers, or a new (unallocated) one.
fn take_spare() -> Vec<u8> {
    SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_that_wrote_everything_lends_its_buffer_to_the_next() {
        let mut a = WriteBuf::default();
        a.push_header(&[1; 100]);
        let buffer = a.flat.as_ptr();
        a.advance(100);
        a.release();
        assert_eq!(a.flat.capacity(), 0, "an idle queue holds no buffer");
        let mut b = WriteBuf::default();
        b.push_header(&[2; 10]);
        assert_eq!(
            b.flat.as_ptr(),
            buffer,
            "the next queue on this thread reuses it"
        );
        assert_eq!(b.to_vec(), vec![2; 10]);
    }

    #[test]
    fn a_queue_with_bytes_left_keeps_them_and_large_buffers_are_freed() {
        let mut a = WriteBuf::default();
        a.push_header(&[1; 100]);
        a.advance(40);
        a.release();
        assert_eq!(a.to_vec(), vec![1; 60]);
        let mut big = WriteBuf::default();
        big.push_header(&vec![3; MAX_SPARE + 1]);
        big.advance(MAX_SPARE + 1);
        big.release();
        assert!(SPARE.with_borrow(|spare| spare.iter().all(|b| b.capacity() <= MAX_SPARE)));
    }
    use crate::proto::{FrameHeader, OpCode};

    fn drain_by(buf: &mut WriteBuf, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = buf.slices(&mut slices);
            let mut budget = step;
            let mut written = 0;
            for s in &slices[..n] {
                let k = s.len().min(budget);
                out.extend_from_slice(&s[..k]);
                budget -= k;
                written += k;
                if budget == 0 {
                    break;
                }
            }
            buf.advance(written);
        }
        out
    }

    fn sample() -> (WriteBuf, Vec<u8>) {
        let mut buf = WriteBuf::default();
        let mut expected = Vec::new();
        for (i, size) in [3usize, 5000, 0, 10, 70000, 2048, 2049]
            .into_iter()
            .enumerate()
        {
            let payload = Bytes::from(vec![i as u8; size]);
            let header = FrameHeader {
                fin: true,
                rsv1: false,
                rsv23: false,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: size as u64,
            };
            let header = header.encode();
            if size <= 125 {
                buf.push_small_frame(header.as_slice()[0], &payload);
            } else {
                buf.push_header(header.as_slice());
                buf.push_payload(&payload);
            }
            expected.extend_from_slice(header.as_slice());
            expected.extend_from_slice(&payload);
        }
        (buf, expected)
    }

    #[test]
    fn partial_writes_of_any_size_keep_the_byte_order() {
        for step in [1, 2, 7, 100, 4096, 65536, usize::MAX] {
            let (mut buf, expected) = sample();
            assert_eq!(buf.len(), expected.len());
            assert_eq!(drain_by(&mut buf, step), expected, "step {step}");
        }
    }

    #[test]
    fn first_slice_alone_drains_in_order() {
        let (mut buf, expected) = sample();
        let mut out = Vec::new();
        while !buf.is_empty() {
            let s = buf.first_slice();
            let k = s.len().min(1000);
            out.extend_from_slice(&s[..k]);
            buf.advance(k);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn masked_payloads_are_masked_copies() {
        let mut buf = WriteBuf::default();
        let payload = *b"Hello";
        buf.push_masked(&payload, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(&payload, b"Hello");
        assert_eq!(
            drain_by(&mut buf, usize::MAX),
            [0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }
}
