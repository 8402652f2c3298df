//! Messages out, bytes in the write queue: the send side of the protocol, the mirror of
//! [`Decoder`](super::Decoder).
//!
//! A message (or one fragment of one) goes through optional permessage-deflate (RFC 7692), gets
//! its header, is masked in the client role (RFC 6455 §5.3), and is appended to a [`WriteBuf`].
//! The encoder owns what that takes (the compressor, the source of masking keys) and makes no
//! IO, so its output is compared with byte vectors in the tests below.

use bytes::{Bytes, BytesMut};

use super::close;
use super::frame::{FrameHeader, OpCode};
#[cfg(feature = "deflate")]
use crate::deflate::Deflater;
use crate::error::ErrorKind;
use crate::message::{CloseFrame, Message};
use crate::write_buf::WriteBuf;

/// Where a client's masking keys come from (RFC 6455 §5.3: a fresh key for every frame, from a
/// strong source of entropy). The socket's source is the operating system's (see
/// `socket/mask_keys.rs`); tests pass fixed keys to get byte vectors they can compare.
pub(crate) trait MaskSource {
    /// The key for the next frame.
    fn next_key(&mut self) -> [u8; 4];
}

/// Turns outgoing messages into frames in a [`WriteBuf`].
///
/// `K` is the client's source of masking keys; a server's encoder holds none and never masks.
#[derive(Debug)]
pub(crate) struct Encoder<K> {
    /// Client role: the source of masking keys. Boxed: a server never has one.
    mask: Option<Box<K>>,
    /// permessage-deflate for outgoing messages, when agreed.
    /// Boxed: most connections never agree to compression and should not pay its size.
    #[cfg(feature = "deflate")]
    deflater: Option<Box<Deflater>>,
    /// A message sent in pieces is under way: its last fragment is not queued yet.
    mid_message: bool,
}

impl<K: MaskSource> Encoder<K> {
    /// An encoder that masks every frame with keys from `mask` (client role), or none (server
    /// role, `None`).
    pub(crate) fn new(mask: Option<K>) -> Self {
        Self {
            mask: mask.map(Box::new),
            #[cfg(feature = "deflate")]
            deflater: None,
            mid_message: false,
        }
    }

    /// Compresses data messages from here on (permessage-deflate was agreed).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_deflater(&mut self, deflater: Deflater) {
        self.deflater = Some(Box::new(deflater));
    }

    /// The compressor, when permessage-deflate was agreed.
    #[cfg(feature = "deflate")]
    pub(crate) fn deflater_mut(&mut self) -> Option<&mut Deflater> {
        self.deflater.as_deref_mut()
    }

    /// The compressor, when permessage-deflate was agreed.
    #[cfg(feature = "deflate")]
    pub(crate) fn deflater(&self) -> Option<&Deflater> {
        self.deflater.as_deref()
    }

    /// Whether a message sent in pieces is under way (a fragment without FIN was queued and
    /// its last one not yet): no other data frame may be queued until it ends (RFC 6455 §5.4).
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub(crate) fn mid_message(&self) -> bool {
        self.mid_message
    }

    /// Queues one message as one frame. Data messages are compressed when a compressor was
    /// agreed, `compress` is on and the message is large enough; returns whether it was.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidMessage`] for a control payload over 125 bytes, or a close frame
    /// with a code that may not be sent or a reason over 123 bytes. Nothing is queued then.
    #[inline]
    pub(crate) fn message(
        &mut self,
        msg: Message,
        compress: bool,
        out: &mut WriteBuf,
    ) -> Result<bool, ErrorKind> {
        match msg {
            Message::Text(text) => Ok(self.data(OpCode::Text, &text.into_bytes(), compress, out)),
            Message::Binary(data) => Ok(self.data(OpCode::Binary, &data, compress, out)),
            Message::Ping(data) => self.control(OpCode::Ping, &data, out).map(|()| false),
            Message::Pong(data) => self.control(OpCode::Pong, &data, out).map(|()| false),
            Message::Close(frame) => self.close(frame.as_ref(), out).map(|()| false),
        }
    }

    /// Queues a whole data message (`Text` or `Binary`) as one frame, compressed when a
    /// compressor was agreed, `compress` is on and the message is large enough; returns whether
    /// it was compressed.
    #[cfg_attr(not(feature = "deflate"), allow(unused_variables))]
    #[inline]
    pub(crate) fn data(
        &mut self,
        opcode: OpCode,
        payload: &Bytes,
        compress: bool,
        out: &mut WriteBuf,
    ) -> bool {
        debug_assert!(matches!(opcode, OpCode::Text | OpCode::Binary));
        #[cfg(feature = "deflate")]
        if let Some(deflater) = self
            .deflater
            .as_mut()
            .filter(|d| compress && d.wants(payload.len()))
        {
            let compressed = Bytes::from(deflater.compress(payload));
            // RFC 7692 §6: RSV1 on the first frame of a compressed message (here, its only one).
            self.frame(opcode, true, true, &compressed, out);
            return true;
        }
        self.frame(opcode, true, false, payload, out);
        false
    }

    /// Queues one fragment of a data message, uncompressed: `opcode` is `Text` or `Binary` for
    /// the first fragment and `Continuation` for the others; `fin` marks the last.
    pub(crate) fn fragment(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &Bytes,
        out: &mut WriteBuf,
    ) {
        debug_assert!(!opcode.is_control());
        self.mid_message = !fin;
        self.frame(opcode, fin, false, payload, out);
    }

    /// Queues one fragment of a compressed data message: all of the message's fragments are one
    /// DEFLATE stream, each flushed so the peer can inflate it as it comes, and RSV1 is set on
    /// the first only (RFC 7692 §6.1). `opcode` and `fin` as for [`fragment`](Self::fragment).
    /// Without an agreed compressor the fragment goes out uncompressed (the caller decides at
    /// the first fragment and keeps to it).
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed_fragment(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        out: &mut WriteBuf,
    ) {
        debug_assert!(!opcode.is_control());
        self.mid_message = !fin;
        let Some(deflater) = self.deflater.as_deref_mut() else {
            self.frame(opcode, fin, false, &Bytes::copy_from_slice(payload), out);
            return;
        };
        let compressed = Bytes::from(deflater.compress_fragment(payload, fin));
        let first = opcode != OpCode::Continuation;
        self.frame(opcode, fin, first, &compressed, out);
    }

    /// Queues a ping or pong.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidMessage`] for a payload over 125 bytes; nothing is queued then.
    #[inline]
    pub(crate) fn control(
        &mut self,
        opcode: OpCode,
        payload: &Bytes,
        out: &mut WriteBuf,
    ) -> Result<(), ErrorKind> {
        debug_assert!(opcode.is_control());
        // RFC 6455 §5.5: all control frames MUST have a payload length of 125 bytes or less.
        if payload.len() > 125 {
            return Err(ErrorKind::InvalidMessage);
        }
        self.frame(opcode, true, false, payload, out);
        Ok(())
    }

    /// Queues a close frame: the code and reason, or an empty payload for `None`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidMessage`] for a code that may not be sent or a reason over 123
    /// bytes; nothing is queued then.
    pub(crate) fn close(
        &mut self,
        frame: Option<&CloseFrame>,
        out: &mut WriteBuf,
    ) -> Result<(), ErrorKind> {
        let mut payload = BytesMut::new();
        // RFC 6455 §5.5.1, §7.4: the code must be one that may be sent; with the reason the
        // payload stays within a control frame's 125 bytes.
        close::encode(frame, &mut payload)?;
        self.frame(OpCode::Close, true, false, &payload.freeze(), out);
        Ok(())
    }

    /// Queues one frame: header, then the payload, masked with a fresh key in the client role.
    #[inline]
    fn frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: &Bytes,
        out: &mut WriteBuf,
    ) {
        let Some(keys) = self.mask.as_mut() else {
            if payload.len() <= 125 {
                // The common small frame: its two-byte header and payload in one reservation.
                let b0 = u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode.as_u8();
                out.push_small_frame(b0, payload);
            } else {
                out.push_header(header(opcode, fin, rsv1, None, payload).as_slice());
                out.push_payload(payload);
            }
            return;
        };
        // RFC 6455 §5.3: a client masks every frame, with a new key for each.
        let key = keys.next_key();
        out.push_header(header(opcode, fin, rsv1, Some(key), payload).as_slice());
        out.push_masked(payload, key);
    }
}

/// One whole unmasked (server) frame, header and payload in one buffer: what a message
/// prepared once for many connections is written as.
#[cfg(feature = "hub")]
pub(crate) fn server_frame(opcode: OpCode, rsv1: bool, payload: &[u8]) -> Bytes {
    let head = header(opcode, true, rsv1, None, payload);
    let mut frame = BytesMut::with_capacity(head.as_slice().len() + payload.len());
    frame.extend_from_slice(head.as_slice());
    frame.extend_from_slice(payload);
    frame.freeze()
}

#[inline]
fn header(
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> super::frame::HeaderBytes {
    FrameHeader {
        fin,
        rsv1,
        rsv23: false,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .encode()
}

/// Masking keys from a fixed list, in turn: for tests and fuzz targets that need to know the
/// bytes a client encoder writes.
#[derive(Debug, Clone)]
pub(crate) struct FixedKeys {
    keys: Vec<[u8; 4]>,
    next: usize,
}

impl FixedKeys {
    /// Hands out `keys` in turn, starting over after the last (a single zero key if empty).
    pub(crate) fn new(keys: Vec<[u8; 4]>) -> Self {
        let keys = if keys.is_empty() { vec![[0; 4]] } else { keys };
        Self { keys, next: 0 }
    }
}

impl MaskSource for FixedKeys {
    fn next_key(&mut self) -> [u8; 4] {
        let key = self.keys[self.next % self.keys.len()];
        self.next = (self.next + 1) % self.keys.len();
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::CloseCode;
    use crate::proto::{Decoder, Limits, Role};

    fn server() -> Encoder<FixedKeys> {
        Encoder::new(None)
    }

    fn client(key: [u8; 4]) -> Encoder<FixedKeys> {
        Encoder::new(Some(FixedKeys::new(vec![key])))
    }

    fn encode(enc: &mut Encoder<FixedKeys>, msg: Message) -> Result<Vec<u8>, ErrorKind> {
        let mut out = WriteBuf::default();
        enc.message(msg, true, &mut out)?;
        assert_eq!(out.len(), out.to_vec().len());
        Ok(out.to_vec())
    }

    #[test]
    fn rfc_5_7_unmasked_hello_from_a_server() {
        // RFC 6455 §5.7: a single-frame unmasked text message.
        let bytes = encode(&mut server(), Message::text("Hello")).unwrap();
        assert_eq!(bytes, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_5_7_masked_hello_from_a_client() {
        // RFC 6455 §5.7: a single-frame masked text message.
        let bytes = encode(
            &mut client([0x37, 0xfa, 0x21, 0x3d]),
            Message::text("Hello"),
        )
        .unwrap();
        assert_eq!(
            bytes,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn rfc_5_7_unmasked_ping_and_pong() {
        let bytes = encode(&mut server(), Message::Ping(Bytes::from_static(b"Hello"))).unwrap();
        assert_eq!(bytes, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let bytes = encode(&mut server(), Message::Pong(Bytes::from_static(b"Hello"))).unwrap();
        assert_eq!(bytes, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_5_7_length_forms_for_256_bytes_and_64_kib() {
        // RFC 6455 §5.7: 256 bytes take the 16-bit length, 64 KiB the 64-bit one.
        let bytes = encode(&mut server(), Message::binary(vec![7u8; 256])).unwrap();
        assert_eq!(bytes[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(bytes.len(), 4 + 256);
        let bytes = encode(&mut server(), Message::binary(vec![7u8; 65536])).unwrap();
        assert_eq!(
            bytes[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(bytes.len(), 10 + 65536);
    }

    #[test]
    fn rfc_5_7_fragmented_hello() {
        // RFC 6455 §5.7: a fragmented unmasked text message.
        let mut enc = server();
        let mut out = WriteBuf::default();
        enc.fragment(OpCode::Text, false, &Bytes::from_static(b"Hel"), &mut out);
        enc.fragment(
            OpCode::Continuation,
            true,
            &Bytes::from_static(b"lo"),
            &mut out,
        );
        assert_eq!(
            out.to_vec(),
            [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
    }

    #[test]
    fn a_client_masks_every_frame_with_a_fresh_key() {
        let mut enc = Encoder::new(Some(FixedKeys::new(vec![[1, 2, 3, 4], [5, 6, 7, 8]])));
        let mut out = WriteBuf::default();
        enc.message(Message::binary(vec![0u8; 2]), true, &mut out)
            .unwrap();
        enc.message(Message::binary(vec![0u8; 2]), true, &mut out)
            .unwrap();
        assert_eq!(
            out.to_vec(),
            [0x82, 0x82, 1, 2, 3, 4, 1, 2, 0x82, 0x82, 5, 6, 7, 8, 5, 6]
        );
    }

    #[test]
    fn a_control_payload_over_125_bytes_is_refused_and_nothing_is_queued() {
        // RFC 6455 §5.5: control frames have a payload of 125 bytes or less.
        let mut enc = server();
        let mut out = WriteBuf::default();
        for msg in [
            Message::Ping(Bytes::from(vec![0u8; 126])),
            Message::Pong(Bytes::from(vec![0u8; 126])),
        ] {
            assert_eq!(
                enc.message(msg, true, &mut out),
                Err(ErrorKind::InvalidMessage)
            );
        }
        assert!(out.is_empty());
        let bytes = encode(&mut enc, Message::Ping(Bytes::from(vec![0u8; 125]))).unwrap();
        assert_eq!(bytes[..2], [0x89, 125]);
    }

    #[test]
    fn close_frames_carry_code_and_reason_or_nothing() {
        let bytes = encode(
            &mut server(),
            Message::Close(Some(CloseFrame::new(CloseCode::AWAY, "bye"))),
        )
        .unwrap();
        assert_eq!(bytes, [0x88, 0x05, 0x03, 0xe9, b'b', b'y', b'e']);
        let bytes = encode(&mut server(), Message::Close(None)).unwrap();
        assert_eq!(bytes, [0x88, 0x00]);
    }

    #[test]
    fn close_frames_that_may_not_be_sent_are_refused() {
        // RFC 6455 §7.4.1: 1005 is never sent in a close frame.
        let mut out = WriteBuf::default();
        let bad = CloseFrame::new(CloseCode::NO_STATUS, "");
        assert_eq!(
            server().close(Some(&bad), &mut out),
            Err(ErrorKind::InvalidMessage)
        );
        let long = CloseFrame::new(CloseCode::NORMAL, "x".repeat(124));
        assert_eq!(
            server().close(Some(&long), &mut out),
            Err(ErrorKind::InvalidMessage)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn small_frames_after_large_ones_keep_their_order() {
        let mut enc = server();
        let mut out = WriteBuf::default();
        let big = Bytes::from(vec![1u8; 5000]);
        enc.message(Message::Binary(big.clone()), true, &mut out)
            .unwrap();
        enc.message(Message::text("x"), true, &mut out).unwrap();
        let bytes = out.to_vec();
        assert_eq!(bytes[..4], [0x82, 0x7e, 0x13, 0x88]);
        assert_eq!(bytes[4..5004], big[..]);
        assert_eq!(bytes[5004..], [0x81, 0x01, b'x']);
    }

    #[test]
    fn what_a_client_encodes_a_server_decodes() {
        let mut enc = client([0xde, 0xad, 0xbe, 0xef]);
        let mut dec = Decoder::new(
            Role::Server,
            Limits {
                max_frame_size: 1 << 20,
                max_message_size: 1 << 20,
            },
            false,
        );
        let msgs = [
            Message::text("héllo"),
            Message::binary(vec![9u8; 70000]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done"))),
        ];
        let mut out = WriteBuf::default();
        for msg in msgs.clone() {
            enc.message(msg, true, &mut out).unwrap();
        }
        let mut buf = BytesMut::from(&out.to_vec()[..]);
        for msg in msgs {
            assert_eq!(dec.decode(&mut buf), Ok(Some(msg)));
        }
        assert!(buf.is_empty());
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn compressed_messages_set_rsv1_and_small_or_opted_out_ones_do_not() {
        use crate::deflate::{Agreed, Inflater};

        let agreed = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            threshold: 64,
        };
        let mut enc = server();
        enc.set_deflater(Deflater::new(&agreed, true));
        let mut out = WriteBuf::default();
        let text = "a".repeat(1000);
        // RFC 7692 §6: RSV1 marks the first frame of a compressed message.
        assert!(enc.data(OpCode::Text, &Bytes::from(text.clone()), true, &mut out));
        let bytes = out.to_vec();
        assert_eq!(bytes[0], 0xc1);
        assert!(bytes.len() < 100);

        let mut dec = Decoder::new(
            Role::Client,
            Limits {
                max_frame_size: 1 << 20,
                max_message_size: 1 << 20,
            },
            false,
        );
        dec.set_inflater(Inflater::new(&agreed, true));
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(Message::text(text.clone()))));

        let mut out = WriteBuf::default();
        assert!(!enc.data(OpCode::Text, &Bytes::from(text), false, &mut out));
        assert_eq!(out.to_vec()[..4], [0x81, 0x7e, 0x03, 0xe8]);
        let mut out = WriteBuf::default();
        assert!(!enc.data(OpCode::Text, &Bytes::from_static(b"hi"), true, &mut out));
        assert_eq!(out.to_vec(), [0x81, 0x02, b'h', b'i']);
    }
}
