//! [`Config`]: limits, buffers, timeouts, keepalive and handshake policy for a connection.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tower_ws::{Config, OriginPolicy};
//!
//! let config = Config::default()
//!     .max_message_size(Some(1 << 20))
//!     .ping_interval(Some(Duration::from_secs(30)))
//!     .origin(OriginPolicy::allow(["https://example.com"]))
//!     .protocols(["chat.v2", "chat.v1"]);
//! assert_eq!(config.max_message_size, Some(1 << 20));
//! ```

use std::time::Duration;

use crate::handshake::OriginPolicy;

/// Settings for the handshake and the connection.
///
/// Every limit is on by default. Fields are public to read and to set; the by-value setters of the
/// same names make a chain.
///
/// # Close codes the socket sends on its own
///
/// | When | Code | Then |
/// |------|------|------|
/// | the peer closes | the peer's code (none if it sent none) | the stream yields the peer's `Close`, then `None` |
/// | a protocol violation by the peer | 1002, 1007 (bad UTF-8, bad compressed data) or 1009 (over `max_frame_size` / `max_message_size`) | the stream yields the error |
/// | no frame within `pong_timeout` of a keepalive ping | 1008 | the stream yields [`ErrorKind::KeepaliveTimeout`](crate::ErrorKind) |
/// | a graceful [`Shutdown`](crate::Shutdown) | 1001 | the close handshake runs as usual |
/// | the peer does not answer our close within `close_timeout` | none more | the connection is shut down; [`ErrorKind::CloseTimeout`](crate::ErrorKind) |
///
/// The reason of these frames is empty.
///
/// # Examples
///
/// ```
/// let config = tower_ws::Config::default().max_frame_size(Some(64 * 1024));
/// assert_eq!(config.max_frame_size, Some(65536));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted; a larger frame fails the connection with close code
    /// 1009 before any of it is buffered. Default: 16 MiB. `None` disables the check.
    pub max_frame_size: Option<usize>,
    /// The largest message accepted (all fragments together); a larger one fails the
    /// connection with close code 1009, and no more than this is ever buffered.
    /// Default: 64 MiB. `None` disables the check.
    pub max_message_size: Option<usize>,
    /// How much the read buffer asks for at a time, in bytes (a frame whose header is read
    /// gets room for the rest of it, up to 1 MiB at a time). A connection holds a read buffer
    /// only while bytes are buffered: waiting for the peer, it lends the buffer to a per-thread
    /// pool (at most 16 buffers and 8 MiB per thread; a buffer over 4 MiB, grown for a large
    /// message, is freed instead), and takes one back at the next read. Larger values mean
    /// fewer read calls for bulk traffic. Default: 16 KiB.
    pub read_buffer_size: usize,
    /// Bytes buffered by `feed` before the connection starts writing them out on its own.
    /// Messages fed without a flush are batched into as few write calls as possible. Also the
    /// most the socket's own replies (pongs) take the queue to: a peer that sends pings without
    /// reading gets a pong for the most recent one, not one per ping (RFC 6455 §5.5.3).
    /// Default: 128 KiB.
    pub write_buffer_size: usize,
    /// The write high-water mark: while this many bytes wait to be written, `poll_ready`
    /// returns `Pending` (backpressure), and while they do not drain the stream stops reading
    /// too, so a peer that sends without reading is pushed back by TCP. Default: 1 MiB; at
    /// least `write_buffer_size` is used.
    pub max_write_buffer_size: usize,
    /// How long the peer has to answer our close frame, from the moment it is queued by any
    /// path ([`WebSocket::close`](crate::WebSocket::close), a sent [`Message::Close`](crate::Message),
    /// a sink's `close`, a protocol violation, a graceful shutdown). Whichever half is polled
    /// then ends with [`ErrorKind::CloseTimeout`](crate::ErrorKind) and the connection is shut
    /// down; keepalive pings stop with the close. Default: 10 s.
    pub close_timeout: Duration,
    /// Send a ping after this long without any frame from the peer. Default: `None` (no
    /// keepalive pings).
    pub ping_interval: Option<Duration>,
    /// With `ping_interval` set: how long to wait for any frame after a keepalive ping before
    /// the connection is failed with [`ErrorKind::KeepaliveTimeout`](crate::ErrorKind): the
    /// socket sends close code 1008 (policy violation) with an empty reason, as far as the
    /// silent peer's connection still takes it, and the stream ends with that error.
    /// Default: 20 s.
    pub pong_timeout: Duration,
    /// Accept unmasked frames from clients (RFC 6455 forbids them). Default: `false`.
    pub accept_unmasked_frames: bool,
    /// Which `Origin` headers the server accepts. Default:
    /// [`OriginPolicy::SameOrigin`].
    pub origin: OriginPolicy,
    /// The subprotocols the server speaks, most preferred first. The first one the client also
    /// offers is selected. Default: none.
    pub protocols: Vec<String>,
    /// Refuse a client that offers none of [`protocols`](Config#structfield.protocols) with
    /// `400 Bad Request`, whose body lists the ones the server speaks (for apps whose
    /// versioned protocols have no sensible default). Default: `false` (such a client is
    /// accepted with no subprotocol, as RFC 6455 §4.2.2 allows).
    pub require_protocol: bool,
    /// permessage-deflate (RFC 7692) policy; `None` declines every compression offer.
    /// Default: `None`. Compression costs CPU and, with context takeover, memory per
    /// connection; see [`DeflateConfig`](crate::DeflateConfig).
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub deflate: Option<crate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: Some(16 << 20),
            max_message_size: Some(64 << 20),
            read_buffer_size: 16 << 10,
            write_buffer_size: 128 << 10,
            max_write_buffer_size: 1 << 20,
            close_timeout: Duration::from_secs(10),
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
            accept_unmasked_frames: false,
            origin: OriginPolicy::SameOrigin,
            protocols: Vec::new(),
            require_protocol: false,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, $name: $ty) -> Self {
                self.$name = $name;
                self
            }
        )*
    };
}

impl Config {
    setters! {
        /// Sets [`max_frame_size`](Config#structfield.max_frame_size).
        max_frame_size: Option<usize>;
        /// Sets [`max_message_size`](Config#structfield.max_message_size).
        max_message_size: Option<usize>;
        /// Sets [`read_buffer_size`](Config#structfield.read_buffer_size).
        read_buffer_size: usize;
        /// Sets [`write_buffer_size`](Config#structfield.write_buffer_size).
        write_buffer_size: usize;
        /// Sets [`max_write_buffer_size`](Config#structfield.max_write_buffer_size).
        max_write_buffer_size: usize;
        /// Sets [`close_timeout`](Config#structfield.close_timeout).
        close_timeout: Duration;
        /// Sets [`ping_interval`](Config#structfield.ping_interval).
        ping_interval: Option<Duration>;
        /// Sets [`pong_timeout`](Config#structfield.pong_timeout).
        pong_timeout: Duration;
        /// Sets [`accept_unmasked_frames`](Config#structfield.accept_unmasked_frames).
        accept_unmasked_frames: bool;
        /// Sets [`origin`](Config#structfield.origin).
        origin: OriginPolicy;
    }

    /// Sets [`require_protocol`](Config#structfield.require_protocol).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, handshake};
    ///
    /// let config = Config::default().protocols(["todo.v2", "todo.v1"]).require_protocol(true);
    /// let req = http::Request::get("/")
    ///     .header("host", "example.com")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "websocket")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-protocol", "todo.v0")
    ///     .body(())
    ///     .unwrap();
    /// let refused = handshake::validate(&req, &config).unwrap_err();
    /// assert_eq!(refused.status(), 400);
    /// assert_eq!(refused.detail(), Some("this endpoint speaks todo.v2, todo.v1"));
    /// ```
    #[must_use]
    pub fn require_protocol(mut self, require: bool) -> Self {
        self.require_protocol = require;
        self
    }

    /// Sets [`deflate`](Config#structfield.deflate).
    ///
    /// # Examples
    ///
    /// ```
    /// let config = tower_ws::Config::default().deflate(Some(Default::default()));
    /// assert!(config.deflate.is_some());
    /// ```
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    #[must_use]
    pub fn deflate(mut self, deflate: Option<crate::DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// Sets [`protocols`](Config#structfield.protocols), most preferred first.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = tower_ws::Config::default().protocols(["graphql-transport-ws"]);
    /// assert_eq!(config.protocols, ["graphql-transport-ws"]);
    /// ```
    #[must_use]
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The part of the configuration a running connection needs.
    pub(crate) fn socket(&self) -> SocketConfig {
        SocketConfig {
            max_frame_size: self.max_frame_size.unwrap_or(usize::MAX),
            max_message_size: self.max_message_size.unwrap_or(usize::MAX),
            read_buffer_size: self.read_buffer_size.max(256),
            write_buffer_size: self.write_buffer_size,
            max_write_buffer_size: self.max_write_buffer_size.max(self.write_buffer_size),
            close_timeout: self.close_timeout,
            ping_interval: self.ping_interval,
            pong_timeout: self.pong_timeout,
            accept_unmasked_frames: self.accept_unmasked_frames,
        }
    }
}

/// The settings a connection keeps after the handshake: small and `Copy`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketConfig {
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) max_write_buffer_size: usize,
    pub(crate) close_timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) accept_unmasked_frames: bool,
}
