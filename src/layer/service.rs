//! [`WebSocketService`]: the middleware service built by
//! [`WebSocketLayer`](super::WebSocketLayer).

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::{Request, Response};
use tower_service::Service;

use super::Settings;
use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::gate::Gate;
use super::handler::{Forward, UpgradeHandler};
use super::rejection::OnRejection;
use crate::handshake::HandshakeError;
use crate::upgrade::{self, UpgradeFuture};

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
    gate: Gate,
    handler: H,
    rejection: R,
}

impl<S, H, R> WebSocketService<S, H, R> {
    pub(crate) fn new(inner: S, settings: Settings, gate: Gate, handler: H, rejection: R) -> Self {
        Self {
            inner,
            settings,
            gate,
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

/// What the layer does with a request before its handler (or the inner service) sees it.
enum Admit<B, F> {
    /// Not ours: the inner service answers, untouched.
    Pass(Request<B>),
    /// Answered already (refused, or by the guard).
    Answered(ResponseFuture<F>),
    /// Ours: a selected upgrade request that passed the shutdown check and the guard.
    Take(Request<B>),
}

impl<S, H, R: OnRejection> WebSocketService<S, H, R> {
    fn admit<B, F>(&self, req: Request<B>) -> Admit<B, F> {
        if !upgrade::is_upgrade_request(&req) {
            // Untouched: not even an extension is added to plain HTTP traffic.
            return Admit::Pass(req);
        }
        let req = if self.gate.is_open() {
            req
        } else {
            let (mut parts, body) = req.into_parts();
            if !self.gate.selects(&parts) {
                return Admit::Pass(Request::from_parts(parts, body));
            }
            if let Some(refused) = self.shutting_down() {
                return Admit::Answered(refused);
            }
            if let Some(response) = self.gate.refusal(&mut parts) {
                return Admit::Answered(ResponseFuture::ready(response));
            }
            return Admit::Take(Request::from_parts(parts, body));
        };
        match self.shutting_down() {
            Some(refused) => Admit::Answered(refused),
            None => Admit::Take(req),
        }
    }

    fn shutting_down<F>(&self) -> Option<ResponseFuture<F>> {
        let refused = self.settings.shutdown.as_ref()?.check().err()?;
        Some(self.refuse(refused))
    }

    fn refuse<F>(&self, error: HandshakeError) -> ResponseFuture<F> {
        ResponseFuture::ready(self.rejection.on_rejection(error))
    }
}

/// Without a handler: selected upgrade requests go on to the inner service, with the layer's
/// settings in their extensions.
impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for WebSocketService<S, Forward, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: OnRejection,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.admit(req) {
            Admit::Pass(req) => ResponseFuture::inner(self.inner.call(req)),
            Admit::Answered(response) => response,
            Admit::Take(mut req) => {
                req.extensions_mut().insert(self.settings.clone());
                ResponseFuture::inner(self.inner.call(req))
            }
        }
    }
}

/// With a handler: selected upgrade requests are answered here and each socket runs with the
/// handler in a task of its own.
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

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut req = match self.admit(req) {
            Admit::Pass(req) => return ResponseFuture::inner(self.inner.call(req)),
            Admit::Answered(response) => return response,
            Admit::Take(req) => req,
        };
        let (response, socket) = match upgrade::upgrade(&mut req, &self.settings.config) {
            Ok(accepted) => accepted,
            Err(refused) => return self.refuse(refused),
        };
        let socket = match &self.settings.shutdown {
            Some(s) => socket.with_shutdown(s.watch()),
            None => socket,
        };
        let (parts, body) = req.into_parts();
        drop(body);
        tokio::spawn(socket_task(socket, self.handler.clone(), parts));
        ResponseFuture::ready(response)
    }
}

/// The task of one socket: the upgrade, then the handler. A client that vanishes before the
/// upgrade completes only ends this task.
///
/// `then`, not an `async` block: its two stages share their room, where an `async` block keeps
/// the request head, the upgrade's future and the socket's `Result` beside the handler's
/// future for the socket's whole life (about 1 KiB more per connection).
fn socket_task<H: UpgradeHandler>(
    socket: UpgradeFuture,
    handler: H,
    parts: http::request::Parts,
) -> impl Future<Output = ()> + Send + 'static {
    socket.then(move |upgraded| match upgraded {
        Ok(ws) => Either::Left(handler.call(ws, parts)),
        Err(_) => Either::Right(std::future::ready(())),
    })
}

impl<S: fmt::Debug, H, R> fmt::Debug for WebSocketService<S, H, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketService")
            .field("inner", &self.inner)
            .field("config", &self.settings.config)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UpgradedWebSocket;
    use crate::config::Config;

    fn future_size<H: UpgradeHandler>(_: &H) -> usize {
        std::mem::size_of::<H::Future>()
    }

    #[test]
    fn a_socket_task_is_no_larger_than_its_handler_future() {
        // A handler that keeps its socket (as every real one does) and waits.
        let handler = |ws: UpgradedWebSocket, _: http::request::Parts| async move {
            std::future::pending::<()>().await;
            drop(ws);
        };
        let mut req = Request::new(());
        let socket = UpgradeFuture::new(
            hyper::upgrade::on(&mut req),
            &Config::default(),
            crate::handshake::Negotiated::default(),
        );
        let (parts, ()) = req.into_parts();
        let task = socket_task(socket, handler, parts);
        // What the upgrade needs (its future, the handler, the request head) and what the
        // handler's future needs are never both kept: the task is the larger of the two.
        let upgrading = std::mem::size_of::<UpgradeFuture>()
            + std::mem::size_of_val(&handler)
            + std::mem::size_of::<http::request::Parts>();
        let bound = future_size(&handler).max(upgrading) + 16;
        assert!(
            std::mem::size_of_val(&task) <= bound,
            "a socket's task is {} bytes, over {bound}",
            std::mem::size_of_val(&task)
        );
    }
}
