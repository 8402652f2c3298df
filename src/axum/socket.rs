//! The socket: [`WebSocket`], a `Stream` and `Sink` of axum-shaped [`Message`]s over this
//! crate's socket.
//!
//! # Examples
//!
//! ```
//! use tower_ws::axum::{Message, WebSocket};
//!
//! async fn greet(mut socket: WebSocket) {
//!     let _ = socket.send(Message::text("hello")).await;
//! }
//! # let _ = greet;
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::axum::Error;
use futures_util::{Sink, Stream, stream::FusedStream};
use http::HeaderValue;

use super::message::Message;
use crate::upgrade::UpgradedWebSocket;

/// A WebSocket connection, as `axum::extract::ws::WebSocket`: a [`Stream`] of
/// `Result<Message, axum::Error>` and a [`Sink`] of [`Message`]s.
///
/// Pings are answered and close frames echoed by the connection itself, as long as the stream
/// is polled.
///
/// [`Stream`]: https://docs.rs/futures-util/0.3/futures_util/stream/trait.Stream.html
/// [`Sink`]: https://docs.rs/futures-util/0.3/futures_util/sink/trait.Sink.html
///
/// # Examples
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use tower_ws::axum::{Message, WebSocket};
///
/// async fn echo(socket: WebSocket) {
///     let (mut tx, mut rx) = socket.split();
///     while let Some(Ok(msg)) = rx.next().await {
///         if tx.send(msg).await.is_err() {
///             break;
///         }
///     }
/// }
/// # let _ = echo;
/// ```
pub struct WebSocket {
    inner: UpgradedWebSocket,
}

impl WebSocket {
    pub(super) fn new(inner: UpgradedWebSocket) -> Self {
        Self { inner }
    }

    #[cfg(feature = "hub")]
    pub(crate) fn inner_mut(&mut self) -> &mut UpgradedWebSocket {
        &mut self.inner
    }

    /// Receives another message; `None` once the connection has closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: no message is lost if the future is dropped before it completes.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.inner
            .recv()
            .await
            .map(|r| r.map(Message::from_core).map_err(Error::new))
    }

    /// Sends a message and flushes it.
    ///
    /// # Errors
    ///
    /// After the connection was closed, for a control frame over 125 bytes or a close code that
    /// may not be sent, and on IO errors.
    pub async fn send(&mut self, msg: Message) -> Result<(), Error> {
        self.inner.send(msg.into_core()).await.map_err(Error::new)
    }

    /// The selected subprotocol, if one was chosen.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.inner.protocol()
    }

    /// The socket of this crate underneath (its API has `close`, typed adapters, and more).
    pub fn into_inner(self) -> UpgradedWebSocket {
        self.inner
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("inner", &self.inner)
            .finish()
    }
}

impl FusedStream for WebSocket {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(Pin::new(&mut self.inner).poll_next(cx));
        Poll::Ready(item.map(|r| r.map(Message::from_core).map_err(Error::new)))
    }
}

impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.inner).poll_ready(cx).map_err(Error::new)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.inner)
            .start_send(item.into_core())
            .map_err(Error::new)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(Error::new)
    }

    /// Sends a close frame (code 1000, unless one was sent already) and flushes, as axum's
    /// does; the peer's reply, and anything it sends before it, still arrive on the stream.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_close_msg(cx, false).map_err(Error::new)
    }
}
