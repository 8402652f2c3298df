//! Messages streamed in and out, fragment by fragment, without holding them whole.
//!
//! [`WebSocket::recv_streaming`] hands the next data message out as a [`MessageReader`]: its
//! payload arrives chunk by chunk (a `Stream` of [`Bytes`], or an `AsyncRead`) while pings are
//! still answered underneath, text is still checked for UTF-8 as it comes, and a compressed
//! message is inflated a bounded piece at a time. No size limit applies beyond what the reader
//! sets ([`MessageReader::limit`]); frames are still capped by `max_frame_size`.
//!
//! [`WebSocket::send_streaming`] starts a message and returns a [`MessageWriter`]: what is
//! written goes out as fragments of at most [`fragment_size`](MessageWriter::fragment_size)
//! bytes (compressed as one DEFLATE stream when permessage-deflate was agreed), and
//! [`finish`](MessageWriter::finish) (or `AsyncWrite::poll_shutdown`) ends the message.
//! Dropped unfinished, it fails the connection with close code 1011: a peer cannot tell half a
//! message from a stalled one.
//!
//! The halves of [`WebSocket::split`] do the same ([`ReadHalf::recv_streaming`],
//! [`WriteHalf::send_streaming`]), so a message can be relayed as it arrives.
//!
//! # Examples
//!
//! Echo every message fragment by fragment, never holding one whole:
//!
//! ```
//! use tower_ws::streaming::Incoming;
//! use tower_ws::{Error, WebSocket};
//!
//! async fn echo(ws: WebSocket<tokio::io::DuplexStream>) -> Result<(), Error> {
//!     let (mut tx, mut rx) = ws.split();
//!     while let Some(incoming) = rx.recv_streaming().await {
//!         match incoming? {
//!             Incoming::Data(mut reader) => {
//!                 let mut writer = tx.send_streaming(reader.kind());
//!                 while let Some(chunk) = reader.next_chunk().await {
//!                     writer.send_chunk(chunk?).await?;
//!                 }
//!                 writer.finish().await?;
//!             }
//!             Incoming::Message(_ping_pong_or_close) => {}
//!         }
//!     }
//!     Ok(())
//! }
//! # let _ = echo;
//! ```
//!
//! [`Bytes`]: https://docs.rs/bytes/1/bytes/struct.Bytes.html

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::WebSocket;
use super::split::{ReadHalf, WriteHalf};
use crate::error::{Error, ErrorKind};
use crate::message::Message;
use crate::proto::utf8::Utf8Validator;
use crate::proto::{Decoded, OpCode};

/// Whether a message is text or binary.
///
/// # Examples
///
/// ```
/// use tower_ws::streaming::MessageKind;
///
/// assert!(MessageKind::Text.is_text());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text (opcode 1).
    Text,
    /// Binary data (opcode 2).
    Binary,
}

impl MessageKind {
    /// Whether this is [`Text`](MessageKind::Text).
    pub const fn is_text(self) -> bool {
        matches!(self, Self::Text)
    }

    fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

/// What [`recv_streaming`](WebSocket::recv_streaming) received: the start of a data message
/// to read as it arrives, or a control message (ping, pong, close) whole.
pub enum Incoming<'a, T: ?Sized> {
    /// A data message, to read chunk by chunk.
    Data(MessageReader<'a, T>),
    /// A ping, a pong, or the peer's close (after which the stream ends).
    Message(Message),
}

impl<T: ?Sized> fmt::Debug for Incoming<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Data(reader) => f.debug_tuple("Data").field(reader).finish(),
            Self::Message(msg) => f.debug_tuple("Message").field(msg).finish(),
        }
    }
}

/// A socket or socket half that streams messages: [`WebSocket`], [`ReadHalf`] (in) and
/// [`WriteHalf`] (out). Sealed.
pub trait StreamingSocket: access::Access {}

impl<S> StreamingSocket for WebSocket<S> where S: AsyncRead + AsyncWrite + Unpin {}
impl<S> StreamingSocket for ReadHalf<S> where S: AsyncRead + AsyncWrite + Unpin {}
impl<S> StreamingSocket for WriteHalf<S> where S: AsyncRead + AsyncWrite + Unpin {}

// Sealed: the traits are public (so `StreamingSocket` can require them) but unnameable outside
// the crate, and their methods speak the engine's crate-private types.
#[allow(private_interfaces)]
mod access {
    use super::*;

    /// The connection operations streaming needs, on a socket or through a half's lock.
    pub trait Access {
        fn with<R>(&mut self, f: impl FnOnce(&mut dyn Ops) -> R) -> R;
    }

    /// Object-safe view of the socket for the streaming types.
    pub trait Ops {
        fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Decoded, Error>>>;
        fn stream_next(&mut self);
        fn cancel_stream(&mut self);
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
        fn send_fragment(
            &mut self,
            opcode: OpCode,
            fin: bool,
            payload: &Bytes,
            compress: bool,
        ) -> Result<(), Error>;
        fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
        fn compresses(&self, compress: bool) -> bool;
        fn abandon(&mut self);
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Ops for WebSocket<S> {
        fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Decoded, Error>>> {
            self.poll_next_piece(cx)
        }
        fn stream_next(&mut self) {
            WebSocket::stream_next(self);
        }
        fn cancel_stream(&mut self) {
            WebSocket::cancel_stream(self);
        }
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
            self.poll_ready_msg(cx)
        }
        fn send_fragment(
            &mut self,
            opcode: OpCode,
            fin: bool,
            payload: &Bytes,
            compress: bool,
        ) -> Result<(), Error> {
            WebSocket::send_fragment(self, opcode, fin, payload, compress)
        }
        fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
            self.poll_flush_msg(cx)
        }
        fn compresses(&self, compress: bool) -> bool {
            self.compresses_fragments(compress)
        }
        fn abandon(&mut self) {
            self.abandon_fragmented();
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Access for WebSocket<S> {
        fn with<R>(&mut self, f: impl FnOnce(&mut dyn Ops) -> R) -> R {
            f(self)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Access for ReadHalf<S> {
        fn with<R>(&mut self, f: impl FnOnce(&mut dyn Ops) -> R) -> R {
            f(&mut *self.lock())
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Access for WriteHalf<S> {
        fn with<R>(&mut self, f: impl FnOnce(&mut dyn Ops) -> R) -> R {
            f(&mut *self.lock())
        }
    }
}

/// Receives the next message, streaming it if it is a data message.
fn poll_incoming<T: StreamingSocket + ?Sized>(
    socket: &mut T,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<IncomingStart, Error>>> {
    socket.with(|ws| {
        ws.stream_next();
        loop {
            let piece = match ready!(ws.poll_piece(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(piece)) => piece,
            };
            match piece {
                Decoded::Message(msg) => {
                    // Not a data message: the stream is still asked for the next one.
                    return Poll::Ready(Some(Ok(IncomingStart::Message(msg))));
                }
                // The rest of a message an earlier reader left unfinished: dropped.
                Decoded::Chunk(chunk) if chunk.first.is_none() => {
                    if chunk.fin {
                        ws.stream_next();
                    }
                }
                Decoded::Chunk(chunk) => {
                    let kind = if chunk.first == Some(true) {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    return Poll::Ready(Some(Ok(IncomingStart::Data {
                        kind,
                        chunk: chunk.data,
                        fin: chunk.fin,
                    })));
                }
            }
        }
    })
}

enum IncomingStart {
    Data {
        kind: MessageKind,
        chunk: Bytes,
        fin: bool,
    },
    Message(Message),
}

/// Receives on any [`StreamingSocket`]; see [`WebSocket::recv_streaming`].
async fn recv_streaming<T: StreamingSocket + ?Sized>(
    socket: &mut T,
) -> Option<Result<Incoming<'_, T>, Error>> {
    let start = poll_fn(|cx| poll_incoming(socket, cx)).await;
    // A control message or the end: whole messages again until asked otherwise.
    match start {
        Some(Ok(IncomingStart::Data { kind, chunk, fin })) => {
            Some(Ok(Incoming::Data(MessageReader {
                received: chunk.len(),
                socket,
                kind,
                chunk,
                fin,
                limit: None,
            })))
        }
        Some(Ok(IncomingStart::Message(msg))) => {
            socket.with(|ws| ws.cancel_stream());
            Some(Ok(Incoming::Message(msg)))
        }
        Some(Err(e)) => Some(Err(e)),
        None => None,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Receives the next message, handing a data message out as it arrives: a
    /// [`MessageReader`] whose payload comes chunk by chunk, never held whole (see
    /// [`streaming`](crate::streaming)). Pings, pongs and the peer's close come whole as
    /// [`Incoming::Message`]; `None` once the connection is closed.
    ///
    /// # Errors
    ///
    /// As [`recv`](WebSocket::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if it is dropped before completing, no message is lost (the next
    /// `recv` gets it whole).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::streaming::Incoming;
    /// use tower_ws::WebSocket;
    ///
    /// async fn total_bytes(mut ws: WebSocket<tokio::io::DuplexStream>) -> usize {
    ///     let mut total = 0;
    ///     while let Some(Ok(incoming)) = ws.recv_streaming().await {
    ///         if let Incoming::Data(mut message) = incoming {
    ///             while let Some(Ok(chunk)) = message.next_chunk().await {
    ///                 total += chunk.len();
    ///             }
    ///         }
    ///     }
    ///     total
    /// }
    /// # let _ = total_bytes;
    /// ```
    pub async fn recv_streaming(&mut self) -> Option<Result<Incoming<'_, Self>, Error>> {
        recv_streaming(self).await
    }

    /// Starts a `kind` message to send in fragments; see [`MessageWriter`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::streaming::MessageKind;
    /// use tower_ws::WebSocket;
    ///
    /// async fn upload(ws: &mut WebSocket<tokio::io::DuplexStream>) -> Result<(), tower_ws::Error> {
    ///     let mut message = ws.send_streaming(MessageKind::Binary).fragment_size(1 << 20);
    ///     for part in 0..3u8 {
    ///         message.send_chunk(vec![part; 1000].into()).await?;
    ///     }
    ///     message.finish().await
    /// }
    /// # let _ = upload;
    /// ```
    pub fn send_streaming(&mut self, kind: MessageKind) -> MessageWriter<'_, Self> {
        MessageWriter::new(self, kind)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// [`WebSocket::recv_streaming`] on the read half.
    ///
    /// # Errors
    ///
    /// As [`WebSocket::recv`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`WebSocket::recv_streaming`].
    pub async fn recv_streaming(&mut self) -> Option<Result<Incoming<'_, Self>, Error>> {
        recv_streaming(self).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// [`WebSocket::send_streaming`] on the write half.
    pub fn send_streaming(&mut self, kind: MessageKind) -> MessageWriter<'_, Self> {
        MessageWriter::new(self, kind)
    }
}

/// A data message being received, chunk by chunk; from
/// [`recv_streaming`](WebSocket::recv_streaming).
///
/// Read it with [`next_chunk`](Self::next_chunk), as a `Stream` of [`Bytes`] chunks, or as an
/// `AsyncRead`. Each chunk is one frame's payload (a compressed message: at most 64 KiB of its
/// inflated data), text already checked for UTF-8 and cut only between code points (one split
/// between frames comes with the chunk that completes it). The message ends with `None` (end
/// of file for `AsyncRead`); dropped earlier, the rest of the message is skipped.
///
/// # Examples
///
/// ```
/// use tokio::io::AsyncReadExt;
/// use tower_ws::streaming::Incoming;
/// use tower_ws::WebSocket;
///
/// async fn first_kib(ws: &mut WebSocket<tokio::io::DuplexStream>) -> Option<Vec<u8>> {
///     let Incoming::Data(reader) = ws.recv_streaming().await?.ok()? else { return None };
///     let mut head = Vec::new();
///     reader.take(1024).read_to_end(&mut head).await.ok()?;
///     Some(head)
/// }
/// # let _ = first_kib;
/// ```
///
/// [`Bytes`]: https://docs.rs/bytes/1/bytes/struct.Bytes.html
pub struct MessageReader<'a, T: ?Sized> {
    socket: &'a mut T,
    kind: MessageKind,
    /// Received and not yet handed out.
    chunk: Bytes,
    /// The last chunk has arrived.
    fin: bool,
    limit: Option<usize>,
    /// Payload bytes received so far.
    received: usize,
}

impl<T: StreamingSocket + ?Sized> MessageReader<'_, T> {
    /// Whether the message is text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Fails the connection with close code 1009 (and [`ErrorKind::MessageTooLarge`]) once
    /// the message passes `max` bytes. Default: no limit beyond what the application reads.
    #[must_use]
    pub fn limit(mut self, max: usize) -> Self {
        self.limit = Some(max);
        self
    }

    /// The next chunk of the payload; `None` at the end of the message.
    ///
    /// # Errors
    ///
    /// A protocol violation or IO failure (as [`WebSocket::recv`]);
    /// [`ErrorKind::IncompleteMessage`] if the connection closed before the message's last
    /// fragment; [`ErrorKind::MessageTooLarge`] past the [`limit`](Self::limit).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: no chunk is lost.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if !self.chunk.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut self.chunk))));
        }
        while !self.fin {
            let piece = ready!(self.socket.with(|ws| ws.poll_piece(cx)));
            match piece {
                Some(Ok(Decoded::Chunk(chunk))) => {
                    self.fin = chunk.fin;
                    self.received += chunk.data.len();
                    if self.limit.is_some_and(|max| self.received > max) {
                        self.fin = true;
                        return Poll::Ready(Some(Err(ErrorKind::MessageTooLarge.into())));
                    }
                    if !chunk.data.is_empty() {
                        return Poll::Ready(Some(Ok(chunk.data)));
                    }
                }
                // Pings are answered underneath; a close ends the message unfinished.
                Some(Ok(Decoded::Message(Message::Close(_)))) | None => {
                    self.fin = true;
                    return Poll::Ready(Some(Err(ErrorKind::IncompleteMessage.into())));
                }
                Some(Ok(Decoded::Message(_))) => {}
                Some(Err(e)) => {
                    self.fin = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        Poll::Ready(None)
    }
}

impl<T: StreamingSocket + ?Sized> Stream for MessageReader<'_, T> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl<T: StreamingSocket + ?Sized> AsyncRead for MessageReader<'_, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.chunk.is_empty() {
            match ready!(this.poll_chunk(cx)) {
                Some(Ok(chunk)) => this.chunk = chunk,
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.chunk.len().min(buf.remaining());
        buf.put_slice(&this.chunk[..n]);
        this.chunk.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: ?Sized> fmt::Debug for MessageReader<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("kind", &self.kind)
            .field("received", &self.received)
            .field("finished", &(self.fin && self.chunk.is_empty()))
            .finish_non_exhaustive()
    }
}

/// A data message being sent in fragments; from
/// [`send_streaming`](WebSocket::send_streaming).
///
/// Write to it with [`send_chunk`](Self::send_chunk), as a `Sink` of [`Bytes`], or as an
/// `AsyncWrite`; end the message with [`finish`](Self::finish) (`Sink::poll_close`,
/// `AsyncWrite::poll_shutdown`). What is written is buffered up to
/// [`fragment_size`](Self::fragment_size) bytes and sent as one fragment; a flush sends what
/// is buffered. Control frames (pongs) may go out between fragments. Text must be UTF-8 as a
/// whole: bytes that cannot be are refused with [`ErrorKind::InvalidMessage`]. Dropped before
/// it is finished, the message cannot be completed and the connection is failed with close
/// code 1011.
///
/// # Examples
///
/// ```
/// use tokio::io::AsyncWriteExt;
/// use tower_ws::streaming::MessageKind;
/// use tower_ws::WebSocket;
///
/// // `R` may be a `tokio::fs::File`.
/// async fn send_file<R: tokio::io::AsyncRead + Unpin>(
///     ws: &mut WebSocket<tokio::io::DuplexStream>,
///     mut file: R,
/// ) -> std::io::Result<()> {
///     let mut message = ws.send_streaming(MessageKind::Binary);
///     tokio::io::copy(&mut file, &mut message).await?;
///     message.shutdown().await // ends the message
/// }
/// # let _ = send_file::<tokio::io::DuplexStream>;
/// ```
///
/// [`Bytes`]: https://docs.rs/bytes/1/bytes/struct.Bytes.html
pub struct MessageWriter<'a, T: StreamingSocket + ?Sized> {
    socket: &'a mut T,
    kind: MessageKind,
    /// The next fragment is the first.
    first: bool,
    finished: bool,
    compress: bool,
    fragment_size: usize,
    /// Written and not yet sent as a fragment.
    buf: BytesMut,
    /// Text: the UTF-8 check across fragments.
    utf8: Option<Utf8Validator>,
}

/// The default [`MessageWriter::fragment_size`].
const DEFAULT_FRAGMENT: usize = 64 << 10;

impl<'a, T: StreamingSocket + ?Sized> MessageWriter<'a, T> {
    fn new(socket: &'a mut T, kind: MessageKind) -> Self {
        let compress = socket.with(|ws| ws.compresses(true));
        Self {
            socket,
            kind,
            first: true,
            finished: false,
            compress,
            fragment_size: DEFAULT_FRAGMENT,
            buf: BytesMut::new(),
            utf8: kind.is_text().then(Utf8Validator::default),
        }
    }

    /// The largest fragment sent, in bytes (at least 1). Default: 64 KiB.
    #[must_use]
    pub fn fragment_size(mut self, size: usize) -> Self {
        self.fragment_size = size.max(1);
        self
    }

    /// Sends the message uncompressed even if permessage-deflate was agreed (call before
    /// anything is written).
    #[must_use]
    pub fn uncompressed(mut self) -> Self {
        if self.first {
            self.compress = false;
        }
        self
    }

    /// Sends `chunk` as part of the message: buffered up to the fragment size, then sent.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] once a close went either way; [`ErrorKind::InvalidMessage`] for
    /// text that cannot be UTF-8; an IO failure.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if it is dropped before completing, part of `chunk` may have been
    /// sent.
    pub async fn send_chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        let mut rest = chunk;
        while !rest.is_empty() {
            poll_fn(|cx| self.poll_ready(cx)).await?;
            let n = self.accept(&rest)?;
            rest.advance(n);
        }
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Ends the message: sends what is buffered as its last fragment and flushes.
    ///
    /// # Errors
    ///
    /// As [`send_chunk`](Self::send_chunk); [`ErrorKind::IncompleteMessage`] for text that
    /// ends inside a UTF-8 code point.
    pub async fn finish(mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_finish(cx)).await
    }

    /// Room for the next fragment: writes out while the socket's queue is full.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.finished {
            return Poll::Ready(Err(ErrorKind::Closed.into()));
        }
        if self.buf.len() < self.fragment_size {
            return Poll::Ready(Ok(()));
        }
        ready!(self.socket.with(|ws| ws.poll_ready(cx)))?;
        self.send_buffered(false)?;
        Poll::Ready(Ok(()))
    }

    /// Takes as much of `data` as the buffer has room for (after [`poll_ready`]).
    fn accept(&mut self, data: &[u8]) -> Result<usize, Error> {
        let n = data.len().min(self.fragment_size - self.buf.len());
        if let Some(validator) = self.utf8.as_mut() {
            validator
                .feed(&data[..n])
                .map_err(|_| Error::new(ErrorKind::InvalidMessage))?;
        }
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Sends the buffer as one fragment (`fin`: the last).
    fn send_buffered(&mut self, fin: bool) -> Result<(), Error> {
        if self.buf.is_empty() && !fin {
            return Ok(());
        }
        let opcode = if self.first {
            self.kind.opcode()
        } else {
            OpCode::Continuation
        };
        let payload = self.buf.split().freeze();
        let compress = self.compress;
        self.socket
            .with(|ws| ws.send_fragment(opcode, fin, &payload, compress))?;
        self.first = false;
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.finished && !self.buf.is_empty() {
            ready!(self.socket.with(|ws| ws.poll_ready(cx)))?;
            self.send_buffered(false)?;
        }
        self.socket.with(|ws| ws.poll_flush(cx))
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.finished {
            ready!(self.socket.with(|ws| ws.poll_ready(cx)))?;
            if self.utf8.as_mut().is_some_and(|v| v.finish().is_err()) {
                return Poll::Ready(Err(ErrorKind::IncompleteMessage.into()));
            }
            self.send_buffered(true)?;
            self.finished = true;
        }
        self.socket.with(|ws| ws.poll_flush(cx))
    }
}

impl<T: StreamingSocket + ?Sized> Drop for MessageWriter<'_, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.socket.with(|ws| ws.abandon());
        }
    }
}

impl<T: StreamingSocket + ?Sized> Sink<Bytes> for MessageWriter<'_, T> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        let this = self.get_mut();
        // The whole item is taken: it may pass the fragment size by one item.
        if let Some(validator) = this.utf8.as_mut() {
            validator
                .feed(&item)
                .map_err(|_| Error::new(ErrorKind::InvalidMessage))?;
        }
        this.buf.extend_from_slice(&item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_finish(cx)
    }
}

impl<T: StreamingSocket + ?Sized> AsyncWrite for MessageWriter<'_, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx)).map_err(io::Error::other)?;
        Poll::Ready(this.accept(data).map_err(io::Error::other))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_finish(cx).map_err(io::Error::other)
    }
}

impl<T: StreamingSocket + ?Sized> fmt::Debug for MessageWriter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageWriter")
            .field("kind", &self.kind)
            .field("fragment_size", &self.fragment_size)
            .field("buffered", &self.buf.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
