//! The two halves of [`WebSocket::split`](crate::WebSocket::split).
//!
//! Both halves share the connection behind a mutex that is held only inside a poll, never
//! across an await. Neither half can take the other's wake-up: the socket itself polls its
//! connection with a waker that wakes both the receiving and the sending task (which is also
//! what makes `futures_util::StreamExt::split` or an `Arc<Mutex<WebSocket>>` safe).
//!
//! # Examples
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use tower_ws::{Message, WebSocket};
//!
//! async fn fan_out(ws: WebSocket<tokio::io::DuplexStream>) -> Result<(), tower_ws::Error> {
//!     let (mut write, mut read) = ws.split();
//!     let writer = tokio::spawn(async move { write.send(Message::text("hi")).await });
//!     while let Some(msg) = read.next().await {
//!         println!("{:?}", msg?);
//!     }
//!     writer.await.expect("writer task")
//! }
//! # let _ = fan_out;
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::message::Message;
use crate::socket::WebSocket;

struct Shared<S> {
    ws: Mutex<WebSocket<S>>,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        // A panic while holding the lock can only come from the IO type itself; the socket's
        // state stays consistent between polls, so keep going with it.
        self.ws
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn split<S>(ws: WebSocket<S>) -> (WriteHalf<S>, ReadHalf<S>) {
    let shared = Arc::new(Shared { ws: Mutex::new(ws) });
    (
        WriteHalf {
            shared: shared.clone(),
        },
        ReadHalf { shared },
    )
}

/// The receiving half of a split [`WebSocket`]: a `Stream` of messages.
///
/// It keeps answering pings and close frames, as the whole socket does.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
///
/// async fn count(mut read: tower_ws::ReadHalf<tokio::io::DuplexStream>) -> usize {
///     let mut n = 0;
///     while let Some(Ok(_)) = read.next().await {
///         n += 1;
///     }
///     n
/// }
/// # let _ = count;
/// ```
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a split [`WebSocket`]: a `Sink` of messages.
///
/// Closing it sends a close frame and flushes; the peer's reply arrives on the read half.
///
/// # Examples
///
/// ```
/// use futures_util::SinkExt;
/// use tower_ws::Message;
///
/// async fn hello(mut write: tower_ws::WriteHalf<tokio::io::DuplexStream>) {
///     let _ = write.send(Message::text("hello")).await;
///     let _ = write.close().await;
/// }
/// # let _ = hello;
/// ```
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
}

impl<S> ReadHalf<S> {
    /// The socket, for one operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        self.shared.lock()
    }

    /// Whether `other` is the write half split from the same socket.
    pub fn is_pair_of(&self, other: &WriteHalf<S>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Puts the halves back together.
    ///
    /// # Errors
    ///
    /// Gives both halves back if they come from different sockets.
    pub fn reunite(self, other: WriteHalf<S>) -> Result<WebSocket<S>, (ReadHalf<S>, WriteHalf<S>)> {
        if !self.is_pair_of(&other) {
            return Err((self, other));
        }
        drop(other);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(shared
                .ws
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)),
            Err(_) => unreachable!("both halves were given back"),
        }
    }
}

impl<S> Stream for ReadHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared.lock().poll_next_msg(cx)
    }
}

impl<S> WriteHalf<S> {
    /// The socket, for one operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        self.shared.lock()
    }
}

impl<S> Sink<Message> for WriteHalf<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.lock().poll_ready_msg(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.shared.lock().start_send_msg(item, true)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.lock().poll_flush_msg(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.lock().poll_close_msg(cx, false)
    }
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}
