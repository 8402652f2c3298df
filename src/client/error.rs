//! [`ClientError`]: why a client could not open a WebSocket.

use std::fmt;

use bytes::Bytes;
use http::{Response, StatusCode};

/// Why [`connect`](super::connect) (or a [`ClientBuilder`](super::ClientBuilder)) failed.
///
/// # Examples
///
/// ```no_run
/// use tower_ws::client::{self, ClientError};
///
/// # async fn run() {
/// match client::connect("ws://127.0.0.1:9001/chat").await {
///     Ok((ws, _response)) => drop(ws),
///     Err(ClientError::Refused { status, body, .. }) => {
///         eprintln!("refused with {status}: {}", String::from_utf8_lossy(&body));
///     }
///     Err(e) => eprintln!("could not connect: {e}"),
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URI is not a `ws://` or `wss://` URI with a host (`wss://` needs the `rustls`
    /// feature, or a TLS stream of your own given to
    /// [`connect_on`](super::ClientBuilder::connect_on)).
    InvalidUri(String),
    /// A header the handshake sets itself (`Host`, `Connection`, `Upgrade`, the
    /// `Sec-WebSocket-*` ones) was given with [`header`](super::ClientBuilder::header), or a
    /// subprotocol is not a valid token.
    InvalidRequest(String),
    /// Connecting, or the connection during the handshake, failed.
    Io(std::io::Error),
    /// The TCP connection and the handshake took longer than the connect timeout.
    Timeout,
    /// The proxy refused the tunnel (its status line), closed it, or is not an `http://`
    /// proxy.
    Proxy(String),
    /// The TLS handshake failed (an untrusted or mismatched certificate, no common cipher
    /// suite), or the TLS configuration could not be built.
    Tls(String),
    /// The server's HTTP response could not be read (not HTTP, closed early).
    Http(String),
    /// The server answered with something other than `101 Switching Protocols`: its status,
    /// head and (up to 64 KiB of) body, for inspection.
    Refused {
        /// The response status.
        status: StatusCode,
        /// The whole response head.
        response: Box<Response<()>>,
        /// The response body, up to 64 KiB.
        body: Bytes,
    },
    /// A `101` that does not complete the handshake: `Upgrade`/`Connection` missing, or a
    /// `Sec-WebSocket-Accept` that does not match the key sent (RFC 6455 §4.2.2).
    BadAccept(String),
    /// The server selected a subprotocol that was not offered (RFC 6455 §4.1).
    ProtocolNotOffered(String),
    /// The server answered with an extension that was not offered, or permessage-deflate with
    /// parameters the offer does not allow (RFC 7692 §5, §7).
    BadExtension(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUri(why) => write!(f, "invalid WebSocket URI: {why}"),
            Self::InvalidRequest(why) => write!(f, "invalid handshake request: {why}"),
            Self::Io(e) => write!(f, "connection failed: {e}"),
            Self::Timeout => f.write_str("connect timed out"),
            Self::Tls(why) => write!(f, "TLS failed: {why}"),
            Self::Proxy(why) => write!(f, "proxy: {why}"),
            Self::Http(why) => write!(f, "bad HTTP response: {why}"),
            Self::Refused { status, .. } => write!(f, "the server refused the WebSocket: {status}"),
            Self::BadAccept(why) => write!(f, "the server did not complete the handshake: {why}"),
            Self::ProtocolNotOffered(p) => {
                write!(
                    f,
                    "the server selected subprotocol {p:?}, which was not offered"
                )
            }
            Self::BadExtension(why) => {
                write!(f, "the server's extensions cannot be accepted: {why}")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
