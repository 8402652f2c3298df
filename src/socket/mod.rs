//! [`WebSocket`]: a `Stream` of received messages and a `Sink` of messages to send, over any
//! `AsyncRead + AsyncWrite`.
//!
//! # Examples
//!
//! An echo loop that batches: messages fed without a flush are written together when the stream
//! next waits for the peer.
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use tower_ws::{Message, WebSocket};
//!
//! async fn echo<S>(mut ws: WebSocket<S>) -> Result<(), tower_ws::Error>
//! where
//!     S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
//! {
//!     while let Some(msg) = ws.next().await {
//!         match msg? {
//!             msg @ (Message::Text(_) | Message::Binary(_)) => ws.feed(msg).await?,
//!             _ => {} // pings are answered and closes echoed by the socket itself
//!         }
//!     }
//!     Ok(())
//! }
//! # let _ = echo::<tokio::io::DuplexStream>;
//! ```

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream, stream::FusedStream};
use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{Config, SocketConfig};
use crate::error::Error;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::handshake::Negotiated;
use crate::message::{CloseCode, CloseFrame, Message};
use crate::proto::{Decoded, OpCode, Role};

mod conn;
mod core;
mod mask_keys;
pub(crate) mod outbox;
mod read_pool;
pub(crate) mod split;
pub mod streaming;
mod timer;
mod wake;

use self::conn::{Conn, IoMut, IoRef, Parts};
use self::core::Core;
use wake::{Fanout, Side};

/// A WebSocket connection.
///
/// Receive with [`recv`](WebSocket::recv) or as a [`Stream`]; send with
/// [`send`](WebSocket::send) or as a [`Sink`]; or stream a message in or out without holding it
/// whole ([`recv_streaming`](WebSocket::recv_streaming),
/// [`send_streaming`](WebSocket::send_streaming)). The connection answers pings, echoes close
/// frames and fails the connection with the right close code on protocol violations by itself,
/// as long as the stream is polled.
///
/// Writes are buffered: [`feed`](futures_util::SinkExt::feed) queues a message, `flush` writes,
/// and polling the stream writes anything queued before it waits for the peer. A clean close
/// ends the stream with [`Message::Close`] followed by `None`.
///
/// # Examples
///
/// ```
/// use tower_ws::{Message, WebSocket};
///
/// async fn greet<S>(mut ws: WebSocket<S>) -> Result<(), tower_ws::Error>
/// where
///     S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
/// {
///     ws.send(Message::text("hello")).await?;
///     while let Some(msg) = ws.recv().await {
///         if let Message::Text(text) = msg? {
///             println!("got {text}");
///         }
///     }
///     Ok(())
/// }
/// # let _ = greet::<tokio::io::DuplexStream>;
/// ```
///
/// [`Stream`]: https://docs.rs/futures-core/0.3/futures_core/stream/trait.Stream.html
/// [`Sink`]: https://docs.rs/futures-sink/0.3/futures_sink/trait.Sink.html
pub struct WebSocket<S> {
    /// The IO and the engine: the socket's own, or shared with a hub's drain once attached.
    conn: Conn<S>,
    wake: Fanout,
    /// Boxed: most connections agree to no subprotocol and should not pay its size.
    protocol: Option<Box<HeaderValue>>,
}

impl<S> WebSocket<S> {
    /// Wraps a connection whose WebSocket handshake is already done.
    ///
    /// [`upgrade`](crate::upgrade()) does this for hyper servers; use it directly for other
    /// transports and in tests. After a handshake of your own with
    /// [`handshake::validate`](crate::handshake::validate), use
    /// [`from_accept`](WebSocket::from_accept) to keep the negotiated subprotocol and
    /// compression.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let (server_io, _client_io) = tokio::io::duplex(1024);
    /// let ws = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    /// assert!(ws.protocol().is_none());
    /// ```
    pub fn from_raw(io: S, role: Role, config: &Config) -> Self {
        Self::with_negotiated(io, role, config.socket(), Negotiated::default())
    }

    /// [`from_raw`](WebSocket::from_raw) for a connection some of whose WebSocket bytes were
    /// already read with the handshake: `read` holds what came after the handshake's end (a
    /// client that reads the `101` response in chunks may have read the server's first frames
    /// too). They are decoded before anything new is read from `io`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use tower_ws::{Config, Message, Role, WebSocket};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // A client read the 101 response and, in the same read, the server's first message.
    /// let response = b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi";
    /// let head_end = 4 + response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    /// let (io, _server) = tokio::io::duplex(1024);
    /// let mut ws = WebSocket::from_partially_read(io, &response[head_end..], Role::Client, &Config::default());
    /// assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
    /// # }
    /// ```
    pub fn from_partially_read(io: S, read: &[u8], role: Role, config: &Config) -> Self {
        let mut ws = Self::from_raw(io, role, config);
        if !read.is_empty() {
            let core = &mut ws.conn.lock().core;
            core.read.reserve(read.len(), usize::MAX);
            core.read.buf.extend_from_slice(read);
        }
        ws
    }

    pub(crate) fn with_negotiated(
        io: S,
        role: Role,
        cfg: SocketConfig,
        negotiated: Negotiated,
    ) -> Self {
        Self {
            conn: Conn::new(io, Core::new(role, cfg, &negotiated)),
            protocol: negotiated.protocol.map(Box::new),
            wake: Fanout::new(),
        }
    }

    /// Gives the socket the [`Outbox`](outbox::Outbox) `make` builds with the socket's
    /// [`Link`](outbox::Link), dropping any earlier one. The socket's connection is shared with
    /// the link's writer from now on. The seam's entry: only the hub attaches (without that
    /// feature nothing calls it).
    #[allow(dead_code)]
    pub(crate) fn attach_outbox<R>(
        &mut self,
        make: impl FnOnce(outbox::Link) -> (outbox::Attached, R),
    ) -> R
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let writer = self.conn.share(&self.wake);
        let (outbox, r) = make(outbox::Link {
            waker: self.wake.waker(),
            writer,
        });
        self.conn.lock().core.outbox = Some(outbox);
        r
    }

    /// Closes with 1001 when `watch` fires (see [`Shutdown`](crate::Shutdown)).
    pub(crate) fn watch_shutdown(&mut self, watch: crate::signal::Watch) {
        self.conn.lock().core.shutdown = Some(watch);
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.protocol.as_deref()
    }

    /// Bytes queued to be written and not yet taken by the connection: messages fed or sent,
    /// and the pongs and close frames the socket queued by itself (like the browser's
    /// `bufferedAmount`). It never passes `max_write_buffer_size` plus one message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let (io, _peer) = tokio::io::duplex(1024);
    /// let ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// assert_eq!(ws.buffered_amount(), 0);
    /// ```
    pub fn buffered_amount(&self) -> usize {
        self.conn.get().core.write.len()
    }

    /// The underlying connection.
    ///
    /// While the socket is attached to a [hub](crate::hub), its connection is shared with the
    /// hub's drain, and the returned guard holds the lock they share: use it and let it go (do
    /// not hold it across an `.await`).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let (io, _peer) = tokio::io::duplex(1024);
    /// let ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let io: &tokio::io::DuplexStream = &ws.get_ref();
    /// # let _ = io;
    /// ```
    pub fn get_ref(&self) -> impl std::ops::Deref<Target = S> + '_ {
        IoRef(self.conn.get())
    }

    /// The underlying connection, mutably. Reading or writing it directly corrupts the
    /// WebSocket stream. Attached to a hub, the guard holds a lock (see
    /// [`get_ref`](WebSocket::get_ref)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let (io, _peer) = tokio::io::duplex(1024);
    /// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let io: &mut tokio::io::DuplexStream = &mut ws.get_mut();
    /// # let _ = io;
    /// ```
    pub fn get_mut(&mut self) -> impl std::ops::DerefMut<Target = S> + '_ {
        IoMut(self.conn.lock())
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Receives the next message; `None` once the connection is closed.
    ///
    /// # Errors
    ///
    /// A protocol violation by the peer (after the matching close frame was sent), an IO
    /// failure, or a keepalive timeout. Errors are terminal.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: if it is dropped before completing, no message is lost.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_next_msg(cx)).await
    }

    /// Sends a message and flushes it (and everything queued before it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] after a close frame was sent or received,
    /// [`ErrorKind::InvalidMessage`] for a control payload over 125 bytes or a close code that
    /// may not be sent, or an IO error.
    ///
    /// # Cancel safety
    ///
    /// If cancelled after the message was queued, it is still written by the next flush, send
    /// or poll of the stream.
    pub async fn send(&mut self, msg: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_msg(cx)).await?;
        self.start_send_msg(msg, true)?;
        poll_fn(|cx| self.poll_flush_msg(cx)).await
    }

    /// Sends a message and flushes, without compressing it even when permessage-deflate was
    /// agreed (for data that is already compressed, such as images).
    ///
    /// # Errors
    ///
    /// As [`send`](WebSocket::send).
    ///
    /// # Cancel safety
    ///
    /// As [`send`](WebSocket::send).
    pub async fn send_uncompressed(&mut self, msg: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_msg(cx)).await?;
        self.start_send_msg(msg, false)?;
        poll_fn(|cx| self.poll_flush_msg(cx)).await
    }

    /// Starts the close handshake with `code` and `reason`, then waits (up to the configured
    /// `close_timeout`) for the peer's close frame; messages arriving meanwhile are dropped.
    /// The connection is shut down afterwards.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::CloseTimeout`] if the peer did not answer in time,
    /// [`ErrorKind::InvalidMessage`] for a code that may not be sent or a reason over 123 bytes,
    /// or an IO error. Everything queued before the close frame is written first.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{CloseCode, WebSocket};
    ///
    /// async fn bye(mut ws: WebSocket<tokio::io::DuplexStream>) -> Result<(), tower_ws::Error> {
    ///     ws.close(CloseCode::NORMAL, "done").await
    /// }
    /// # let _ = bye;
    /// ```
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.conn.get().core.state.is_open() {
            self.start_send_msg(Message::Close(Some(CloseFrame::new(code, reason))), true)?;
        }
        poll_fn(|cx| self.poll_close_msg(cx, true)).await
    }

    /// Splits the connection into a read half and a write half that can be used from two tasks.
    ///
    /// The read half still answers pings; neither half misses a wake-up when the other one
    /// waits on the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::{SinkExt, StreamExt};
    /// use tower_ws::{Message, WebSocket};
    ///
    /// async fn run(ws: WebSocket<tokio::io::DuplexStream>) {
    ///     let (mut tx, mut rx) = ws.split();
    ///     tokio::spawn(async move {
    ///         let _ = tx.send(Message::text("tick")).await;
    ///     });
    ///     while let Some(Ok(msg)) = rx.next().await {
    ///         println!("{msg:?}");
    ///     }
    /// }
    /// # let _ = run;
    /// ```
    pub fn split(self) -> (split::WriteHalf<S>, split::ReadHalf<S>) {
        split::split(self)
    }

    #[inline]
    pub(crate) fn poll_next_msg(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if let Some(msg) = self.conn.lock().core.next_buffered() {
            return Poll::Ready(Some(Ok(msg)));
        }
        self.poll_core(Side::Read, cx, Core::poll_next)
    }

    #[inline]
    pub(crate) fn poll_ready_msg(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.lock().core.has_room() {
            // The common case: no IO, so no waker to register.
            return Poll::Ready(Ok(()));
        }
        self.poll_core(Side::Write, cx, Core::poll_ready)
    }

    #[inline]
    pub(crate) fn start_send_msg(&mut self, msg: Message, compress: bool) -> Result<(), Error> {
        let mut parts = self.conn.lock();
        let core = &mut parts.core;
        core.start_send_with(msg, compress)?;
        if core.wake_both {
            // Our close was queued: a half waiting elsewhere must start watching its deadline.
            core.wake_both = false;
            self.wake.wake_all();
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn poll_flush_msg(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_core(Side::Write, cx, Core::poll_flush)
    }

    pub(crate) fn poll_close_msg(
        &mut self,
        cx: &mut Context<'_>,
        await_reply: bool,
    ) -> Poll<Result<(), Error>> {
        self.poll_core(Side::Write, cx, |core, io, cx| {
            core.poll_close(io, cx, await_reply)
        })
    }

    /// The next chunk of the message being streamed in, or a whole message around it.
    pub(crate) fn poll_next_piece(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Decoded, Error>>> {
        self.poll_core(Side::Read, cx, Core::poll_next_piece)
    }

    /// The next data message is to be streamed in.
    pub(crate) fn stream_next(&mut self) {
        self.conn.lock().core.decoder.stream_next();
    }

    /// The next data message comes whole again, unless its streaming has started.
    pub(crate) fn cancel_stream(&mut self) {
        self.conn.lock().core.decoder.cancel_stream();
    }

    /// Queues one fragment of a message being streamed out.
    pub(crate) fn send_fragment(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &Bytes,
        compress: bool,
    ) -> Result<(), Error> {
        self.conn
            .lock()
            .core
            .send_fragment(opcode, fin, payload, compress)
    }

    /// Whether a message streamed out with `compress` is compressed.
    pub(crate) fn compresses_fragments(&self, compress: bool) -> bool {
        self.conn.get().core.compresses_fragments(compress)
    }

    /// A message being streamed out was dropped unfinished: fail the connection (1011).
    pub(crate) fn abandon_fragmented(&mut self) {
        let mut parts = self.conn.lock();
        let core = &mut parts.core;
        core.abandon_fragmented();
        if core.wake_both {
            core.wake_both = false;
            self.wake.wake_all();
        }
    }

    /// Polls the core with the fan-out waker, on behalf of the task in `cx` (see [`wake`]).
    #[inline]
    fn poll_core<T>(
        &mut self,
        side: Side,
        cx: &Context<'_>,
        poll: impl FnOnce(&mut Core, &mut S, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut parts = self.conn.lock();
        let Parts { io, core } = &mut *parts;
        let wake = &self.wake;
        let queued = core.write.len();
        let closed = core.state.close_received();
        let result = wake.poll(side, cx, |cx| {
            let result = poll(core, io, cx);
            if core.wake_both {
                // `cx` wakes both halves.
                core.wake_both = false;
                cx.waker().wake_by_ref();
            }
            result
        });
        // Progress one side made for the other raises no IO event: the receiving side's poll
        // wrote queued messages out (a sender may wait for room or for its flush), or the
        // sending side's close read the peer's close (the receiver must see it).
        let wrote = matches!(side, Side::Read) && core.write.len() < queued;
        if wrote || core.state.close_received() != closed {
            wake.wake_other(side);
        }
        result
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_msg(cx)
    }
}

impl<S> FusedStream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn is_terminated(&self) -> bool {
        self.conn.get().core.state.is_ended()
    }
}

impl<S> Sink<Message> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    #[inline]
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_msg(cx)
    }

    #[inline]
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().start_send_msg(item, true)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_msg(cx)
    }

    /// Sends a close frame (code 1000, unless one was sent already), flushes, waits for the
    /// peer's close frame up to the close timeout, and shuts the connection down.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_close_msg(cx, true)
    }
}

impl<S> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = self.conn.get();
        let core = &parts.core;
        f.debug_struct("WebSocket")
            .field("role", &core.role)
            .field("protocol", &self.protocol)
            .field("buffered_read", &core.read.buf.len())
            .field("buffered_write", &core.write.len())
            .field("close_sent", &core.state.close_queued())
            .field("close_received", &core.state.close_received())
            .finish_non_exhaustive()
    }
}
