//! The client's side of the opening handshake (RFC 6455 §4.1): the request to send and the
//! checks on the server's response. Pure: `http` types in, values out.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{
    CONNECTION, HOST, HeaderName, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, response};

use super::{Negotiated, accept_key, headers};
#[cfg(feature = "deflate")]
use crate::deflate::DeflateConfig;

/// Headers the handshake writes itself; a caller may not set them.
const OWNED: [HeaderName; 7] = [
    HOST,
    CONNECTION,
    UPGRADE,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
];

/// What a client offers: subprotocols, compression, extra headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offer {
    pub(crate) protocols: Vec<HeaderValue>,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<DeflateConfig>,
    pub(crate) headers: HeaderMap,
}

/// Why a request could not be built, or a response not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    Uri(String),
    Request(String),
    Accept(String),
    Protocol(String),
    Extension(String),
}

/// A request sent: the key to check the answer against (none over HTTP/2), and what was
/// offered.
#[derive(Debug)]
pub(crate) struct Pending {
    key: Option<HeaderValue>,
    offer: Offer,
}

/// The opening handshake's request for `uri` (`ws://` or `wss://`, or `http(s)://`), with a
/// fresh key from the OS's random source (RFC 6455 §4.1: 16 random bytes, base64).
pub(crate) fn request(uri: &Uri, offer: Offer) -> Result<(Pending, Request<()>), Problem> {
    let authority = check(uri, &offer)?;
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|e| Problem::Request(format!("no random source for the key: {e}")))?;
    let key = HeaderValue::try_from(BASE64.encode(raw)).expect("base64 is a header value");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::get(path).body(()).expect("a GET with a path");
    let h = req.headers_mut();
    h.insert(
        HOST,
        HeaderValue::from_str(&authority).map_err(|_| Problem::Uri(format!("{uri}: bad host")))?,
    );
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(SEC_WEBSOCKET_KEY, key.clone());
    offer_headers(&offer, h)?;
    Ok((
        Pending {
            key: Some(key),
            offer,
        },
        req,
    ))
}

/// The request that opens a WebSocket on an HTTP/2 stream (RFC 8441 §4): an extended
/// `CONNECT` with `:protocol = websocket` (the caller sets the protocol extension its HTTP/2
/// client uses), no key and no `Upgrade`.
pub(crate) fn request_h2(uri: &Uri, offer: Offer) -> Result<(Pending, Request<()>), Problem> {
    check(uri, &offer)?;
    let scheme = match uri.scheme_str() {
        Some("wss" | "https") => "https",
        _ => "http",
    };
    let target = format!(
        "{scheme}://{}{}",
        uri.authority().map_or("", |a| a.as_str()),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = Request::connect(target)
        .version(http::Version::HTTP_2)
        .body(())
        .map_err(|e| Problem::Uri(format!("{uri}: {e}")))?;
    offer_headers(&offer, req.headers_mut())?;
    Ok((Pending { key: None, offer }, req))
}

/// The URI's scheme and host, and no owned header among the caller's; returns the authority.
fn check(uri: &Uri, offer: &Offer) -> Result<String, Problem> {
    match uri.scheme_str() {
        Some("ws" | "wss" | "http" | "https") => {}
        _ => return Err(Problem::Uri(format!("{uri}: the scheme must be ws or wss"))),
    }
    let Some(authority) = uri.authority() else {
        return Err(Problem::Uri(format!("{uri}: no host")));
    };
    if let Some(name) = OWNED.iter().find(|n| offer.headers.contains_key(*n)) {
        return Err(Problem::Request(format!(
            "{name} is set by the handshake itself"
        )));
    }
    Ok(authority.as_str().to_owned())
}

/// The headers both versions send: version, subprotocols, extensions, the caller's own.
fn offer_headers(offer: &Offer, h: &mut HeaderMap) -> Result<(), Problem> {
    h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    if !offer.protocols.is_empty() {
        let joined = offer
            .protocols
            .iter()
            .map(|p| p.to_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ");
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::try_from(joined)
                .map_err(|_| Problem::Request("bad subprotocol".into()))?,
        );
    }
    #[cfg(feature = "deflate")]
    if let Some(policy) = &offer.deflate {
        h.insert(SEC_WEBSOCKET_EXTENSIONS, crate::deflate::offer(policy));
    }
    for (name, value) in &offer.headers {
        h.append(name, value.clone());
    }
    Ok(())
}

impl Pending {
    /// Checks a successful response head (`101` over HTTP/1.1: RFC 6455 §4.1, the client's
    /// checks 1-6; a 2xx over HTTP/2, RFC 8441 §5, which has no key to check; RFC 7692 §5 for
    /// the extension); returns what was agreed.
    pub(crate) fn verify(&self, res: &response::Parts) -> Result<Negotiated, Problem> {
        let h = &res.headers;
        let Some(key) = &self.key else {
            debug_assert!(res.status.is_success());
            return self.agreed(h);
        };
        debug_assert_eq!(res.status, StatusCode::SWITCHING_PROTOCOLS);
        if !headers::has_token(h, &UPGRADE, "websocket") {
            return Err(Problem::Accept("no `Upgrade: websocket`".into()));
        }
        if !headers::has_token(h, &CONNECTION, "upgrade") {
            return Err(Problem::Accept("no `Connection: upgrade`".into()));
        }
        let expected = accept_key(key.as_bytes());
        let mut accepts = h.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(got), None) if got.as_bytes() == expected.as_bytes() => {}
            (Some(got), None) => {
                return Err(Problem::Accept(format!(
                    "Sec-WebSocket-Accept {got:?}, expected {expected:?}"
                )));
            }
            _ => return Err(Problem::Accept("not one Sec-WebSocket-Accept".into())),
        }
        self.agreed(h)
    }

    /// The subprotocol and extension the server chose, checked against the offer.
    fn agreed(&self, h: &HeaderMap) -> Result<Negotiated, Problem> {
        let mut protocols = h.get_all(SEC_WEBSOCKET_PROTOCOL).iter();
        let protocol = match (protocols.next(), protocols.next()) {
            (None, _) => None,
            (Some(p), None) if self.offer.protocols.iter().any(|o| o == p) => Some(p.clone()),
            (Some(p), None) => {
                return Err(Problem::Protocol(
                    String::from_utf8_lossy(p.as_bytes()).into(),
                ));
            }
            (Some(_), Some(_)) => return Err(Problem::Protocol("more than one".into())),
        };
        let extensions = h.get_all(SEC_WEBSOCKET_EXTENSIONS).iter();
        #[cfg(feature = "deflate")]
        let deflate = crate::deflate::accept_response(extensions, self.offer.deflate.as_ref())
            .map_err(|e| Problem::Extension(format!("{e:?}")))?;
        #[cfg(not(feature = "deflate"))]
        if let Some(e) = extensions.into_iter().next() {
            return Err(Problem::Extension(
                String::from_utf8_lossy(e.as_bytes()).into(),
            ));
        }
        Ok(Negotiated {
            protocol,
            #[cfg(feature = "deflate")]
            deflate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(pending: &Pending, extra: &[(&str, &str)]) -> response::Parts {
        let mut res = http::Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header(
                "sec-websocket-accept",
                accept_key(pending.key.as_ref().unwrap().as_bytes()),
            );
        for (k, v) in extra {
            res = res.header(*k, *v);
        }
        res.body(()).unwrap().into_parts().0
    }

    fn offer(protocols: &[&'static str]) -> Offer {
        Offer {
            protocols: protocols
                .iter()
                .map(|p| HeaderValue::from_static(p))
                .collect(),
            ..Offer::default()
        }
    }

    #[test]
    fn the_request_carries_a_fresh_key_and_the_offer() {
        let uri: Uri = "ws://example.com:9001/chat?room=1".parse().unwrap();
        let (a, req) = request(&uri, offer(&["v2", "v1"])).unwrap();
        let (b, _) = request(&uri, offer(&[])).unwrap();
        assert_ne!(a.key, b.key, "a new key per connection");
        assert_eq!(BASE64.decode(a.key.unwrap().as_bytes()).unwrap().len(), 16);
        assert_eq!(req.uri(), "/chat?room=1");
        assert_eq!(req.headers()[HOST], "example.com:9001");
        assert_eq!(req.headers()[SEC_WEBSOCKET_PROTOCOL], "v2, v1");
        assert_eq!(req.headers()[SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn over_http2_the_request_is_an_extended_connect_without_a_key() {
        let uri: Uri = "wss://example.com/chat?room=1".parse().unwrap();
        let (pending, req) = request_h2(&uri, offer(&["v1"])).unwrap();
        assert_eq!(req.method(), http::Method::CONNECT);
        assert_eq!(req.version(), http::Version::HTTP_2);
        assert_eq!(req.uri(), "https://example.com/chat?room=1");
        assert!(!req.headers().contains_key(SEC_WEBSOCKET_KEY));
        assert!(!req.headers().contains_key(UPGRADE));
        let ok = http::Response::builder()
            .status(200)
            .header("sec-websocket-protocol", "v1")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(pending.verify(&ok).unwrap().protocol.unwrap(), "v1");
    }

    #[test]
    fn bad_uris_and_owned_headers_are_refused() {
        for uri in ["http://", "ftp://h/", "/relative"] {
            let uri: Uri = uri.parse().unwrap_or_default();
            assert!(matches!(
                request(&uri, Offer::default()),
                Err(Problem::Uri(_))
            ));
        }
        let mut o = Offer::default();
        o.headers
            .insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("x"));
        let uri: Uri = "ws://h/".parse().unwrap();
        assert!(matches!(request(&uri, o), Err(Problem::Request(_))));
    }

    #[test]
    fn the_answer_must_match_the_key_and_the_offer() {
        let uri: Uri = "ws://h/".parse().unwrap();
        let (pending, _) = request(&uri, offer(&["v1"])).unwrap();
        assert!(
            pending
                .verify(&answer(&pending, &[]))
                .unwrap()
                .protocol
                .is_none()
        );
        let agreed = pending.verify(&answer(&pending, &[("sec-websocket-protocol", "v1")]));
        assert_eq!(agreed.unwrap().protocol.unwrap(), "v1");
        assert!(matches!(
            pending.verify(&answer(&pending, &[("sec-websocket-protocol", "v9")])),
            Err(Problem::Protocol(_))
        ));
        assert!(matches!(
            pending.verify(&answer(
                &pending,
                &[("sec-websocket-extensions", "x-unknown")]
            )),
            Err(Problem::Extension(_))
        ));
        let mut wrong = answer(&pending, &[]);
        wrong.headers.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(matches!(pending.verify(&wrong), Err(Problem::Accept(_))));
        let mut no_upgrade = answer(&pending, &[]);
        no_upgrade.headers.remove(UPGRADE);
        assert!(matches!(
            pending.verify(&no_upgrade),
            Err(Problem::Accept(_))
        ));
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn deflate_answers_are_checked_against_the_offer() {
        let uri: Uri = "ws://h/".parse().unwrap();
        let o = Offer {
            deflate: Some(DeflateConfig::default()),
            ..Offer::default()
        };
        let (pending, req) = request(&uri, o).unwrap();
        assert_eq!(
            req.headers()[SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate; client_max_window_bits"
        );
        let ok =
            |ext: &str| pending.verify(&answer(&pending, &[("sec-websocket-extensions", ext)]));
        let agreed =
            ok("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
                .unwrap()
                .deflate
                .unwrap();
        assert!(agreed.server_no_context_takeover);
        assert_eq!(agreed.client_max_window_bits, 10);
        assert_eq!(
            ok("permessage-deflate")
                .unwrap()
                .deflate
                .unwrap()
                .server_max_window_bits,
            15
        );
        // A server may announce a smaller window of its own unasked (RFC 7692 §7.1.2.1).
        let unasked =
            ok("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
        assert_eq!(unasked.unwrap().deflate.unwrap().server_max_window_bits, 12);
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "permessage-deflate, permessage-deflate",
        ] {
            assert!(matches!(ok(bad), Err(Problem::Extension(_))), "{bad}");
        }
    }
}
