//! The opening handshake (RFC 6455 §4), on `http` types and nothing else.
//!
//! [`validate`] checks an upgrade request against a [`Config`] and returns what was agreed, or a
//! [`HandshakeError`] that knows its HTTP status and explains itself in the response body.
//!
//! # Examples
//!
//! ```
//! use http::Request;
//! use tower_ws::{Config, handshake};
//!
//! let req = Request::get("/chat")
//!     .header("host", "example.com")
//!     .header("connection", "keep-alive, Upgrade")
//!     .header("upgrade", "websocket")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("sec-websocket-protocol", "chat.v1, chat.v2")
//!     .body(())
//!     .unwrap();
//! assert!(handshake::is_http1_upgrade(&req));
//!
//! let config = Config::default().protocols(["chat.v2", "chat.v1"]);
//! let accept = handshake::validate(&req, &config).unwrap();
//! let response = accept.response();
//! assert_eq!(response.status(), 101);
//! assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
//! ```

#[cfg(feature = "client")]
pub(crate) mod client;
mod error;
mod head;
mod headers;
mod origin;

pub use error::{HandshakeError, HandshakeErrorKind};
pub use head::RequestHead;
pub use origin::OriginPolicy;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{
    CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Method, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

use crate::body::Body;
use crate::config::Config;

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the server agreed to in a valid handshake.
///
/// # Examples
///
/// ```
/// # let req = http::Request::get("/")
/// #     .header("host", "h").header("connection", "upgrade").header("upgrade", "websocket")
/// #     .header("sec-websocket-version", "13")
/// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==").body(()).unwrap();
/// let accept = tower_ws::handshake::validate(&req, &tower_ws::Config::default()).unwrap();
/// assert!(accept.protocol().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Accept {
    /// `None` for an HTTP/2 extended CONNECT (RFC 8441), which has no key.
    accept_key: Option<HeaderValue>,
    negotiated: Negotiated,
    extensions: Option<HeaderValue>,
}

/// What a connection keeps from its handshake: the subprotocol and the extension parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Negotiated {
    pub(crate) protocol: Option<HeaderValue>,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<crate::deflate::Agreed>,
}

impl Accept {
    /// The subprotocol selected, if the client offered one the server speaks.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.negotiated.protocol.as_ref()
    }

    /// The `Sec-WebSocket-Extensions` response value, if an extension was agreed.
    pub fn extensions(&self) -> Option<&HeaderValue> {
        self.extensions.as_ref()
    }

    /// The response that completes the handshake: `101 Switching Protocols` for HTTP/1.1, or
    /// `200 OK` for an HTTP/2 extended CONNECT ([`validate_extended_connect`]).
    #[must_use = "the response must be sent for the upgrade to happen"]
    pub fn response(&self) -> Response<Body> {
        let mut res = Response::new(Body::empty());
        let h = res.headers_mut();
        if let Some(key) = &self.accept_key {
            h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(SEC_WEBSOCKET_ACCEPT, key.clone());
        }
        if let Some(p) = &self.negotiated.protocol {
            h.insert(SEC_WEBSOCKET_PROTOCOL, p.clone());
        }
        if let Some(e) = &self.extensions {
            h.insert(SEC_WEBSOCKET_EXTENSIONS, e.clone());
        }
        // RFC 8441 §5: over HTTP/2 a 2xx answers the CONNECT; there is no key or accept.
        if self.accept_key.is_some() {
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        }
        res
    }

    pub(crate) fn into_negotiated(self) -> Negotiated {
        self.negotiated
    }

    /// Replaces the selected subprotocol (the axum extractor lets the handler choose).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn set_protocol(&mut self, protocol: Option<HeaderValue>) {
        self.negotiated.protocol = protocol;
    }
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
///
/// # Examples
///
/// ```
/// // The example of RFC 6455 §1.3.
/// let accept = tower_ws::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    BASE64.encode(sha1.finalize())
}

/// Whether `req` asks for an HTTP/1.1 WebSocket upgrade (`GET` with `Connection: upgrade` and
/// `Upgrade: websocket`), valid or not.
///
/// HTTP/2 WebSockets (RFC 8441) carry their `:protocol` in a server-specific place, so this
/// does not see them; [`tower_ws::is_upgrade_request`](crate::is_upgrade_request) answers for
/// both versions on hyper.
///
/// # Examples
///
/// ```
/// let plain = http::Request::get("/").body(()).unwrap();
/// assert!(!tower_ws::handshake::is_http1_upgrade(&plain));
/// ```
pub fn is_http1_upgrade(req: &(impl RequestHead + ?Sized)) -> bool {
    req.method() == Method::GET
        && headers::has_token(req.headers(), &UPGRADE, "websocket")
        && headers::has_token(req.headers(), &CONNECTION, "upgrade")
}

/// The subprotocols the client offers, in its order.
///
/// # Examples
///
/// ```
/// let req = http::Request::get("/")
///     .header("sec-websocket-protocol", "a, b")
///     .header("sec-websocket-protocol", "c")
///     .body(())
///     .unwrap();
/// let offered: Vec<_> = tower_ws::handshake::requested_protocols(&req).collect();
/// assert_eq!(offered, ["a", "b", "c"]);
/// ```
pub fn requested_protocols(req: &(impl RequestHead + ?Sized)) -> impl Iterator<Item = &str> {
    headers::tokens(req.headers(), &SEC_WEBSOCKET_PROTOCOL)
}

/// Checks an upgrade request (RFC 6455 §4.2.1) against `config`.
///
/// `req` is a whole [`http::Request`] or its [`http::request::Parts`] (see [`RequestHead`]).
///
/// # Errors
///
/// A [`HandshakeError`] naming the first rule the request breaks; its
/// [`status`](HandshakeError::status) and [`into_response`](HandshakeError::into_response)
/// give the answer to send.
pub fn validate(
    req: &(impl RequestHead + ?Sized),
    config: &Config,
) -> Result<Accept, HandshakeError> {
    use HandshakeErrorKind as E;
    let headers = req.headers();
    // RFC 6455 §4.1: the method of the request MUST be GET, and the HTTP version at least 1.1.
    if req.method() != Method::GET {
        return Err(E::MethodNotGet.into());
    }
    if req.version() < Version::HTTP_11 {
        return Err(E::HttpVersion.into());
    }
    // RFC 6455 §4.2.1: an |Upgrade| header field containing "websocket" and a |Connection|
    // header field that includes the token "Upgrade", both case-insensitive.
    if !headers::has_token(headers, &UPGRADE, "websocket") {
        return Err(E::NotWebSocketUpgrade.into());
    }
    if !headers::has_token(headers, &CONNECTION, "upgrade") {
        return Err(E::ConnectionNotUpgrade.into());
    }
    check_version(headers)?;
    // RFC 6455 §4.2.1: a |Sec-WebSocket-Key| that, base64-decoded, is 16 bytes long.
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        (None, _) => return Err(E::MissingKey.into()),
        (Some(_), Some(_)) => return Err(E::InvalidKey.into()),
    };
    match BASE64.decode(key.as_bytes()) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(E::InvalidKey.into()),
    }
    let accept_key =
        HeaderValue::try_from(accept_key(key.as_bytes())).expect("base64 is a valid header value");
    agree(req, config, Some(accept_key))
}

/// Checks an HTTP/2 WebSocket request (RFC 8441 extended CONNECT) against `config`.
///
/// The `:protocol` pseudo-header is not an `http` type, so the caller checks that it is
/// `websocket` before calling this (for hyper: the `hyper::ext::Protocol` extension;
/// [`upgrade`](crate::upgrade()) does it). There is no key: the response is `200 OK`.
///
/// # Errors
///
/// A [`HandshakeError`] naming the first rule the request breaks.
///
/// # Examples
///
/// ```
/// let req = http::Request::connect("https://example.com/chat")
///     .version(http::Version::HTTP_2)
///     .header("sec-websocket-version", "13")
///     .body(())
///     .unwrap();
/// let accept = tower_ws::handshake::validate_extended_connect(&req, &tower_ws::Config::default())
///     .unwrap();
/// assert_eq!(accept.response().status(), 200);
/// ```
pub fn validate_extended_connect(
    req: &(impl RequestHead + ?Sized),
    config: &Config,
) -> Result<Accept, HandshakeError> {
    use HandshakeErrorKind as E;
    // RFC 8441 §4: a CONNECT request with the :protocol pseudo-header, over HTTP/2 or later.
    if req.method() != Method::CONNECT {
        return Err(E::MethodNotConnect.into());
    }
    if req.version() < Version::HTTP_2 {
        return Err(E::HttpVersion.into());
    }
    // RFC 8441 §5: Sec-WebSocket-Version keeps its RFC 6455 meaning; Key and Accept are not used.
    check_version(req.headers())?;
    agree(req, config, None)
}

/// RFC 6455 §4.2.2: a version the server does not understand gets 426 and the versions it does
/// understand. Every `Sec-WebSocket-Version` field counts: `13` and `8` in two fields combine
/// to `13, 8`, which is not version 13.
fn check_version(headers: &http::HeaderMap) -> Result<(), HandshakeErrorKind> {
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter().peekable();
    if versions.peek().is_none() {
        return Err(HandshakeErrorKind::MissingVersion);
    }
    if versions.all(|v| v == "13") {
        Ok(())
    } else {
        Err(HandshakeErrorKind::UnsupportedVersion)
    }
}

/// The checks both handshakes share: host, origin, and the subprotocol choice.
fn agree(
    req: &(impl RequestHead + ?Sized),
    config: &Config,
    accept_key: Option<HeaderValue>,
) -> Result<Accept, HandshakeError> {
    use HandshakeErrorKind as E;
    let headers = req.headers();
    // RFC 6455 §4.1: the client MUST send Host; §10.2: servers check Origin against it.
    let host = match headers.get(HOST) {
        Some(h) => Some(h.to_str().map_err(|_| E::MissingHost)?),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    if host.is_none() {
        return Err(E::MissingHost.into());
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let origin = origins.next();
    if origins.next().is_some() || !config.origin.allows(origin, host, headers) {
        return Err(E::OriginForbidden.into());
    }
    let protocol = select_protocol(req, &config.protocols);
    // RFC 6455 §4.2.2 lets a server accept without a subprotocol; an app that cannot speak
    // without one asks for the refusal instead.
    if protocol.is_none() && config.require_protocol && !config.protocols.is_empty() {
        let speaks = config.protocols.join(", ");
        return Err(HandshakeError::with_detail(
            E::NoCommonProtocol,
            format!("this endpoint speaks {speaks}"),
        ));
    }
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut negotiated = Negotiated {
        protocol,
        #[cfg(feature = "deflate")]
        deflate: None,
    };
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut extensions = None;
    #[cfg(feature = "deflate")]
    if let Some(policy) = &config.deflate {
        let offers = headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter();
        if let Some((agreed, response)) =
            crate::deflate::negotiate(offers, policy).map_err(|_| E::InvalidExtensions)?
        {
            negotiated.deflate = Some(agreed);
            extensions = Some(response);
        }
    }
    Ok(Accept {
        accept_key,
        negotiated,
        extensions,
    })
}

/// The first of the server's protocols (in its order of preference) that the client offers.
fn select_protocol(req: &(impl RequestHead + ?Sized), supported: &[String]) -> Option<HeaderValue> {
    supported
        .iter()
        .find(|s| requested_protocols(req).any(|r| r == s.as_str()))
        .and_then(|s| HeaderValue::from_str(s).ok())
}

#[cfg(test)]
mod tests;
