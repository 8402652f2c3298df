//! The error type of a WebSocket connection.
//!
//! # Examples
//!
//! ```
//! use tower_ws::{CloseCode, Error, ErrorKind};
//!
//! fn describe(err: &Error) -> String {
//!     match err.close_code() {
//!         Some(code) => format!("peer broke the protocol ({}): {err}", code.as_u16()),
//!         None => format!("connection failed: {err}"),
//!     }
//! }
//! # let _ = describe;
//! ```

use std::fmt;

use crate::message::CloseCode;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// An error on a WebSocket connection.
///
/// Errors are terminal: once a stream or sink returned one, the connection is finished (a close
/// frame with [`close_code`](Error::close_code) has been sent where the protocol asks for one).
/// A clean close is **not** an error: the stream yields [`Message::Close`](crate::Message::Close)
/// and then ends.
///
/// # Examples
///
/// ```
/// use tower_ws::{Error, ErrorKind};
///
/// let err = Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(err.kind(), ErrorKind::Io);
/// assert!(err.is_io());
/// assert!(err.close_code().is_none());
/// ```
pub struct Error {
    kind: ErrorKind,
    source: Option<Source>,
}

/// What went wrong, in a form to match on.
///
/// # Examples
///
/// ```
/// use tower_ws::{CloseCode, ErrorKind};
///
/// assert_eq!(ErrorKind::InvalidUtf8.close_code(), Some(CloseCode::INVALID_PAYLOAD));
/// assert_eq!(ErrorKind::MessageTooLarge.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading from or writing to the connection failed.
    Io,
    /// The peer sent a frame whose masking does not match its role (unmasked from a client,
    /// masked from a server).
    BadMasking,
    /// A reserved bit (RSV1-3) was set without an extension that defines it.
    ReservedBits,
    /// The frame used a reserved opcode.
    ReservedOpcode,
    /// A control frame was fragmented or carried more than 125 bytes.
    BadControlFrame,
    /// A continuation frame arrived with no message to continue, or a new data frame arrived
    /// while a fragmented message was unfinished.
    BadFragmentation,
    /// A close frame had a 1-byte payload or a code that may not be sent.
    BadClosePayload,
    /// A text message, or a close reason, was not valid UTF-8.
    InvalidUtf8,
    /// A frame was larger than the configured `max_frame_size`.
    FrameTooLarge,
    /// A message was larger than the configured `max_message_size`.
    MessageTooLarge,
    /// A compressed message could not be decompressed.
    BadCompression,
    /// The peer did not answer a keepalive ping in time.
    KeepaliveTimeout,
    /// The peer did not answer our close frame in time.
    CloseTimeout,
    /// The connection ended without a close handshake.
    ConnectionReset,
    /// The application tried to send after the connection was closed.
    Closed,
    /// The application tried to send something the protocol forbids (for example a control
    /// frame payload over 125 bytes, or a close code that may not be sent).
    InvalidMessage,
    /// The connection closed before the last fragment of a message being streamed in, or a
    /// message being streamed out was finished with an unfinished UTF-8 code point.
    IncompleteMessage,
}

impl ErrorKind {
    /// The close code this error sends to the peer, if it is a protocol violation by the peer.
    pub const fn close_code(self) -> Option<CloseCode> {
        match self {
            Self::BadMasking
            | Self::ReservedBits
            | Self::ReservedOpcode
            | Self::BadControlFrame
            | Self::BadFragmentation
            | Self::BadClosePayload => Some(CloseCode::PROTOCOL_ERROR),
            Self::InvalidUtf8 | Self::BadCompression => Some(CloseCode::INVALID_PAYLOAD),
            Self::FrameTooLarge | Self::MessageTooLarge => Some(CloseCode::MESSAGE_TOO_BIG),
            Self::KeepaliveTimeout => Some(CloseCode::POLICY_VIOLATION),
            Self::Io
            | Self::CloseTimeout
            | Self::ConnectionReset
            | Self::Closed
            | Self::InvalidMessage
            | Self::IncompleteMessage => None,
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Self::Io => "I/O error",
            Self::BadMasking => "frame masking does not match the peer's role",
            Self::ReservedBits => "reserved bits set without a negotiated extension",
            Self::ReservedOpcode => "reserved opcode",
            Self::BadControlFrame => "control frame fragmented or longer than 125 bytes",
            Self::BadFragmentation => "invalid message fragmentation",
            Self::BadClosePayload => "invalid close frame payload",
            Self::InvalidUtf8 => "invalid UTF-8 in a text message or close reason",
            Self::FrameTooLarge => "frame larger than max_frame_size",
            Self::MessageTooLarge => "message larger than max_message_size",
            Self::BadCompression => "compressed message could not be decompressed",
            Self::KeepaliveTimeout => "peer did not answer a keepalive ping in time",
            Self::CloseTimeout => "peer did not answer the close frame in time",
            Self::ConnectionReset => "connection closed without a close handshake",
            Self::Closed => "connection already closed",
            Self::IncompleteMessage => "message ended before its last fragment",
            Self::InvalidMessage => "message not allowed by the protocol",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    pub(crate) fn with_source(kind: ErrorKind, source: impl Into<Source>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// What kind of error this is.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The close code sent to the peer because of this error, if any.
    pub const fn close_code(&self) -> Option<CloseCode> {
        self.kind.close_code()
    }

    /// Whether reading or writing the underlying connection failed.
    pub const fn is_io(&self) -> bool {
        matches!(self.kind, ErrorKind::Io)
    }

    /// Whether the peer broke RFC 6455 (or RFC 7692), so the connection was failed with a close
    /// code.
    pub const fn is_protocol(&self) -> bool {
        self.kind.close_code().is_some() && !matches!(self.kind, ErrorKind::KeepaliveTimeout)
    }

    /// Whether a configured limit (frame or message size) was exceeded.
    pub const fn is_capacity(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::FrameTooLarge | ErrorKind::MessageTooLarge
        )
    }

    /// Whether the peer failed to answer in time (keepalive or close handshake).
    pub const fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::KeepaliveTimeout | ErrorKind::CloseTimeout
        )
    }

    /// Whether the application used a connection that was already closed.
    pub const fn is_closed(&self) -> bool {
        matches!(self.kind, ErrorKind::Closed)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::with_source(ErrorKind::Io, err)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 24);
    }

    #[test]
    fn display_says_this_level_only() {
        let err = Error::from(std::io::Error::other("boom"));
        assert_eq!(err.to_string(), "I/O error");
        assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "boom");
    }
}
