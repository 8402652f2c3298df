//! Typed messages: serde types carried as JSON in WebSocket messages (feature `json`).
//!
//! [`Typed`] wraps a [`WebSocket`](crate::WebSocket) (or a split half) into a `Stream` of
//! `Result<In, TypedError>` and a `Sink<Out>`. Each message is one JSON value, sent in a text
//! frame (or a binary one, see [`Typed::send_binary`]); both kinds are read. A message that does
//! not parse is an error the application can skip: the connection goes on.
//!
//! # Examples
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use serde::{Deserialize, Serialize};
//! use tower_ws::typed::Typed;
//!
//! #[derive(Deserialize)]
//! struct Ask { question: String }
//! #[derive(Serialize)]
//! struct Answer { answer: usize }
//!
//! async fn serve(ws: tower_ws::UpgradedWebSocket) {
//!     let mut ws = Typed::<_, Ask, Answer>::new(ws);
//!     while let Some(ask) = ws.next().await {
//!         match ask {
//!             Ok(ask) => {
//!                 if ws.send(Answer { answer: ask.question.len() }).await.is_err() {
//!                     break;
//!                 }
//!             }
//!             Err(e) if e.is_decode() => continue, // a bad message: skip it
//!             Err(_) => break,                      // the connection failed
//!         }
//!     }
//! }
//! # let _ = serve;
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream, stream::FusedStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::message::Message;

/// A WebSocket of serde types: a `Stream` of `Result<In, TypedError>` and a `Sink<Out>`.
///
/// Pings and pongs are skipped (the socket answers pings itself); after the peer's close frame
/// the stream ends.
///
/// # Examples
///
/// ```
/// use tower_ws::typed::Typed;
///
/// let (io, _peer) = tokio::io::duplex(1024);
/// let ws = tower_ws::WebSocket::from_raw(io, tower_ws::Role::Server, &Default::default());
/// let typed: Typed<_, serde_json::Value> = Typed::new(ws).send_binary(false);
/// # let _ = typed;
/// ```
pub struct Typed<T, In, Out = In> {
    inner: T,
    binary: bool,
    _types: PhantomData<fn(Out) -> In>,
}

impl<T, In, Out> Typed<T, In, Out> {
    /// Wraps `inner`; values are sent in text frames.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            binary: false,
            _types: PhantomData,
        }
    }

    /// Sends values in binary frames instead of text frames (JSON either way).
    #[must_use]
    pub fn send_binary(mut self, binary: bool) -> Self {
        self.binary = binary;
        self
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped socket, mutably (to send a close frame, for example).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The wrapped socket, unwrapped.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T, In, Out> Stream for Typed<T, In, Out>
where
    T: Stream<Item = Result<Message, Error>> + Unpin,
    In: DeserializeOwned,
{
    type Item = Result<In, TypedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let parsed = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => Err(TypedError::new(TypedErrorKind::Socket, e)),
                Some(Ok(Message::Text(text))) => serde_json::from_str(&text)
                    .map_err(|e| TypedError::new(TypedErrorKind::Decode, e)),
                Some(Ok(Message::Binary(data))) => serde_json::from_slice(&data)
                    .map_err(|e| TypedError::new(TypedErrorKind::Decode, e)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_))) => continue,
            };
            return Poll::Ready(Some(parsed));
        }
    }
}

impl<T, In, Out> FusedStream for Typed<T, In, Out>
where
    T: FusedStream<Item = Result<Message, Error>> + Unpin,
    In: DeserializeOwned,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<T, In, Out> Sink<Out> for Typed<T, In, Out>
where
    T: Sink<Message, Error = Error> + Unpin,
    Out: Serialize,
{
    type Error = TypedError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TypedError>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_ready(cx)
            .map_err(TypedError::socket)
    }

    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), TypedError> {
        let this = self.get_mut();
        let msg = if this.binary {
            Message::binary(serde_json::to_vec(&item).map_err(TypedError::encode)?)
        } else {
            Message::text(serde_json::to_string(&item).map_err(TypedError::encode)?)
        };
        Pin::new(&mut this.inner)
            .start_send(msg)
            .map_err(TypedError::socket)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TypedError>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_flush(cx)
            .map_err(TypedError::socket)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TypedError>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_close(cx)
            .map_err(TypedError::socket)
    }
}

impl<T: fmt::Debug, In, Out> fmt::Debug for Typed<T, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed")
            .field("inner", &self.inner)
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

/// An error of a [`Typed`] socket.
///
/// [`is_decode`](TypedError::is_decode) errors are about one message and can be skipped; socket
/// errors are terminal, as on the [`WebSocket`](crate::WebSocket).
///
/// # Examples
///
/// ```
/// use tower_ws::typed::{TypedError, TypedErrorKind};
///
/// fn skippable(e: &TypedError) -> bool {
///     e.kind() == TypedErrorKind::Decode
/// }
/// # let _ = skippable;
/// ```
pub struct TypedError {
    kind: TypedErrorKind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of [`TypedError`] it is.
///
/// # Examples
///
/// ```
/// assert_ne!(tower_ws::typed::TypedErrorKind::Decode, tower_ws::typed::TypedErrorKind::Socket);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TypedErrorKind {
    /// A received message was not the JSON of the expected type. The connection goes on.
    Decode,
    /// A value could not be serialized. Nothing was sent; the connection goes on.
    Encode,
    /// The WebSocket failed (see [`TypedError::into_socket_error`]). Terminal.
    Socket,
}

impl TypedError {
    fn new(
        kind: TypedErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    fn socket(e: Error) -> Self {
        Self::new(TypedErrorKind::Socket, e)
    }

    fn encode(e: serde_json::Error) -> Self {
        Self::new(TypedErrorKind::Encode, e)
    }

    /// What went wrong.
    pub fn kind(&self) -> TypedErrorKind {
        self.kind
    }

    /// Whether a received message did not parse (skip it and read on).
    pub fn is_decode(&self) -> bool {
        self.kind == TypedErrorKind::Decode
    }

    /// Whether the WebSocket itself failed.
    pub fn is_socket(&self) -> bool {
        self.kind == TypedErrorKind::Socket
    }

    /// The WebSocket's error, for [`TypedErrorKind::Socket`].
    pub fn into_socket_error(self) -> Option<Error> {
        self.source.downcast::<Error>().ok().map(|e| *e)
    }
}

impl fmt::Debug for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            TypedErrorKind::Decode => "message is not the JSON of the expected type",
            TypedErrorKind::Encode => "value could not be serialized to JSON",
            TypedErrorKind::Socket => "WebSocket failed",
        })
    }
}

impl std::error::Error for TypedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
