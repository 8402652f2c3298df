//! Messages as axum shapes them: [`Message`], [`Utf8Bytes`], [`CloseFrame`] and
//! [`CloseCode`] (a `u16`).
//!
//! # Examples
//!
//! ```
//! use tower_ws::axum::{CloseFrame, Message, close_code};
//!
//! let bye = Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "done".into() }));
//! assert_eq!(bye.to_text().unwrap(), "done");
//! ```

use std::fmt;

use ::axum::Error;
use bytes::Bytes;

// Not a wrapper: the crate's own type has the API of `axum::extract::ws::Utf8Bytes`.
pub use crate::message::Utf8Bytes;

/// Status code used to indicate why an endpoint is closing the WebSocket connection.
pub type CloseCode = u16;

/// The code and reason of a close frame, as `axum::extract::ws::CloseFrame`.
///
/// # Examples
///
/// ```
/// use tower_ws::axum::{CloseFrame, Message, close_code};
///
/// let bye = Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "done".into() }));
/// # let _ = bye;
/// ```
#[derive(Debug, Clone, Eq, PartialEq)]
pub struct CloseFrame {
    /// The reason as a code.
    pub code: CloseCode,
    /// The reason as text string.
    pub reason: Utf8Bytes,
}

/// A WebSocket message, as `axum::extract::ws::Message`.
///
/// It converts to and from this crate's [`tower_ws::Message`](crate::Message) with `From`,
/// both ways and without copying a payload (the only difference: a close code here is a
/// `u16`, as in axum).
///
/// `Debug` prints the kind and the payload's length, not the payload (axum's prints the
/// payload): messages carry tokens and personal data, and `{:?}` ends up in logs. Read the
/// contents with [`to_text`](Self::to_text) or [`into_data`](Self::into_data).
///
/// # Examples
///
/// ```
/// use tower_ws::axum::Message;
///
/// let msg = Message::Text("hello".into());
/// assert_eq!(msg.to_text().unwrap(), "hello");
/// assert_eq!(format!("{msg:?}"), "Text(5 bytes)");
/// assert_eq!(Message::binary(vec![1, 2]).into_data(), &[1u8, 2][..]);
///
/// let core: tower_ws::Message = msg.into();
/// assert_eq!(core.as_text(), Some("hello"));
/// ```
#[derive(Eq, PartialEq, Clone)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping, at most 125 bytes; the connection answers it by itself.
    Ping(Bytes),
    /// A pong, at most 125 bytes.
    Pong(Bytes),
    /// A close frame. Received: the connection answers it and the stream then ends. Sent: it
    /// starts the close handshake; sending anything after it is an error.
    Close(Option<CloseFrame>),
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Self::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
            Self::Ping(b) => write!(f, "Ping({} bytes)", b.len()),
            Self::Pong(b) => write!(f, "Pong({} bytes)", b.len()),
            Self::Close(frame) => f.debug_tuple("Close").field(frame).finish(),
        }
    }
}

impl Message {
    pub(super) fn from_core(msg: crate::Message) -> Self {
        match msg {
            crate::Message::Text(t) => Self::Text(t),
            crate::Message::Binary(b) => Self::Binary(b),
            crate::Message::Ping(b) => Self::Ping(b),
            crate::Message::Pong(b) => Self::Pong(b),
            crate::Message::Close(f) => Self::Close(f.map(|f| CloseFrame {
                code: f.code.as_u16(),
                reason: f.reason,
            })),
        }
    }

    pub(super) fn into_core(self) -> crate::Message {
        match self {
            Self::Text(t) => crate::Message::Text(t),
            Self::Binary(b) => crate::Message::Binary(b),
            Self::Ping(b) => crate::Message::Ping(b),
            Self::Pong(b) => crate::Message::Pong(b),
            Self::Close(f) => crate::Message::Close(
                f.map(|f| crate::CloseFrame::new(crate::CloseCode::from(f.code), f.reason)),
            ),
        }
    }

    /// The payload as bytes (a close frame's reason).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(None) => Bytes::new(),
            Self::Close(Some(frame)) => frame.reason.into(),
        }
    }

    /// The payload as text.
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not UTF-8.
    pub fn into_text(self) -> Result<Utf8Bytes, Error> {
        match self {
            Self::Text(text) => Ok(text),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => {
                Utf8Bytes::try_from(data).map_err(Error::new)
            }
            Self::Close(None) => Ok(Utf8Bytes::default()),
            Self::Close(Some(frame)) => Ok(frame.reason),
        }
    }

    /// The payload as `&str`.
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not UTF-8.
    pub fn to_text(&self) -> Result<&str, Error> {
        match self {
            Self::Text(text) => Ok(text.as_str()),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => {
                std::str::from_utf8(data).map_err(Error::new)
            }
            Self::Close(None) => Ok(""),
            Self::Close(Some(frame)) => Ok(&frame.reason),
        }
    }

    /// A text message.
    pub fn text<S>(string: S) -> Message
    where
        S: Into<Utf8Bytes>,
    {
        Message::Text(string.into())
    }

    /// A binary message.
    pub fn binary<B>(bin: B) -> Message
    where
        B: Into<Bytes>,
    {
        Message::Binary(bin.into())
    }
}

impl From<String> for Message {
    fn from(string: String) -> Self {
        Message::Text(string.into())
    }
}

impl<'s> From<&'s str> for Message {
    fn from(string: &'s str) -> Self {
        Message::Text(string.into())
    }
}

impl<'b> From<&'b [u8]> for Message {
    fn from(data: &'b [u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(data))
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data.into())
    }
}

impl From<Message> for Vec<u8> {
    fn from(msg: Message) -> Self {
        msg.into_data().to_vec()
    }
}

/// From this crate's [`tower_ws::Message`](crate::Message) to axum's shape (the close code
/// becomes a `u16`). No payload is copied.
///
/// rustdoc shows this and the conversion back both as `From<Message> for Message`: the two
/// types share a name, one in `tower_ws`, one in `tower_ws::axum`.
impl From<crate::Message> for Message {
    fn from(msg: crate::Message) -> Self {
        Self::from_core(msg)
    }
}

/// From axum's shape back to this crate's [`tower_ws::Message`](crate::Message) (the `u16`
/// close code becomes a [`tower_ws::CloseCode`](crate::CloseCode)). No payload is copied.
impl From<Message> for crate::Message {
    fn from(msg: Message) -> Self {
        msg.into_core()
    }
}
