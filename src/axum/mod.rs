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
//! - A request that cannot be upgraded gets the status the crate's other doors give it:
//!   `500` when hyper's upgrade handle is missing (a server fault; axum: `426` without the
//!   `Upgrade` header a 426 must carry), `400` for HTTP/1.0 (axum: `426`). See
//!   [`ConnectionNotUpgradable`](rejection::ConnectionNotUpgradable).
//!
//! - [`Message`]'s `Debug` prints the payload's length, not the payload.
//!
//! The extra refusals have rejection types of their own in [`rejection`]. [`Utf8Bytes`] is the
//! crate's own `tower_ws::Utf8Bytes`, and [`Message`] converts to and from `tower_ws::Message`
//! with `From`; with feature `json`, `tower_ws::typed::Typed` carries serde types over a
//! [`WebSocket`] or its split halves.
//!
//! Settings come from a [`WebSocketLayer`](crate::WebSocketLayer) in front of the router, if
//! there is one (its [`Config`](crate::Config), including subprotocols and `Origin` policy, and its
//! [`Shutdown`](crate::Shutdown)); the extractor's setters change them for one connection.
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

mod message;
mod socket;
mod upgrade;

pub mod close_code;
pub mod rejection;

pub use self::message::{CloseCode, CloseFrame, Message, Utf8Bytes};
pub use self::socket::WebSocket;
pub use self::upgrade::{DefaultOnFailedUpgrade, OnFailedUpgrade, WebSocketUpgrade};
