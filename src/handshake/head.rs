//! [`RequestHead`]: the handshake reads a request's head, whether it comes whole or in parts.

use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Uri, Version};

/// The head of an HTTP request: an [`http::Request`] (any body) or its [`http::request::Parts`].
///
/// Every function of the handshake takes either, so code that has already split a request (an
/// axum extractor, a tower middleware) validates the parts without rebuilding a request. The
/// trait is sealed: it is implemented for these two types only.
///
/// # Examples
///
/// ```
/// use tower_ws::handshake::{self, RequestHead};
///
/// let (parts, _body) = http::Request::get("/chat")
///     .header("connection", "upgrade")
///     .header("upgrade", "websocket")
///     .body(())
///     .unwrap()
///     .into_parts();
/// assert_eq!(RequestHead::uri(&parts).path(), "/chat");
/// assert!(handshake::is_http1_upgrade(&parts));
/// ```
pub trait RequestHead: sealed::Sealed {
    /// The request method.
    fn method(&self) -> &Method;
    /// The HTTP version.
    fn version(&self) -> Version;
    /// The request target.
    fn uri(&self) -> &Uri;
    /// The header fields.
    fn headers(&self) -> &HeaderMap;
    /// The extensions (hyper puts the HTTP/2 `:protocol` pseudo-header here).
    fn extensions(&self) -> &Extensions;
}

impl<B> RequestHead for Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }
    fn version(&self) -> Version {
        self.version()
    }
    fn uri(&self) -> &Uri {
        self.uri()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions(&self) -> &Extensions {
        self.extensions()
    }
}

impl RequestHead for Parts {
    fn method(&self) -> &Method {
        &self.method
    }
    fn version(&self) -> Version {
        self.version
    }
    fn uri(&self) -> &Uri {
        &self.uri
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

mod sealed {
    pub trait Sealed {}
    impl<B> Sealed for http::Request<B> {}
    impl Sealed for http::request::Parts {}
}
