//! [`WebSocketLayer`]: the tower `Layer`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;
use tower_layer::Layer;

use super::Settings;
use super::handler::{Forward, UpgradeHandler};
use super::rejection::{DefaultRejection, OnRejection};
use super::service::WebSocketService;
use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::upgrade::UpgradedWebSocket;

/// A tower [`Layer`] that answers WebSocket upgrade requests and passes everything else to the
/// service it wraps. See the [module docs](super) for a full server.
///
/// [`Layer`]: https://docs.rs/tower-layer/0.3/tower_layer/trait.Layer.html
///
/// # Examples
///
/// ```
/// use tower_ws::{Config, UpgradedWebSocket, WebSocketLayer};
///
/// let layer = WebSocketLayer::new()
///     .config(Config::default().protocols(["chat.v1"]))
///     .on_upgrade(|ws: UpgradedWebSocket, _parts| async move {
///         assert!(ws.protocol().is_none_or(|p| p == "chat.v1"));
///     });
/// # let _ = layer;
/// ```
#[derive(Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct WebSocketLayer<H = Forward, R = DefaultRejection> {
    settings: Settings,
    handler: H,
    rejection: R,
}

impl WebSocketLayer {
    /// A layer with the default [`Config`] that forwards upgrade requests to the inner service
    /// (see [`Forward`]); give it a handler with [`on_upgrade`](WebSocketLayer::on_upgrade).
    pub fn new() -> Self {
        Self {
            settings: Settings::default(),
            handler: Forward,
            rejection: DefaultRejection,
        }
    }
}

impl Default for WebSocketLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<H, R> WebSocketLayer<H, R> {
    /// The settings for the handshake and every connection (also seen by the axum extractor
    /// behind this layer).
    pub fn config(mut self, config: Config) -> Self {
        self.settings.config = Arc::new(config);
        self
    }

    /// Registers every socket with `shutdown`, and refuses upgrades with `503` once it started.
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.settings.shutdown = Some(shutdown.clone());
        self
    }

    /// Answers upgrade requests here and runs each accepted socket with `handler`, in a task
    /// of its own. The handler gets the socket and the head of the upgrade request.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{UpgradedWebSocket, WebSocketLayer};
    ///
    /// let layer = WebSocketLayer::new().on_upgrade(|mut ws: UpgradedWebSocket, _parts| async move {
    ///     while let Some(Ok(msg)) = ws.recv().await {
    ///         println!("{msg:?}");
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    pub fn on_upgrade<F, Fut>(self, handler: F) -> WebSocketLayer<F, R>
    where
        F: Fn(UpgradedWebSocket, Parts) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        WebSocketLayer {
            settings: self.settings,
            handler,
            rejection: self.rejection,
        }
    }

    /// Answers refused upgrade requests with `rejection` instead of
    /// [`HandshakeError::into_response`](crate::HandshakeError::into_response).
    pub fn on_rejection<R2: OnRejection>(self, rejection: R2) -> WebSocketLayer<H, R2> {
        WebSocketLayer {
            settings: self.settings,
            handler: self.handler,
            rejection,
        }
    }
}

impl<S, H, R> Layer<S> for WebSocketLayer<H, R>
where
    H: UpgradeHandler,
    R: OnRejection,
{
    type Service = WebSocketService<S, H, R>;

    fn layer(&self, inner: S) -> Self::Service {
        WebSocketService::new(
            inner,
            self.settings.clone(),
            self.handler.clone(),
            self.rejection.clone(),
        )
    }
}

impl<H, R> fmt::Debug for WebSocketLayer<H, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketLayer")
            .field("config", &self.settings.config)
            .field("shutdown", &self.settings.shutdown)
            .finish_non_exhaustive()
    }
}
