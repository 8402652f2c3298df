//! Entry points for fuzz targets; not part of the API.
//!
//! The cargo-fuzz targets in `fuzz/` reach crate-private machinery through these thin
//! wrappers: the frame decoder with a chosen role, limits and inflater, the frame encoder with
//! fixed masking keys and a chosen deflater, extension negotiation,
//! the permessage-deflate compressor and decompressor, and a [`WebSocket`](crate::WebSocket)
//! with compression already agreed. Nothing here is stable or meant for applications.
#![doc(hidden)]

use bytes::BytesMut;

use crate::error::ErrorKind;
use crate::message::Message;
use crate::proto::encoder::FixedKeys;
use crate::proto::{Decoder, Encoder, Limits, OpCode, Role};
use crate::write_buf::WriteBuf;

/// The receive side of the protocol: bytes in, messages out (the crate's frame decoder).
#[derive(Debug)]
pub struct FrameDecoder {
    inner: Decoder,
}

impl FrameDecoder {
    /// A decoder for the end `role`, enforcing `max_frame_size` and `max_message_size`;
    /// `accept_unmasked` lets a server take unmasked frames.
    pub fn new(
        role: Role,
        max_frame_size: usize,
        max_message_size: usize,
        accept_unmasked: bool,
    ) -> Self {
        let limits = Limits {
            max_frame_size,
            max_message_size,
        };
        Self {
            inner: Decoder::new(role, limits, accept_unmasked),
        }
    }

    /// Accepts compressed messages from here on, as after permessage-deflate was agreed.
    #[cfg(feature = "deflate")]
    pub fn set_inflater(&mut self, inflater: Inflater) {
        self.inner.set_inflater(inflater.inner);
    }

    /// Decodes the next message from `buf`; `Ok(None)` when more bytes are needed (call again
    /// with the same buffer once more are appended). Errors are terminal.
    ///
    /// # Errors
    ///
    /// The protocol violation found in the input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ErrorKind> {
        self.inner.decode(buf)
    }

    /// How many more bytes the decoder needs before it can make progress (at least 1).
    pub fn wanted(&self, buffered: usize) -> usize {
        self.inner.wanted(buffered)
    }
}

/// The send side of the protocol: messages in, frame bytes out (the crate's frame encoder).
#[derive(Debug)]
pub struct FrameEncoder {
    inner: Encoder<FixedKeys>,
    out: WriteBuf,
}

impl FrameEncoder {
    /// An encoder for a server (`mask` empty: frames go out unmasked) or a client that masks
    /// with the keys in `mask`, in turn.
    pub fn new(mask: Option<Vec<[u8; 4]>>) -> Self {
        Self {
            inner: Encoder::new(mask.map(FixedKeys::new)),
            out: WriteBuf::default(),
        }
    }

    /// Compresses data messages from here on, as after permessage-deflate was agreed.
    #[cfg(feature = "deflate")]
    pub fn set_deflater(&mut self, deflater: Deflater) {
        self.inner.set_deflater(deflater.inner);
    }

    /// Queues `msg` as one frame (compressed when a deflater is set, `compress` is on and the
    /// message is large enough); returns whether it was compressed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidMessage`] for a message that may not be sent (a control payload
    /// over 125 bytes, a close code that may not be sent).
    pub fn encode(&mut self, msg: Message, compress: bool) -> Result<bool, ErrorKind> {
        self.inner.message(msg, compress, &mut self.out)
    }

    /// Queues one uncompressed fragment of a data message: the first (`text` or binary) when
    /// `first`, a continuation otherwise; `fin` marks the last.
    pub fn fragment(&mut self, first: bool, text: bool, fin: bool, payload: &bytes::Bytes) {
        let opcode = match (first, text) {
            (false, _) => OpCode::Continuation,
            (true, true) => OpCode::Text,
            (true, false) => OpCode::Binary,
        };
        self.inner.fragment(opcode, fin, payload, &mut self.out);
    }

    /// The bytes queued so far (they stay queued).
    pub fn bytes(&self) -> Vec<u8> {
        self.out.to_vec()
    }

    /// How many bytes are queued.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

#[cfg(feature = "deflate")]
pub use self::deflate::{Deflater, Inflater, SyntaxError, negotiate, websocket_with_deflate};
/// The permessage-deflate parameters both sides agreed to.
#[cfg(feature = "deflate")]
pub use crate::deflate::negotiate::Agreed;

#[cfg(feature = "deflate")]
mod deflate {
    use http::HeaderValue;

    use super::Agreed;
    use crate::config::Config;
    use crate::deflate::DeflateConfig;
    use crate::error::ErrorKind;
    use crate::handshake::Negotiated;
    use crate::proto::Role;
    use crate::socket::WebSocket;

    /// The `Sec-WebSocket-Extensions` fields do not follow the extension-list grammar.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SyntaxError;

    /// The handshake's permessage-deflate negotiation: the first acceptable offer among
    /// `fields` under `policy`, with the response header value; `Ok(None)` if none is.
    ///
    /// # Errors
    ///
    /// The fields do not follow the extension-list grammar.
    pub fn negotiate(
        fields: &[HeaderValue],
        policy: &DeflateConfig,
    ) -> Result<Option<(Agreed, HeaderValue)>, SyntaxError> {
        crate::deflate::negotiate(fields.iter(), policy).map_err(|_| SyntaxError)
    }

    /// The receiving side's decompressor.
    #[derive(Debug)]
    pub struct Inflater {
        pub(super) inner: crate::deflate::Inflater,
    }

    impl Inflater {
        /// The decompressor for messages sent by the server (`from_server`) or the client.
        pub fn new(agreed: &Agreed, from_server: bool) -> Self {
            Self {
                inner: crate::deflate::Inflater::new(agreed, from_server),
            }
        }

        /// Inflates one frame's payload into `out`, appending; `fin` ends the message. Never
        /// lets `out` grow past `limit` bytes.
        ///
        /// # Errors
        ///
        /// [`ErrorKind::MessageTooLarge`] past `limit`, [`ErrorKind::BadCompression`] for data
        /// that is not valid deflate.
        pub fn inflate(
            &mut self,
            input: &[u8],
            fin: bool,
            out: &mut Vec<u8>,
            limit: usize,
        ) -> Result<(), ErrorKind> {
            self.inner.inflate(input, fin, out, limit)
        }

        /// Gives idle state back to the per-thread pool (between messages only).
        pub fn release(&mut self) -> bool {
            self.inner.release()
        }

        /// Whether a decompressor is held.
        pub fn holds_state(&self) -> bool {
            self.inner.holds_state()
        }
    }

    /// The sending side's compressor.
    #[derive(Debug)]
    pub struct Deflater {
        pub(super) inner: crate::deflate::Deflater,
    }

    impl Deflater {
        /// The compressor of the server (`server`) or the client.
        pub fn new(agreed: &Agreed, server: bool) -> Self {
            Self {
                inner: crate::deflate::Deflater::new(agreed, server),
            }
        }

        /// Compresses one whole message (RFC 7692 §7.2.1).
        pub fn compress(&mut self, input: &[u8]) -> Vec<u8> {
            self.inner.compress(input)
        }

        /// Whether a message of `len` bytes is worth compressing.
        pub fn wants(&self, len: usize) -> bool {
            self.inner.wants(len)
        }

        /// Gives idle state back to the per-thread pool.
        pub fn release(&mut self) -> bool {
            self.inner.release()
        }

        /// Whether a compressor is held.
        pub fn holds_state(&self) -> bool {
            self.inner.holds_state()
        }
    }

    /// A [`WebSocket`] over `io` whose handshake agreed to `deflate` (or to no compression),
    /// as [`WebSocket::from_raw`] builds one without it.
    pub fn websocket_with_deflate<S>(
        io: S,
        role: Role,
        config: &Config,
        deflate: Option<Agreed>,
    ) -> WebSocket<S> {
        let negotiated = Negotiated {
            protocol: None,
            deflate,
        };
        WebSocket::with_negotiated(io, role, config.socket(), negotiated)
    }
}
