//! `handshake::validate` (and `validate_extended_connect`) on requests built from the input:
//! arbitrary method, URI, version and headers, the headers drawn from the real handshake
//! header names and values plus arbitrary ones, under an arbitrary `Config`.
//!
//! Invariants: no panic; `Ok` only for a request that really is a valid handshake (GET over
//! HTTP/1.1+, `Sec-WebSocket-Version: 13` and no other version, one `Sec-WebSocket-Key` of 16 base64 bytes,
//! `Upgrade: websocket`, `Connection: upgrade`, a host, an `Origin` the policy allows), with the
//! right `Sec-WebSocket-Accept`; `Err` always a 4xx whose response carries that status.
//!
//! Inputs that start with an uppercase letter are read as an HTTP/1.1 request in text (the
//! readable seeds); others are `arbitrary` data.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use tower_ws::{Config, OriginPolicy, handshake};

const NAMES: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "sec-websocket-version",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "origin",
    "Sec-WebSocket-Key",
    "content-length",
    "sec-fetch-site",
];

const VALUES: &[&str] = &[
    "13",
    "8",
    " 13",
    "13, 8",
    "websocket",
    "WebSocket",
    "h2c, websocket",
    "websockets",
    "Upgrade",
    "keep-alive, Upgrade",
    "upgraded",
    "dGhlIHNhbXBsZSBub25jZQ==",
    "dGhlIHNhbXBsZSBub25jZR==",
    "AAAAAAAAAAAAAAAAAAAAAA==",
    "AAAAAAAAAAAAAAAAAAAAAA",
    "AAAAAAAAAAAAAAAAAAAAAAA=",
    "example.com",
    "Example.COM:8080",
    "http://example.com",
    "https://example.com:8080",
    "http://example.com:8080",
    "null",
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    "x-webkit-deflate-frame",
    "chat, superchat",
    "chat",
    "",
];

const PROTOCOLS: &[&str] = &["chat", "superchat", "graphql-ws", ""];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(Vec<u8>),
}

impl Text {
    fn bytes(&self, table: &[&str]) -> Vec<u8> {
        match self {
            Text::Known(i) => table[usize::from(*i) % table.len()].as_bytes().to_vec(),
            Text::Raw(raw) => raw.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum MethodIn {
    Get,
    Post,
    Connect,
    Head,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum UriIn {
    Path(String),
    Absolute { host: Text, path: String },
}

#[derive(Arbitrary, Debug)]
enum OriginIn {
    Same,
    Any,
    Allow(Vec<Text>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: MethodIn,
    uri: UriIn,
    version: u8,
    headers: Vec<(Text, Text)>,
    origin: OriginIn,
    protocols: Vec<u8>,
    deflate: bool,
    extended_connect: bool,
}

fn tokens<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a [u8]> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A `Sec-WebSocket-Key` that is the canonical base64 of 16 bytes: 22 characters of the
/// alphabet (the last one with its low 4 bits zero) and `==`.
fn is_key(v: &[u8]) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    v.len() == 24
        && v[..22].iter().all(|b| ALPHABET.contains(b))
        && b"AQgw".contains(&v[21])
        && &v[22..] == b"=="
}

/// Every `Sec-WebSocket-Version` field says 13 (RFC 6455 §4.1: the client sends version 13;
/// fields repeated with another value combine into a list that is not version 13).
fn check_version(headers: &HeaderMap) {
    let versions: Vec<_> = headers.get_all("sec-websocket-version").iter().collect();
    assert!(
        !versions.is_empty() && versions.iter().all(|v| *v == "13"),
        "accepted {versions:?} as Sec-WebSocket-Version"
    );
}

/// A request written as HTTP/1.1 text (`GET /chat HTTP/1.1\r\nHost: ...\r\n...`), for
/// readable seeds; `None` if the input is not that.
fn parse_text(data: &[u8]) -> Option<(Request<()>, Config, bool)> {
    if !data.first()?.is_ascii_uppercase() {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, uri, version) = (start.next()?, start.next()?, start.next()?);
    let mut req = Request::new(());
    *req.method_mut() = Method::from_bytes(method.as_bytes()).ok()?;
    *req.uri_mut() = Uri::try_from(uri).ok()?;
    *req.version_mut() = match version {
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/2" => Version::HTTP_2,
        _ => Version::HTTP_09,
    };
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let config = Config::default()
        .protocols(["chat", "superchat"])
        .deflate(Some(Default::default()));
    let connect = req.method() == Method::CONNECT;
    Some((req, config, connect))
}

fuzz_target!(|data: &[u8]| {
    let (req, config, extended_connect) = match parse_text(data) {
        Some(case) => case,
        None => {
            let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
                return;
            };
            let Some(case) = build(&input) else { return };
            case
        }
    };
    check(&req, &config, extended_connect);
});

/// The request and config an `Input` describes.
fn build(input: &Input) -> Option<(Request<()>, Config, bool)> {
    let method = match &input.method {
        MethodIn::Get => Method::GET,
        MethodIn::Post => Method::POST,
        MethodIn::Connect => Method::CONNECT,
        MethodIn::Head => Method::HEAD,
        MethodIn::Other(m) => Method::from_bytes(m.as_bytes()).ok()?,
    };
    let uri = match &input.uri {
        UriIn::Path(p) => Uri::try_from(p.as_str()),
        UriIn::Absolute { host, path } => {
            let mut s = b"http://".to_vec();
            s.extend(host.bytes(VALUES));
            s.extend(path.as_bytes());
            Uri::try_from(s)
        }
    };
    let uri = uri.ok()?;
    let version = match input.version % 5 {
        0 => Version::HTTP_09,
        1 => Version::HTTP_10,
        2 => Version::HTTP_11,
        3 => Version::HTTP_2,
        _ => Version::HTTP_3,
    };
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&name.bytes(NAMES)),
            HeaderValue::from_bytes(&value.bytes(VALUES)),
        ) else {
            continue;
        };
        req.headers_mut().append(name, value);
    }

    let mut config = Config::default();
    config.origin = match &input.origin {
        OriginIn::Same => OriginPolicy::SameOrigin,
        OriginIn::Any => OriginPolicy::Any,
        OriginIn::Allow(list) => OriginPolicy::allow(
            list.iter()
                .map(|t| String::from_utf8_lossy(&t.bytes(VALUES)).into_owned()),
        ),
    };
    config.protocols = input
        .protocols
        .iter()
        .map(|&i| PROTOCOLS[usize::from(i) % PROTOCOLS.len()].to_owned())
        .collect();
    if input.deflate {
        config.deflate = Some(Default::default());
    }
    Some((req, config, input.extended_connect))
}

fn check(req: &Request<()>, config: &Config, extended_connect: bool) {
    let result = if extended_connect {
        handshake::validate_extended_connect(req, config)
    } else {
        handshake::validate(req, config)
    };
    let headers = req.headers();
    match result {
        Ok(accept) => {
            check_version(headers);
            let response = accept.response();
            if extended_connect {
                assert_eq!(req.method(), Method::CONNECT);
                assert!(req.version() >= Version::HTTP_2);
                assert_eq!(response.status(), 200);
            } else {
                assert_eq!(req.method(), Method::GET);
                assert!(req.version() >= Version::HTTP_11);
                assert!(
                    tokens(headers, "upgrade")
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(b"websocket")),
                    "accepted without Upgrade: websocket"
                );
                assert!(
                    tokens(headers, "connection")
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(b"upgrade")),
                    "accepted without Connection: upgrade"
                );
                let keys: Vec<_> = headers.get_all("sec-websocket-key").iter().collect();
                assert_eq!(keys.len(), 1, "accepted {keys:?} as Sec-WebSocket-Key");
                assert!(is_key(keys[0].as_bytes()), "accepted key {:?}", keys[0]);
                assert_eq!(BASE64.decode(keys[0].as_bytes()).map(|k| k.len()), Ok(16));
                let mut sha1 = Sha1::new();
                sha1.update(keys[0].as_bytes());
                sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
                let expected = BASE64.encode(sha1.finalize());
                assert_eq!(response.status(), 101);
                assert_eq!(
                    response.headers()["sec-websocket-accept"],
                    expected.as_str()
                );
                assert!(
                    tokens(response.headers(), "upgrade")
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(b"websocket"))
                );
            }
            // A host: the Host header or the URI's authority.
            let host = match headers.get("host") {
                Some(h) => Some(h.to_str().expect("accepted a non-ASCII Host").to_owned()),
                None => req.uri().authority().map(|a| a.as_str().to_owned()),
            };
            let host = host.expect("accepted without a host");
            let origins: Vec<_> = headers.get_all("origin").iter().collect();
            assert!(origins.len() <= 1, "accepted several Origin fields");
            if let Some(origin) = origins.first() {
                // `Any` and `Custom` leave the Origin to the application (`Any` ignores it):
                // only the policies that compare it must refuse one that is not ASCII.
                let origin = match &config.origin {
                    OriginPolicy::SameOrigin | OriginPolicy::AllowList(_) => {
                        origin.to_str().expect("accepted a non-ASCII Origin")
                    }
                    _ => "",
                };
                match &config.origin {
                    OriginPolicy::SameOrigin => {
                        let (_, rest) = origin.split_once("://").expect("not an origin");
                        assert!(rest.eq_ignore_ascii_case(&host), "{origin} is not {host}");
                    }
                    OriginPolicy::AllowList(list) => {
                        assert!(list.iter().any(|o| o.eq_ignore_ascii_case(origin)));
                    }
                    _ => {}
                }
            }
            if let Some(p) = accept.protocol() {
                assert_eq!(response.headers()["sec-websocket-protocol"], p);
                assert!(config.protocols.iter().any(|s| p == s.as_str()));
                assert!(
                    tokens(headers, "sec-websocket-protocol")
                        .iter()
                        .any(|t| *t == p.as_bytes()),
                    "selected {p:?}, which the client did not offer"
                );
            }
            if let Some(ext) = accept.extensions() {
                assert!(
                    config.deflate.is_some(),
                    "agreed to compression it was not given"
                );
                assert!(ext.as_bytes().starts_with(b"permessage-deflate"));
                assert!(
                    headers.get_all("sec-websocket-extensions").iter().any(|v| v
                        .as_bytes()
                        .to_ascii_lowercase()
                        .windows(18)
                        .any(|w| w == b"permessage-deflate")),
                    "agreed to compression nobody offered"
                );
            }
        }
        Err(err) => {
            let status = err.status();
            assert!(status.is_client_error(), "{:?} gave {status}", err.kind());
            let response = err.into_response();
            assert_eq!(response.status(), status);
            if status == 426 {
                assert_eq!(response.headers()["sec-websocket-version"], "13");
            }
        }
    }
}
