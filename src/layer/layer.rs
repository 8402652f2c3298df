//! [`WebSocketLayer`]: the tower `Layer`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;
use tower_layer::Layer;

use super::Settings;
use super::gate::{Gate, Refusal};
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
    gate: Gate,
    handler: H,
    rejection: R,
}

impl WebSocketLayer {
    /// A layer with the default [`Config`] that forwards upgrade requests to the inner service
    /// (see [`Forward`]); give it a handler with [`on_upgrade`](WebSocketLayer::on_upgrade).
    pub fn new() -> Self {
        Self {
            settings: Settings::default(),
            gate: Gate::default(),
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
            gate: self.gate,
            handler,
            rejection: self.rejection,
        }
    }

    /// [`on_upgrade`](Self::on_upgrade) for any [`UpgradeHandler`] (closures get their
    /// argument types inferred through `on_upgrade`).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn with_handler<H2: UpgradeHandler>(self, handler: H2) -> WebSocketLayer<H2, R> {
        WebSocketLayer {
            settings: self.settings,
            gate: self.gate,
            handler,
            rejection: self.rejection,
        }
    }

    /// Answers refused upgrade requests with `rejection` instead of
    /// [`HandshakeError::into_response`](crate::HandshakeError::into_response).
    pub fn on_rejection<R2: OnRejection>(self, rejection: R2) -> WebSocketLayer<H, R2> {
        WebSocketLayer {
            settings: self.settings,
            gate: self.gate,
            handler: self.handler,
            rejection,
        }
    }

    /// Takes upgrade requests for this path only; upgrade requests for any other path go to
    /// the inner service as they are (its routes and its 404s answer them). Plain HTTP requests
    /// always go to the inner service. Combines with [`when`](Self::when): both must agree.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// use tower_ws::WebSocketLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let app = service_fn(|_req: http::Request<()>| async {
    ///     let mut not_found = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
    ///     *not_found.status_mut() = http::StatusCode::NOT_FOUND;
    ///     Ok::<_, std::convert::Infallible>(not_found)
    /// });
    /// let mut service = WebSocketLayer::new()
    ///     .path("/ws")
    ///     .on_upgrade(|_ws, _parts| async {})
    ///     .layer(app);
    ///
    /// // An upgrade request for another path is the app's to answer: here, a 404.
    /// let elsewhere = http::Request::get("/anything")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "websocket")
    ///     .body(())
    ///     .unwrap();
    /// let response = service.ready().await.unwrap().call(elsewhere).await.unwrap();
    /// assert_eq!(response.status(), 404);
    /// # }
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.gate.path = Some(path.into().into());
        self
    }

    /// Takes only the upgrade requests whose head `predicate` accepts; the others go to the
    /// inner service as they are. Combines with [`path`](Self::path): both must agree.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::WebSocketLayer;
    ///
    /// // Sockets under /live/, everything else for the inner service.
    /// let layer = WebSocketLayer::new()
    ///     .when(|parts: &http::request::Parts| parts.uri.path().starts_with("/live/"))
    ///     .on_upgrade(|_ws, _parts| async {});
    /// # let _ = layer;
    /// ```
    pub fn when<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.gate.when = Some(Arc::new(predicate));
        self
    }

    /// Runs `guard` on every upgrade request the layer takes, before the handshake: `Err`
    /// answers the request with that [`Refusal`] (a `401` from an auth check, say) and no
    /// socket is opened. The guard may add extensions to the request head (the authenticated user):
    /// the handler given to [`on_upgrade`](Self::on_upgrade) receives them in its `Parts`, and
    /// without a handler the inner service sees them.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_ws::layer::Refusal;
    /// use tower_ws::{UpgradedWebSocket, WebSocketLayer};
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// let layer = WebSocketLayer::new()
    ///     .path("/ws")
    ///     .guard(|parts: &mut http::request::Parts| {
    ///         match parts.headers.get("authorization").and_then(|v| v.to_str().ok()) {
    ///             Some("Bearer demo-token") => {
    ///                 parts.extensions.insert(User("demo".into()));
    ///                 Ok(())
    ///             }
    ///             _ => Err(Refusal::new(StatusCode::UNAUTHORIZED, "a bearer token is required")),
    ///         }
    ///     })
    ///     .on_upgrade(|_ws: UpgradedWebSocket, parts: http::request::Parts| async move {
    ///         let user = parts.extensions.get::<User>().expect("set by the guard");
    ///         println!("{} connected", user.0);
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn guard<F>(mut self, guard: F) -> Self
    where
        F: Fn(&mut Parts) -> Result<(), Refusal> + Send + Sync + 'static,
    {
        self.gate.guard = Some(Arc::new(guard));
        self
    }
}

impl<S, H, R> Layer<S> for WebSocketLayer<H, R>
where
    H: Clone,
    R: OnRejection,
{
    type Service = WebSocketService<S, H, R>;

    fn layer(&self, inner: S) -> Self::Service {
        WebSocketService::new(
            inner,
            self.settings.clone(),
            self.gate.clone(),
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
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}
