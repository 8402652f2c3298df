//! Bytes in, messages out: the receive side of the protocol.

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{FrameHeader, OpCode};
use super::mask::{apply_mask, rotate_key};
use super::utf8::Utf8Validator;
use super::{Role, close};
#[cfg(feature = "deflate")]
use crate::deflate::Inflater;
use crate::error::ErrorKind;
use crate::message::{Message, Utf8Bytes};

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

/// A fragmented data message being assembled.
#[derive(Debug)]
struct Partial {
    data: BytesMut,
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
    utf8: Utf8Validator,
    /// The message in progress is compressed (RSV1 on its first frame).
    compressed: bool,
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
            compressed: false,
            #[cfg(feature = "deflate")]
            inflater: None,
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
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ErrorKind> {
        loop {
            let frame = match self.frame {
                Some(ref mut frame) => frame,
                None => {
                    let Some((header, header_len)) = FrameHeader::parse(buf)? else {
                        return Ok(None);
                    };
                    let frame = self.check_header(header)?;
                    buf.advance(header_len);
                    self.frame.insert(frame)
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
                return Ok(None);
            }

            let frame = *frame;
            self.frame = None;
            let payload = buf.split_to(frame.len).freeze();
            if let Some(message) = self.complete_frame(frame.header, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Applies every header rule before any payload is buffered.
    fn check_header(&mut self, h: FrameHeader) -> Result<FrameState, ErrorKind> {
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
        let len = usize::try_from(h.payload_len).unwrap_or(usize::MAX);
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
            if len.saturating_add(so_far) > self.limits.max_message_size {
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
        Ok(FrameState {
            header: h,
            len,
            processed: 0,
            text,
        })
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
        let before = out.len();
        // RFC 7692 §8.1 (and our limits): the inflated size counts, checked while inflating.
        inflater.inflate(payload, fin, out, self.limits.max_message_size)?;
        if self.in_text {
            self.utf8
                .feed(&out[before..])
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
            self.utf8.finish().map_err(|_| ErrorKind::InvalidUtf8)?;
            Ok(Some(Message::Text(Utf8Bytes::from_bytes_unchecked(data))))
        } else {
            Ok(Some(Message::Binary(data)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{CloseCode, CloseFrame};

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
}
