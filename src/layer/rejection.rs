//! [`OnRejection`]: how a [`WebSocketLayer`](super::WebSocketLayer) answers a refused handshake.

use std::fmt;

use http::Response;

use crate::body::Body;
use crate::handshake::HandshakeError;

/// Builds the response to a refused upgrade request.
///
/// Implemented for [`DefaultRejection`] and for closures
/// `Fn(HandshakeError) -> Response<Body>`.
///
/// # Examples
///
/// ```
/// use http::Response;
/// use tower_ws::{Body, HandshakeError, WebSocketLayer};
///
/// let layer = WebSocketLayer::new().on_rejection(|e: HandshakeError| {
///     let mut res = e.into_response();
///     res.headers_mut().insert("x-websocket-refused", http::HeaderValue::from_static("1"));
///     res
/// });
/// # let _ = layer;
/// ```
pub trait OnRejection: Clone + Send + Sync + 'static {
    /// The response for `error`.
    fn on_rejection(&self, error: HandshakeError) -> Response<Body>;
}

impl<F> OnRejection for F
where
    F: Fn(HandshakeError) -> Response<Body> + Clone + Send + Sync + 'static,
{
    fn on_rejection(&self, error: HandshakeError) -> Response<Body> {
        self(error)
    }
}

/// The default [`OnRejection`]: [`HandshakeError::into_response`], the status the rule calls
/// for and a plain-text body that names the problem.
///
/// # Examples
///
/// ```
/// use tower_ws::handshake::HandshakeErrorKind;
/// use tower_ws::layer::{DefaultRejection, OnRejection};
///
/// let res = DefaultRejection::default().on_rejection(HandshakeErrorKind::OriginForbidden.into());
/// assert_eq!(res.status(), 403);
/// ```
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct DefaultRejection;

impl OnRejection for DefaultRejection {
    fn on_rejection(&self, error: HandshakeError) -> Response<Body> {
        error.into_response()
    }
}

impl fmt::Debug for DefaultRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultRejection")
    }
}
