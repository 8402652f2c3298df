//! hyper glue: answer an upgrade request and get the [`WebSocket`] once hyper hands over the
//! connection.
//!
//! # Examples
//!
//! ```no_run
//! use hyper::body::Incoming;
//! use hyper::{Request, Response};
//! use tower_ws::{Body, Config};
//!
//! async fn handle(mut req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
//!     match tower_ws::upgrade(&mut req, &Config::default()) {
//!         Ok((response, ws)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = ws.await else { return };
//!                 while let Some(Ok(msg)) = ws.recv().await {
//!                     if msg.is_text() && ws.send(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(response)
//!         }
//!         Err(refused) => Ok(refused.into_response()),
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Method, Request, Response, Version};
use hyper::ext::Protocol;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::body::Body;
use crate::config::{Config, SocketConfig};
use crate::error::{Error, ErrorKind};
use crate::handshake::{self, HandshakeError, HandshakeErrorKind, Negotiated, RequestHead};
use crate::proto::Role;
use crate::signal::Watch;
use crate::socket::WebSocket;

/// The WebSocket a hyper server gets from [`upgrade`].
pub type UpgradedWebSocket = WebSocket<TokioIo<Upgraded>>;

/// Validates an upgrade request and prepares the upgrade.
///
/// Send the returned `101` response from your service; the [`UpgradeFuture`] resolves to the
/// [`WebSocket`] once hyper has sent it and handed over the connection (serve the connection
/// with `.with_upgrades()`).
///
/// # Errors
///
/// A [`HandshakeError`] when the request breaks a rule of RFC 6455 or of `config` (send
/// [`HandshakeError::into_response`]), or when the request did not come through a hyper
/// server connection that can upgrade (500).
///
/// Over HTTP/2 (RFC 8441) the request is an extended `CONNECT` with `:protocol` `websocket`
/// (serve with `http2::Builder::enable_connect_protocol()`), and the response is `200 OK`.
pub fn upgrade<B>(
    req: &mut Request<B>,
    config: &Config,
) -> Result<(Response<Body>, UpgradeFuture), HandshakeError> {
    let accept = validate(req, config)?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or(HandshakeErrorKind::NotUpgradable)?;
    let response = accept.response();
    Ok((
        response,
        UpgradeFuture::new(on_upgrade, config, accept.into_negotiated()),
    ))
}

/// [`handshake::validate`] for HTTP/1.1, [`handshake::validate_extended_connect`] for HTTP/2,
/// with the `:protocol` pseudo-header read from hyper's extension.
pub(crate) fn validate(
    req: &(impl RequestHead + ?Sized),
    config: &Config,
) -> Result<handshake::Accept, HandshakeError> {
    if req.version() < Version::HTTP_2 {
        return handshake::validate(req, config);
    }
    // RFC 8441 §4: over HTTP/2 a WebSocket is a CONNECT with `:protocol = websocket`.
    if req.method() != Method::CONNECT {
        return Err(HandshakeErrorKind::MethodNotConnect.into());
    }
    if !is_extended_connect(req) {
        return Err(HandshakeErrorKind::NotWebSocketProtocol.into());
    }
    handshake::validate_extended_connect(req, config)
}

/// Whether `req` is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441).
fn is_extended_connect(req: &(impl RequestHead + ?Sized)) -> bool {
    req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// Whether `req` (a request or its parts) asks for a WebSocket, valid or not: an HTTP/1.1
/// upgrade request ([`handshake::is_http1_upgrade`]) or an HTTP/2 extended `CONNECT` whose `:protocol` is
/// `websocket` (RFC 8441, read from hyper's `Protocol` extension).
///
/// # Examples
///
/// ```
/// let req = http::Request::get("/")
///     .header("connection", "Upgrade")
///     .header("upgrade", "websocket")
///     .body(())
///     .unwrap();
/// assert!(tower_ws::is_upgrade_request(&req));
///
/// let mut h2 = http::Request::connect("https://example.com/")
///     .version(http::Version::HTTP_2)
///     .body(())
///     .unwrap();
/// assert!(!tower_ws::is_upgrade_request(&h2));
/// h2.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
/// assert!(tower_ws::is_upgrade_request(&h2));
/// ```
pub fn is_upgrade_request(req: &(impl RequestHead + ?Sized)) -> bool {
    handshake::is_http1_upgrade(req) || is_extended_connect(req)
}

impl<S> WebSocket<S> {
    /// Wraps a connection upgraded after [`handshake::validate`] (or
    /// [`validate_extended_connect`](handshake::validate_extended_connect)) accepted it,
    /// keeping what the handshake agreed: the subprotocol and the permessage-deflate
    /// parameters. Use it when you run the handshake yourself, on a server other than hyper;
    /// [`from_raw`](WebSocket::from_raw) knows nothing of the handshake.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{Config, WebSocket, handshake};
    ///
    /// let config = Config::default().protocols(["chat.v1"]);
    /// let req = http::Request::get("/")
    ///     .header("host", "example.com")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "websocket")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-protocol", "chat.v1")
    ///     .body(())
    ///     .unwrap();
    /// let accept = handshake::validate(&req, &config).unwrap();
    /// let _response = accept.response(); // send it, then hand over the connection:
    /// let (io, _peer) = tokio::io::duplex(1024);
    /// let ws = WebSocket::from_accept(io, accept, &config);
    /// assert_eq!(ws.protocol().unwrap(), "chat.v1");
    /// ```
    pub fn from_accept(io: S, accept: handshake::Accept, config: &Config) -> Self {
        WebSocket::with_negotiated(io, Role::Server, config.socket(), accept.into_negotiated())
    }
}

/// Resolves to the [`WebSocket`] once hyper hands over the upgraded connection.
///
/// # Errors
///
/// An [`ErrorKind::Io`] error if the connection closed before the upgrade completed (for
/// example the client vanished before reading the `101`).
#[must_use = "futures do nothing unless polled"]
pub struct UpgradeFuture {
    on_upgrade: OnUpgrade,
    config: SocketConfig,
    negotiated: Option<Negotiated>,
    shutdown: Option<Watch>,
}

impl UpgradeFuture {
    pub(crate) fn new(on_upgrade: OnUpgrade, config: &Config, negotiated: Negotiated) -> Self {
        Self {
            on_upgrade,
            config: config.socket(),
            negotiated: Some(negotiated),
            shutdown: None,
        }
    }

    /// Registers the socket with a [`Shutdown`](crate::Shutdown) once it exists.
    pub(crate) fn with_shutdown(mut self, watch: Watch) -> Self {
        self.shutdown = Some(watch);
        self
    }
}

impl Future for UpgradeFuture {
    type Output = Result<UpgradedWebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))
            .map_err(|e| Error::with_source(ErrorKind::Io, e))?;
        let mut ws = WebSocket::with_negotiated(
            TokioIo::new(upgraded),
            Role::Server,
            self.config,
            self.negotiated.take().unwrap_or_default(),
        );
        if let Some(watch) = self.shutdown.take() {
            ws.watch_shutdown(watch);
        }
        Poll::Ready(Ok(ws))
    }
}

impl fmt::Debug for UpgradeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeFuture")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}
