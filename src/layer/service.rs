//! [`WebSocketService`]: the middleware service built by
//! [`WebSocketLayer`](super::WebSocketLayer).

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::Settings;
use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::handler::UpgradeHandler;
use super::rejection::OnRejection;
use crate::handshake::HandshakeError;
use crate::upgrade;

/// Answers WebSocket upgrade requests and passes everything else to `S`.
///
/// Built by [`WebSocketLayer`](super::WebSocketLayer); see there.
///
/// # Panics
///
/// Accepting an upgrade spawns a tokio task, so the service must be called within a tokio
/// runtime (as hyper servers on tokio are).
///
/// # Examples
///
/// ```
/// use tower::{Layer, service_fn};
/// use tower_ws::WebSocketLayer;
///
/// let inner = service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// });
/// let service = WebSocketLayer::new().layer(inner);
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct WebSocketService<S, H, R> {
    inner: S,
    settings: Settings,
    handler: H,
    rejection: R,
}

impl<S, H, R> WebSocketService<S, H, R> {
    pub(crate) fn new(inner: S, settings: Settings, handler: H, rejection: R) -> Self {
        Self {
            inner,
            settings,
            handler,
            rejection,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, H, R, ReqBody, ResBody> Service<Request<ReqBody>> for WebSocketService<S, H, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    H: UpgradeHandler,
    R: OnRejection,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if !upgrade::is_upgrade_request(&req) {
            // Untouched: not even an extension is added to plain HTTP traffic.
            return ResponseFuture::inner(self.inner.call(req));
        }
        let shutdown = self.settings.shutdown.clone();
        if let Err(refused) = shutdown.as_ref().map_or(Ok(()), |s| s.check()) {
            return self.refuse(refused);
        }
        if self.handler.forwards() {
            req.extensions_mut().insert(self.settings.clone());
            return ResponseFuture::inner(self.inner.call(req));
        }
        let (response, socket) = match upgrade::upgrade(&mut req, &self.settings.config) {
            Ok(accepted) => accepted,
            Err(refused) => return self.refuse(refused),
        };
        let socket = match &shutdown {
            Some(s) => socket.with_shutdown(s.watch()),
            None => socket,
        };
        let (parts, body) = req.into_parts();
        drop(body);
        let handler = self.handler.clone();
        // A client that vanishes before the upgrade completes only ends this task.
        tokio::spawn(async move {
            if let Ok(ws) = socket.await {
                handler.call(ws, parts).await;
            }
        });
        ResponseFuture::ready(response)
    }
}

impl<S, H, R: OnRejection> WebSocketService<S, H, R> {
    fn refuse<F>(&self, error: HandshakeError) -> ResponseFuture<F> {
        ResponseFuture::ready(self.rejection.on_rejection(error))
    }
}

impl<S: fmt::Debug, H, R> fmt::Debug for WebSocketService<S, H, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketService")
            .field("inner", &self.inner)
            .field("config", &self.settings.config)
            .finish_non_exhaustive()
    }
}
