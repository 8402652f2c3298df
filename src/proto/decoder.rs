//! Bytes in, messages out: the receive side of the protocol.

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{FrameHeader, OpCode};
use super::mask::{apply_mask, rotate_key};
use super::utf8::Utf8Validator;
use super::{Role, close};
#[cfg(feature = "deflate")]
use crate::deflate::Inflater;
use crate::error::ErrorKind;
use crate::message::Message;

/// Size limits the decoder enforces before buffering anything.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
}

/// The frame whose header has been consumed and whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct FrameState {
    header: FrameHeader,
    len: usize,
    /// Payload bytes already unmasked (and, for text, validated) in place.
    processed: usize,
    /// Whether this frame's payload is text to validate as it arrives.
    text: bool,
}

/// What [`Decoder::decode_streaming`] produced: a whole message (control frames, and data
/// messages not streamed), or a piece of the data message being streamed.
#[derive(Debug)]
pub(crate) enum Decoded {
    Message(Message),
    Chunk(Chunk),
}

/// A piece of a streamed data message: a frame's payload, or (compressed) a bounded piece of
/// its inflated data.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// On the message's first chunk: whether the message is text.
    pub(crate) first: Option<bool>,
    /// Unmasked (and for text, UTF-8-checked so far) payload; may be empty.
    pub(crate) data: Bytes,
    /// The message's last chunk.
    pub(crate) fin: bool,
}

/// The most inflated bytes one streamed chunk holds: a compressed message is inflated in
/// pieces of this size, so memory stays bounded whatever its compression ratio.
#[cfg(feature = "deflate")]
pub(crate) const STREAM_CHUNK: usize = 64 << 10;

/// A compressed frame of a streamed message, inflated a chunk at a time.
#[cfg(feature = "deflate")]
#[derive(Debug)]
struct StreamInflate {
    /// Compressed bytes not inflated yet (the frame's, then the message's tail).
    input: Bytes,
    /// The frame is the message's last.
    fin: bool,
    /// The tail (RFC 7692 §7.2.2) is in `input` or done.
    tail: bool,
}

/// A fragmented data message being assembled.
#[derive(Debug)]
struct Partial {
    data: BytesMut,
}

/// Up to three bytes of an unfinished code point.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    bytes: [u8; 3],
    len: u8,
}

impl Held {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn set(&mut self, bytes: &[u8]) {
        self.bytes[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len() as u8;
    }
}

/// Turns received bytes into [`Message`]s.
///
/// Call [`decode`](Decoder::decode) with the read buffer each time it grows. It unmasks and
/// validates payload bytes as they arrive (so invalid UTF-8 fails at once, not at the end of a
/// frame), hands out unfragmented payloads split off the buffer without copying, and checks
/// every limit before buffering.
#[derive(Debug)]
pub(crate) struct Decoder {
    role: Role,
    limits: Limits,
    accept_unmasked: bool,
    frame: Option<FrameState>,
    partial: Option<Partial>,
    /// A data message (text or binary) is in progress: the next data frame must continue it.
    in_message: bool,
    in_text: bool,
    /// Checks the text message in progress in place, as it arrives; the message's own bytes
    /// then become its `Utf8Bytes`, with no copy and no second check.
    utf8: Utf8Validator,
    /// The bytes of a code point the last streamed text chunk left unfinished: they start the
    /// next chunk, so every text chunk is whole code points.
    held: Held,
    /// The message in progress is compressed (RSV1 on its first frame).
    compressed: bool,
    /// The current (or next) data message is handed out in chunks as it arrives.
    streaming: bool,
    /// A chunk of the streamed message was handed out (the next is not its first).
    stream_started: bool,
    /// The compressed frame being inflated in chunks.
    #[cfg(feature = "deflate")]
    stream_inflate: Option<Box<StreamInflate>>,
    /// permessage-deflate, when agreed.
    /// Boxed: most connections never agree to compression and should not pay its size.
    #[cfg(feature = "deflate")]
    inflater: Option<Box<Inflating>>,
}

/// The inflater and the message it is inflating.
#[cfg(feature = "deflate")]
#[derive(Debug)]
struct Inflating {
    inflater: Inflater,
    /// The inflated message so far.
    out: Vec<u8>,
}

impl Decoder {
    pub(crate) fn new(role: Role, limits: Limits, accept_unmasked: bool) -> Self {
        Self {
            role,
            limits,
            accept_unmasked,
            frame: None,
            partial: None,
            in_message: false,
            in_text: false,
            utf8: Utf8Validator::default(),
            held: Held::default(),
            compressed: false,
            streaming: false,
            stream_started: false,
            #[cfg(feature = "deflate")]
            stream_inflate: None,
            #[cfg(feature = "deflate")]
            inflater: None,
        }
    }

    /// Hands the next data message (or the rest of the one in progress) out in chunks through
    /// [`decode_streaming`](Self::decode_streaming), without its size limit: the reader bounds
    /// what it keeps. Frames are still capped by `max_frame_size`.
    pub(crate) fn stream_next(&mut self) {
        self.streaming = true;
    }

    /// Whether a streamed message is in progress (its first chunk was handed out, its last
    /// not yet).
    #[cfg(test)]
    pub(crate) fn is_streaming(&self) -> bool {
        self.streaming && self.stream_started
    }

    /// Whether [`stream_next`](Self::stream_next) was called and its message is not over.
    #[inline]
    pub(crate) fn stream_requested(&self) -> bool {
        self.streaming
    }

    /// Takes back a [`stream_next`](Self::stream_next) whose message has not started: the next
    /// message comes out whole again. No effect once a chunk was handed out.
    pub(crate) fn cancel_stream(&mut self) {
        if !self.stream_started {
            self.streaming = false;
        }
    }

    /// Accepts compressed messages from here on (permessage-deflate was agreed).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_inflater(&mut self, inflater: Inflater) {
        self.inflater = Some(Box::new(Inflating {
            inflater,
            out: Vec::new(),
        }));
    }

    /// The inflater, when permessage-deflate was agreed.
    #[cfg(feature = "deflate")]
    pub(crate) fn inflater_mut(&mut self) -> Option<&mut Inflater> {
        self.inflater.as_deref_mut().map(|i| &mut i.inflater)
    }

    fn compression_agreed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.inflater.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// How many more bytes the decoder needs before it can make progress (at least 1).
    pub(crate) fn wanted(&self, buffered: usize) -> usize {
        match self.frame {
            Some(f) => f.len.saturating_sub(buffered).max(1),
            None => 2usize.saturating_sub(buffered).max(1),
        }
    }

    /// Decodes the next message from `buf`.
    ///
    /// `Ok(None)`: more bytes are needed; what was consumed is remembered, so call again with
    /// the same buffer once more bytes are appended. Errors are terminal.
    #[inline]
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ErrorKind> {
        while let Some((header, payload)) = self.next_frame(buf)? {
            if let Some(message) = self.complete_frame(header, payload)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// [`decode`](Self::decode) for a connection that may stream: control frames and messages
    /// not streamed come out whole, a message after [`stream_next`](Self::stream_next) in
    /// chunks as its frames arrive (a compressed one inflated [`STREAM_CHUNK`] bytes at a
    /// time). Same contract: `Ok(None)` wants more bytes; errors are terminal.
    pub(crate) fn decode_streaming(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded>, ErrorKind> {
        loop {
            #[cfg(feature = "deflate")]
            if self.stream_inflate.is_some() {
                if let Some(chunk) = self.inflate_chunk()? {
                    return Ok(Some(Decoded::Chunk(chunk)));
                }
                continue;
            }
            let Some((header, payload)) = self.next_frame(buf)? else {
                return Ok(None);
            };
            let data = !header.opcode.is_control();
            if !(data && self.streaming) {
                if let Some(message) = self.complete_frame(header, payload)? {
                    return Ok(Some(Decoded::Message(message)));
                }
                continue;
            }
            if self.compressed {
                #[cfg(feature = "deflate")]
                {
                    self.stream_inflate = Some(Box::new(StreamInflate {
                        input: payload,
                        fin: header.fin,
                        tail: false,
                    }));
                    continue;
                }
                #[cfg(not(feature = "deflate"))]
                return Err(ErrorKind::ReservedBits);
            }
            // Fragments assembled before streaming was asked for come first.
            let data = match self.partial.take() {
                Some(mut partial) => {
                    partial.data.extend_from_slice(&payload);
                    partial.data.freeze()
                }
                None => payload,
            };
            return self
                .stream_chunk(data, header.fin)
                .map(|c| Some(Decoded::Chunk(c)));
        }
    }

    /// A chunk of the streamed message, from `data`, the bytes received (and for text, checked)
    /// since the last one; with `fin`, the message is over.
    fn stream_chunk(&mut self, mut data: Bytes, fin: bool) -> Result<Chunk, ErrorKind> {
        let first = (!self.stream_started).then_some(self.in_text);
        self.stream_started = true;
        if self.in_text {
            data = self.whole_code_points(data);
        }
        if fin {
            if self.in_text {
                self.utf8.finish().map_err(|_| ErrorKind::InvalidUtf8)?;
            }
            self.in_message = false;
            self.in_text = false;
            self.compressed = false;
            self.streaming = false;
            self.stream_started = false;
        }
        Ok(Chunk { first, data, fin })
    }

    /// The held bytes and `data`, less a code point their end leaves unfinished, which is held
    /// for the next chunk. No copy unless a code point was held (it spans two frames).
    fn whole_code_points(&mut self, mut data: Bytes) -> Bytes {
        // Everything fed to the validator is in earlier chunks, held, or in `data`, so the
        // unfinished code point at its end is at the end of `held` + `data`.
        let unfinished = self.utf8.unfinished();
        if self.held.len == 0 {
            let tail = data.split_off(data.len().saturating_sub(unfinished));
            self.held.set(&tail);
            return data;
        }
        let mut joined = BytesMut::with_capacity(self.held.as_slice().len() + data.len());
        joined.extend_from_slice(self.held.as_slice());
        joined.extend_from_slice(&data);
        let tail = joined.split_off(joined.len().saturating_sub(unfinished));
        self.held.set(&tail);
        joined.freeze()
    }

    /// Inflates the next piece of the compressed frame being streamed: a chunk when there is
    /// output or the message ended, `None` when the frame is done and the next one is needed.
    #[cfg(feature = "deflate")]
    fn inflate_chunk(&mut self) -> Result<Option<Chunk>, ErrorKind> {
        let (Some(st), Some(inflating)) = (
            self.stream_inflate.as_deref_mut(),
            self.inflater.as_deref_mut(),
        ) else {
            return Err(ErrorKind::ReservedBits);
        };
        // Output inflated before streaming was asked for comes first.
        let mut out = std::mem::take(&mut inflating.out);
        if !out.is_empty() {
            inflating.inflater.continue_streaming(&out);
        }
        // What was inflated before streaming was asked for is checked already.
        let checked = out.len();
        let mut ended = false;
        while out.len() < STREAM_CHUNK {
            let (used, drained) =
                inflating
                    .inflater
                    .inflate_some(&st.input, &mut out, STREAM_CHUNK)?;
            st.input.advance(used);
            if !(st.input.is_empty() && drained) {
                continue;
            }
            if st.fin && !st.tail {
                st.tail = true;
                st.input = Bytes::from_static(Inflater::tail());
                continue;
            }
            if st.fin {
                inflating.inflater.end_message();
            }
            ended = true;
            break;
        }
        let fin = ended && st.fin;
        if ended {
            self.stream_inflate = None;
        }
        if self.in_text {
            self.utf8
                .feed(&out[checked..])
                .map_err(|_| ErrorKind::InvalidUtf8)?;
        }
        let data = Bytes::from(out);
        if data.is_empty() && !fin {
            return Ok(None);
        }
        self.stream_chunk(data, fin).map(Some)
    }

    /// The next whole frame: its header and its unmasked payload (text checked as it arrived).
    #[inline(always)]
    fn next_frame(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(FrameHeader, Bytes)>, ErrorKind> {
        // Worked on as a local and stored back only when more bytes are needed: writing it into
        // `self.frame` and reading it straight back stalls on store forwarding.
        let mut frame = match self.frame.take() {
            Some(frame) => frame,
            None => {
                let Some((header, header_len)) = FrameHeader::parse(buf)? else {
                    return Ok(None);
                };
                let text = self.check_header(&header)?;
                buf.advance(header_len);
                FrameState {
                    len: header.len(),
                    header,
                    processed: 0,
                    text,
                }
            }
        };

        let available = buf.len().min(frame.len);
        if available > frame.processed {
            let fresh = &mut buf[frame.processed..available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, rotate_key(key, frame.processed));
            }
            if frame.text {
                // RFC 6455 §8.1: fail the connection as soon as invalid UTF-8 is seen.
                self.utf8.feed(fresh).map_err(|_| ErrorKind::InvalidUtf8)?;
            }
            frame.processed = available;
        }
        if buf.len() < frame.len {
            self.frame = Some(frame);
            return Ok(None);
        }

        Ok(Some((frame.header, buf.split_to(frame.len).freeze())))
    }

    /// Applies every header rule before any payload is buffered; whether the frame's payload is
    /// text to validate as it arrives.
    #[inline(always)]
    fn check_header(&mut self, h: &FrameHeader) -> Result<bool, ErrorKind> {
        match (self.role, h.mask.is_some()) {
            // RFC 6455 §5.1: a server MUST close the connection upon receiving an unmasked frame.
            (Role::Server, false) if !self.accept_unmasked => return Err(ErrorKind::BadMasking),
            // RFC 6455 §5.1: a client MUST close the connection if it detects a masked frame.
            (Role::Client, true) => return Err(ErrorKind::BadMasking),
            _ => {}
        }
        // RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defining them was negotiated.
        // RFC 7692 §6: permessage-deflate defines RSV1, on the first frame of a data message
        // only (§6.1: never on control frames or continuations).
        if h.rsv23
            || h.rsv1
                && (!self.compression_agreed()
                    || matches!(h.opcode, OpCode::Continuation)
                    || h.opcode.is_control())
        {
            return Err(ErrorKind::ReservedBits);
        }
        let len = h.len();
        let text = if h.opcode.is_control() {
            // RFC 6455 §5.5: control frames MUST have a payload of 125 bytes or less and MUST
            // NOT be fragmented.
            if !h.fin || len > 125 {
                return Err(ErrorKind::BadControlFrame);
            }
            false
        } else {
            match (h.opcode, self.in_message) {
                // RFC 6455 §5.4: a continuation needs a message to continue, and a new message
                // may not start before the previous one's final fragment.
                (OpCode::Continuation, false) | (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ErrorKind::BadFragmentation);
                }
                _ => {}
            }
            if len > self.limits.max_frame_size {
                return Err(ErrorKind::FrameTooLarge);
            }
            let so_far = self.message_len();
            if !self.streaming && len.saturating_add(so_far) > self.limits.max_message_size {
                return Err(ErrorKind::MessageTooLarge);
            }
            if h.opcode != OpCode::Continuation {
                self.in_message = true;
                self.in_text = h.opcode == OpCode::Text;
                self.compressed = h.rsv1;
            }
            // Compressed text is validated as it is inflated.
            self.in_text && !self.compressed
        };
        Ok(text)
    }

    /// Bytes of the data message assembled so far.
    fn message_len(&self) -> usize {
        #[cfg(feature = "deflate")]
        if self.compressed {
            return self.inflater.as_ref().map_or(0, |i| i.out.len());
        }
        self.partial.as_ref().map_or(0, |p| p.data.len())
    }

    /// Inflates a compressed frame; the message once its last frame is in.
    #[cfg(feature = "deflate")]
    fn inflate_frame(&mut self, fin: bool, payload: &[u8]) -> Result<Option<Bytes>, ErrorKind> {
        let Some(Inflating { inflater, out }) = self.inflater.as_deref_mut() else {
            return Err(ErrorKind::ReservedBits);
        };
        // RFC 7692 §8.1 (and our limits): the inflated size counts, checked while inflating.
        let checked = out.len();
        inflater.inflate(payload, fin, out, self.limits.max_message_size)?;
        if self.in_text {
            // Checked in place as it is inflated: it fails at the first bad byte, and the
            // message's text is this buffer.
            self.utf8
                .feed(&out[checked..])
                .map_err(|_| ErrorKind::InvalidUtf8)?;
        }
        Ok(fin.then(|| Bytes::from(std::mem::take(out))))
    }

    /// Without the `deflate` feature no compressed message is ever accepted.
    #[cfg(not(feature = "deflate"))]
    #[allow(clippy::unused_self)]
    fn inflate_frame(&mut self, _fin: bool, _payload: &[u8]) -> Result<Option<Bytes>, ErrorKind> {
        Err(ErrorKind::ReservedBits)
    }

    /// Turns a whole frame into a message, or folds it into the message being assembled.
    #[inline(always)]
    fn complete_frame(
        &mut self,
        h: FrameHeader,
        payload: Bytes,
    ) -> Result<Option<Message>, ErrorKind> {
        let data = match h.opcode {
            OpCode::Ping => return Ok(Some(Message::Ping(payload))),
            OpCode::Pong => return Ok(Some(Message::Pong(payload))),
            OpCode::Close => return close::parse(payload).map(|f| Some(Message::Close(f))),
            _ if self.compressed => match self.inflate_frame(h.fin, &payload)? {
                Some(data) => data,
                None => return Ok(None),
            },
            OpCode::Text | OpCode::Binary if h.fin => payload,
            OpCode::Text | OpCode::Binary => {
                // The first fragment: assemble from here.
                self.partial = Some(Partial {
                    data: BytesMut::from(&payload[..]),
                });
                return Ok(None);
            }
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(ErrorKind::BadFragmentation);
                };
                partial.data.extend_from_slice(&payload);
                if !h.fin {
                    return Ok(None);
                }
                self.partial
                    .take()
                    .map(|p| p.data.freeze())
                    .unwrap_or_default()
            }
        };
        let text = self.in_text;
        self.in_message = false;
        self.in_text = false;
        self.compressed = false;
        if text {
            // Checked in place as it arrived (`next_frame`, `inflate_frame`): the payload is
            // the text, as it is.
            let text = self.utf8.finish_text(data);
            text.map(|t| Some(Message::Text(t)))
                .map_err(|_| ErrorKind::InvalidUtf8)
        } else {
            Ok(Some(Message::Binary(data)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{CloseCode, CloseFrame};

    mod text;

    const LIMITS: Limits = Limits {
        max_frame_size: 1 << 20,
        max_message_size: 1 << 21,
    };

    fn server() -> Decoder {
        Decoder::new(Role::Server, LIMITS, false)
    }

    /// A masked client frame.
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv23: b0 & 0x30 != 0,
            opcode: match b0 & 0xf {
                0 => OpCode::Continuation,
                1 => OpCode::Text,
                2 => OpCode::Binary,
                8 => OpCode::Close,
                9 => OpCode::Ping,
                _ => OpCode::Pong,
            },
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut out = header.encode().as_slice().to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key);
        out
    }

    /// Decodes everything, feeding the input in two parts split at `split`.
    fn decode_split(input: &[u8], split: usize) -> Result<Vec<Message>, ErrorKind> {
        let mut d = server();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in [&input[..split], &input[split..]] {
            buf.extend_from_slice(part);
            while let Some(m) = d.decode(&mut buf)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Decodes `input` split at every offset and checks all agree.
    fn decode_all_splits(input: &[u8]) -> Result<Vec<Message>, ErrorKind> {
        let whole = decode_split(input, input.len());
        for split in 0..input.len() {
            assert_eq!(decode_split(input, split), whole, "split at {split}");
        }
        whole
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        let input = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode_all_splits(&input), Ok(vec![Message::text("Hello")]));
    }

    #[test]
    fn rfc_5_7_fragmented_unmasked_hello_as_client() {
        let input = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        let mut d = Decoder::new(Role::Client, LIMITS, false);
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(Message::text("Hello"))));
        assert!(buf.is_empty());
    }

    #[test]
    fn rfc_5_7_unmasked_ping_is_rejected_by_a_server() {
        let input = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(decode_split(&input, 7), Err(ErrorKind::BadMasking));
    }

    #[test]
    fn rfc_5_7_masked_pong_and_large_binary() {
        let mut input = frame(0x8a, b"Hello");
        let big: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
        input.extend(frame(0x82, &big[..256]));
        input.extend(frame(0x82, &big));
        let msgs = decode_split(&input, input.len()).unwrap();
        assert_eq!(msgs[0], Message::Pong(Bytes::from_static(b"Hello")));
        assert_eq!(msgs[1], Message::binary(big[..256].to_vec()));
        assert_eq!(msgs[2], Message::binary(big.clone()));
    }

    #[test]
    fn fragments_with_interleaved_control_frames_at_every_split() {
        let mut input = frame(0x01, "fragmented ".as_bytes());
        input.extend(frame(0x89, b"ping"));
        input.extend(frame(0x00, "κόσ".as_bytes()));
        input.extend(frame(0x8a, b""));
        input.extend(frame(0x80, "με".as_bytes()));
        input.extend(frame(0x88, b"\x03\xe8done"));
        let msgs = decode_all_splits(&input).unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::Ping(Bytes::from_static(b"ping")),
                Message::Pong(Bytes::new()),
                Message::text("fragmented κόσμε"),
                Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done"))),
            ]
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_is_complete() {
        let input = frame(0x81, b"valid then \xff and more text that never matters");
        let mut d = server();
        // Header plus the first 12 payload bytes: the 0xff is the 12th.
        let mut buf = BytesMut::from(&input[..6 + 12]);
        assert_eq!(d.decode(&mut buf), Err(ErrorKind::InvalidUtf8));
        let mut d = server();
        let mut buf = BytesMut::from(&input[..6 + 11]);
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn invalid_utf8_fails_in_the_first_bad_fragment() {
        let mut input = frame(0x01, b"ok");
        input.extend(frame(0x00, b"\xed\xa0\x80"));
        let mut d = server();
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(d.decode(&mut buf), Err(ErrorKind::InvalidUtf8));
    }

    #[test]
    fn code_point_split_across_fragments_is_valid() {
        let euro = "€".as_bytes();
        let mut input = frame(0x01, &euro[..1]);
        input.extend(frame(0x00, &euro[1..2]));
        input.extend(frame(0x80, &euro[2..]));
        assert_eq!(decode_all_splits(&input), Ok(vec![Message::text("€")]));
    }

    #[test]
    fn unfinished_code_point_at_message_end_is_1007() {
        assert_eq!(
            decode_split(&frame(0x81, b"\xe2\x82"), 0),
            Err(ErrorKind::InvalidUtf8)
        );
    }

    #[test]
    fn protocol_violations_map_to_their_errors() {
        let cases: Vec<(Vec<u8>, ErrorKind)> = vec![
            (frame(0xc1, b"x"), ErrorKind::ReservedBits),
            (frame(0xa1, b"x"), ErrorKind::ReservedBits),
            (frame(0x91, b"x"), ErrorKind::ReservedBits),
            (vec![0x83, 0x80, 0, 0, 0, 0], ErrorKind::ReservedOpcode),
            (frame(0x09, b"x"), ErrorKind::BadControlFrame),
            (frame(0x89, &[0; 126]), ErrorKind::BadControlFrame),
            (frame(0x80, b"x"), ErrorKind::BadFragmentation),
            (
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                ErrorKind::BadFragmentation,
            ),
            (frame(0x88, b"\x03"), ErrorKind::BadClosePayload),
            (frame(0x88, b"\x03\xed"), ErrorKind::BadClosePayload),
            (frame(0x88, b"\x03\xe8\xff"), ErrorKind::InvalidUtf8),
            (frame(0x81, b"\xc0\xaf"), ErrorKind::InvalidUtf8),
        ];
        for (input, expected) in cases {
            assert_eq!(
                decode_split(&input, input.len()),
                Err(expected),
                "{input:x?}"
            );
        }
    }

    #[test]
    fn limits_are_checked_from_the_header_alone() {
        let mut d = Decoder::new(
            Role::Server,
            Limits {
                max_frame_size: 10,
                max_message_size: 15,
            },
            false,
        );
        // A header announcing 2^63 - 1 bytes, and no payload: rejected without allocating.
        let mut buf = BytesMut::from(
            &[
                0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
            ][..],
        );
        assert_eq!(d.decode(&mut buf), Err(ErrorKind::FrameTooLarge));

        let mut d = Decoder::new(
            Role::Server,
            Limits {
                max_frame_size: 10,
                max_message_size: 15,
            },
            false,
        );
        let mut input = frame(0x02, &[0; 10]);
        input.extend(frame(0x80, &[0; 6]));
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(d.decode(&mut buf), Err(ErrorKind::MessageTooLarge));
    }

    #[test]
    fn unmasked_frames_are_accepted_when_configured() {
        let mut d = Decoder::new(Role::Server, LIMITS, true);
        let mut buf = BytesMut::from(&[0x81, 0x02, b'h', b'i'][..]);
        assert_eq!(d.decode(&mut buf), Ok(Some(Message::text("hi"))));
    }

    #[test]
    fn wanted_reports_the_rest_of_the_frame() {
        let input = frame(0x82, &[7; 300]);
        let mut d = server();
        let mut buf = BytesMut::from(&input[..50]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.wanted(buf.len()), 300 - buf.len());
    }

    /// What a streaming reader sees: whole messages, and chunks as `(first, data, fin)`.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Whole(Message),
        Chunk(Option<bool>, Vec<u8>, bool),
    }

    /// Decodes `input` a `step` bytes at a time, streaming the first data message.
    fn stream_split(d: &mut Decoder, input: &[u8], step: usize) -> Result<Vec<Seen>, ErrorKind> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in input.chunks(step.max(1)) {
            buf.extend_from_slice(part);
            while let Some(decoded) = d.decode_streaming(&mut buf)? {
                out.push(match decoded {
                    Decoded::Message(m) => Seen::Whole(m),
                    Decoded::Chunk(c) => Seen::Chunk(c.first, c.data.to_vec(), c.fin),
                });
            }
        }
        Ok(out)
    }

    #[test]
    fn a_streamed_message_comes_out_frame_by_frame_with_control_frames_between() {
        let mut input = frame(0x01, "héllo ".as_bytes());
        input.extend(frame(0x89, b"ping"));
        input.extend(frame(0x00, b"wor"));
        input.extend(frame(0x80, b"ld"));
        input.extend(frame(0x82, b"after"));
        for step in [1, 3, input.len()] {
            let mut d = server();
            d.stream_next();
            let seen = stream_split(&mut d, &input, step).unwrap();
            assert_eq!(
                seen,
                [
                    Seen::Chunk(Some(true), "héllo ".as_bytes().to_vec(), false),
                    Seen::Whole(Message::Ping(Bytes::from_static(b"ping"))),
                    Seen::Chunk(None, b"wor".to_vec(), false),
                    Seen::Chunk(None, b"ld".to_vec(), true),
                    // Streaming was for one message: the next one comes out whole.
                    Seen::Whole(Message::Binary(Bytes::from_static(b"after"))),
                ],
                "step {step}"
            );
            assert!(!d.is_streaming());
        }
    }

    #[test]
    fn a_streamed_message_is_not_held_to_the_message_size_limit() {
        let limits = Limits {
            max_frame_size: 1000,
            max_message_size: 1500,
        };
        let mut input = frame(0x02, &[7; 1000]);
        for _ in 0..8 {
            input.extend(frame(0x00, &[7; 1000]));
        }
        input.extend(frame(0x80, &[7; 1000]));
        let mut d = Decoder::new(Role::Server, limits, false);
        d.stream_next();
        let seen = stream_split(&mut d, &input, 4096).unwrap();
        assert_eq!(seen.len(), 10);
        // Frames are still capped.
        let mut d = Decoder::new(Role::Server, limits, false);
        d.stream_next();
        let err = stream_split(&mut d, &frame(0x82, &[0; 1001]), 4096).unwrap_err();
        assert_eq!(err, ErrorKind::FrameTooLarge);
        // Not streamed, the same message is too large.
        let mut d = Decoder::new(Role::Server, limits, false);
        let mut buf = BytesMut::from(&input[..]);
        let err = std::iter::from_fn(|| d.decode(&mut buf).transpose()).find_map(Result::err);
        assert_eq!(err, Some(ErrorKind::MessageTooLarge));
    }

    #[test]
    fn invalid_utf8_fails_a_streamed_message_at_its_fragment() {
        let mut d = server();
        d.stream_next();
        let mut buf = BytesMut::from(&frame(0x01, b"fine")[..]);
        assert!(matches!(
            d.decode_streaming(&mut buf),
            Ok(Some(Decoded::Chunk(Chunk { fin: false, .. })))
        ));
        // RFC 6455 §8.1: fail as soon as the invalid byte is seen, before the message ends.
        buf.extend_from_slice(&frame(0x00, &[0xff]));
        assert_eq!(
            d.decode_streaming(&mut buf).unwrap_err(),
            ErrorKind::InvalidUtf8
        );
        // A sequence cut at the message's end is invalid too.
        let mut d = server();
        d.stream_next();
        let mut buf = BytesMut::from(&frame(0x81, &[0xc3])[..]);
        assert_eq!(
            d.decode_streaming(&mut buf).unwrap_err(),
            ErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn streaming_asked_mid_message_hands_out_what_was_assembled_first() {
        let mut d = server();
        let mut buf = BytesMut::from(&frame(0x02, b"abc")[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        d.stream_next();
        buf.extend_from_slice(&frame(0x80, b"def"));
        let seen = stream_split(&mut d, &[], 1).unwrap();
        assert!(seen.is_empty());
        match d.decode_streaming(&mut buf) {
            Ok(Some(Decoded::Chunk(c))) => {
                assert_eq!(
                    (c.first, &c.data[..], c.fin),
                    (Some(false), &b"abcdef"[..], true)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn a_streamed_compressed_message_is_inflated_in_bounded_chunks() {
        use crate::deflate::{Agreed, Deflater};
        let agreed = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            threshold: 0,
        };
        let text = "all work and no play makes jack a dull boy. ".repeat(20_000);
        let mut deflater = Deflater::new(&agreed, false);
        let mut d = server();
        d.set_inflater(Inflater::new(&agreed, false));
        for round in 0..2 {
            let compressed = deflater.compress(text.as_bytes());
            let pieces: Vec<&[u8]> = compressed.chunks(500).collect();
            let mut input = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
                let b0 = fin | if i == 0 { 0x41 } else { 0x00 };
                input.extend(frame(b0, piece));
            }
            d.stream_next();
            let seen = stream_split(&mut d, &input, 1000).unwrap();
            let mut whole = Vec::new();
            for (i, s) in seen.iter().enumerate() {
                let Seen::Chunk(first, data, fin) = s else {
                    panic!("{s:?}")
                };
                assert_eq!(*first, (i == 0).then_some(true));
                assert_eq!(*fin, i + 1 == seen.len());
                assert!(data.len() <= STREAM_CHUNK);
                whole.extend_from_slice(data);
            }
            assert!(
                whole == text.as_bytes(),
                "round {round}: {} bytes",
                whole.len()
            );
        }
    }
}
