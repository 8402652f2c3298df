//! The loop: envelopes in, service calls in flight, replies out.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::future::{Future, IntoFuture, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::{Extensions, Request, Response, StatusCode};
use tower_service::Service;

use super::envelope::{self, Refusal};
use crate::hub::{Hub, PreparedMessage};
use crate::message::{CloseCode, Message};
use crate::upgrade::UpgradedWebSocket;
use crate::{Body, Utf8Bytes};

/// Requests in flight at once, by default.
const IN_FLIGHT: usize = 64;
/// The largest request body, by default.
const MAX_BODY: usize = 1 << 20;
/// The largest response body sent back; a larger one is answered 500.
const MAX_REPLY: usize = 16 << 20;

/// Serves requests arriving on `ws` with `service` until the socket closes; configure with
/// the returned [`Rpc`], then await it.
///
/// # Examples
///
/// ```no_run
/// use tower_ws::UpgradedWebSocket;
///
/// async fn handle(ws: UpgradedWebSocket, parts: http::request::Parts) {
///     let api = tower::service_fn(|req: http::Request<tower_ws::Body>| async move {
///         let text = format!("you asked for {}", req.uri());
///         Ok::<_, std::convert::Infallible>(http::Response::new(tower_ws::Body::from(text)))
///     });
///     tower_ws::rpc::serve(ws, api)
///         .extensions(parts.extensions) // what the handshake learned, in every request
///         .in_flight(16)
///         .await;
/// }
/// # let _ = handle;
/// ```
pub fn serve<S>(ws: UpgradedWebSocket, service: S) -> Rpc<S> {
    Rpc {
        ws,
        service,
        in_flight: IN_FLIGHT,
        max_body: MAX_BODY,
        extensions: Extensions::new(),
        reply_headers: false,
    }
}

/// Publishes `body` to the hub's `topic` as a push envelope (`id` 0, `message` the topic,
/// `epoch` and `offset` its position in the topic): every RPC socket attached to the hub and
/// subscribed to `topic` receives it (encoded once for all). Returns how many sockets on this
/// node queued it.
///
/// # Examples
///
/// ```
/// let hub = tower_ws::hub::Hub::new();
/// assert_eq!(tower_ws::rpc::push(&hub, "todos", r#"{"changed":3}"#), 0);
/// ```
pub fn push(hub: &Hub, topic: &str, body: &str) -> usize {
    hub.publish_with(topic, |at| {
        PreparedMessage::text(Utf8Bytes::from(envelope::push(topic, body, at)))
    })
    .subscribers
}

/// A socket being served with a service; see [`serve`]. Await it to run it.
#[must_use = "an Rpc does nothing until awaited"]
pub struct Rpc<S> {
    ws: UpgradedWebSocket,
    service: S,
    in_flight: usize,
    max_body: usize,
    extensions: Extensions,
    reply_headers: bool,
}

impl<S> std::fmt::Debug for Rpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("in_flight", &self.in_flight)
            .field("max_body", &self.max_body)
            .field("reply_headers", &self.reply_headers)
            .finish_non_exhaustive()
    }
}

impl<S> Rpc<S> {
    /// At most this many requests run at once (default 64, at least 1); the socket is not read
    /// while that many are in flight.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(ws: tower_ws::UpgradedWebSocket, api: tower::util::BoxCloneSyncService<http::Request<tower_ws::Body>, http::Response<tower_ws::Body>, std::convert::Infallible>) {
    /// tower_ws::rpc::serve(ws, api).in_flight(8).await;
    /// # }
    /// ```
    pub fn in_flight(mut self, limit: usize) -> Self {
        self.in_flight = limit.max(1);
        self
    }

    /// Request bodies over this many bytes are refused with 413 (default 1 MiB).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(ws: tower_ws::UpgradedWebSocket, api: tower::util::BoxCloneSyncService<http::Request<tower_ws::Body>, http::Response<tower_ws::Body>, std::convert::Infallible>) {
    /// tower_ws::rpc::serve(ws, api).max_body(64 << 10).await;
    /// # }
    /// ```
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Extensions copied into every request: usually the upgrade request's, so that what a
    /// layer or extractor learned at the handshake (the authenticated user, the client's
    /// address) reaches every handler.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(ws: tower_ws::UpgradedWebSocket, parts: http::request::Parts, api: tower::util::BoxCloneSyncService<http::Request<tower_ws::Body>, http::Response<tower_ws::Body>, std::convert::Infallible>) {
    /// tower_ws::rpc::serve(ws, api).extensions(parts.extensions).await;
    /// # }
    /// ```
    pub fn extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// Whether replies carry the response's headers (default: no).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(ws: tower_ws::UpgradedWebSocket, api: tower::util::BoxCloneSyncService<http::Request<tower_ws::Body>, http::Response<tower_ws::Body>, std::convert::Infallible>) {
    /// tower_ws::rpc::serve(ws, api).reply_headers(true).await;
    /// # }
    /// ```
    pub fn reply_headers(mut self, on: bool) -> Self {
        self.reply_headers = on;
        self
    }
}

type Reply = Pin<Box<dyn Future<Output = (u64, String)> + Send>>;

impl<S, B> Rpc<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    async fn run(self) {
        let Self {
            mut ws,
            service,
            in_flight,
            max_body,
            extensions,
            reply_headers,
        } = self;
        let mut running: FuturesUnordered<Reply> = FuturesUnordered::new();
        let mut ids: HashSet<u64> = HashSet::new();
        loop {
            let reply = tokio::select! {
                Some((id, text)) = running.next(), if !running.is_empty() => {
                    ids.remove(&id);
                    text
                }
                msg = ws.recv(), if running.len() < in_flight => match msg {
                    Some(Ok(Message::Text(text))) => match envelope::parse(&text, max_body) {
                        Ok((id, _)) if ids.contains(&id) => envelope::error(&Refusal {
                            id,
                            code: StatusCode::CONFLICT,
                            message: format!("id {id} is already in flight"),
                        }),
                        Ok((id, req)) => {
                            ids.insert(id);
                            let mut req = req.map(Body::from);
                            req.extensions_mut().extend(extensions.clone());
                            running.push(call(service.clone(), id, req, reply_headers));
                            continue;
                        }
                        Err(refusal) => envelope::error(&refusal),
                    },
                    Some(Ok(Message::Binary(_))) => {
                        // RFC 6455 §7.4.1: 1003, a kind of data the endpoint cannot accept.
                        let _ = ws
                            .close(CloseCode::UNSUPPORTED_DATA, "binary messages are not envelopes")
                            .await;
                        return;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return,
                },
            };
            if ws.send(Message::text(reply)).await.is_err() {
                return;
            }
        }
    }
}

/// Runs one request: ready, call, read the body (bounded); a failure or a panic is a 500 for
/// this id only.
fn call<S, B>(mut service: S, id: u64, req: Request<Body>, reply_headers: bool) -> Reply
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    Box::pin(async move {
        let outcome = AssertUnwindSafe(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|e| e.into().to_string())?;
            let res = service.call(req).await.map_err(|e| e.into().to_string())?;
            let (head, body) = res.into_parts();
            let body = collect(body, MAX_REPLY).await?;
            Ok::<_, String>((head, body))
        })
        .catch_unwind()
        .await;
        let text = match outcome {
            Ok(Ok((head, body))) => envelope::reply(
                id,
                head.status,
                reply_headers.then_some(&head.headers),
                &body,
            ),
            Ok(Err(why)) => envelope::error(&Refusal {
                id,
                code: StatusCode::INTERNAL_SERVER_ERROR,
                message: why,
            }),
            Err(_) => envelope::error(&Refusal {
                id,
                code: StatusCode::INTERNAL_SERVER_ERROR,
                message: "the handler panicked".into(),
            }),
        };
        (id, text)
    })
}

/// The whole body, up to `max` bytes.
async fn collect<B>(body: B, max: usize) -> Result<Bytes, String>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    use bytes::Buf;
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| e.into().to_string())?;
        if let Ok(mut data) = frame.into_data() {
            if out.len() + data.remaining() > max {
                return Err(format!("the response body is over {max} bytes"));
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                out.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(out.freeze())
}

impl<S, B> IntoFuture for Rpc<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
