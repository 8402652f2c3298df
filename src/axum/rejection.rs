//! Why [`WebSocketUpgrade`](super::WebSocketUpgrade) refused a request: the rejection
//! types of `axum::extract::ws::rejection`, plus the checks axum does not make.
//!
//! # Examples
//!
//! ```
//! use tower_ws::axum::rejection::{InvalidWebSocketVersionHeader, WebSocketUpgradeRejection};
//!
//! let rejection = WebSocketUpgradeRejection::from(InvalidWebSocketVersionHeader::default());
//! assert_eq!(rejection.status(), 426);
//! ```

use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, CONTENT_TYPE, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderName, HeaderValue, StatusCode};

use crate::handshake::{HandshakeError, HandshakeErrorKind};

fn respond(status: StatusCode, body: String, headers: &[(HeaderName, &'static str)]) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in headers {
        h.insert(name.clone(), HeaderValue::from_static(value));
    }
    res
}

macro_rules! define_rejection {
    (
        #[status = $status:ident]
        #[body = $body:literal]
        #[headers = [$(($hn:expr, $hv:literal)),*]]
        $(#[$m:meta])*
        pub struct $name:ident;
    ) => {
        $(#[$m])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub struct $name;

        impl $name {
            /// The response body text used for this rejection.
            pub fn body_text(&self) -> String {
                self.to_string()
            }

            /// The status code used for this rejection.
            pub fn status(&self) -> StatusCode {
                StatusCode::$status
            }
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                respond(self.status(), self.body_text(), &[$(($hn, $hv)),*])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($body)
            }
        }

        impl std::error::Error for $name {}

        impl Default for $name {
            fn default() -> Self {
                Self
            }
        }
    };
}

define_rejection! {
    #[status = METHOD_NOT_ALLOWED]
    #[body = "Request method must be `GET`"]
    #[headers = [(ALLOW, "GET")]]
    /// The HTTP/1.1 request method was not `GET` (405, `Allow: GET`).
    pub struct MethodNotGet;
}

define_rejection! {
    #[status = METHOD_NOT_ALLOWED]
    #[body = "Request method must be `CONNECT`"]
    #[headers = [(ALLOW, "CONNECT")]]
    /// The HTTP/2 request method was not `CONNECT` (405, `Allow: CONNECT`).
    pub struct MethodNotConnect;
}

define_rejection! {
    #[status = BAD_REQUEST]
    #[body = "Connection header did not include 'upgrade'"]
    #[headers = []]
    /// `Connection` did not list the `upgrade` token (400).
    pub struct InvalidConnectionHeader;
}

define_rejection! {
    #[status = UPGRADE_REQUIRED]
    #[body = "`Upgrade` header did not include 'websocket'"]
    #[headers = [(UPGRADE, "websocket"), (SEC_WEBSOCKET_VERSION, "13")]]
    /// `Upgrade` did not list `websocket` (426 with `Upgrade: websocket`; axum: 400).
    pub struct InvalidUpgradeHeader;
}

define_rejection! {
    #[status = BAD_REQUEST]
    #[body = "`:protocol` pseudo-header did not include 'websocket'"]
    #[headers = []]
    /// An HTTP/2 `CONNECT` whose `:protocol` was not `websocket` (400).
    pub struct InvalidProtocolPseudoheader;
}

define_rejection! {
    #[status = UPGRADE_REQUIRED]
    #[body = "`Sec-WebSocket-Version` header did not include '13'"]
    #[headers = [(UPGRADE, "websocket"), (SEC_WEBSOCKET_VERSION, "13")]]
    /// `Sec-WebSocket-Version` was missing or not 13 (426 with `Sec-WebSocket-Version: 13`,
    /// as RFC 6455 §4.4 asks; axum: 400).
    pub struct InvalidWebSocketVersionHeader;
}

define_rejection! {
    #[status = BAD_REQUEST]
    #[body = "`Sec-WebSocket-Key` header missing"]
    #[headers = []]
    /// `Sec-WebSocket-Key` was missing (400).
    pub struct WebSocketKeyHeaderMissing;
}

define_rejection! {
    #[status = BAD_REQUEST]
    #[body = "`Sec-WebSocket-Key` header must be one base64-encoded 16-byte value"]
    #[headers = []]
    /// `Sec-WebSocket-Key` was not one base64 value of 16 bytes (400; axum does not check).
    pub struct InvalidWebSocketKeyHeader;
}

define_rejection! {
    #[status = FORBIDDEN]
    #[body = "the request's `Origin` is not allowed to open WebSockets here"]
    #[headers = []]
    /// The `Origin` policy refused the request (403; axum does not check).
    pub struct OriginForbidden;
}

define_rejection! {
    #[status = SERVICE_UNAVAILABLE]
    #[body = "the server is shutting down and takes no new WebSocket connections"]
    #[headers = []]
    /// The server is shutting down ([`Shutdown`](crate::Shutdown); 503).
    pub struct ShuttingDown;
}

/// The request cannot be upgraded, with the same status as the other doors of this crate
/// ([`upgrade`](crate::upgrade()) and [`WebSocketLayer`](crate::WebSocketLayer)):
///
/// - `500 Internal Server Error` when the request came without hyper's upgrade handle (the
///   server connection does not support upgrades, a layer rebuilt the request without its
///   extensions, or the router was called without a server). The client did nothing wrong, and
///   cannot fix it by upgrading: this is the server's fault.
/// - `400 Bad Request` for a request older than HTTP/1.1 (RFC 6455 §4.1).
///
/// axum answers `426 Upgrade Required` in both cases, without the `Upgrade` header a 426 must
/// carry (RFC 9110 §15.5.22), which tells a client to upgrade when it just asked to.
///
/// # Examples
///
/// ```
/// use tower_ws::axum::rejection::ConnectionNotUpgradable;
///
/// assert_eq!(ConnectionNotUpgradable::default().status(), 500);
/// ```
#[derive(Debug)]
pub struct ConnectionNotUpgradable {
    kind: HandshakeErrorKind,
}

impl ConnectionNotUpgradable {
    /// The response body text used for this rejection.
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: 500, or 400 for a request older than
    /// HTTP/1.1.
    pub fn status(&self) -> StatusCode {
        HandshakeError::from(self.kind).status()
    }
}

impl Default for ConnectionNotUpgradable {
    /// The request came without hyper's upgrade handle (500).
    fn default() -> Self {
        Self {
            kind: HandshakeErrorKind::NotUpgradable,
        }
    }
}

impl IntoResponse for ConnectionNotUpgradable {
    fn into_response(self) -> Response {
        respond(self.status(), self.body_text(), &[])
    }
}

impl std::fmt::Display for ConnectionNotUpgradable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == HandshakeErrorKind::NotUpgradable {
            f.write_str("WebSocket request couldn't be upgraded since no upgrade state was present")
        } else {
            f.write_str(HandshakeError::from(self.kind).message())
        }
    }
}

impl std::error::Error for ConnectionNotUpgradable {}

/// Any other refused handshake, with the status and text of its [`HandshakeError`].
///
/// # Examples
///
/// ```
/// use tower_ws::axum::rejection::InvalidHandshake;
/// use tower_ws::handshake::HandshakeErrorKind;
///
/// let r = InvalidHandshake::from(tower_ws::HandshakeError::from(HandshakeErrorKind::MissingHost));
/// assert_eq!(r.status(), 400);
/// ```
#[derive(Debug)]
pub struct InvalidHandshake(HandshakeError);

impl InvalidHandshake {
    /// The response body text used for this rejection.
    pub fn body_text(&self) -> String {
        self.0.message().to_owned()
    }

    /// The status code used for this rejection.
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    /// The refused handshake.
    pub fn error(&self) -> &HandshakeError {
        &self.0
    }
}

impl From<HandshakeError> for InvalidHandshake {
    fn from(error: HandshakeError) -> Self {
        Self(error)
    }
}

impl IntoResponse for InvalidHandshake {
    fn into_response(self) -> Response {
        let res = self.0.into_response();
        res.map(axum::body::Body::new)
    }
}

impl std::fmt::Display for InvalidHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for InvalidHandshake {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

macro_rules! composite {
    ($(#[$m:meta])* pub enum $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[allow(missing_docs)]
                $variant($variant),
            )*
        }

        impl $name {
            /// The response body text used for this rejection.
            pub fn body_text(&self) -> String {
                match self {
                    $(Self::$variant(inner) => inner.body_text(),)*
                }
            }

            /// The status code used for this rejection.
            pub fn status(&self) -> StatusCode {
                match self {
                    $(Self::$variant(inner) => inner.status(),)*
                }
            }
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                match self {
                    $(Self::$variant(inner) => inner.into_response(),)*
                }
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(inner: $variant) -> Self {
                    Self::$variant(inner)
                }
            }
        )*

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Self::$variant(inner) => std::fmt::Display::fmt(inner, f),)*
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $(Self::$variant(inner) => inner.source(),)*
                }
            }
        }
    };
}

composite! {
    /// Rejection used for [`WebSocketUpgrade`](super::WebSocketUpgrade): one variant for
    /// each way the extractor can fail.
    pub enum WebSocketUpgradeRejection {
        MethodNotGet,
        MethodNotConnect,
        InvalidConnectionHeader,
        InvalidUpgradeHeader,
        InvalidProtocolPseudoheader,
        InvalidWebSocketVersionHeader,
        WebSocketKeyHeaderMissing,
        ConnectionNotUpgradable,
        InvalidWebSocketKeyHeader,
        OriginForbidden,
        ShuttingDown,
        InvalidHandshake,
    }
}

/// The axum-style rejection for a refused handshake.
pub(super) fn from_handshake(error: HandshakeError) -> WebSocketUpgradeRejection {
    use HandshakeErrorKind as K;
    match error.kind() {
        K::MethodNotGet => MethodNotGet.into(),
        K::MethodNotConnect => MethodNotConnect.into(),
        K::ConnectionNotUpgrade => InvalidConnectionHeader.into(),
        K::NotWebSocketUpgrade => InvalidUpgradeHeader.into(),
        K::NotWebSocketProtocol => InvalidProtocolPseudoheader.into(),
        K::MissingVersion | K::UnsupportedVersion => InvalidWebSocketVersionHeader.into(),
        K::MissingKey => WebSocketKeyHeaderMissing.into(),
        K::InvalidKey => InvalidWebSocketKeyHeader.into(),
        K::OriginForbidden => OriginForbidden.into(),
        K::ShuttingDown => ShuttingDown.into(),
        K::HttpVersion | K::NotUpgradable => ConnectionNotUpgradable { kind: error.kind() }.into(),
        _ => InvalidHandshake(error).into(),
    }
}
