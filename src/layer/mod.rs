//! Tower middleware: [`WebSocketLayer`] gives any `Service<Request<B>>` WebSockets.
//!
//! Requests that do not ask for a WebSocket reach the inner service untouched. Upgrade requests
//! (HTTP/1.1 `Upgrade: websocket`, or an HTTP/2 extended `CONNECT`, RFC 8441) are validated
//! against the layer's [`Config`]: a refused one is answered by the [`OnRejection`] (by default
//! [`HandshakeError::into_response`](crate::HandshakeError::into_response)), an accepted one
//! with `101` (HTTP/2: `200`), and the connection is handed to the handler given to
//! [`on_upgrade`](WebSocketLayer::on_upgrade) in a task of its own.
//!
//! Without a handler the layer forwards upgrade requests too, carrying its settings in the
//! request extensions: the axum extractor `tower_ws::axum::WebSocketUpgrade` behind it uses
//! that [`Config`] and [`Shutdown`].
//!
//! # Examples
//!
//! An existing hyper service gains WebSockets with one `.layer(...)`:
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use hyper_util::rt::TokioIo;
//! use hyper_util::service::TowerToHyperService;
//! use tower::ServiceBuilder;
//! use tower_ws::{Config, OriginPolicy, UpgradedWebSocket, WebSocketLayer};
//!
//! async fn app(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::from("plain HTTP, as before")))
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let service = ServiceBuilder::new()
//!     .layer(
//!         WebSocketLayer::new()
//!             .config(Config::default().origin(OriginPolicy::Any))
//!             .on_upgrade(|mut ws: UpgradedWebSocket, _parts| async move {
//!                 while let Some(Ok(msg)) = ws.recv().await {
//!                     if ws.send(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             }),
//!     )
//!     .service_fn(app);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let service = TowerToHyperService::new(service.clone());
//!     tokio::spawn(
//!         hyper::server::conn::http1::Builder::new()
//!             // Slowloris: drop a client that trickles its request headers.
//!             .timer(hyper_util::rt::TokioTimer::new())
//!             .header_read_timeout(std::time::Duration::from_secs(10))
//!             .serve_connection(TokioIo::new(tcp), service)
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```

mod body;
mod future;
mod gate;
mod handler;
#[allow(clippy::module_inception)]
mod layer;
mod rejection;
mod service;

use std::sync::Arc;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use gate::Refusal;
pub use handler::{Forward, UpgradeHandler};
pub use layer::WebSocketLayer;
pub use rejection::{DefaultRejection, OnRejection};
pub use service::WebSocketService;

use crate::config::Config;
use crate::shutdown::Shutdown;

/// What a layer tells the doors behind it, through the request extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) config: Arc<Config>,
    pub(crate) shutdown: Option<Shutdown>,
}
