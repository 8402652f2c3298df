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

use http::{Request, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::body::Body;
use crate::config::{Config, SocketConfig};
use crate::error::{Error, ErrorKind};
use crate::handshake::{self, HandshakeError, HandshakeErrorKind, Negotiated};
use crate::proto::Role;
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
pub fn upgrade<B>(
    req: &mut Request<B>,
    config: &Config,
) -> Result<(Response<Body>, UpgradeFuture), HandshakeError> {
    let accept = handshake::validate(req, config)?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or(HandshakeErrorKind::NotUpgradable)?;
    let response = accept.response();
    Ok((
        response,
        UpgradeFuture {
            on_upgrade,
            config: config.socket(),
            negotiated: Some(accept.into_negotiated()),
        },
    ))
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
}

impl Future for UpgradeFuture {
    type Output = Result<UpgradedWebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))
            .map_err(|e| Error::with_source(ErrorKind::Io, e))?;
        Poll::Ready(Ok(WebSocket::with_negotiated(
            TokioIo::new(upgraded),
            Role::Server,
            self.config,
            self.negotiated.take().unwrap_or_default(),
        )))
    }
}

impl fmt::Debug for UpgradeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeFuture")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}
