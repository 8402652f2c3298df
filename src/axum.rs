//! A drop-in replacement for `axum::extract::ws` (axum 0.8): the same names, signatures and
//! behaviour, on this crate's handshake and socket.
//!
//! Switching is a change of `use` lines:
//!
//! ```text
//! - use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
//! + use tower_ws::axum::{Message, WebSocket, WebSocketUpgrade};
//! ```
//!
//! Where this module differs from axum, it is stricter in the client's favour:
//!
//! - `Connection` is parsed as a token list (`Connection: keep-alive, Upgrade` works; axum looks
//!   for the substring `upgrade`, so `Connection: upgraded` passes there).
//! - A missing or wrong `Sec-WebSocket-Version` gets `426 Upgrade Required` with
//!   `Sec-WebSocket-Version: 13` (RFC 6455 §4.4); axum answers `400`. So does a missing
//!   `Upgrade: websocket`.
//! - `Sec-WebSocket-Key` must be one base64 value of 16 bytes (RFC 6455 §4.2.1); axum accepts
//!   any value.
//! - `Origin` is checked: by default a browser page may only open a WebSocket to its own host
//!   (same-origin), which stops cross-site WebSocket hijacking. axum accepts every origin. Set
//!   the policy with a [`WebSocketLayer`](crate::WebSocketLayer) in front
//!   (`.config(Config::default().origin(OriginPolicy::Any))` restores axum's behaviour).
//! - [`WebSocketUpgrade::requested_protocols`] yields the client's protocols in its order
//!   (axum sorts them).
//!
//! The extra refusals have rejection types of their own in [`rejection`].
//!
//! Settings come from a [`WebSocketLayer`](crate::WebSocketLayer) in front of the router, if
//! there is one (its [`Config`], including subprotocols and `Origin` policy, and its
//! [`Shutdown`]); the extractor's setters change them for one connection.
//!
//! HTTP/2 (RFC 8441) works as in axum: route with `any(...)`, and serve with a hyper HTTP/2
//! connection that has `enable_connect_protocol()`.
//!
//! # Examples
//!
//! ```
//! use axum::{Router, response::Response, routing::any};
//! use tower_ws::axum::{Message, WebSocket, WebSocketUpgrade};
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(handle_socket)
//! }
//!
//! async fn handle_socket(mut socket: WebSocket) {
//!     while let Some(Ok(msg)) = socket.recv().await {
//!         if let Message::Text(text) = msg {
//!             if socket.send(Message::Text(format!("you said {text}").into())).await.is_err() {
//!                 return;
//!             }
//!         }
//!     }
//! }
//!
//! let app: Router = Router::new()
//!     .route("/ws", any(handler))
//!     .layer(tower_ws::WebSocketLayer::new());
//! # let _ = app;
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::axum::Error;
use ::axum::body::Body as AxumBody;
use ::axum::extract::FromRequestParts;
use ::axum::response::Response;
use bytes::Bytes;
use futures_util::{Sink, Stream, stream::FusedStream};
use http::request::Parts;
use http::{HeaderValue, Request};
use hyper::upgrade::OnUpgrade;

use self::rejection::WebSocketUpgradeRejection;
use crate::config::Config;
use crate::handshake::{self, Accept, HandshakeErrorKind};
use crate::layer::Settings;
use crate::shutdown::Shutdown;
use crate::upgrade::{UpgradeFuture, UpgradedWebSocket};

/// Extractor for establishing WebSocket connections, as `axum::extract::ws::WebSocketUpgrade`.
///
/// For HTTP/1.1 the request method must be `GET`; over HTTP/2 it is `CONNECT`. To support both,
/// route with [`any`](::axum::routing::any).
///
/// # Examples
///
/// ```
/// use axum::response::Response;
/// use tower_ws::axum::WebSocketUpgrade;
///
/// async fn handler(ws: WebSocketUpgrade) -> Response {
///     ws.max_message_size(1 << 20).on_upgrade(|mut socket| async move {
///         while let Some(Ok(_msg)) = socket.recv().await {}
///     })
/// }
/// # let _ = axum::Router::<()>::new().route("/ws", axum::routing::any(handler));
/// ```
#[must_use]
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    config: Config,
    accept: Accept,
    requested: Vec<HeaderValue>,
    on_upgrade: OnUpgrade,
    on_failed_upgrade: F,
    shutdown: Option<Shutdown>,
}

impl<F> fmt::Debug for WebSocketUpgrade<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("config", &self.config)
            .field("protocol", &self.accept.protocol())
            .field("requested_protocols", &self.requested)
            .finish_non_exhaustive()
    }
}

impl<F> WebSocketUpgrade<F> {
    /// How much the read buffer asks for at a time (see
    /// [`Config::read_buffer_size`](crate::Config#structfield.read_buffer_size)).
    pub fn read_buffer_size(mut self, size: usize) -> Self {
        self.config.read_buffer_size = size;
        self
    }

    /// Bytes buffered before they are written without a flush (see
    /// [`Config::write_buffer_size`](crate::Config#structfield.write_buffer_size)).
    pub fn write_buffer_size(mut self, size: usize) -> Self {
        self.config.write_buffer_size = size;
        self
    }

    /// The write high-water mark for backpressure (see
    /// [`Config::max_write_buffer_size`](crate::Config#structfield.max_write_buffer_size)).
    pub fn max_write_buffer_size(mut self, max: usize) -> Self {
        self.config.max_write_buffer_size = max;
        self
    }

    /// The largest message accepted (default 64 MiB).
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config.max_message_size = Some(max);
        self
    }

    /// The largest frame accepted (default 16 MiB).
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.config.max_frame_size = Some(max);
        self
    }

    /// Accept unmasked frames from the client (default `false`; RFC 6455 forbids them).
    pub fn accept_unmasked_frames(mut self, accept: bool) -> Self {
        self.config.accept_unmasked_frames = accept;
        self
    }

    /// Sets the subprotocols the server speaks, most preferred first: the first one the client
    /// offers is selected (and none if the client offers none of them).
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::response::Response;
    /// use tower_ws::axum::WebSocketUpgrade;
    ///
    /// async fn handler(ws: WebSocketUpgrade) -> Response {
    ///     ws.protocols(["graphql-ws", "graphql-transport-ws"])
    ///         .on_upgrade(|socket| async move {
    ///             let _ = socket.protocol();
    ///         })
    /// }
    /// # let _ = axum::Router::<()>::new().route("/ws", axum::routing::any(handler));
    /// ```
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        let selected = protocols
            .into_iter()
            .map(Into::into)
            .find(|p| self.requested.iter().any(|r| r.as_bytes() == p.as_bytes()))
            .and_then(|p| HeaderValue::from_str(&p).ok());
        self.accept.set_protocol(selected);
        self
    }

    /// The subprotocols the client offers, in its order.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &HeaderValue> {
        self.requested.iter()
    }

    /// Sets the selected subprotocol, replacing what [`protocols`](Self::protocols) chose.
    /// Browsers fail the connection if it is not one they offered.
    pub fn set_selected_protocol(&mut self, protocol: HeaderValue) {
        self.accept.set_protocol(Some(protocol));
    }

    /// The selected subprotocol, if any.
    pub fn selected_protocol(&self) -> Option<&HeaderValue> {
        self.accept.protocol()
    }

    /// Calls `callback` if the connection cannot be upgraded after the response was sent (for
    /// example, the client went away). By default such errors are ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::response::Response;
    /// use tower_ws::axum::WebSocketUpgrade;
    ///
    /// async fn handler(ws: WebSocketUpgrade) -> Response {
    ///     ws.on_failed_upgrade(|error| eprintln!("upgrade failed: {error}"))
    ///         .on_upgrade(|_socket| async {})
    /// }
    /// # let _ = axum::Router::<()>::new().route("/ws", axum::routing::any(handler));
    /// ```
    pub fn on_failed_upgrade<C>(self, callback: C) -> WebSocketUpgrade<C>
    where
        C: OnFailedUpgrade,
    {
        WebSocketUpgrade {
            config: self.config,
            accept: self.accept,
            requested: self.requested,
            on_upgrade: self.on_upgrade,
            on_failed_upgrade: callback,
            shutdown: self.shutdown,
        }
    }

    /// Returns the response that completes the handshake (`101`, or `200` over HTTP/2) and runs
    /// `callback` with the socket, in a task of its own, once the connection is handed over.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the task is spawned with `tokio::spawn`).
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        F: OnFailedUpgrade,
    {
        let response = self.accept.response();
        let mut socket =
            UpgradeFuture::new(self.on_upgrade, &self.config, self.accept.into_negotiated());
        if let Some(shutdown) = &self.shutdown {
            socket = socket.with_shutdown(shutdown.watch());
        }
        let on_failed_upgrade = self.on_failed_upgrade;
        tokio::spawn(async move {
            match socket.await {
                Ok(inner) => callback(WebSocket { inner }).await,
                Err(error) => on_failed_upgrade.call(Error::new(error)),
            }
        });
        response.map(AxumBody::new)
    }
}

impl<S> FromRequestParts<S> for WebSocketUpgrade<DefaultOnFailedUpgrade>
where
    S: Send + Sync,
{
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let settings = parts
            .extensions
            .get::<Settings>()
            .cloned()
            .unwrap_or_default();
        if let Some(shutdown) = &settings.shutdown {
            shutdown.check().map_err(rejection::from_handshake)?;
        }
        // The handshake checks take a `Request`; lend it the parts without copying headers.
        let req = Request::from_parts(
            std::mem::replace(parts, Request::new(()).into_parts().0),
            (),
        );
        let accepted = crate::upgrade::validate(&req, &settings.config);
        let requested = handshake::requested_protocols(&req)
            .filter_map(|p| HeaderValue::from_str(p).ok())
            .collect();
        *parts = req.into_parts().0;
        let accept = accepted.map_err(rejection::from_handshake)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| rejection::from_handshake(HandshakeErrorKind::NotUpgradable.into()))?;
        Ok(Self {
            config: Config::clone(&settings.config),
            accept,
            requested,
            on_upgrade,
            on_failed_upgrade: DefaultOnFailedUpgrade,
            shutdown: settings.shutdown,
        })
    }
}

/// What to do when a connection upgrade fails; see [`WebSocketUpgrade::on_failed_upgrade`].
///
/// Implemented for `FnOnce(axum::Error) + Send + 'static` and [`DefaultOnFailedUpgrade`].
///
/// # Examples
///
/// ```
/// use tower_ws::axum::OnFailedUpgrade;
///
/// struct Log;
/// impl OnFailedUpgrade for Log {
///     fn call(self, error: axum::Error) {
///         eprintln!("upgrade failed: {error}");
///     }
/// }
/// ```
pub trait OnFailedUpgrade: Send + 'static {
    /// Call the callback.
    fn call(self, error: Error);
}

impl<F> OnFailedUpgrade for F
where
    F: FnOnce(Error) + Send + 'static,
{
    fn call(self, error: Error) {
        self(error);
    }
}

/// The default [`OnFailedUpgrade`]: ignores the error.
///
/// # Examples
///
/// ```
/// use tower_ws::axum::{DefaultOnFailedUpgrade, OnFailedUpgrade, WebSocketUpgrade};
///
/// fn ignores_failures(ws: &WebSocketUpgrade<DefaultOnFailedUpgrade>) {}
/// fn is_on_failed<F: OnFailedUpgrade>() {}
/// is_on_failed::<DefaultOnFailedUpgrade>();
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: Error) {}
}

/// A WebSocket connection, as `axum::extract::ws::WebSocket`: a [`Stream`] of
/// `Result<Message, axum::Error>` and a [`Sink`] of [`Message`]s.
///
/// Pings are answered and close frames echoed by the connection itself, as long as the stream
/// is polled.
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

/// UTF-8 text that is cheap to clone, as `axum::extract::ws::Utf8Bytes`.
///
/// # Examples
///
/// ```
/// let text = tower_ws::axum::Utf8Bytes::from_static("foo123");
/// assert_eq!(text.len(), 6);
/// assert_eq!(text, "foo123");
/// assert_eq!(text, "foo123".to_string());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Utf8Bytes(crate::Utf8Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    #[must_use]
    pub const fn from_static(str: &'static str) -> Self {
        Self(crate::Utf8Bytes::from_static(str))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        crate::Utf8Bytes::try_from(bytes).map(Self)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    fn try_from(v: Vec<u8>) -> Result<Self, Self::Error> {
        Self::try_from(Bytes::from(v))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<&String> for Utf8Bytes {
    fn from(s: &String) -> Self {
        Self(s.into())
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0.into_bytes()
    }
}

impl From<crate::Utf8Bytes> for Utf8Bytes {
    fn from(text: crate::Utf8Bytes) -> Self {
        Self(text)
    }
}

impl From<Utf8Bytes> for crate::Utf8Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl<T> PartialEq<T> for Utf8Bytes
where
    for<'a> &'a str: PartialEq<T>,
{
    fn eq(&self, other: &T) -> bool {
        self.as_str() == *other
    }
}

/// Status code used to indicate why an endpoint is closing the WebSocket connection.
pub type CloseCode = u16;

/// The code and reason of a close frame, as `axum::extract::ws::CloseFrame`.
///
/// # Examples
///
/// ```
/// use tower_ws::axum::{CloseFrame, Message, close_code};
///
/// let bye = Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "done".into() }));
/// # let _ = bye;
/// ```
#[derive(Debug, Clone, Eq, PartialEq)]
pub struct CloseFrame {
    /// The reason as a code.
    pub code: CloseCode,
    /// The reason as text string.
    pub reason: Utf8Bytes,
}

/// A WebSocket message, as `axum::extract::ws::Message`.
///
/// # Examples
///
/// ```
/// use tower_ws::axum::Message;
///
/// let msg = Message::Text("hello".into());
/// assert_eq!(msg.to_text().unwrap(), "hello");
/// assert_eq!(Message::binary(vec![1, 2]).into_data(), &[1u8, 2][..]);
/// ```
#[derive(Debug, Eq, PartialEq, Clone)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping, at most 125 bytes; the connection answers it by itself.
    Ping(Bytes),
    /// A pong, at most 125 bytes.
    Pong(Bytes),
    /// A close frame. Received: the connection answers it and the stream then ends. Sent: it
    /// starts the close handshake; sending anything after it is an error.
    Close(Option<CloseFrame>),
}

impl Message {
    fn from_core(msg: crate::Message) -> Self {
        match msg {
            crate::Message::Text(t) => Self::Text(Utf8Bytes(t)),
            crate::Message::Binary(b) => Self::Binary(b),
            crate::Message::Ping(b) => Self::Ping(b),
            crate::Message::Pong(b) => Self::Pong(b),
            crate::Message::Close(f) => Self::Close(f.map(|f| CloseFrame {
                code: f.code.as_u16(),
                reason: Utf8Bytes(f.reason),
            })),
        }
    }

    fn into_core(self) -> crate::Message {
        match self {
            Self::Text(t) => crate::Message::Text(t.0),
            Self::Binary(b) => crate::Message::Binary(b),
            Self::Ping(b) => crate::Message::Ping(b),
            Self::Pong(b) => crate::Message::Pong(b),
            Self::Close(f) => crate::Message::Close(
                f.map(|f| crate::CloseFrame::new(crate::CloseCode::from(f.code), f.reason.0)),
            ),
        }
    }

    /// The payload as bytes (a close frame's reason).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(text) => text.into(),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => data,
            Self::Close(None) => Bytes::new(),
            Self::Close(Some(frame)) => frame.reason.into(),
        }
    }

    /// The payload as text.
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not UTF-8.
    pub fn into_text(self) -> Result<Utf8Bytes, Error> {
        match self {
            Self::Text(text) => Ok(text),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => {
                Utf8Bytes::try_from(data).map_err(Error::new)
            }
            Self::Close(None) => Ok(Utf8Bytes::default()),
            Self::Close(Some(frame)) => Ok(frame.reason),
        }
    }

    /// The payload as `&str`.
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not UTF-8.
    pub fn to_text(&self) -> Result<&str, Error> {
        match self {
            Self::Text(text) => Ok(text.as_str()),
            Self::Binary(data) | Self::Ping(data) | Self::Pong(data) => {
                std::str::from_utf8(data).map_err(Error::new)
            }
            Self::Close(None) => Ok(""),
            Self::Close(Some(frame)) => Ok(&frame.reason),
        }
    }

    /// A text message.
    pub fn text<S>(string: S) -> Message
    where
        S: Into<Utf8Bytes>,
    {
        Message::Text(string.into())
    }

    /// A binary message.
    pub fn binary<B>(bin: B) -> Message
    where
        B: Into<Bytes>,
    {
        Message::Binary(bin.into())
    }
}

impl From<String> for Message {
    fn from(string: String) -> Self {
        Message::Text(string.into())
    }
}

impl<'s> From<&'s str> for Message {
    fn from(string: &'s str) -> Self {
        Message::Text(string.into())
    }
}

impl<'b> From<&'b [u8]> for Message {
    fn from(data: &'b [u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(data))
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data.into())
    }
}

impl From<Message> for Vec<u8> {
    fn from(msg: Message) -> Self {
        msg.into_data().to_vec()
    }
}

impl From<crate::Message> for Message {
    fn from(msg: crate::Message) -> Self {
        Self::from_core(msg)
    }
}

impl From<Message> for crate::Message {
    fn from(msg: Message) -> Self {
        msg.into_core()
    }
}

pub mod rejection {
    //! Why [`WebSocketUpgrade`](super::WebSocketUpgrade) refused a request: the rejection
    //! types of `axum::extract::ws::rejection`, plus the checks axum does not make.
    //!
    //! # Examples
    //!
    //! ```
    //! use tower_ws::axum::rejection::{InvalidWebSocketVersionHeader, WebSocketUpgradeRejection};
    //!
    //! let rejection = WebSocketUpgradeRejection::from(InvalidWebSocketVersionHeader::default());
    //! assert_eq!(rejection.status(), 426);
    //! ```

    use axum::response::{IntoResponse, Response};
    use http::header::{ALLOW, CONTENT_TYPE, SEC_WEBSOCKET_VERSION, UPGRADE};
    use http::{HeaderName, HeaderValue, StatusCode};

    use crate::handshake::{HandshakeError, HandshakeErrorKind};

    fn respond(
        status: StatusCode,
        body: String,
        headers: &[(HeaderName, &'static str)],
    ) -> Response {
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        for (name, value) in headers {
            h.insert(name.clone(), HeaderValue::from_static(value));
        }
        res
    }

    macro_rules! define_rejection {
        (
            #[status = $status:ident]
            #[body = $body:literal]
            #[headers = [$(($hn:expr, $hv:literal)),*]]
            $(#[$m:meta])*
            pub struct $name:ident;
        ) => {
            $(#[$m])*
            #[derive(Debug)]
            #[non_exhaustive]
            pub struct $name;

            impl $name {
                /// The response body text used for this rejection.
                pub fn body_text(&self) -> String {
                    self.to_string()
                }

                /// The status code used for this rejection.
                pub fn status(&self) -> StatusCode {
                    StatusCode::$status
                }
            }

            impl IntoResponse for $name {
                fn into_response(self) -> Response {
                    respond(self.status(), self.body_text(), &[$(($hn, $hv)),*])
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str($body)
                }
            }

            impl std::error::Error for $name {}

            impl Default for $name {
                fn default() -> Self {
                    Self
                }
            }
        };
    }

    define_rejection! {
        #[status = METHOD_NOT_ALLOWED]
        #[body = "Request method must be `GET`"]
        #[headers = [(ALLOW, "GET")]]
        /// The HTTP/1.1 request method was not `GET` (405, `Allow: GET`).
        pub struct MethodNotGet;
    }

    define_rejection! {
        #[status = METHOD_NOT_ALLOWED]
        #[body = "Request method must be `CONNECT`"]
        #[headers = [(ALLOW, "CONNECT")]]
        /// The HTTP/2 request method was not `CONNECT` (405, `Allow: CONNECT`).
        pub struct MethodNotConnect;
    }

    define_rejection! {
        #[status = BAD_REQUEST]
        #[body = "Connection header did not include 'upgrade'"]
        #[headers = []]
        /// `Connection` did not list the `upgrade` token (400).
        pub struct InvalidConnectionHeader;
    }

    define_rejection! {
        #[status = UPGRADE_REQUIRED]
        #[body = "`Upgrade` header did not include 'websocket'"]
        #[headers = [(UPGRADE, "websocket"), (SEC_WEBSOCKET_VERSION, "13")]]
        /// `Upgrade` did not list `websocket` (426 with `Upgrade: websocket`; axum: 400).
        pub struct InvalidUpgradeHeader;
    }

    define_rejection! {
        #[status = BAD_REQUEST]
        #[body = "`:protocol` pseudo-header did not include 'websocket'"]
        #[headers = []]
        /// An HTTP/2 `CONNECT` whose `:protocol` was not `websocket` (400).
        pub struct InvalidProtocolPseudoheader;
    }

    define_rejection! {
        #[status = UPGRADE_REQUIRED]
        #[body = "`Sec-WebSocket-Version` header did not include '13'"]
        #[headers = [(UPGRADE, "websocket"), (SEC_WEBSOCKET_VERSION, "13")]]
        /// `Sec-WebSocket-Version` was missing or not 13 (426 with `Sec-WebSocket-Version: 13`,
        /// as RFC 6455 §4.4 asks; axum: 400).
        pub struct InvalidWebSocketVersionHeader;
    }

    define_rejection! {
        #[status = BAD_REQUEST]
        #[body = "`Sec-WebSocket-Key` header missing"]
        #[headers = []]
        /// `Sec-WebSocket-Key` was missing (400).
        pub struct WebSocketKeyHeaderMissing;
    }

    define_rejection! {
        #[status = BAD_REQUEST]
        #[body = "`Sec-WebSocket-Key` header must be one base64-encoded 16-byte value"]
        #[headers = []]
        /// `Sec-WebSocket-Key` was not one base64 value of 16 bytes (400; axum does not check).
        pub struct InvalidWebSocketKeyHeader;
    }

    define_rejection! {
        #[status = FORBIDDEN]
        #[body = "the request's `Origin` is not allowed to open WebSockets here"]
        #[headers = []]
        /// The `Origin` policy refused the request (403; axum does not check).
        pub struct OriginForbidden;
    }

    define_rejection! {
        #[status = SERVICE_UNAVAILABLE]
        #[body = "the server is shutting down and takes no new WebSocket connections"]
        #[headers = []]
        /// The server is shutting down ([`Shutdown`](crate::Shutdown); 503).
        pub struct ShuttingDown;
    }

    define_rejection! {
        #[status = UPGRADE_REQUIRED]
        #[body = "WebSocket request couldn't be upgraded since no upgrade state was present"]
        #[headers = []]
        /// The connection cannot be upgraded, for example an HTTP/1.0 request or a server
        /// without upgrade support (426).
        pub struct ConnectionNotUpgradable;
    }

    /// Any other refused handshake, with the status and text of its [`HandshakeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::axum::rejection::InvalidHandshake;
    /// use tower_ws::handshake::HandshakeErrorKind;
    ///
    /// let r = InvalidHandshake::from(tower_ws::HandshakeError::from(HandshakeErrorKind::MissingHost));
    /// assert_eq!(r.status(), 400);
    /// ```
    #[derive(Debug)]
    pub struct InvalidHandshake(HandshakeError);

    impl InvalidHandshake {
        /// The response body text used for this rejection.
        pub fn body_text(&self) -> String {
            self.0.message().to_owned()
        }

        /// The status code used for this rejection.
        pub fn status(&self) -> StatusCode {
            self.0.status()
        }

        /// The refused handshake.
        pub fn error(&self) -> &HandshakeError {
            &self.0
        }
    }

    impl From<HandshakeError> for InvalidHandshake {
        fn from(error: HandshakeError) -> Self {
            Self(error)
        }
    }

    impl IntoResponse for InvalidHandshake {
        fn into_response(self) -> Response {
            let res = self.0.into_response();
            res.map(axum::body::Body::new)
        }
    }

    impl std::fmt::Display for InvalidHandshake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Display::fmt(&self.0, f)
        }
    }

    impl std::error::Error for InvalidHandshake {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    macro_rules! composite {
        ($(#[$m:meta])* pub enum $name:ident { $($variant:ident),* $(,)? }) => {
            $(#[$m])*
            #[derive(Debug)]
            #[non_exhaustive]
            pub enum $name {
                $(
                    #[allow(missing_docs)]
                    $variant($variant),
                )*
            }

            impl $name {
                /// The response body text used for this rejection.
                pub fn body_text(&self) -> String {
                    match self {
                        $(Self::$variant(inner) => inner.body_text(),)*
                    }
                }

                /// The status code used for this rejection.
                pub fn status(&self) -> StatusCode {
                    match self {
                        $(Self::$variant(inner) => inner.status(),)*
                    }
                }
            }

            impl IntoResponse for $name {
                fn into_response(self) -> Response {
                    match self {
                        $(Self::$variant(inner) => inner.into_response(),)*
                    }
                }
            }

            $(
                impl From<$variant> for $name {
                    fn from(inner: $variant) -> Self {
                        Self::$variant(inner)
                    }
                }
            )*

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    match self {
                        $(Self::$variant(inner) => std::fmt::Display::fmt(inner, f),)*
                    }
                }
            }

            impl std::error::Error for $name {
                fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                    match self {
                        $(Self::$variant(inner) => inner.source(),)*
                    }
                }
            }
        };
    }

    composite! {
        /// Rejection used for [`WebSocketUpgrade`](super::WebSocketUpgrade): one variant for
        /// each way the extractor can fail.
        pub enum WebSocketUpgradeRejection {
            MethodNotGet,
            MethodNotConnect,
            InvalidConnectionHeader,
            InvalidUpgradeHeader,
            InvalidProtocolPseudoheader,
            InvalidWebSocketVersionHeader,
            WebSocketKeyHeaderMissing,
            ConnectionNotUpgradable,
            InvalidWebSocketKeyHeader,
            OriginForbidden,
            ShuttingDown,
            InvalidHandshake,
        }
    }

    /// The axum-style rejection for a refused handshake.
    pub(super) fn from_handshake(error: HandshakeError) -> WebSocketUpgradeRejection {
        use HandshakeErrorKind as K;
        match error.kind() {
            K::MethodNotGet => MethodNotGet.into(),
            K::MethodNotConnect => MethodNotConnect.into(),
            K::ConnectionNotUpgrade => InvalidConnectionHeader.into(),
            K::NotWebSocketUpgrade => InvalidUpgradeHeader.into(),
            K::NotWebSocketProtocol => InvalidProtocolPseudoheader.into(),
            K::MissingVersion | K::UnsupportedVersion => InvalidWebSocketVersionHeader.into(),
            K::MissingKey => WebSocketKeyHeaderMissing.into(),
            K::InvalidKey => InvalidWebSocketKeyHeader.into(),
            K::OriginForbidden => OriginForbidden.into(),
            K::ShuttingDown => ShuttingDown.into(),
            K::HttpVersion | K::NotUpgradable => ConnectionNotUpgradable.into(),
            _ => InvalidHandshake(error).into(),
        }
    }
}

pub mod close_code {
    //! Constants for [`CloseCode`](super::CloseCode)s (`u16`), as `axum::extract::ws::close_code`.
    //!
    //! # Examples
    //!
    //! ```
    //! assert_eq!(tower_ws::axum::close_code::AWAY, 1001);
    //! ```

    /// The purpose of the connection was fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (server shutdown, page navigated away).
    pub const AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// A type of data the endpoint cannot accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// No status code was included in the close frame.
    pub const STATUS: u16 = 1005;
    /// An abnormal closure.
    pub const ABNORMAL: u16 = 1006;
    /// Data inconsistent with the message type (non-UTF-8 text).
    pub const INVALID: u16 = 1007;
    /// A message violated the endpoint's policy.
    pub const POLICY: u16 = 1008;
    /// A message too big to process.
    pub const SIZE: u16 = 1009;
    /// The client expected an extension the server did not negotiate.
    pub const EXTENSION: u16 = 1010;
    /// The server met an unexpected condition.
    pub const ERROR: u16 = 1011;
    /// The server is restarting.
    pub const RESTART: u16 = 1012;
    /// The server is overloaded; try again later.
    pub const AGAIN: u16 = 1013;
}
