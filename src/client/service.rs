//! Testing without a port: a client connected to a tower service over an in-memory pipe, the
//! service served by hyper on the other end, so the real upgrade path runs.

use std::error::Error as StdError;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower_service::Service;

use super::{ClientBuilder, ClientError};
use crate::upgrade::UpgradedWebSocket;

/// The in-memory pipe's buffer in each direction.
const PIPE: usize = 64 << 10;

/// Connects a client to `service` (an axum `Router`, a service behind a
/// [`WebSocketLayer`](crate::WebSocketLayer), any tower service hyper can serve) over an
/// in-memory pipe: hyper serves the service on one end (HTTP/1.1 with upgrades, as a server
/// would; HTTP/2 with extended CONNECT when the builder asks for
/// [`http2`](ClientBuilder::http2)), the client handshakes on the other. `uri` gives the path, query and `Host`
/// (`ws://localhost/ws`).
///
/// # Errors
///
/// As for [`ClientBuilder::connect`]: a refusal comes back as [`ClientError::Refused`] with the
/// service's status and body.
///
/// # Examples
///
/// An axum route tested without binding a port:
///
/// ```
/// # #[cfg(feature = "axum")]
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, routing::any};
/// use tower_ws::axum::{Message, WebSocketUpgrade};
///
/// let app = Router::new().route("/ws", any(|ws: WebSocketUpgrade| async {
///     ws.on_upgrade(|mut socket| async move {
///         while let Some(Ok(Message::Text(text))) = socket.recv().await {
///             let _ = socket.send(Message::Text(format!("echo: {text}").into())).await;
///         }
///     })
/// }));
///
/// let (mut ws, _) = tower_ws::client::connect_service(app, "ws://localhost/ws").await.unwrap();
/// ws.send(tower_ws::Message::text("hi")).await.unwrap();
/// assert_eq!(ws.recv().await.unwrap().unwrap(), tower_ws::Message::text("echo: hi"));
/// # }
/// # #[cfg(not(feature = "axum"))] fn main() {}
/// ```
pub async fn connect_service<S, B>(
    service: S,
    uri: &str,
) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    ClientBuilder::new(uri)?.connect_service(service).await
}

impl ClientBuilder {
    /// [`connect_service`] with this builder's offer and settings.
    ///
    /// # Errors
    ///
    /// As for [`connect`](ClientBuilder::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::Layer;
    /// use tower_ws::client::ClientBuilder;
    /// use tower_ws::{Message, UpgradedWebSocket, WebSocketLayer};
    ///
    /// // A plain service that gains WebSockets through the layer.
    /// let service = WebSocketLayer::new()
    ///     .on_upgrade(|mut ws: UpgradedWebSocket, _parts| async move {
    ///         let _ = ws.send(Message::text("welcome")).await;
    ///     })
    ///     .layer(tower::service_fn(|_req| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(tower_ws::Body::empty()))
    ///     }));
    /// let (mut ws, _) = ClientBuilder::new("ws://localhost/")
    ///     .unwrap()
    ///     .connect_service(service)
    ///     .await
    ///     .unwrap();
    /// assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("welcome"));
    /// # }
    /// ```
    pub async fn connect_service<S, B>(
        self,
        service: S,
    ) -> Result<(UpgradedWebSocket, Response<()>), ClientError>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (client, server) = tokio::io::duplex(PIPE);
        let service = TowerToHyperService::new(service);
        if self.http2 {
            // RFC 8441 §3: the server announces that it takes WebSockets on HTTP/2 streams.
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(server), service),
            );
        } else {
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(server), service)
                    .with_upgrades(),
            );
        }
        self.connect_on(client).await
    }
}
