//! The read buffer, and the per-thread pool that lends idle connections' buffers to busy ones.
//!
//! An idle connection holds no read buffer, but freeing it at every wait and allocating a new
//! one at the next read costs page faults and zeroing for large buffers; a few buffers per thread
//! make that churn free.
//!
//! The pool charges each buffer by the allocation behind it, not by `BytesMut::capacity()`:
//! after a message is split off the front, `capacity()` is only what remains, while the whole
//! allocation stays alive with the buffer. [`ReadBuf`] therefore makes every allocation itself
//! and remembers its size, and only ever reuses it in place.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread.
const BUFFERS: usize = 16;
/// The most bytes of allocation the pool holds per thread, all buffers together.
pub(crate) const BUDGET: usize = 8 << 20;
/// Larger allocations are freed, not kept.
const MAX_BUFFER: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bufs: Vec::new(), held: 0 }) };
}

struct Pool {
    bufs: Vec<ReadBuf>,
    /// The sum of `alloc` over `bufs`.
    held: usize,
}

/// A read buffer and the exact size of the allocation it lives in.
#[derive(Debug, Default)]
pub(super) struct ReadBuf {
    pub(super) buf: BytesMut,
    alloc: usize,
}

impl ReadBuf {
    /// Makes room for at least `want` more bytes after what is buffered.
    ///
    /// In place when the allocation has room (moving the unread bytes to its front if no message
    /// still refers to it); otherwise in a new allocation of at least twice what is buffered (so
    /// a large frame is copied a bounded number of times), but never more than `frame_rest`
    /// beyond that, so a header alone never makes us allocate a huge buffer.
    pub(super) fn reserve(&mut self, want: usize, frame_rest: usize) {
        if self.buf.try_reclaim(want) {
            return;
        }
        let len = self.buf.len();
        let size = len + want.max(len.min(frame_rest));
        let mut fresh = BytesMut::with_capacity(size);
        fresh.extend_from_slice(&self.buf);
        self.alloc = fresh.capacity();
        self.buf = fresh;
    }

    /// Hands the buffer to the pool (when it is empty and small enough) or frees it.
    pub(super) fn release(&mut self) {
        let this = std::mem::take(self);
        if this.alloc == 0 || this.alloc > MAX_BUFFER || !this.buf.is_empty() {
            return;
        }
        POOL.with_borrow_mut(|pool| {
            if pool.bufs.len() < BUFFERS && pool.held + this.alloc <= BUDGET {
                pool.held += this.alloc;
                pool.bufs.push(this);
            }
        });
    }

    /// A pooled buffer, or an empty one that allocates on first [`reserve`](Self::reserve).
    pub(super) fn take() -> Self {
        POOL.with_borrow_mut(|pool| {
            let buf = pool.bufs.pop()?;
            pool.held -= buf.alloc;
            Some(buf)
        })
        .unwrap_or_default()
    }

    /// Whether no allocation is held.
    pub(super) fn is_unallocated(&self) -> bool {
        self.alloc == 0
    }
}

/// Bytes of allocation the pool of the calling thread holds.
#[cfg(test)]
pub(crate) fn held() -> usize {
    POOL.with_borrow(|pool| pool.held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_off_message_is_charged_to_the_buffer() {
        let mut rb = ReadBuf::take();
        rb.reserve(3 << 20, usize::MAX);
        rb.buf.extend_from_slice(&vec![1u8; 3 << 20]);
        let message = rb.buf.split_to(3 << 20).freeze();
        // What remains looks small, but the whole allocation lives on in the buffer.
        assert!(rb.buf.capacity() < 1024);
        drop(message);
        let before = held();
        rb.release();
        assert_eq!(held() - before, 3 << 20);
        let again = ReadBuf::take();
        assert_eq!(again.alloc, 3 << 20);
    }

    #[test]
    fn the_pool_never_holds_more_than_its_budget() {
        let mut bufs: Vec<ReadBuf> = (0..BUFFERS)
            .map(|_| {
                let mut rb = ReadBuf::default();
                rb.reserve(MAX_BUFFER, usize::MAX);
                rb
            })
            .collect();
        for rb in &mut bufs {
            rb.release();
            assert!(held() <= BUDGET, "held {}", held());
        }
        let mut huge = ReadBuf::default();
        huge.reserve(MAX_BUFFER + 1, usize::MAX);
        huge.release();
        assert!(held() <= BUDGET);
    }

    #[test]
    fn growth_doubles_but_stops_at_the_frame() {
        let mut rb = ReadBuf::default();
        rb.reserve(1000, usize::MAX);
        rb.buf.extend_from_slice(&[0; 1000]);
        // The frame needs 10 more bytes: grow by the 500 asked for, not by another 1000.
        rb.reserve(500, 10);
        assert_eq!(rb.alloc, 1500);
        rb.buf.extend_from_slice(&[0; 500]);
        rb.reserve(100, usize::MAX);
        assert_eq!(rb.alloc, 3000);
    }
}
