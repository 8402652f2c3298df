//! Which upgrade requests a [`WebSocketLayer`](super::WebSocketLayer) takes, and the guard that
//! may answer them before the handshake ([`Refusal`]).

use std::fmt;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use crate::body::Body;

type Predicate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;
type Guard = Arc<dyn Fn(&mut Parts) -> Result<(), Refusal> + Send + Sync>;

/// The answer a [`guard`](super::WebSocketLayer::guard) sends instead of opening a socket.
///
/// # Examples
///
/// ```
/// use http::StatusCode;
/// use tower_ws::layer::Refusal;
///
/// let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "a bearer token is required");
/// let response = refusal.into_response();
/// assert_eq!(response.status(), 401);
///
/// // Any response will do.
/// let redirect = http::Response::builder()
///     .status(StatusCode::SEE_OTHER)
///     .header("location", "/login")
///     .body(tower_ws::Body::empty())
///     .unwrap();
/// assert_eq!(Refusal::from(redirect).into_response().status(), 303);
/// ```
pub struct Refusal(Box<Response<Body>>);

impl Refusal {
    /// A response with `status` and a plain-text `body`.
    pub fn new(status: StatusCode, body: impl Into<Body>) -> Self {
        let mut response = Response::new(body.into());
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Self(Box::new(response))
    }

    /// The response to send.
    pub fn into_response(self) -> Response<Body> {
        *self.0
    }
}

impl From<Response<Body>> for Refusal {
    fn from(response: Response<Body>) -> Self {
        Self(Box::new(response))
    }
}

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        Self(Box::new(response))
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("status", &self.0.status())
            .finish_non_exhaustive()
    }
}

/// The layer's selection: a path, a predicate and a guard, each optional.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    pub(crate) path: Option<Arc<str>>,
    pub(crate) when: Option<Predicate>,
    pub(crate) guard: Option<Guard>,
}

impl Gate {
    /// Whether nothing but "is it an upgrade request" decides (no head to inspect).
    pub(crate) fn is_open(&self) -> bool {
        self.path.is_none() && self.when.is_none() && self.guard.is_none()
    }

    /// Whether the layer takes this upgrade request (else it goes to the inner service).
    pub(crate) fn selects(&self, parts: &Parts) -> bool {
        self.path.as_deref().is_none_or(|p| parts.uri.path() == p)
            && self.when.as_ref().is_none_or(|when| when(parts))
    }

    /// Runs the guard on a selected request: the response to send instead, if it refused.
    pub(crate) fn refusal(&self, parts: &mut Parts) -> Option<Response<Body>> {
        let guard = self.guard.as_ref()?;
        guard(parts).err().map(Refusal::into_response)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("path", &self.path)
            .field("when", &self.when.is_some())
            .field("guard", &self.guard.is_some())
            .finish()
    }
}
