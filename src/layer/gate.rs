//! Which upgrade requests a [`WebSocketLayer`](super::WebSocketLayer) takes, and the guard that
//! may answer them before the handshake.

use std::fmt;
use std::sync::Arc;

use http::Response;
use http::request::Parts;

use crate::body::Body;

type Predicate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;
type Guard = Arc<dyn Fn(&mut Parts) -> Result<(), Response<Body>> + Send + Sync>;

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

    /// Runs the guard on a selected request: `Err` is the response to send instead.
    pub(crate) fn guard(&self, parts: &mut Parts) -> Result<(), Response<Body>> {
        self.guard.as_ref().map_or(Ok(()), |guard| guard(parts))
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
