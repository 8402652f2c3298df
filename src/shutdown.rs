//! Graceful shutdown: tell every open WebSocket the server is going away, let each finish its
//! close handshake, and refuse new upgrades meanwhile.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_ws::{Shutdown, WebSocketLayer};
//!
//! # async fn run() {
//! let shutdown = Shutdown::new();
//! let layer = WebSocketLayer::new()
//!     .shutdown(&shutdown)
//!     .on_upgrade(|mut ws: tower_ws::UpgradedWebSocket, _parts| async move {
//!         while let Some(Ok(_msg)) = ws.recv().await {}
//!     });
//! // ... serve with `layer` ...
//! # let _ = layer;
//! tokio::signal::ctrl_c().await.unwrap();
//! let still_open = shutdown.shutdown(Duration::from_secs(5)).await;
//! println!("{still_open} sockets did not finish in time");
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::handshake::{HandshakeError, HandshakeErrorKind};
use crate::signal::{Signal, Watch};
use crate::socket::WebSocket;

/// A handle to shut a server's WebSockets down gracefully. Cheap to clone; all clones are the
/// same handle.
///
/// Once [`shutdown`](Shutdown::shutdown) is called:
///
/// - every socket registered with the handle (by [`WebSocketLayer`](crate::WebSocketLayer),
///   the axum extractor behind such a layer, [`Shutdown::upgrade`] or [`Shutdown::register`])
///   queues a close frame with code 1001 (going away) after everything the application
///   already queued, so no queued message is lost. The socket acts when its stream is next
///   polled (a task waiting in `recv` is woken), then finishes the close handshake as usual: the
///   stream yields the peer's `Close` and ends. If the peer does not answer within the socket's
///   `close_timeout`, the stream ends with [`ErrorKind::CloseTimeout`](crate::ErrorKind);
/// - new upgrades are refused with `503 Service Unavailable`.
///
/// # Examples
///
/// ```
/// let shutdown = tower_ws::Shutdown::new();
/// assert!(!shutdown.is_shutting_down());
/// assert_eq!(shutdown.open_sockets(), 0);
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Signal>,
}

impl Shutdown {
    /// A new handle, not shutting down, with no sockets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves once [`shutdown`](Shutdown::shutdown) is called (at once if it was): stop
    /// accepting new connections then.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let shutdown = tower_ws::Shutdown::new();
    /// let watcher = shutdown.clone();
    /// let waiting = tokio::spawn(async move { watcher.started().await });
    /// shutdown.shutdown(std::time::Duration::ZERO).await;
    /// waiting.await.unwrap();
    /// # }
    /// ```
    pub async fn started(&self) {
        self.inner.fired().await;
    }

    /// Whether [`shutdown`](Shutdown::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.is_fired()
    }

    /// How many registered sockets are still open (not yet dropped).
    pub fn open_sockets(&self) -> usize {
        self.inner.live()
    }

    /// `Err` with a `503` [`HandshakeError`] once shutting down.
    ///
    /// # Errors
    ///
    /// [`HandshakeErrorKind::ShuttingDown`] after [`shutdown`](Shutdown::shutdown) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = tower_ws::Shutdown::new();
    /// assert!(shutdown.check().is_ok());
    /// ```
    pub fn check(&self) -> Result<(), HandshakeError> {
        if self.is_shutting_down() {
            // RFC 9110 §15.6.4: 503, the server is temporarily unable to handle the request.
            return Err(HandshakeErrorKind::ShuttingDown.into());
        }
        Ok(())
    }

    /// [`upgrade`](crate::upgrade()) that refuses with `503` while shutting down and registers the
    /// socket with this handle.
    ///
    /// # Errors
    ///
    /// As [`upgrade`](crate::upgrade()), plus [`HandshakeErrorKind::ShuttingDown`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handle(shutdown: tower_ws::Shutdown, mut req: http::Request<hyper::body::Incoming>)
    /// # -> http::Response<tower_ws::Body> {
    /// match shutdown.upgrade(&mut req, &tower_ws::Config::default()) {
    ///     Ok((response, ws)) => {
    ///         tokio::spawn(async move {
    ///             let Ok(mut ws) = ws.await else { return };
    ///             while let Some(Ok(_)) = ws.recv().await {}
    ///         });
    ///         response
    ///     }
    ///     Err(refused) => refused.into_response(),
    /// }
    /// # }
    /// ```
    pub fn upgrade<B>(
        &self,
        req: &mut http::Request<B>,
        config: &crate::Config,
    ) -> Result<(http::Response<crate::Body>, crate::UpgradeFuture), HandshakeError> {
        self.check()?;
        let (response, fut) = crate::upgrade(req, config)?;
        Ok((response, fut.with_shutdown(self.watch())))
    }

    /// Registers a socket with this handle (if already shutting down, it starts closing when
    /// next polled).
    ///
    /// # Examples
    ///
    /// ```
    /// let (io, _peer) = tokio::io::duplex(64);
    /// let mut ws = tower_ws::WebSocket::from_raw(io, tower_ws::Role::Server, &Default::default());
    /// let shutdown = tower_ws::Shutdown::new();
    /// shutdown.register(&mut ws);
    /// assert_eq!(shutdown.open_sockets(), 1);
    /// drop(ws);
    /// assert_eq!(shutdown.open_sockets(), 0);
    /// ```
    pub fn register<S>(&self, ws: &mut WebSocket<S>) {
        ws.watch_shutdown(self.watch());
    }

    pub(crate) fn watch(&self) -> Watch {
        self.inner.watch()
    }

    /// Starts the shutdown and waits until every registered socket is dropped, or `grace` has
    /// passed. Returns how many sockets were still open then (0 on a clean shutdown).
    ///
    /// # Cancel safety
    ///
    /// Cancelling the wait does not undo the shutdown; sockets keep closing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let shutdown = tower_ws::Shutdown::new();
    /// let open = shutdown.shutdown(std::time::Duration::from_secs(1)).await;
    /// assert_eq!(open, 0);
    /// assert!(shutdown.is_shutting_down());
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.inner.fire();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.inner.idle();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            let open = self.open_sockets();
            if open == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.open_sockets();
            }
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("shutting_down", &self.is_shutting_down())
            .field("open_sockets", &self.open_sockets())
            .finish()
    }
}
