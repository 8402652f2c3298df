//! Requests over one WebSocket into any tower `Service`: the same routes over HTTP and over a
//! socket.
//!
//! [`serve`] runs an upgraded socket against a `Service<http::Request<Body>>` (an axum
//! `Router`, a service with tower-http layers): each text message is a request envelope, each
//! response goes back as a reply envelope with the request's id. Requests run concurrently,
//! up to [`Rpc::in_flight`] at once (beyond it the socket is not read, so TCP pushes back on
//! the client); replies go out as they finish, in any order. What the handshake learned (an
//! authenticated user put in the upgrade request's extensions by a layer or extractor, the
//! client's address) is given with [`Rpc::extensions`] and copied into every request, so
//! extractors and layers see it. The server pushes with [`push`] to the hub's topics.
//!
//! # The envelope
//!
//! Every message is a JSON object in a text message.
//!
//! **Request** (client to server):
//!
//! | field | type | |
//! |---|---|---|
//! | `id` | positive integer | chosen by the client, unique among its requests in flight |
//! | `method` | string | an HTTP method (`GET`, `POST`, ...) |
//! | `target` | string | the path and query, starting with `/` (`/api/todos?done=true`) |
//! | `body` | string, optional | the request body (any other JSON value is sent serialized) |
//! | `headers` | object of strings, optional | request headers |
//!
//! **Reply** (server to client), one per request:
//!
//! | field | type | |
//! |---|---|---|
//! | `id` | integer | the request's |
//! | `code` | integer | the HTTP status code |
//! | `message` | string | the status's reason phrase (`OK`, `Not Found`) |
//! | `body` | string | the response body (invalid UTF-8 replaced by U+FFFD) |
//! | `headers` | object, optional | response headers, with [`Rpc::reply_headers`] |
//!
//! **Errors** are replies too, with `message` saying what was wrong and an empty `body`: `400`
//! for a message that is not a valid envelope (with `id` 0 when it had no usable id), an
//! unknown field, a `method` that is not an HTTP method, a `target` that is not a path; `409`
//! for an `id` already in flight; `413` for a body over [`Rpc::max_body`]; `500` when the
//! service fails or panics (for that request only; the connection stays open). A binary
//! message closes the connection with 1003 (unsupported data).
//!
//! **Push** (server to client, any time): `id` 0, `code` 200, `message` the topic's name,
//! `body` the payload, and the push's position in its topic: `epoch` (a string) and `offset`
//! (a number rising by one per push; see [`Position`](crate::Position)), so a client can tell
//! whether it missed one; see [`push`].
//!
//! # Examples
//!
//! An axum router served over HTTP and, at `/rpc`, over a WebSocket:
//!
//! ```no_run
//! use axum::{Router, routing::{any, get}};
//! use tower_ws::axum::WebSocketUpgrade;
//!
//! let api = Router::new().route("/api/hello", get(|| async { "hello" }));
//! let app = api.clone().route(
//!     "/rpc",
//!     any(move |ws: WebSocketUpgrade| {
//!         let api = api.clone();
//!         async move {
//!             ws.on_upgrade(move |socket| async move {
//!                 tower_ws::rpc::serve(socket.into_inner(), api).await;
//!             })
//!         }
//!     }),
//! );
//! // {"id":1,"method":"GET","target":"/api/hello"} → {"id":1,"code":200,"message":"OK","body":"hello"}
//! # drop(app);
//! ```

mod envelope;
mod serve;

pub use serve::{Rpc, push, serve};
