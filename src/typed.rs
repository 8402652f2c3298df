//! Typed messages: serde types carried as JSON in WebSocket messages (feature `json`).
//!
//! [`Typed`] wraps a socket into a `Stream` of `Result<In, TypedError>` and a `Sink<Out>`. Each
//! message is one JSON value, sent in a text frame (or a binary one, see
//! [`Typed::send_binary`]); both kinds are read. A message that does not parse is an error the
//! application can skip, or answer: the error keeps serde's reason and the message as received
//! ([`TypedError::text`]), and the connection goes on.
//!
//! It wraps any of:
//!
//! - this crate's [`WebSocket`](crate::WebSocket) (and so [`UpgradedWebSocket`](crate::UpgradedWebSocket)),
//!   or its halves [`ReadHalf`](crate::ReadHalf) and [`WriteHalf`](crate::WriteHalf);
//! - `tower_ws::axum::WebSocket` (feature `axum`);
//! - the halves of [`StreamExt::split`] over either;
//! - `&mut` any of these.
//!
//! The read side takes any [`Stream`] of `Result<M, E>` whose messages convert into
//! [`Message`]; the write side any [`Sink`] that says which message type it takes
//! ([`MessageSink`]).
//!
//! [`Stream`]: https://docs.rs/futures-util/0.3/futures_util/stream/trait.Stream.html
//! [`Sink`]: https://docs.rs/futures-util/0.3/futures_util/sink/trait.Sink.html
//! [`StreamExt::split`]: https://docs.rs/futures-util/0.3/futures_util/stream/trait.StreamExt.html#method.split
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
//!
//! With axum, wrap the extractor's socket, or its halves:
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # mod with_axum {
//! use axum::response::Response;
//! use futures_util::{SinkExt, StreamExt};
//! use serde::{Deserialize, Serialize};
//! use tower_ws::axum::{WebSocket, WebSocketUpgrade};
//! use tower_ws::typed::Typed;
//!
//! #[derive(Deserialize)]
//! struct Request { id: u64, question: String }
//! #[derive(Serialize)]
//! struct Reply { id: Option<u64>, answer: Result<usize, String> }
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(answer)
//! }
//!
//! async fn answer(socket: WebSocket) {
//!     let (tx, rx) = socket.split();
//!     let mut requests = Typed::<_, Request>::new(rx);
//!     let mut replies = Typed::<_, (), Reply>::new(tx);
//!     while let Some(request) = requests.next().await {
//!         let reply = match request {
//!             Ok(r) => Reply { id: Some(r.id), answer: Ok(r.question.len()) },
//!             // A message that did not parse: answer with its id, if it has one.
//!             Err(e) if e.is_decode() => Reply {
//!                 id: e.text().and_then(|text| {
//!                     serde_json::from_str::<serde_json::Value>(text).ok()?["id"].as_u64()
//!                 }),
//!                 answer: Err(e.json_error().map(ToString::to_string).unwrap_or_default()),
//!             },
//!             Err(_) => break,
//!         };
//!         if replies.send(reply).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//! # pub fn app() -> axum::Router { axum::Router::new().route("/ws", axum::routing::any(handler)) }
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::stream::{FusedStream, SplitSink};
use futures_util::{Sink, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::message::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A WebSocket of serde types: a `Stream` of `Result<In, TypedError>` and a `Sink<Out>`.
///
/// Pings and pongs are skipped (the socket answers pings itself); after the peer's close frame
/// the stream ends. See the [module docs](self) for what it can wrap, axum's socket included.
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

impl<T, M, E, In, Out> Stream for Typed<T, In, Out>
where
    T: Stream<Item = Result<M, E>> + Unpin,
    M: Into<Message>,
    E: Into<BoxError>,
    In: DeserializeOwned,
{
    type Item = Result<In, TypedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let msg = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(TypedError::socket(e)))),
                Some(Ok(msg)) => msg.into(),
            };
            let parsed = match &msg {
                Message::Text(text) => serde_json::from_str(text),
                Message::Binary(data) => serde_json::from_slice(data),
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) => continue,
            };
            return Poll::Ready(Some(parsed.map_err(|e| TypedError::decode(e, msg))));
        }
    }
}

impl<T, M, E, In, Out> FusedStream for Typed<T, In, Out>
where
    T: FusedStream<Item = Result<M, E>> + Unpin,
    M: Into<Message>,
    E: Into<BoxError>,
    In: DeserializeOwned,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

/// A [`Sink`] of WebSocket messages that [`Typed`] can send JSON into: it names the message
/// type the sink takes, which `Typed` builds from this crate's [`Message`].
///
/// Implemented for this crate's [`WebSocket`](crate::WebSocket) and
/// [`WriteHalf`](crate::WriteHalf), for `tower_ws::axum::WebSocket` (feature `axum`), for the
/// write half of [`StreamExt::split`] over any of them, and
/// for `&mut` any implementor. Implement it for a sink of your own to wrap that.
///
/// [`Sink`]: https://docs.rs/futures-util/0.3/futures_util/sink/trait.Sink.html
/// [`StreamExt::split`]: https://docs.rs/futures-util/0.3/futures_util/stream/trait.StreamExt.html#method.split
///
/// # Examples
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// use futures_util::Sink;
/// use tower_ws::Message;
/// use tower_ws::typed::{MessageSink, Typed};
///
/// /// Collects what is sent.
/// #[derive(Default)]
/// struct Collect(Vec<Message>);
///
/// impl Sink<Message> for Collect {
///     type Error = std::convert::Infallible;
///     fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
///         Poll::Ready(Ok(()))
///     }
///     fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Self::Error> {
///         self.get_mut().0.push(msg);
///         Ok(())
///     }
///     fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
///         Poll::Ready(Ok(()))
///     }
///     fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// impl MessageSink for Collect {
///     type Message = Message;
/// }
///
/// use futures_util::{FutureExt, SinkExt};
///
/// let mut typed = Typed::<_, (), [u8; 2]>::new(Collect::default());
/// typed.send([1, 2]).now_or_never().unwrap().unwrap();
/// assert_eq!(typed.get_ref().0, [Message::text("[1,2]")]);
/// ```
pub trait MessageSink {
    /// The message type the sink takes.
    type Message: From<Message>;
}

impl<S> MessageSink for crate::WebSocket<S> {
    type Message = Message;
}

impl<S> MessageSink for crate::WriteHalf<S> {
    type Message = Message;
}

impl<S, Item> MessageSink for SplitSink<S, Item>
where
    Item: From<Message>,
{
    type Message = Item;
}

impl<T: MessageSink + ?Sized> MessageSink for &mut T {
    type Message = T::Message;
}

#[cfg(feature = "axum")]
impl MessageSink for crate::axum::WebSocket {
    type Message = crate::axum::Message;
}

impl<T, In, Out> Sink<Out> for Typed<T, In, Out>
where
    T: MessageSink + Sink<<T as MessageSink>::Message> + Unpin,
    <T as Sink<<T as MessageSink>::Message>>::Error: Into<BoxError>,
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
            .start_send(msg.into())
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
/// [`is_decode`](TypedError::is_decode) errors are about one message and can be skipped or
/// answered: [`json_error`](TypedError::json_error) says why it did not parse (line, column,
/// serde's message) and [`text`](TypedError::text) gives the message as received, so a reply can
/// carry the request's id. Socket errors are terminal, as on the [`WebSocket`](crate::WebSocket).
///
/// `Display` names the kind only; the cause is the error's `source()`. `Debug` shows the
/// received message's length, never its contents.
///
/// # Examples
///
/// ```
/// use tower_ws::typed::{TypedError, TypedErrorKind};
///
/// /// The id of a request that did not parse, if the client gave one.
/// fn request_id(e: &TypedError) -> Option<u64> {
///     let value: serde_json::Value = serde_json::from_str(e.text()?).ok()?;
///     value.get("id")?.as_u64()
/// }
/// # let _ = request_id;
/// fn skippable(e: &TypedError) -> bool {
///     e.kind() == TypedErrorKind::Decode
/// }
/// # let _ = skippable;
/// ```
pub struct TypedError {
    inner: Box<Inner>,
}

struct Inner {
    kind: TypedErrorKind,
    source: BoxError,
    /// The message that did not parse, for [`TypedErrorKind::Decode`].
    received: Option<Message>,
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
    fn new(kind: TypedErrorKind, source: BoxError, received: Option<Message>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                source,
                received,
            }),
        }
    }

    fn socket(e: impl Into<BoxError>) -> Self {
        Self::new(TypedErrorKind::Socket, e.into(), None)
    }

    fn encode(e: serde_json::Error) -> Self {
        Self::new(TypedErrorKind::Encode, Box::new(e), None)
    }

    fn decode(e: serde_json::Error, received: Message) -> Self {
        Self::new(TypedErrorKind::Decode, Box::new(e), Some(received))
    }

    /// What went wrong.
    pub fn kind(&self) -> TypedErrorKind {
        self.inner.kind
    }

    /// Whether a received message did not parse (skip it and read on).
    pub fn is_decode(&self) -> bool {
        self.kind() == TypedErrorKind::Decode
    }

    /// Whether the WebSocket itself failed.
    pub fn is_socket(&self) -> bool {
        self.kind() == TypedErrorKind::Socket
    }

    /// serde's error, for [`TypedErrorKind::Decode`] (why the message did not parse, with its
    /// line and column) and [`TypedErrorKind::Encode`].
    pub fn json_error(&self) -> Option<&serde_json::Error> {
        self.inner.source.downcast_ref()
    }

    /// The text of the message that did not parse, for [`TypedErrorKind::Decode`]: a text
    /// message's payload, or a binary one's if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        match self.inner.received.as_ref()? {
            Message::Text(text) => Some(text),
            Message::Binary(data) => std::str::from_utf8(data).ok(),
            _ => None,
        }
    }

    /// The message that did not parse, as received, for [`TypedErrorKind::Decode`].
    pub fn received(&self) -> Option<&Message> {
        self.inner.received.as_ref()
    }

    /// The message that did not parse, unwrapped, for [`TypedErrorKind::Decode`].
    pub fn into_received(self) -> Option<Message> {
        self.inner.received
    }

    /// The WebSocket's error, for [`TypedErrorKind::Socket`]: this crate's [`Error`], also when
    /// it came through `tower_ws::axum::WebSocket` wrapped in an `axum::Error`.
    pub fn into_socket_error(self) -> Option<Error> {
        if self.inner.kind != TypedErrorKind::Socket {
            return None;
        }
        let source = match self.inner.source.downcast::<Error>() {
            Ok(e) => return Some(*e),
            Err(source) => source,
        };
        #[cfg(feature = "axum")]
        if let Ok(e) = source.downcast::<::axum::Error>() {
            return e.into_inner().downcast::<Error>().ok().map(|e| *e);
        }
        let _ = source;
        None
    }
}

impl fmt::Debug for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedError")
            .field("kind", &self.inner.kind)
            .field("source", &self.inner.source)
            .field("received", &self.inner.received)
            .finish()
    }
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner.kind {
            TypedErrorKind::Decode => "message is not the JSON of the expected type",
            TypedErrorKind::Encode => "value could not be serialized to JSON",
            TypedErrorKind::Socket => "WebSocket failed",
        })
    }
}

impl std::error::Error for TypedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.inner.source)
    }
}
