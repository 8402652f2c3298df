//! [`PreparedMessage`]: a message encoded once into its wire frame and shared by every
//! connection it is sent to.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "deflate")]
use std::sync::OnceLock;

use bytes::Bytes;

use crate::error::{Error, ErrorKind};
use crate::message::{Message, Utf8Bytes};
use crate::proto::OpCode;
use crate::proto::encoder::server_frame;
use crate::socket::outbox::{Encoding, Frames};

/// A text or binary message encoded once into its server frame, to be sent to many
/// connections.
///
/// A server's frames are not masked, so the same bytes serve every connection: queuing a
/// prepared message for N subscribers costs N reference-count increments, never a copy of
/// the payload or a second encoding. (A subscriber's socket copies a small frame, up to
/// 2 KiB, next to the others in its own write buffer so that a burst goes out in one
/// contiguous write; larger frames are written straight from the shared buffer.)
///
/// # Compression
///
/// With permessage-deflate the payload is compressed once per window size among the
/// receivers that negotiated `server_no_context_takeover`, on first use, and that one
/// compressed frame is shared by all of them. It refers to no earlier message, so every such
/// receiver inflates it correctly. A connection with context takeover cannot share it: its
/// own compressor's history would then differ from what its peer inflated (RFC 7692 §7.2.3),
/// so it compresses the message itself, with its own context (smaller output, but one
/// compression per connection). For fan-out, negotiate `server_no_context_takeover`: see
/// [`Hub::deflate_config`](super::Hub::deflate_config).
///
/// Cloning is a reference-count increment.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::PreparedMessage;
///
/// let msg = PreparedMessage::text("tick 42");
/// assert!(msg.is_text());
/// assert_eq!(msg.payload(), "tick 42".as_bytes());
/// let copy = msg.clone(); // shares the encoded frame
/// # drop(copy);
/// ```
#[derive(Clone)]
pub struct PreparedMessage(Arc<Inner>);

struct Inner {
    opcode: OpCode,
    payload: Bytes,
    /// A text message's payload as text (the same bytes).
    text: Option<Utf8Bytes>,
    /// The whole frame, uncompressed.
    frame: Bytes,
    /// The whole compressed frame, per server window size (9..=15 bits), made on first use.
    #[cfg(feature = "deflate")]
    compressed: [OnceLock<Bytes>; 7],
}

impl PreparedMessage {
    /// A text message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// let msg = PreparedMessage::text(String::from("hello"));
    /// assert_eq!(msg.len(), 5);
    /// ```
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        let text = text.into();
        Self::new(OpCode::Text, text.as_bytes(), Some(&text))
    }

    /// A binary message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// let msg = PreparedMessage::binary(vec![1, 2, 3]);
    /// assert!(!msg.is_text());
    /// ```
    pub fn binary(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self::new(OpCode::Binary, &data, None)
    }

    fn new(opcode: OpCode, payload: &[u8], text: Option<&Utf8Bytes>) -> Self {
        let frame = server_frame(opcode, false, payload);
        // The payload is read from the frame's tail, not kept: a received message's bytes are
        // a slice of its socket's read buffer, which can then be reused in place.
        let payload = frame.slice(frame.len() - payload.len()..);
        Self(Arc::new(Inner {
            opcode,
            text: text.cloned(),
            frame,
            payload,
            #[cfg(feature = "deflate")]
            compressed: Default::default(),
        }))
    }

    /// Whether this is a text message (else binary).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// assert!(PreparedMessage::text("a").is_text());
    /// ```
    pub fn is_text(&self) -> bool {
        self.0.opcode == OpCode::Text
    }

    /// The payload, uncompressed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// assert_eq!(&PreparedMessage::binary(vec![7])[..], &[7]);
    /// # let _ = PreparedMessage::binary(vec![7]).payload();
    /// ```
    pub fn payload(&self) -> &Bytes {
        &self.0.payload
    }

    /// The payload's length in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// assert_eq!(PreparedMessage::text("héllo").len(), 6);
    /// ```
    pub fn len(&self) -> usize {
        self.0.payload.len()
    }

    /// Whether the payload is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// assert!(PreparedMessage::text("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.payload.is_empty()
    }

    /// The message, as the socket would have received it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::Message;
    /// use tower_ws::hub::PreparedMessage;
    ///
    /// assert_eq!(PreparedMessage::text("hi").to_message(), Message::text("hi"));
    /// ```
    pub fn to_message(&self) -> Message {
        match &self.0.text {
            Some(text) => Message::Text(text.clone()),
            None => Message::Binary(self.0.payload.clone()),
        }
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.0.opcode
    }

    /// Queues the message on a socket, the way that socket sends it: the shared frame
    /// (compressed once for every socket that compresses without context), or encoded for the
    /// socket alone where its context (compression with takeover, a client's masking) needs it.
    pub(crate) fn write_to(&self, frames: &mut dyn Frames) {
        match frames.encoding(self.payload_len()) {
            Encoding::Shared => frames.push_frame(self.frame()),
            #[cfg(feature = "deflate")]
            Encoding::SharedCompressed { level, bits } => {
                frames.push_frame(self.compressed_frame(level, bits));
            }
            Encoding::Own { compress } => {
                frames.encode(self.opcode() == OpCode::Text, self.payload(), compress);
            }
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        self.0.payload.len()
    }

    /// The whole uncompressed frame.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.0.frame
    }

    /// The whole frame compressed without context for a `bits` window (RSV1 set), made by
    /// the first connection that needs it (at its `level`) and shared after that.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed_frame(&self, level: u32, bits: u8) -> &Bytes {
        let bits = bits.clamp(9, 15);
        self.0.compressed[usize::from(bits - 9)].get_or_init(|| {
            let payload = crate::deflate::compress_alone(level, bits, &self.0.payload);
            server_frame(self.0.opcode, true, &payload)
        })
    }
}

impl std::ops::Deref for PreparedMessage {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0.payload
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("text", &self.is_text())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl TryFrom<Message> for PreparedMessage {
    type Error = Error;

    /// A text or binary message; control messages (ping, pong, close) are refused with
    /// [`ErrorKind::InvalidMessage`]: they belong to one connection.
    fn try_from(msg: Message) -> Result<Self, Error> {
        match msg {
            Message::Text(text) => Ok(Self::text(text)),
            Message::Binary(data) => Ok(Self::binary(data)),
            _ => Err(ErrorKind::InvalidMessage.into()),
        }
    }
}

impl From<&PreparedMessage> for PreparedMessage {
    fn from(msg: &PreparedMessage) -> Self {
        msg.clone()
    }
}

impl From<&str> for PreparedMessage {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for PreparedMessage {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<Utf8Bytes> for PreparedMessage {
    fn from(text: Utf8Bytes) -> Self {
        Self::text(text)
    }
}

impl From<Bytes> for PreparedMessage {
    fn from(data: Bytes) -> Self {
        Self::binary(data)
    }
}

impl From<Vec<u8>> for PreparedMessage {
    fn from(data: Vec<u8>) -> Self {
        Self::binary(data)
    }
}
