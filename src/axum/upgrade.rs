//! The extractor: [`WebSocketUpgrade`] validates the request, and its
//! [`on_upgrade`](WebSocketUpgrade::on_upgrade) answers it and hands the socket to a callback.
//!
//! # Examples
//!
//! ```
//! use axum::response::Response;
//! use tower_ws::axum::WebSocketUpgrade;
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(|_socket| async {})
//! }
//! # let _ = axum::Router::<()>::new().route("/ws", axum::routing::any(handler));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use ::axum::Error;
use ::axum::body::Body as AxumBody;
use ::axum::extract::FromRequestParts;
use ::axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::HeaderValue;
use http::request::Parts;
use hyper::upgrade::OnUpgrade;

use super::rejection::{self, WebSocketUpgradeRejection};
use super::socket::WebSocket;
use crate::config::Config;
use crate::handshake::{self, Accept, HandshakeErrorKind};
use crate::layer::Settings;
use crate::shutdown::Shutdown;
use crate::upgrade::UpgradeFuture;

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
        // `then`, not an `async` block: the upgrade's state and the callback's future share
        // their room instead of both being kept for the socket's whole life.
        tokio::spawn(socket.then(move |upgraded| match upgraded {
            Ok(inner) => Either::Left(callback(WebSocket::new(inner))),
            Err(error) => {
                on_failed_upgrade.call(Error::new(error));
                Either::Right(std::future::ready(()))
            }
        }));
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
        let accept = crate::upgrade::validate(&*parts, &settings.config)
            .map_err(rejection::from_handshake)?;
        let requested = handshake::requested_protocols(&*parts)
            .filter_map(|p| HeaderValue::from_str(p).ok())
            .collect();
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
