//! A WebSocket client: dial `ws://` servers, or any stream you bring, and test any tower
//! service without a port.
//!
//! [`connect`] covers the common case; a [`ClientBuilder`] adds subprotocols, headers,
//! permessage-deflate, a [`Config`] and a connect timeout. Either returns the socket (client
//! role: every frame masked with a key from the OS's random source) and the server's `101`
//! response head. Every failure is a [`ClientError`] saying what went wrong, a refusal with
//! the server's status, head and body.
//!
//! The handshake runs over hyper's HTTP/1.1 client. `wss://` needs the `rustls` feature
//! (rustls with the webpki roots, or the system's with `native-roots`; a
//! [`rustls::ClientConfig`] of your own with [`tls_config`](ClientBuilder::tls_config)), or a
//! TLS stream you connect yourself and hand to [`connect_on`](ClientBuilder::connect_on).
//!
//! # Examples
//!
//! ```no_run
//! use tower_ws::Message;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (mut ws, _response) = tower_ws::client::connect("ws://127.0.0.1:9001/echo").await?;
//! ws.send(Message::text("hello")).await?;
//! if let Some(reply) = ws.recv().await {
//!     println!("{:?}", reply?);
//! }
//! ws.close(tower_ws::CloseCode::NORMAL, "done").await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::handshake::client::{Offer, Pending, Problem, request, request_h2};
use crate::proto::Role;
use crate::upgrade::UpgradedWebSocket;
use crate::{Body, WebSocket};

mod error;
mod proxy;
#[cfg(feature = "json")]
mod resume;
#[cfg(feature = "server")]
mod service;
#[cfg(feature = "rustls")]
mod tls;

/// The rustls version this client is built with, for [`ClientBuilder::tls_config`].
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use rustls;

pub use error::ClientError;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use resume::{Disconnection, Resuming, Update};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use service::connect_service;

/// The default bound on connecting and the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body is kept.
const MAX_REFUSAL_BODY: usize = 64 << 10;
/// How long an HTTP/2 server has to announce `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
const H2_SETTINGS_WAIT: Duration = Duration::from_secs(1);

/// Connects to `uri` (`ws://host[:port]/path`) with the default settings.
///
/// # Errors
///
/// See [`ClientError`].
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), tower_ws::client::ClientError> {
/// let (ws, response) = tower_ws::client::connect("ws://127.0.0.1:9001/").await?;
/// assert_eq!(response.status(), 101);
/// # drop(ws); Ok(()) }
/// ```
pub async fn connect(uri: &str) -> Result<(UpgradedWebSocket, Response<()>), ClientError> {
    ClientBuilder::new(uri)?.connect().await
}

/// A client connection being set up: what to offer, with which settings.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use tower_ws::client::ClientBuilder;
///
/// # async fn run() -> Result<(), tower_ws::client::ClientError> {
/// let (ws, response) = ClientBuilder::new("ws://127.0.0.1:9001/chat")?
///     .protocols(["chat.v2", "chat.v1"])
///     .header("authorization", "Bearer demo-token")
///     .connect_timeout(Duration::from_secs(3))
///     .connect()
///     .await?;
/// println!("speaking {:?}", ws.protocol());
/// # drop(response); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    uri: Uri,
    offer: Offer,
    config: Config,
    connect_timeout: Duration,
    http2: bool,
    proxy: ProxyChoice,
    #[cfg(feature = "rustls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// A builder call that could not be honoured, reported when connecting.
    problem: Option<String>,
}

impl ClientBuilder {
    /// A client for `uri` (`ws://` or `wss://`; `wss://` only with
    /// [`connect_on`](ClientBuilder::connect_on) and a TLS stream).
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidUri`] if `uri` does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tower_ws::client::ClientBuilder::new("ws://localhost/").is_ok());
    /// assert!(tower_ws::client::ClientBuilder::new("not a uri").is_err());
    /// ```
    pub fn new(uri: &str) -> Result<Self, ClientError> {
        let uri: Uri = uri
            .parse()
            .map_err(|e| ClientError::InvalidUri(format!("{uri:?}: {e}")))?;
        Ok(Self {
            uri,
            offer: Offer::default(),
            config: Config::default(),
            connect_timeout: CONNECT_TIMEOUT,
            http2: false,
            proxy: ProxyChoice::Env,
            #[cfg(feature = "rustls")]
            tls: None,
            problem: None,
        })
    }

    /// Offers these subprotocols, in order of preference; the server's choice must be one of
    /// them ([`WebSocket::protocol`] tells which).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("ws://h/").unwrap().protocols(["v2", "v1"]);
    /// # drop(b);
    /// ```
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for p in protocols {
            match HeaderValue::from_str(p.as_ref()) {
                Ok(v) if !p.as_ref().is_empty() && !p.as_ref().contains([',', ' ']) => {
                    self.offer.protocols.push(v);
                }
                _ => {
                    self.problem = Some(format!("subprotocol {:?} is not a token", p.as_ref()));
                }
            }
        }
        self
    }

    /// Adds a request header (authentication, cookies, `Origin`...). The headers the handshake
    /// writes itself (`Host`, `Connection`, `Upgrade`, `Sec-WebSocket-*`) are refused when
    /// connecting, as are invalid names or values.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("ws://h/").unwrap().header("origin", "https://h");
    /// # drop(b);
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.offer.headers.append(n, v);
            }
            _ => self.problem = Some(format!("header {name:?} is not valid")),
        }
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these parameters; the server's answer is
    /// checked against the offer.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::DeflateConfig;
    /// let b = tower_ws::client::ClientBuilder::new("ws://h/").unwrap().deflate(DeflateConfig::default());
    /// # drop(b);
    /// ```
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub fn deflate(mut self, config: crate::DeflateConfig) -> Self {
        self.offer.deflate = Some(config);
        self
    }

    /// The socket's settings: limits, buffer sizes, keepalive, close timeout. (Its handshake
    /// settings, `Origin` policy and the like, are a server's and are not used here.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::Config;
    /// let b = tower_ws::client::ClientBuilder::new("ws://h/")
    ///     .unwrap()
    ///     .config(Config::default().max_message_size(Some(1 << 20)));
    /// # drop(b);
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Connects through this HTTP proxy (`http://[user:password@]host[:port]`) with a
    /// `CONNECT` tunnel, whatever the environment says. Without this (or
    /// [`no_proxy`](ClientBuilder::no_proxy)), the proxy comes from the environment, as curl
    /// reads it: `http_proxy` for `ws://`, `https_proxy` for `wss://`, except for the hosts in
    /// `no_proxy` and loopback hosts.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("wss://example.com/feed")
    ///     .unwrap()
    ///     .proxy("http://proxy.corp.example:3128");
    /// # drop(b);
    /// ```
    pub fn proxy(mut self, uri: &str) -> Self {
        self.proxy = ProxyChoice::Explicit(uri.to_owned());
        self
    }

    /// Opens the WebSocket over HTTP/2 where the server offers it (RFC 8441: an extended
    /// `CONNECT` stream, so several sockets can share one connection's TLS): over TLS, ALPN
    /// offers `h2` before `http/1.1`, and a server that picks `h2` must announce
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`; a server that picks `http/1.1` gets the usual
    /// upgrade. With [`connect_on`](ClientBuilder::connect_on) and
    /// [`connect_service`](ClientBuilder::connect_service), HTTP/2 is spoken from the first
    /// byte (prior knowledge). `ws://` with [`connect`](ClientBuilder::connect) stays on
    /// HTTP/1.1. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("wss://example.com/").unwrap().http2(true);
    /// # drop(b);
    /// ```
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Connects directly, whatever the environment's proxy variables say.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("ws://example.com/").unwrap().no_proxy();
    /// # drop(b);
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::None;
        self
    }

    /// Bounds connecting and the handshake (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = tower_ws::client::ClientBuilder::new("ws://h/")
    ///     .unwrap()
    ///     .connect_timeout(std::time::Duration::from_secs(2));
    /// # drop(b);
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The TLS configuration for `wss://` (trusted roots, client certificates, ALPN...),
    /// instead of the default one (the webpki roots, or the system's with `native-roots`). An
    /// `Arc`: build it once and share it between connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_ws::client::{ClientBuilder, rustls};
    ///
    /// let mut roots = rustls::RootCertStore::empty();
    /// // roots.add(my_ca_certificate)?;
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let tls = Arc::new(
    ///     rustls::ClientConfig::builder_with_provider(provider)
    ///         .with_safe_default_protocol_versions()
    ///         .unwrap()
    ///         .with_root_certificates(roots)
    ///         .with_no_client_auth(),
    /// );
    /// let builder = ClientBuilder::new("wss://example.com/").unwrap().tls_config(tls);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Connects over TCP to the URI's host and port (80 for `ws://`, 443 for `wss://`), over
    /// TLS for `wss://`, and runs the handshake.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; `wss://` without the `rustls` feature is refused with
    /// [`ClientError::InvalidUri`] (bring a TLS stream to
    /// [`connect_on`](ClientBuilder::connect_on)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_ws::client::ClientError> {
    /// let (ws, _) = tower_ws::client::ClientBuilder::new("ws://127.0.0.1:9001/")?.connect().await?;
    /// # drop(ws); Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<(UpgradedWebSocket, Response<()>), ClientError> {
        let timeout = self.connect_timeout;
        bounded(timeout, async move {
            let alpn = if self.http2 { Alpn::H2OrH1 } else { Alpn::None };
            let (io, h2) = self.dial(alpn).await?;
            self.handshake_as(io, h2).await
        })
        .await
    }

    /// Opens one HTTP/2 connection to the URI's server, to carry many WebSockets as streams
    /// (RFC 8441): `wss://` negotiates `h2` with ALPN, `ws://` speaks HTTP/2 from the first
    /// byte (prior knowledge). The server must allow extended `CONNECT`
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`). Open sockets with [`Http2Connection::open`];
    /// each gets this builder's offer and settings.
    ///
    /// # Errors
    ///
    /// As for [`connect`](ClientBuilder::connect); a server that does not pick `h2` or does
    /// not allow extended `CONNECT` is a [`ClientError::Http`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_ws::client::ClientError> {
    /// use tower_ws::client::ClientBuilder;
    ///
    /// let connection = ClientBuilder::new("wss://example.com/")?.connect_http2().await?;
    /// let (prices, _) = connection.open("/prices").await?;
    /// let (news, _) = connection.open("/news").await?; // same TCP and TLS connection
    /// # drop((prices, news)); Ok(()) }
    /// ```
    pub async fn connect_http2(self) -> Result<Http2Connection, ClientError> {
        let timeout = self.connect_timeout;
        bounded(timeout, async move {
            let (io, h2) = self.dial(Alpn::H2Only).await?;
            let tls = self.uri.scheme_str() == Some("wss");
            if tls && !h2 {
                return Err(ClientError::Http(
                    "the server did not pick HTTP/2 (ALPN h2)".into(),
                ));
            }
            let send = h2_session(io).await?;
            Ok(Http2Connection {
                send,
                builder: self,
            })
        })
        .await
    }

    /// Connects to the URI's host (through a proxy, over TLS for `wss://`); returns the stream
    /// and whether ALPN picked HTTP/2.
    async fn dial(&self, alpn: Alpn) -> Result<(Box<dyn Io>, bool), ClientError> {
        let tls = match self.uri.scheme_str() {
            Some("ws") => false,
            Some("wss") if cfg!(feature = "rustls") => true,
            _ => {
                return Err(ClientError::InvalidUri(format!(
                    "{}: connect() dials ws:// (and wss:// with the `rustls` feature); \
                     for other streams, use connect_on()",
                    self.uri
                )));
            }
        };
        let host = self
            .uri
            .host()
            .ok_or_else(|| ClientError::InvalidUri(format!("{}: no host", self.uri)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = self.uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let proxy = match &self.proxy {
            ProxyChoice::Env => {
                proxy::Proxy::from_env(tls, &host, |name| std::env::var(name).ok())?
            }
            ProxyChoice::Explicit(uri) => Some(proxy::Proxy::parse(uri)?),
            ProxyChoice::None => None,
        };
        let tcp = match proxy {
            Some(proxy) => proxy.tunnel(&host, port).await?,
            None => tokio::net::TcpStream::connect((host.as_str(), port)).await?,
        };
        let _ = tcp.set_nodelay(true);
        #[cfg(feature = "rustls")]
        if tls {
            let mut config = match self.tls.clone() {
                Some(config) => config,
                None => tls::default_config()?,
            };
            let protocols: &[&[u8]] = match alpn {
                Alpn::None => &[],
                Alpn::H2OrH1 => &[b"h2", b"http/1.1"],
                Alpn::H2Only => &[b"h2"],
            };
            if !protocols.is_empty() {
                let mut with_alpn = (*config).clone();
                with_alpn.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
                config = std::sync::Arc::new(with_alpn);
            }
            let stream = tls::connect(config, &host, tcp).await?;
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            return Ok((Box::new(stream), h2));
        }
        let _ = alpn;
        // Over plain TCP only connect_http2 speaks HTTP/2 (prior knowledge).
        Ok((Box::new(tcp), matches!(alpn, Alpn::H2Only)))
    }

    /// Runs the handshake over `io`, a connection you opened (TLS, a Unix socket, a proxy
    /// tunnel, an in-memory pipe).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let tcp = tokio::net::TcpStream::connect("127.0.0.1:9001").await?;
    /// let (ws, _) = tower_ws::client::ClientBuilder::new("ws://127.0.0.1:9001/")?
    ///     .connect_on(tcp)
    ///     .await?;
    /// # drop(ws); Ok(()) }
    /// ```
    pub async fn connect_on<S>(
        self,
        io: S,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = self.connect_timeout;
        let h2 = self.http2;
        bounded(timeout, self.handshake_as(io, h2)).await
    }

    /// The handshake over HTTP/2 (`h2`) or HTTP/1.1.
    async fn handshake_as<S>(
        self,
        io: S,
        h2: bool,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if let Some(problem) = self.problem.clone() {
            return Err(ClientError::InvalidRequest(problem));
        }
        if h2 {
            self.handshake_h2(io).await
        } else {
            self.handshake_h1(io).await
        }
    }

    /// RFC 8441 §4-5: an extended `CONNECT` on a new stream of a new HTTP/2 connection.
    async fn handshake_h2<S>(self, io: S) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut send = h2_session(io).await?;
        self.open_stream(&mut send, &self.uri).await
    }

    /// Opens the WebSocket for `uri` on a stream of the HTTP/2 connection behind `send`.
    async fn open_stream(
        &self,
        send: &mut H2Sender,
        uri: &Uri,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError> {
        if let Some(problem) = self.problem.clone() {
            return Err(ClientError::InvalidRequest(problem));
        }
        let (pending, mut req) = request_h2(uri, self.offer.clone()).map_err(from_problem)?;
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        send.ready()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let res = send
            .send_request(req.map(|()| Body::empty()))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        self.finish(&pending, res, |status| status.is_success())
            .await
    }

    async fn handshake_h1<S>(
        mut self,
        io: S,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let offer = std::mem::take(&mut self.offer);
        let (pending, req) = request(&self.uri, offer).map_err(from_problem)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(conn.with_upgrades());
        let res = send
            .send_request(req.map(|()| Body::empty()))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        self.finish(&pending, res, |status| {
            status == StatusCode::SWITCHING_PROTOCOLS
        })
        .await
    }

    /// Checks the response (`accepted` tells the status that completes the handshake) and
    /// turns the upgraded stream into the socket.
    async fn finish(
        &self,
        pending: &Pending,
        res: Response<hyper::body::Incoming>,
        accepted: fn(StatusCode) -> bool,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError> {
        if !accepted(res.status()) {
            let (head, body) = res.into_parts();
            let body = read_some(body, MAX_REFUSAL_BODY).await;
            return Err(ClientError::Refused {
                status: head.status,
                response: Box::new(Response::from_parts(head, ())),
                body,
            });
        }
        let (head, body) = res.into_parts();
        let negotiated = pending.verify(&head).map_err(from_problem)?;
        let upgraded = hyper::upgrade::on(Response::from_parts(head.clone(), body))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let ws = WebSocket::with_negotiated(
            TokioIo::new(upgraded),
            Role::Client,
            self.config.socket(),
            negotiated,
        );
        Ok((ws, Response::from_parts(head, ())))
    }
}

/// What a TLS connection offers in ALPN.
#[derive(Debug, Clone, Copy)]
enum Alpn {
    /// Nothing (HTTP/1.1).
    None,
    /// `h2`, then `http/1.1`.
    H2OrH1,
    /// `h2` only.
    H2Only,
}

/// A dialed stream: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

type H2Sender = hyper::client::conn::http2::SendRequest<Body>;

/// Starts HTTP/2 over `io` and waits until the server allows extended `CONNECT`
/// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441 §3); the connection then runs in a task of its
/// own, for as long as a stream or a [`H2Sender`] uses it.
async fn h2_session<S>(io: S) -> Result<H2Sender, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, mut conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(io),
    )
    .await
    .map_err(|e| ClientError::Http(e.to_string()))?;
    // The server's SETTINGS come with its first frames: drive the connection until they allow
    // extended CONNECT, or give up.
    let enabled = std::future::poll_fn(|cx| {
        if conn.is_extended_connect_protocol_enabled() {
            return std::task::Poll::Ready(true);
        }
        match Pin::new(&mut conn).poll(cx) {
            std::task::Poll::Ready(_) => std::task::Poll::Ready(false),
            std::task::Poll::Pending if conn.is_extended_connect_protocol_enabled() => {
                std::task::Poll::Ready(true)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    });
    if !tokio::time::timeout(H2_SETTINGS_WAIT, enabled)
        .await
        .unwrap_or(false)
    {
        return Err(ClientError::Http(
            "the HTTP/2 server does not allow WebSockets (no SETTINGS_ENABLE_CONNECT_PROTOCOL, \
             RFC 8441)"
                .into(),
        ));
    }
    tokio::spawn(conn);
    Ok(send)
}

/// An HTTP/2 connection carrying WebSockets as streams (RFC 8441): several sockets share one
/// TCP (and TLS) connection. Made by [`ClientBuilder::connect_http2`]; cloning shares the
/// connection. The connection closes when the last clone and the last socket on it are gone.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), tower_ws::client::ClientError> {
/// let connection = tower_ws::client::ClientBuilder::new("wss://example.com/")?
///     .connect_http2()
///     .await?;
/// let (ws, _response) = connection.open("/feed?topic=prices").await?;
/// # drop(ws); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Http2Connection {
    send: H2Sender,
    builder: ClientBuilder,
}

impl std::fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("uri", &self.builder.uri)
            .field("closed", &self.send.is_closed())
            .finish()
    }
}

impl Http2Connection {
    /// Opens a WebSocket at `path_and_query` (`/chat?room=1`) on a new stream, with the
    /// builder's offer and settings.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidUri`] for a path that does not parse; a refusal, an unoffered
    /// subprotocol or extension as for [`ClientBuilder::connect`]; [`ClientError::Http`] once
    /// the connection is gone.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(connection: tower_ws::client::Http2Connection) -> Result<(), tower_ws::client::ClientError> {
    /// let (ws, _) = connection.open("/chat").await?;
    /// # drop(ws); Ok(()) }
    /// ```
    pub async fn open(
        &self,
        path_and_query: &str,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError> {
        let base = &self.builder.uri;
        let uri: Uri = format!(
            "{}://{}{path_and_query}",
            base.scheme_str().unwrap_or("wss"),
            base.authority().map_or("", |a| a.as_str())
        )
        .parse()
        .map_err(|e| ClientError::InvalidUri(format!("{path_and_query:?}: {e}")))?;
        let mut send = self.send.clone();
        bounded(
            self.builder.connect_timeout,
            self.builder.open_stream(&mut send, &uri),
        )
        .await
    }
}

/// Which proxy a connection goes through.
#[derive(Debug, Clone)]
enum ProxyChoice {
    /// The environment's (`http_proxy`, `https_proxy`, `no_proxy`).
    Env,
    Explicit(String),
    None,
}

fn from_problem(p: Problem) -> ClientError {
    match p {
        Problem::Uri(s) => ClientError::InvalidUri(s),
        Problem::Request(s) => ClientError::InvalidRequest(s),
        Problem::Accept(s) => ClientError::BadAccept(s),
        Problem::Protocol(s) => ClientError::ProtocolNotOffered(s),
        Problem::Extension(s) => ClientError::BadExtension(s),
    }
}

async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(ClientError::Timeout))
}

/// Up to `max` bytes of a body (what a refusal says), bounded by the caller's timeout.
async fn read_some(mut body: hyper::body::Incoming, max: usize) -> Bytes {
    use hyper::body::Body as _;
    let mut out = BytesMut::new();
    while out.len() < max {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(max - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            _ => break,
        }
    }
    out.freeze()
}
