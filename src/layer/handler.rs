//! [`UpgradeHandler`]: what a [`WebSocketLayer`](super::WebSocketLayer) does with an accepted
//! WebSocket.

use std::fmt;
use std::future::Future;

use http::request::Parts;

use crate::upgrade::UpgradedWebSocket;

/// Runs an accepted WebSocket. Each connection runs in a task of its own; a panic in it ends
/// that task only.
///
/// Implemented for closures `Fn(UpgradedWebSocket, http::request::Parts) -> impl Future<Output
/// = ()>`: they get the socket (its [`protocol`](crate::WebSocket::protocol) is the negotiated
/// subprotocol) and the head of the upgrade request (path, query, headers, extensions). A layer
/// without a handler uses [`Forward`] instead, which is not an `UpgradeHandler`: whether a
/// layer answers upgrades or forwards them is decided by its type.
///
/// Keep only what the connection needs from `parts`: a future that holds the whole head holds
/// its headers for the socket's life (measured: about 4 KiB per idle connection, more than the
/// socket itself). Take the path or a header value out before the `async` block.
///
/// # Examples
///
/// ```
/// use tower_ws::{Message, UpgradedWebSocket, WebSocketLayer};
///
/// let layer = WebSocketLayer::new().on_upgrade(|mut ws: UpgradedWebSocket, parts: http::request::Parts| {
///     let greeting = format!("welcome to {}", parts.uri.path());
///     async move {
///         let _ = ws.send(Message::text(greeting)).await;
///     }
/// });
/// # let _ = layer;
/// ```
pub trait UpgradeHandler: Clone + Send + Sync + 'static {
    /// The future that runs the connection.
    type Future: Future<Output = ()> + Send + 'static;

    /// Runs `ws`, accepted from the request whose head is `parts`.
    fn call(&self, ws: UpgradedWebSocket, parts: Parts) -> Self::Future;
}

impl<F, Fut> UpgradeHandler for F
where
    F: Fn(UpgradedWebSocket, Parts) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, ws: UpgradedWebSocket, parts: Parts) -> Fut {
        self(ws, parts)
    }
}

/// The handler of a layer without [`on_upgrade`](super::WebSocketLayer::on_upgrade): upgrade
/// requests go on to the inner service (an axum route with
/// `tower_ws::axum::WebSocketUpgrade`, or your own [`upgrade`](crate::upgrade()) call) with the
/// layer's settings in their extensions. While shutting down they are refused with `503`.
///
/// # Examples
///
/// ```
/// let layer: tower_ws::WebSocketLayer<tower_ws::layer::Forward> = tower_ws::WebSocketLayer::new();
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct Forward;

impl fmt::Debug for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Forward")
    }
}
