//! Messages: [`Message`], its UTF-8 guaranteed text payload [`Utf8Bytes`], and close frames.
//!
//! # Examples
//!
//! ```
//! use tower_ws::{CloseCode, CloseFrame, Message};
//!
//! let hello = Message::text("hello");
//! assert_eq!(hello.as_text(), Some("hello"));
//!
//! let bye = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done")));
//! assert!(bye.is_close());
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

/// A WebSocket message.
///
/// Fragmented messages arrive assembled. Ping, pong and close frames are answered by the
/// connection itself; they are still handed to the application so it can see them.
///
/// `Debug` prints the kind and the payload's length, never the payload, on purpose: messages
/// carry tokens and personal data, and `{:?}` ends up in logs. Read the contents with
/// [`as_text`](Self::as_text) or [`into_data`](Self::into_data). (A close frame prints its code
/// and reason, which are at most 123 bytes and meant for people to read.)
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tower_ws::Message;
///
/// let msg = Message::Binary(Bytes::from_static(&[1, 2, 3]));
/// assert_eq!(msg.len(), 3);
/// assert_eq!(format!("{msg:?}"), "Binary(3 bytes)");
/// assert_eq!(format!("{:?}", Message::text("password=hunter2")), "Text(16 bytes)");
/// assert_eq!(msg.into_data(), Bytes::from_static(&[1, 2, 3]));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message: always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the connection answers it with a pong by itself. At most 125 bytes.
    Ping(Bytes),
    /// A pong. At most 125 bytes.
    Pong(Bytes),
    /// A close frame, with a code and reason if the peer gave one.
    ///
    /// Received, it means the peer started or answered the close handshake; the stream ends
    /// after it. Sent, it starts the close handshake.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tower_ws::Message::text(String::from("hi"));
    /// assert!(msg.is_text());
    /// ```
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    ///
    /// # Examples
    ///
    /// ```
    /// let msg = tower_ws::Message::binary(vec![0u8, 1]);
    /// assert!(msg.is_binary());
    /// ```
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// Whether this is a text message.
    pub const fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message.
    pub const fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// Whether this is a ping.
    pub const fn is_ping(&self) -> bool {
        matches!(self, Self::Ping(_))
    }

    /// Whether this is a pong.
    pub const fn is_pong(&self) -> bool {
        matches!(self, Self::Pong(_))
    }

    /// Whether this is a close frame.
    pub const fn is_close(&self) -> bool {
        matches!(self, Self::Close(_))
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The payload's length in bytes (for a close frame: code and reason).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data.len(),
            Self::Close(None) => 0,
            Self::Close(Some(frame)) => 2 + frame.reason.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes (a close frame gives its reason).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(None) => Bytes::new(),
            Self::Close(Some(frame)) => frame.reason.into_bytes(),
        }
    }
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

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

/// Bytes that are guaranteed to be valid UTF-8: the payload of a text message.
///
/// Cheap to clone (the text lives in a [`Bytes`]) and dereferences to `str`. UTF-8 is checked
/// once, when the value is made; [`as_str`](Self::as_str), `Deref`, `Display` and `len` are then
/// O(1) and never look at the text again.
///
/// This is also `tower_ws::axum::Utf8Bytes`: the same constructors, conversions and comparisons
/// as `axum::extract::ws::Utf8Bytes` (axum 0.8), so code written for axum's compiles unchanged.
///
/// [`Bytes`]: https://docs.rs/bytes/1/bytes/struct.Bytes.html
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tower_ws::Utf8Bytes;
///
/// let text = Utf8Bytes::from("héllo");
/// assert_eq!(text.as_str(), "héllo");
/// assert!(text.starts_with("hé"));
/// assert_eq!(text, "héllo");
/// assert_eq!(text, String::from("héllo"));
///
/// let error = Utf8Bytes::try_from(Bytes::from_static(b"ok\xff")).unwrap_err();
/// assert_eq!(error.valid_up_to(), 2);
/// assert_eq!(Bytes::from(text), Bytes::from("héllo"));
/// ```
#[derive(Clone, Default)]
pub struct Utf8Bytes(ByteString);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    ///
    /// # Examples
    ///
    /// ```
    /// const HELLO: tower_ws::Utf8Bytes = tower_ws::Utf8Bytes::from_static("hello");
    /// assert_eq!(HELLO, "hello");
    /// ```
    #[must_use]
    pub const fn from_static(text: &'static str) -> Self {
        Self(ByteString::from_static(text))
    }

    /// The text. O(1): UTF-8 was checked when the value was made.
    ///
    /// # Examples
    ///
    /// ```
    /// let text = tower_ws::Utf8Bytes::from(String::from("hi"));
    /// assert_eq!(text.as_str(), "hi");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Text already known to be UTF-8, kept as it is.
    pub(crate) fn from_byte_string(text: ByteString) -> Self {
        Self(text)
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Unwraps the underlying bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    /// ```
    /// fn takes_str(_: &str) {}
    ///
    /// let text = tower_ws::Utf8Bytes::from_static("foo123");
    /// takes_str(&text);
    /// assert_eq!(text.len(), 6);
    /// ```
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    /// Takes the string's buffer, without copying.
    fn from(text: String) -> Self {
        Self(ByteString::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(ByteString::from(text))
    }
}

impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        text.as_str().into()
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.into_bytes()
    }
}

impl From<Utf8Bytes> for String {
    fn from(text: Utf8Bytes) -> Self {
        text.as_str().to_owned()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks the bytes once and keeps them, without copying.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        ByteString::try_from(bytes).map(Self)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks the bytes once and keeps the buffer, without copying.
    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        ByteString::try_from(bytes).map(Self)
    }
}

/// Compares with anything a `&str` compares with: `&str`, `String`, `&String`, `Cow<str>`, as
/// axum's `Utf8Bytes` does.
impl<T> PartialEq<T> for Utf8Bytes
where
    for<'a> &'a str: PartialEq<T>,
{
    /// ```
    /// let text = tower_ws::Utf8Bytes::from_static("foo123");
    /// assert_eq!(text, "foo123");
    /// assert_eq!(text, "foo123".to_string());
    /// assert_eq!(text, &"foo123".to_string());
    /// assert_eq!(text, std::borrow::Cow::Borrowed("foo123"));
    /// ```
    fn eq(&self, other: &T) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq for Utf8Bytes {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Utf8Bytes {}

impl PartialOrd for Utf8Bytes {
    fn partial_cmp(&self, other: &Utf8Bytes) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf8Bytes {
    fn cmp(&self, other: &Utf8Bytes) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Hashes as the `str` does, so a map keyed by `Utf8Bytes` can be looked up with a `&str`.
impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// A close code (RFC 6455 §7.4).
///
/// # Examples
///
/// ```
/// use tower_ws::CloseCode;
///
/// assert_eq!(CloseCode::NORMAL.as_u16(), 1000);
/// assert!(CloseCode::from(4000).is_sendable());
/// assert!(!CloseCode::from(1005).is_sendable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    pub const AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no code was given. Never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client needed an extension the server did not agree to.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a close frame on the wire (RFC 6455 §7.4.1 and the IANA
    /// registry): 1000-1003, 1007-1014, and 3000-4999.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl PartialEq<u16> for CloseCode {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The code and reason of a close frame.
///
/// # Examples
///
/// ```
/// use tower_ws::{CloseCode, CloseFrame};
///
/// let frame = CloseFrame { code: CloseCode::AWAY, reason: "restarting".into() };
/// assert_eq!(frame.reason, "restarting");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection is closing.
    pub code: CloseCode,
    /// A UTF-8 reason for people to read; with the code at most 125 bytes on the wire.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with a code and reason.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use bytestring::ByteString;

    use super::Utf8Bytes;

    #[test]
    fn utf8_bytes_holds_a_checked_string_so_as_str_does_not_rescan() {
        // The representation is a string type whose `Deref` is O(1): validity is a property of
        // the type, established once by the constructors, not re-checked by `as_str`.
        let text = Utf8Bytes::from("héllo");
        let Utf8Bytes(inner) = text.clone();
        let _: ByteString = inner;

        // A 1 MiB text read 100 000 times: 100 GB of scanning if each call re-validated.
        let big = Utf8Bytes::from("é".repeat(1 << 19));
        let first = big.as_str().as_ptr();
        let mut total = 0usize;
        for _ in 0..100_000 {
            let s: &str = &big;
            assert_eq!(s.as_ptr(), first);
            total += s.len();
        }
        assert_eq!(total, 100_000 << 20);
    }

    #[test]
    fn utf8_bytes_conversions_keep_the_buffer_and_check_once() {
        let bytes = Bytes::from("héllo".to_owned());
        let ptr = bytes.as_ptr();
        let text = Utf8Bytes::try_from(bytes).unwrap();
        assert_eq!(text.as_str().as_ptr(), ptr);
        assert_eq!(Bytes::from(text).as_ptr(), ptr);

        let err = Utf8Bytes::try_from(vec![b'a', 0xff]).unwrap_err();
        assert_eq!(err.valid_up_to(), 1);
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xc3")).is_err());
    }

    #[test]
    fn utf8_bytes_compares_orders_and_hashes_as_its_text() {
        let text = Utf8Bytes::from_static("key");
        assert_eq!(text, "key");
        assert_eq!(text, String::from("key"));
        assert_eq!(text, Utf8Bytes::from(String::from("key")));
        let (a, b) = (
            Utf8Bytes::from_static("a"),
            Utf8Bytes::from(String::from("b")),
        );
        assert!(a < b);
        let map = HashMap::from([(text.clone(), 1)]);
        assert_eq!(map.get("key"), Some(&1));
        assert_eq!(String::from(text), "key");
        assert_eq!(format!("{:?}", Utf8Bytes::from("a\"b")), r#""a\"b""#);
    }
}
