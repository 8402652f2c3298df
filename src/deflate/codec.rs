//! Per-message compression and decompression (RFC 7692 §7.2) with flate2 on zlib-rs.
//!
//! Without context takeover nothing is held between messages: compressors and decompressors
//! come from a small per-thread pool and go back after each message, reset.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Agreed;
use crate::error::ErrorKind;

/// RFC 7692 §7.2.1: the tail every sync flush ends with, removed by the sender.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// How many idle (de)compressors one thread keeps for reuse.
const POOL_SIZE: usize = 8;

thread_local! {
    static COMPRESSORS: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSORS: RefCell<Vec<(u8, Decompress)>> = const { RefCell::new(Vec::new()) };
}

fn take_compressor(level: u32, bits: u8) -> Compress {
    COMPRESSORS
        .with_borrow_mut(|pool| {
            let i = pool
                .iter()
                .position(|(l, b, _)| *l == level && *b == bits)?;
            Some(pool.swap_remove(i).2)
        })
        .unwrap_or_else(|| Compress::new_with_window_bits(Compression::new(level), false, bits))
}

fn give_compressor(level: u32, bits: u8, mut c: Compress) {
    c.reset();
    COMPRESSORS.with_borrow_mut(|pool| {
        if pool.len() < POOL_SIZE {
            pool.push((level, bits, c));
        }
    });
}

fn take_decompressor(bits: u8) -> Decompress {
    DECOMPRESSORS
        .with_borrow_mut(|pool| {
            let i = pool.iter().position(|(b, _)| *b == bits)?;
            Some(pool.swap_remove(i).1)
        })
        .unwrap_or_else(|| Decompress::new_with_window_bits(false, bits))
}

fn give_decompressor(bits: u8, mut d: Decompress) {
    d.reset(false);
    DECOMPRESSORS.with_borrow_mut(|pool| {
        if pool.len() < POOL_SIZE {
            pool.push((bits, d));
        }
    });
}

/// The last `1 << bits` bytes of a stream: all a (de)compressor needs to resume with context
/// takeover after it was given back to the pool.
#[derive(Debug, Default)]
struct History {
    bytes: Vec<u8>,
}

impl History {
    fn push(&mut self, data: &[u8], bits: u8) {
        let window = 1usize << bits;
        if data.len() >= window {
            self.bytes.clear();
            self.bytes.extend_from_slice(&data[data.len() - window..]);
        } else {
            self.bytes.extend_from_slice(data);
            // Trim lazily, at twice the window, so each byte is moved at most once.
            if self.bytes.len() >= 2 * window {
                self.bytes.drain(..self.bytes.len() - window);
            }
        }
    }

    /// The window, trimmed and holding no spare capacity.
    fn compact(&mut self, bits: u8) {
        let window = 1usize << bits;
        if self.bytes.len() > window {
            self.bytes.drain(..self.bytes.len() - window);
        }
        self.bytes.shrink_to_fit();
    }
}

/// The sending side's compression state.
pub(crate) struct Deflater {
    level: u32,
    bits: u8,
    threshold: usize,
    /// With context takeover: the compressor while the connection is active.
    kept: Option<Compress>,
    /// With context takeover: what was sent, to resume after [`release`](Deflater::release).
    history: History,
    takeover: bool,
    /// A message sent in fragments is under way: its stream must not be released.
    mid_message: bool,
}

impl Deflater {
    /// The compressor of the side that sends with `server` window and context settings.
    pub(crate) fn new(agreed: &Agreed, server: bool) -> Self {
        let (bits, no_takeover) = agreed.sender(server);
        Self {
            level: agreed.level,
            // zlib-rs, like zlib, cannot compress with 8 bits; negotiation never agrees to it
            // for our side.
            bits: bits.max(9),
            threshold: agreed.threshold,
            kept: None,
            history: History::default(),
            takeover: !no_takeover,
            mid_message: false,
        }
    }

    /// Gives the compressor back to the pool while the connection is idle; with context
    /// takeover only the window of recent data stays (at most `1 << bits` bytes). Returns
    /// whether there was anything to release.
    pub(crate) fn release(&mut self) -> bool {
        if self.mid_message {
            return false;
        }
        let Some(c) = self.kept.take() else {
            return false;
        };
        give_compressor(self.level, self.bits, c);
        self.history.compact(self.bits);
        true
    }

    /// Whether a compressor is held (context takeover, active connection).
    pub(crate) fn holds_state(&self) -> bool {
        self.kept.is_some()
    }

    /// Whether each message is compressed with the context of earlier ones.
    pub(crate) fn takes_over(&self) -> bool {
        self.takeover
    }

    /// The compression level and window bits.
    pub(crate) fn params(&self) -> (u32, u8) {
        (self.level, self.bits)
    }

    /// Whether a message of this size is worth compressing.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compresses one whole message (RFC 7692 §7.2.1): deflate, sync flush, drop the tail.
    pub(crate) fn compress(&mut self, input: &[u8]) -> Vec<u8> {
        if input.is_empty() {
            // RFC 7692 §7.2.3.6: an empty message is a single 0x00 byte (with the tail the
            // receiver appends, an empty stored block). The compressor is left alone: after
            // the previous sync flush it sits on a byte boundary, and a second flush with no
            // input would only be refused (zlib's buffer error) and leave nothing to strip.
            return vec![0];
        }
        let mut c = self.compressor();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        sync_flush(&mut c, input, &mut out);
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            out.push(0);
        }
        if self.takeover {
            self.history.push(input, self.bits);
            self.kept = Some(c);
        } else {
            give_compressor(self.level, self.bits, c);
        }
        out
    }
}

impl Deflater {
    /// The held compressor, or one from the pool resuming the context.
    fn compressor(&mut self) -> Compress {
        match self.kept.take() {
            Some(c) => c,
            None => {
                let mut c = take_compressor(self.level, self.bits);
                if self.takeover && !self.history.bytes.is_empty() {
                    // Resume the context: the peer's window holds exactly these bytes.
                    let _ = c.set_dictionary(&self.history.bytes);
                }
                c
            }
        }
    }

    /// Compresses one fragment of a message sent in pieces: all of a message's fragments are
    /// one DEFLATE stream (RFC 7692 §6.1: RSV1 goes on the first frame only; the caller sets
    /// it). Each piece is flushed (so the receiver can inflate it at once) and keeps its
    /// `00 00 ff ff` marker, except the last (`fin`), whose marker is removed as for a whole
    /// message (§7.2.1). The compressor stays held until `fin`, context takeover or not.
    pub(crate) fn compress_fragment(&mut self, input: &[u8], fin: bool) -> Vec<u8> {
        let mut c = self.compressor();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        if !input.is_empty() {
            sync_flush(&mut c, input, &mut out);
            if self.takeover {
                self.history.push(input, self.bits);
            }
        }
        if fin {
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.is_empty() {
                // Nothing to end the stream with (an empty last piece, the earlier ones already
                // flushed): the receiver appends `00 00 ff ff` to complete an empty stored block
                // whose header sits in the byte before it, so send that byte (RFC 7692
                // §7.2.3.6 does the same for an empty message).
                out.push(0);
            }
        }
        self.mid_message = !fin;
        if fin && !self.takeover {
            give_compressor(self.level, self.bits, c);
        } else {
            self.kept = Some(c);
        }
        out
    }
}

/// Compresses one whole message with no context (a fresh compressor of `level` and `bits`, as a
/// sender with `no_context_takeover` would): the result refers to nothing sent before, so any
/// receiver whose window is at least `1 << bits` inflates it, whatever it received earlier.
/// Used for a message compressed once and sent to many connections.
#[cfg(feature = "hub")]
pub(crate) fn compress_alone(level: u32, bits: u8, input: &[u8]) -> Vec<u8> {
    if input.is_empty() {
        return vec![0];
    }
    let bits = bits.max(9);
    let mut c = take_compressor(level, bits);
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    sync_flush(&mut c, input, &mut out);
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.is_empty() {
        out.push(0);
    }
    give_compressor(level, bits, c);
    out
}

/// With context takeover, gives a new (or reset) decompressor the window of what was received
/// before: the sender may refer to those bytes.
fn resume(d: &mut Decompress, takeover: bool, history: &History) -> Result<(), ErrorKind> {
    if takeover && !history.bytes.is_empty() {
        d.set_dictionary(&history.bytes)
            .map_err(|_| ErrorKind::BadCompression)?;
    }
    Ok(())
}

/// Deflates `input` into `out` with a sync flush: everything is emitted, ending with the
/// empty stored block `00 00 ff ff`.
fn sync_flush(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before_out = out.len();
        // Compression of in-memory data into a growing Vec cannot fail.
        let _ = c.compress_vec(&input[consumed..], out, FlushCompress::Sync);
        let all_in = (c.total_in() - start_in) as usize == input.len();
        let produced = out.len() - before_out;
        // The flush is complete once zlib stops filling the output; a call that moves
        // nothing either way has nothing left to give.
        let room_left = produced < out.capacity() - before_out;
        let stuck = produced == 0 && (c.total_in() - start_in) as usize == consumed;
        if (all_in && room_left && out.ends_with(&TAIL)) || stuck {
            break;
        }
    }
}

/// The receiving side's decompression state.
pub(crate) struct Inflater {
    bits: u8,
    takeover: bool,
    /// Held during a message, and between messages with context takeover while active.
    current: Option<Decompress>,
    /// With context takeover: what was received, to resume after [`release`](Inflater::release).
    history: History,
    /// A message is being inflated (its decompressor cannot be released).
    mid_message: bool,
    /// Where the output not yet pushed into `history` starts.
    saved: usize,
}

impl Inflater {
    /// The decompressor for messages from the side whose settings are `server` or client.
    pub(crate) fn new(agreed: &Agreed, from_server: bool) -> Self {
        let (bits, no_takeover) = agreed.sender(from_server);
        Self {
            // A window at least as large as the sender's is always enough; zlib-rs needs 9+.
            bits: bits.max(9),
            takeover: !no_takeover,
            current: None,
            history: History::default(),
            mid_message: false,
            saved: 0,
        }
    }

    /// Whether a decompressor is held (context takeover, active connection).
    pub(crate) fn holds_state(&self) -> bool {
        self.current.is_some()
    }

    /// Gives the decompressor back to the pool between messages while the connection is idle;
    /// with context takeover only the window of recent data stays. Returns whether there was
    /// anything to release.
    pub(crate) fn release(&mut self) -> bool {
        if self.mid_message {
            return false;
        }
        let Some(d) = self.current.take() else {
            return false;
        };
        give_decompressor(self.bits, d);
        self.history.compact(self.bits);
        true
    }

    /// Inflates one frame's payload into `out`, appending; with `fin`, also the removed tail,
    /// and the message is over. Never lets `out` grow past `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MessageTooLarge`] as soon as the output would pass `limit`;
    /// [`ErrorKind::BadCompression`] for data that is not valid deflate.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ErrorKind> {
        let bits = self.bits;
        if !self.mid_message {
            self.saved = out.len();
        }
        self.mid_message = !fin;
        let d = match &mut self.current {
            Some(d) => d,
            None => {
                let mut d = take_decompressor(bits);
                resume(&mut d, self.takeover, &self.history)?;
                self.current.insert(d)
            }
        };
        let result = match feed(d, input, out, limit) {
            Ok(false) if fin => feed(d, &TAIL, out, limit),
            other => other,
        };
        let ended = match result {
            Ok(ended) => ended,
            Err(e) => {
                // The stream is broken; do not pool it.
                self.current = None;
                return Err(e);
            }
        };
        if ended {
            // RFC 7692 §7.2.3.3: a block with BFINAL ends the DEFLATE stream, and what follows
            // in this frame is ignored, but with context takeover the next message may still
            // refer to everything inflated so far: start a new stream over the same window.
            if self.takeover {
                self.history.push(&out[self.saved..], bits);
                self.saved = out.len();
            }
            d.reset(false);
            resume(d, self.takeover, &self.history)?;
        }
        if fin {
            if self.takeover {
                self.history.push(&out[self.saved..], bits);
            } else if let Some(d) = self.current.take() {
                give_decompressor(bits, d);
            }
        }
        Ok(())
    }
}

/// Inflates `input` into `out`; `Ok(true)` if the DEFLATE stream ended (a block with BFINAL).
impl Inflater {
    /// Streaming: inflates from `input` into `out` (appending) until `out` holds `max_out`
    /// bytes or the input is used up. Returns how much input it used, and whether the
    /// decompressor is drained (it stopped for want of input, not of room): a frame is done
    /// once all its input is used and the decompressor drained; call again, with the rest of
    /// the input or with none, until then. After a message's last frame, feed [`tail`](Self::tail)
    /// the same way, then call [`end_message`](Self::end_message).
    ///
    /// Unlike [`inflate`](Self::inflate), memory stays bounded by `max_out` whatever the
    /// compression ratio, and the window for context takeover is kept as the output goes, so
    /// `out` may be emptied between calls.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadCompression`] for data that is not valid deflate.
    pub(crate) fn inflate_some(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(usize, bool), ErrorKind> {
        let bits = self.bits;
        self.mid_message = true;
        let d = match &mut self.current {
            Some(d) => d,
            None => {
                let mut d = take_decompressor(bits);
                resume(&mut d, self.takeover, &self.history)?;
                self.current.insert(d)
            }
        };
        let start_out = out.len();
        let mut used = 0;
        let result = loop {
            if out.len() >= max_out {
                break Ok((used, false));
            }
            // Inflate into a slice, so nothing past `max_out` is ever written.
            let (before_in, before_out) = (d.total_in(), d.total_out());
            let len = out.len();
            out.resize(max_out, 0);
            let status = d.decompress(&input[used..], &mut out[len..], FlushDecompress::Sync);
            out.truncate(len + (d.total_out() - before_out) as usize);
            let Ok(status) = status else {
                break Err(ErrorKind::BadCompression);
            };
            used += (d.total_in() - before_in) as usize;
            if status == Status::StreamEnd {
                // RFC 7692 §7.2.3.3: BFINAL ends the DEFLATE stream and the rest of this frame
                // is ignored; with context takeover the next data still refers to the window.
                if self.takeover {
                    self.history.push(&out[start_out..], bits);
                }
                d.reset(false);
                if let Err(e) = resume(d, self.takeover, &self.history) {
                    self.current = None;
                    return Err(e);
                }
                return Ok((input.len(), true));
            }
            let progress = d.total_in() != before_in || out.len() != len;
            let room_left = out.len() < max_out;
            if used == input.len() && room_left {
                break Ok((used, true));
            }
            if !progress && room_left {
                // Input left, room left, and zlib takes none of it.
                break Err(ErrorKind::BadCompression);
            }
        };
        match result {
            Ok(done) => {
                if self.takeover {
                    self.history.push(&out[start_out..], bits);
                }
                Ok(done)
            }
            Err(e) => {
                self.current = None;
                Err(e)
            }
        }
    }

    /// Switches a message begun with [`inflate`](Self::inflate) (whose output accumulated in
    /// `out`) to [`inflate_some`](Self::inflate_some): the window takes what was inflated so
    /// far, and `out` may be handed on.
    pub(crate) fn continue_streaming(&mut self, out: &[u8]) {
        if self.takeover {
            self.history
                .push(&out[self.saved.min(out.len())..], self.bits);
        }
        self.saved = 0;
    }

    /// The four bytes a sender removed from the end of every message (RFC 7692 §7.2.2), to be
    /// fed through [`inflate_some`](Self::inflate_some) after the message's last frame.
    pub(crate) const fn tail() -> &'static [u8] {
        &TAIL
    }

    /// Streaming: the message is over (its tail was inflated); without context takeover the
    /// decompressor goes back to the pool.
    pub(crate) fn end_message(&mut self) {
        self.mid_message = false;
        if !self.takeover {
            if let Some(d) = self.current.take() {
                give_decompressor(self.bits, d);
            }
        }
    }
}

fn feed(
    d: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, ErrorKind> {
    let start_in = d.total_in();
    loop {
        let consumed = (d.total_in() - start_in) as usize;
        let room = limit.saturating_sub(out.len());
        if out.capacity() == out.len() {
            // Grow geometrically, but never past the limit (plus one byte to detect overflow).
            let grow = (out.capacity().max(input.len() * 2).max(4096)).min(room.saturating_add(1));
            if grow == 0 {
                return Err(ErrorKind::MessageTooLarge);
            }
            out.reserve_exact(grow);
        }
        let before_out = out.len();
        let status = d
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|_| ErrorKind::BadCompression)?;
        if out.len() > limit {
            out.truncate(limit);
            return Err(ErrorKind::MessageTooLarge);
        }
        let consumed_now = (d.total_in() - start_in) as usize;
        let all_in = consumed_now == input.len();
        let output_full = out.len() == out.capacity();
        match status {
            Status::StreamEnd => return Ok(true),
            _ if all_in && !output_full => return Ok(false),
            _ if consumed_now == consumed && out.len() == before_out && !output_full => {
                return Err(ErrorKind::BadCompression);
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("bits", &self.bits)
            .field("takeover", &self.takeover)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("bits", &self.bits)
            .field("takeover", &self.takeover)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(takeover: bool, bits: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
            level: 6,
            threshold: 0,
        }
    }

    #[test]
    fn rfc_7692_hello_decompresses() {
        // RFC 7692 §7.2.3.1: "Hello" compressed, without context takeover.
        let mut inflater = Inflater::new(&agreed(false, 15), false);
        let mut out = Vec::new();
        inflater
            .inflate(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                1 << 20,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn context_takeover_shrinks_a_repeated_message() {
        // RFC 7692 §7.2.3.2: the second "Hello" refers back to the first.
        let mut deflater = Deflater::new(&agreed(true, 15), true);
        let first = deflater.compress(b"Hello");
        let second = deflater.compress(b"Hello");
        assert!(second.len() < first.len(), "{first:x?} vs {second:x?}");
        let mut inflater = Inflater::new(&agreed(true, 15), true);
        for compressed in [&first, &second] {
            let mut out = Vec::new();
            inflater.inflate(compressed, true, &mut out, 100).unwrap();
            assert_eq!(out, b"Hello");
        }
    }

    #[test]
    fn round_trips_at_every_window_and_mode() {
        let text: Vec<u8> = (0..50_000)
            .map(|i| b"abcdefghij"[i % 10] ^ (i / 1000) as u8)
            .collect();
        for bits in 9..=15 {
            for takeover in [false, true] {
                let a = agreed(takeover, bits);
                let mut deflater = Deflater::new(&a, true);
                let mut inflater = Inflater::new(&a, true);
                for round in 0..3 {
                    let compressed = deflater.compress(&text);
                    // Fragment the compressed data into frames of 1000 bytes.
                    let mut out = Vec::new();
                    let chunks: Vec<&[u8]> = compressed.chunks(1000).collect();
                    for (i, chunk) in chunks.iter().enumerate() {
                        inflater
                            .inflate(chunk, i + 1 == chunks.len(), &mut out, 1 << 20)
                            .unwrap();
                    }
                    assert_eq!(out, text, "bits {bits} takeover {takeover} round {round}");
                }
            }
        }
    }

    /// Inflates a message frame by frame through `inflate_some`, at most `max_out` bytes per
    /// call, emptying the output between calls as a streaming reader does.
    fn inflate_streaming(inflater: &mut Inflater, frames: &[&[u8]], max_out: usize) -> Vec<u8> {
        let mut message = Vec::new();
        let tail = Inflater::tail();
        for input in frames.iter().copied().chain([tail]) {
            let mut rest = input;
            loop {
                let mut out = Vec::new();
                let (used, drained) = inflater.inflate_some(rest, &mut out, max_out).unwrap();
                assert!(out.len() <= max_out, "{} > {max_out}", out.len());
                message.extend_from_slice(&out);
                rest = &rest[used..];
                if rest.is_empty() && drained {
                    break;
                }
            }
        }
        inflater.end_message();
        message
    }

    #[test]
    fn streaming_inflate_bounds_each_output_and_keeps_the_context() {
        // A bomb-like message: 1 MiB of one byte compresses to a few KiB; no call may return
        // more than 4 KiB of it.
        let big = vec![b'a'; 1 << 20];
        let text: Vec<u8> = (0..50_000)
            .map(|i| b"abcdefghij"[i % 10] ^ (i / 1000) as u8)
            .collect();
        for bits in [9, 15] {
            for takeover in [false, true] {
                let a = agreed(takeover, bits);
                let mut deflater = Deflater::new(&a, true);
                let mut inflater = Inflater::new(&a, true);
                for (round, message) in [&big, &text, &text].into_iter().enumerate() {
                    let compressed = deflater.compress(message);
                    let frames: Vec<&[u8]> = compressed.chunks(777).collect();
                    let out = inflate_streaming(&mut inflater, &frames, 4096);
                    assert!(
                        out == *message,
                        "bits {bits} takeover {takeover} round {round}: {} vs {} bytes",
                        out.len(),
                        message.len()
                    );
                }
                assert!(
                    takeover || !inflater.holds_state(),
                    "given back between messages"
                );
            }
        }
    }

    #[test]
    fn streaming_inflate_rejects_garbage() {
        let mut inflater = Inflater::new(&agreed(false, 15), true);
        let mut out = Vec::new();
        assert_eq!(
            inflater.inflate_some(&[0xff; 64], &mut out, 1024),
            Err(ErrorKind::BadCompression)
        );
    }

    #[test]
    fn a_message_compressed_in_fragments_is_one_stream_and_the_context_carries_on() {
        let text: Vec<u8> = (0..30_000).map(|i| b"fragmented text "[i % 16]).collect();
        for takeover in [false, true] {
            let a = agreed(takeover, 12);
            let mut deflater = Deflater::new(&a, true);
            let mut inflater = Inflater::new(&a, true);
            for round in 0..2 {
                let pieces: Vec<&[u8]> = text.chunks(7000).collect();
                let mut out = Vec::new();
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    let compressed = deflater.compress_fragment(piece, fin);
                    assert!(!deflater.release() || fin, "no release mid-message");
                    inflater
                        .inflate(&compressed, fin, &mut out, 1 << 20)
                        .unwrap();
                }
                assert!(out == text, "takeover {takeover} round {round}");
                // A whole message after it continues the same context.
                let whole = deflater.compress(b"fragmented text, whole");
                let mut out = Vec::new();
                inflater.inflate(&whole, true, &mut out, 1 << 20).unwrap();
                assert_eq!(out, b"fragmented text, whole");
            }
        }
    }

    /// A message whose last fragment is empty (a writer finished after flushing) still ends
    /// the stream so that the receiver's appended tail completes it; the next message decodes.
    #[test]
    fn an_empty_last_fragment_still_ends_the_stream_for_the_next_message() {
        let a = agreed(true, 15);
        let mut deflater = Deflater::new(&a, true);
        let mut inflater = Inflater::new(&a, true);
        for m in [&b"x0x0x0x0x0x0x0x0"[..], b"x1x1x1x1x1x1x1x1"] {
            let f1 = deflater.compress_fragment(m, false);
            let f2 = deflater.compress_fragment(&[], true);
            assert_eq!(
                f2,
                [0],
                "the byte that holds an empty stored block's header"
            );
            let mut out = Vec::new();
            inflater.inflate(&f1, false, &mut out, 1 << 20).unwrap();
            inflater.inflate(&f2, true, &mut out, 1 << 20).unwrap();
            assert_eq!(out, m);
        }
    }

    #[test]
    fn released_state_resumes_the_context_on_both_sides() {
        let a = agreed(true, 10);
        let mut deflater = Deflater::new(&a, true);
        let mut inflater = Inflater::new(&a, true);
        let message =
            b"a message that repeats, a message that repeats, and repeats again".repeat(30);
        let mut sizes = Vec::new();
        for round in 0..4 {
            let compressed = deflater.compress(&message);
            sizes.push(compressed.len());
            let mut out = Vec::new();
            let r = inflater.inflate(&compressed, true, &mut out, 1 << 20);
            assert_eq!(r, Ok(()), "round {round}");
            assert_eq!(out, message, "round {round}");
            // Idle between messages: both sides hand their state back.
            assert!(deflater.release());
            assert!(inflater.release());
            assert!(!deflater.release(), "nothing left to release");
        }
        // Context survived the releases: later copies compress to less than the first.
        assert!(sizes[1] < sizes[0] && sizes[3] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        let mut deflater = Deflater::new(&agreed(false, 15), true);
        let compressed = deflater.compress(b"");
        assert_eq!(compressed, [0x00]);
        let mut out = Vec::new();
        Inflater::new(&agreed(false, 15), true)
            .inflate(&compressed, true, &mut out, 10)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn an_inflate_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = Deflater::new(&agreed(false, 15), true).compress(&zeros);
        assert!(bomb.len() < 20_000);
        let mut out = Vec::new();
        let err = Inflater::new(&agreed(false, 15), true)
            .inflate(&bomb, true, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, ErrorKind::MessageTooLarge);
        assert!(
            out.capacity() <= (1 << 20) + 1,
            "allocated {}",
            out.capacity()
        );
    }

    #[test]
    fn corrupt_data_is_bad_compression() {
        let mut out = Vec::new();
        let err = Inflater::new(&agreed(false, 15), true)
            .inflate(&[0xff, 0xff, 0xff, 0xff], true, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, ErrorKind::BadCompression);
    }

    /// Runs `f` on another thread; fails instead of hanging if it does not return in time.
    fn within_secs<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("did not return in time (spinning?)")
    }

    #[test]
    fn an_empty_message_after_a_compressed_one_keeps_the_context() {
        // Regression: with context takeover, a second sync flush with no input makes zlib
        // return a buffer error, and `compress` waited forever for a tail.
        within_secs(10, || {
            let a = agreed(true, 15);
            let mut deflater = Deflater::new(&a, true);
            let mut inflater = Inflater::new(&a, true);
            let hello = b"hello hello hello hello".as_slice();
            for msg in [hello, b"", b"", hello, b""] {
                let compressed = deflater.compress(msg);
                let mut out = Vec::new();
                inflater
                    .inflate(&compressed, true, &mut out, 1 << 20)
                    .unwrap();
                assert_eq!(out, msg);
            }
        });
    }

    #[test]
    fn a_final_block_ends_the_stream_but_not_the_context() {
        // Regression: a decompressor that saw BFINAL was reset without its window, so a peer
        // that ends messages with BFINAL (RFC 7692 §7.2.3.3) broke the next message.
        let text = b"the quick brown fox jumps over the lazy dog";
        let mut first = Vec::with_capacity(256);
        Compress::new(Compression::new(6), false)
            .compress_vec(text, &mut first, FlushCompress::Finish)
            .unwrap();
        // The second message is a new stream that refers back to the first.
        let mut c = Compress::new(Compression::new(6), false);
        c.set_dictionary(text).unwrap();
        let mut second = Vec::with_capacity(256);
        c.compress_vec(text, &mut second, FlushCompress::Sync)
            .unwrap();
        assert!(second.ends_with(&TAIL));
        second.truncate(second.len() - TAIL.len());
        assert!(second.len() < 10, "refers back: {second:x?}");
        let mut inflater = Inflater::new(&agreed(true, 15), true);
        for (i, message) in [&first, &second, &second].into_iter().enumerate() {
            let mut out = Vec::new();
            inflater.inflate(message, true, &mut out, 1 << 20).unwrap();
            assert_eq!(out, text, "message {i}");
        }
    }
}
