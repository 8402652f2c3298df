//! [`serve`]: the accept loop of a WebSocket server on hyper, so a handler is all you write.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture, Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::Body;
use crate::config::Config;
use crate::layer::{UpgradeHandler, WebSocketLayer};
use crate::shutdown::Shutdown;
use crate::upgrade;

/// Serves WebSockets on `listener` with `handler`: accepts connections, speaks HTTP/1.1 on
/// each (with a 10 s header timeout, so a client trickling its headers cannot hold a
/// connection), answers every upgrade request through a [`WebSocketLayer`] and runs the handler
/// for each socket in a task of its own. A request that is not a WebSocket upgrade is refused
/// with the handshake's answer (`426 Upgrade Required`, or `405` for a method other than
/// `GET`).
///
/// The returned [`Serve`] is configured by chaining and runs when awaited. It runs until an
/// accept fails with an error that is not about one connection, or until its
/// [`Shutdown`] starts (then it stops accepting and resolves, while the open sockets close
/// with 1001). To put WebSockets next to other routes, use [`WebSocketLayer`] or the axum
/// extractor instead.
///
/// # Examples
///
/// ```no_run
/// use tower_ws::{Config, OriginPolicy, UpgradedWebSocket};
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// tower_ws::serve(listener, |mut ws: UpgradedWebSocket, _parts| async move {
///     while let Some(Ok(msg)) = ws.recv().await {
///         if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
///             break;
///         }
///     }
/// })
/// .config(Config::default().origin(OriginPolicy::Any))
/// .await
/// # }
/// ```
pub fn serve<H: UpgradeHandler>(listener: TcpListener, handler: H) -> Serve<H> {
    Serve {
        listener,
        handler,
        config: Config::default(),
        shutdown: None,
        header_read_timeout: Duration::from_secs(10),
    }
}

/// A WebSocket server being set up; see [`serve`]. Await it to run it.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use tower_ws::{Shutdown, UpgradedWebSocket};
///
/// # async fn run() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let server = tower_ws::serve(listener, |mut ws: UpgradedWebSocket, _parts| async move {
///     while let Some(Ok(_)) = ws.recv().await {}
/// })
/// .shutdown(&shutdown)
/// .header_read_timeout(Duration::from_secs(5));
/// let running = tokio::spawn(server.into_future());
///
/// tokio::signal::ctrl_c().await?;
/// shutdown.shutdown(Duration::from_secs(5)).await;
/// running.await.expect("the server task")?;
/// # Ok(())
/// # }
/// ```
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve<H> {
    listener: TcpListener,
    handler: H,
    config: Config,
    shutdown: Option<Shutdown>,
    header_read_timeout: Duration,
}

impl<H: UpgradeHandler> Serve<H> {
    /// The settings for every handshake and connection. Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers every socket with `shutdown`; once it starts, new upgrades are refused with
    /// `503`, open sockets close with 1001, and the server stops accepting and resolves.
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// How long a client has to send its request head. Default: 10 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    async fn run(self) -> io::Result<()> {
        let mut layer = WebSocketLayer::new().config(self.config.clone());
        if let Some(shutdown) = &self.shutdown {
            layer = layer.shutdown(shutdown);
        }
        let service = layer.with_handler(self.handler).layer(RefusePlain {
            config: Arc::new(self.config),
        });
        let stopped = async {
            match &self.shutdown {
                Some(shutdown) => shutdown.started().await,
                None => std::future::pending().await,
            }
        };
        let mut stopped = std::pin::pin!(stopped);
        loop {
            let accepted = std::future::poll_fn(|cx| {
                if stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                self.listener.poll_accept(cx).map(Some)
            });
            let tcp = match accepted.await {
                None => return Ok(()),
                Some(Ok((tcp, _))) => tcp,
                // Errors about one connection (reset before accept) or a passing lack of
                // descriptors: back off a little instead of spinning or giving up.
                Some(Err(e)) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Some(Err(e)) => return Err(e),
            };
            let _ = tcp.set_nodelay(true);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.header_read_timeout)
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service.clone()))
                .with_upgrades();
            tokio::spawn(connection);
        }
    }
}

/// The service behind the layer: what reaches it is not a WebSocket upgrade, and gets the
/// handshake's refusal.
#[derive(Clone)]
struct RefusePlain {
    config: Arc<Config>,
}

impl Service<Request<Incoming>> for RefusePlain {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let response = match upgrade::validate(&req, &self.config) {
            Err(refused) => refused.into_response(),
            // Not reached behind a layer that takes every upgrade; answered sensibly anyway.
            Ok(_) => {
                let mut not_found = Response::new(Body::empty());
                *not_found.status_mut() = http::StatusCode::NOT_FOUND;
                not_found
            }
        };
        ready(Ok(response))
    }
}

fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

impl<H: UpgradeHandler> IntoFuture for Serve<H> {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<H> fmt::Debug for Serve<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .field("shutdown", &self.shutdown)
            .field("header_read_timeout", &self.header_read_timeout)
            .finish_non_exhaustive()
    }
}
