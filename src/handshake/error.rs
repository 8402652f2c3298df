//! Why a handshake was refused, and the HTTP answer for it.

use std::fmt;

use http::header::{ALLOW, CONTENT_TYPE, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderValue, Response, StatusCode};

use crate::body::Body;

/// A refused WebSocket handshake. It knows its HTTP status, and its response body says what was
/// wrong.
///
/// # Examples
///
/// ```
/// let req = http::Request::post("/").body(()).unwrap();
/// let err = tower_ws::handshake::validate(&req, &tower_ws::Config::default()).unwrap_err();
/// assert_eq!(err.status(), 405);
/// let response = err.into_response();
/// assert_eq!(response.headers()["allow"], "GET");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeError {
    kind: HandshakeErrorKind,
    /// What the request cannot know, added to the message (the protocols the server speaks).
    detail: Option<Box<str>>,
}

/// The rule a refused handshake broke.
///
/// # Examples
///
/// ```
/// use tower_ws::handshake::{HandshakeError, HandshakeErrorKind};
///
/// let err = HandshakeError::from(HandshakeErrorKind::UnsupportedVersion);
/// assert_eq!(err.status(), 426);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeErrorKind {
    /// The method was not `GET` (405).
    MethodNotGet,
    /// The request was older than HTTP/1.1 (400).
    HttpVersion,
    /// `Upgrade` did not list `websocket` (426).
    NotWebSocketUpgrade,
    /// `Connection` did not list `upgrade` (400).
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Version` was missing (426).
    MissingVersion,
    /// `Sec-WebSocket-Version` was not 13 (426).
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` was missing (400).
    MissingKey,
    /// `Sec-WebSocket-Key` was not one base64 value of 16 bytes (400).
    InvalidKey,
    /// Neither `Host` nor a URI authority named the server (400).
    MissingHost,
    /// The `Origin` policy refused the request (403).
    OriginForbidden,
    /// An HTTP/2 request for a WebSocket did not use the `CONNECT` method (405).
    MethodNotConnect,
    /// An HTTP/2 `CONNECT` request whose `:protocol` is not `websocket` (400).
    NotWebSocketProtocol,
    /// `Sec-WebSocket-Extensions` did not follow the extension-list grammar (400).
    InvalidExtensions,
    /// The request cannot be upgraded: the server connection does not support upgrades (500).
    NotUpgradable,
    /// The server is shutting down and takes no new WebSockets (503).
    ShuttingDown,
    /// The server requires a subprotocol ([`Config::require_protocol`](crate::Config)) and the
    /// client offered none of the ones it speaks (400; the body lists them).
    NoCommonProtocol,
}

impl HandshakeError {
    pub(crate) fn with_detail(kind: HandshakeErrorKind, detail: String) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
        }
    }

    /// What the server adds to [`message`](Self::message) for this request, if anything: for
    /// [`HandshakeErrorKind::NoCommonProtocol`], the subprotocols it speaks.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The rule that was broken.
    pub const fn kind(&self) -> HandshakeErrorKind {
        self.kind
    }

    /// The HTTP status to answer with.
    pub const fn status(&self) -> StatusCode {
        use HandshakeErrorKind as K;
        match self.kind {
            K::MethodNotGet | K::MethodNotConnect => StatusCode::METHOD_NOT_ALLOWED,
            K::NotWebSocketUpgrade | K::MissingVersion | K::UnsupportedVersion => {
                StatusCode::UPGRADE_REQUIRED
            }
            K::HttpVersion
            | K::ConnectionNotUpgrade
            | K::MissingKey
            | K::InvalidKey
            | K::MissingHost
            | K::NotWebSocketProtocol
            | K::InvalidExtensions
            | K::NoCommonProtocol => StatusCode::BAD_REQUEST,
            K::OriginForbidden => StatusCode::FORBIDDEN,
            K::NotUpgradable => StatusCode::INTERNAL_SERVER_ERROR,
            K::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What was wrong, for the response body.
    pub const fn message(&self) -> &'static str {
        use HandshakeErrorKind as K;
        match self.kind {
            K::MethodNotGet => "WebSocket upgrade requests must use the GET method",
            K::HttpVersion => "WebSocket upgrades need HTTP/1.1 or later",
            K::NotWebSocketUpgrade => {
                "this endpoint needs a WebSocket upgrade: the `Upgrade` header must list `websocket`"
            }
            K::ConnectionNotUpgrade => "the `Connection` header must list `upgrade`",
            K::MissingVersion => {
                "the `Sec-WebSocket-Version` header is missing; this server speaks version 13"
            }
            K::UnsupportedVersion => {
                "unsupported `Sec-WebSocket-Version`; this server speaks version 13"
            }
            K::MissingKey => "the `Sec-WebSocket-Key` header is missing",
            K::InvalidKey => "`Sec-WebSocket-Key` must be one base64-encoded 16-byte value",
            K::MissingHost => "the `Host` header is missing or invalid",
            K::OriginForbidden => "the request's `Origin` is not allowed to open WebSockets here",
            K::MethodNotConnect => {
                "over HTTP/2, WebSocket requests must use the CONNECT method (RFC 8441)"
            }
            K::NotWebSocketProtocol => "the `:protocol` pseudo-header must be `websocket`",
            K::InvalidExtensions => "the `Sec-WebSocket-Extensions` header is malformed",
            K::NotUpgradable => {
                "this connection cannot be upgraded (the server does not support HTTP upgrades)"
            }
            K::ShuttingDown => "the server is shutting down and takes no new WebSocket connections",
            K::NoCommonProtocol => {
                "the client offered none of the subprotocols (`Sec-WebSocket-Protocol`) this \
                 endpoint requires"
            }
        }
    }

    /// The response to send: the status, a plain-text body naming the problem, and the headers
    /// the status calls for (`Allow: GET` with 405; `Upgrade: websocket` and
    /// `Sec-WebSocket-Version: 13` with 426).
    #[must_use = "the response should be sent to the client"]
    pub fn into_response(self) -> Response<Body> {
        let body = match &self.detail {
            Some(detail) => Body::from(format!("{}: {detail}", self.message())),
            None => Body::from(self.message()),
        };
        let mut res = Response::new(body);
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self.status() {
            StatusCode::METHOD_NOT_ALLOWED => {
                let allow = if self.kind == HandshakeErrorKind::MethodNotConnect {
                    "CONNECT"
                } else {
                    "GET"
                };
                h.insert(ALLOW, HeaderValue::from_static(allow));
            }
            StatusCode::UPGRADE_REQUIRED => {
                h.insert(UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        res
    }
}

impl From<HandshakeErrorKind> for HandshakeError {
    fn from(kind: HandshakeErrorKind) -> Self {
        Self { kind, detail: None }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for HandshakeError {}
