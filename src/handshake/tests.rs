//! One test per handshake rule.

use http::{Request, StatusCode, Version};

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn valid() -> http::request::Builder {
    Request::get("/ws")
        .header("host", "example.com")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", KEY)
}

fn check(builder: http::request::Builder) -> Result<Accept, HandshakeError> {
    validate(&builder.body(()).unwrap(), &Config::default())
}

fn refused(builder: http::request::Builder) -> (HandshakeErrorKind, StatusCode) {
    let err = check(builder).unwrap_err();
    (err.kind(), err.status())
}

/// A valid request with header `name` removed.
fn without(name: &str) -> http::request::Builder {
    let mut b = valid();
    b.headers_mut().unwrap().remove(name);
    b
}

#[test]
fn valid_request_gets_101_with_the_rfc_accept_key() {
    let res = check(valid()).unwrap().response();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        res.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(res.headers()["upgrade"], "websocket");
    assert!(res.headers().get("sec-websocket-protocol").is_none());
}

#[test]
fn method_other_than_get_is_405() {
    let b = valid().method("POST");
    assert_eq!(
        refused(b),
        (
            HandshakeErrorKind::MethodNotGet,
            StatusCode::METHOD_NOT_ALLOWED
        )
    );
}

#[test]
fn http_1_0_is_400() {
    let b = valid().version(Version::HTTP_10);
    assert_eq!(
        refused(b),
        (HandshakeErrorKind::HttpVersion, StatusCode::BAD_REQUEST)
    );
}

#[test]
fn connection_is_a_case_insensitive_token_list() {
    let mut b = without("connection");
    b = b.header("connection", "keep-alive, Upgrade");
    assert!(check(b).is_ok());
    let b = without("connection")
        .header("connection", "keep-alive")
        .header("connection", "UPGRADE");
    assert!(check(b).is_ok());
    let b = without("upgrade").header("upgrade", "WebSocket");
    assert!(check(b).is_ok());
}

#[test]
fn connection_without_upgrade_is_400() {
    let b = without("connection").header("connection", "keep-alive");
    assert_eq!(
        refused(b),
        (
            HandshakeErrorKind::ConnectionNotUpgrade,
            StatusCode::BAD_REQUEST
        )
    );
}

#[test]
fn upgrade_without_websocket_is_426() {
    let b = without("upgrade").header("upgrade", "h2c");
    assert_eq!(
        refused(b),
        (
            HandshakeErrorKind::NotWebSocketUpgrade,
            StatusCode::UPGRADE_REQUIRED
        )
    );
}

#[test]
fn version_other_than_13_is_426_naming_13() {
    let b = without("sec-websocket-version").header("sec-websocket-version", "8");
    let err = check(b).unwrap_err();
    assert_eq!(err.kind(), HandshakeErrorKind::UnsupportedVersion);
    let res = err.into_response();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(res.headers()["sec-websocket-version"], "13");
    assert_eq!(res.headers()["upgrade"], "websocket");
}

#[test]
fn every_version_field_must_say_13() {
    // Regression (found by the `handshake` fuzz target): only the first field was read, so
    // `13` and `8` in two fields (together `13, 8`) passed as version 13.
    let b = without("sec-websocket-version")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-version", "8");
    assert_eq!(
        refused(b),
        (
            HandshakeErrorKind::UnsupportedVersion,
            StatusCode::UPGRADE_REQUIRED
        )
    );
    let b = without("sec-websocket-version")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-version", "13");
    assert!(check(b).is_ok());
}

#[test]
fn missing_version_is_426() {
    assert_eq!(
        refused(without("sec-websocket-version")),
        (
            HandshakeErrorKind::MissingVersion,
            StatusCode::UPGRADE_REQUIRED
        )
    );
}

#[test]
fn missing_key_is_400() {
    assert_eq!(
        refused(without("sec-websocket-key")),
        (HandshakeErrorKind::MissingKey, StatusCode::BAD_REQUEST)
    );
}

#[test]
fn key_must_decode_to_16_bytes() {
    for bad in [
        "",
        "not base64!",
        "dGhlIHNhbXBsZQ==",
        "dGhlIHNhbXBsZSBub25jZSBsb25nZXI=",
    ] {
        let b = without("sec-websocket-key").header("sec-websocket-key", bad);
        assert_eq!(
            refused(b),
            (HandshakeErrorKind::InvalidKey, StatusCode::BAD_REQUEST),
            "{bad}"
        );
    }
    let b = valid().header("sec-websocket-key", KEY);
    assert_eq!(refused(b).0, HandshakeErrorKind::InvalidKey, "two keys");
}

#[test]
fn missing_host_is_400() {
    assert_eq!(
        refused(without("host")),
        (HandshakeErrorKind::MissingHost, StatusCode::BAD_REQUEST)
    );
}

#[test]
fn same_origin_is_the_default() {
    assert!(check(valid().header("origin", "https://example.com")).is_ok());
    assert!(check(valid()).is_ok(), "no Origin: not a browser");
    assert_eq!(
        refused(valid().header("origin", "https://evil.example")),
        (HandshakeErrorKind::OriginForbidden, StatusCode::FORBIDDEN)
    );
}

#[test]
fn origin_policy_is_configurable() {
    let req = valid()
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    let any = Config::default().origin(OriginPolicy::Any);
    assert!(validate(&req, &any).is_ok());
    let listed = Config::default().origin(OriginPolicy::allow(["https://evil.example"]));
    assert!(validate(&req, &listed).is_ok());
    let other = Config::default().origin(OriginPolicy::allow(["https://good.example"]));
    assert!(validate(&req, &other).is_err());
    let custom = Config::default().origin(OriginPolicy::custom(|o, _| {
        o.is_some_and(|o| o == "https://evil.example")
    }));
    assert!(validate(&req, &custom).is_ok());
}

#[test]
fn subprotocol_follows_the_servers_preference() {
    let req = valid()
        .header("sec-websocket-protocol", "v1, v2")
        .header("sec-websocket-protocol", "v3")
        .body(())
        .unwrap();
    let config = Config::default().protocols(["v3", "v1"]);
    let accept = validate(&req, &config).unwrap();
    assert_eq!(accept.protocol().unwrap(), "v3");
    assert_eq!(accept.response().headers()["sec-websocket-protocol"], "v3");

    let none = Config::default().protocols(["v9"]);
    assert!(validate(&req, &none).unwrap().protocol().is_none());
}

#[test]
fn every_refusal_has_a_body_and_status() {
    use HandshakeErrorKind as K;
    for kind in [
        K::MethodNotGet,
        K::HttpVersion,
        K::NotWebSocketUpgrade,
        K::ConnectionNotUpgrade,
        K::MissingVersion,
        K::UnsupportedVersion,
        K::MissingKey,
        K::InvalidKey,
        K::MissingHost,
        K::OriginForbidden,
        K::InvalidExtensions,
        K::NotUpgradable,
        K::ShuttingDown,
        K::NoCommonProtocol,
    ] {
        let err = HandshakeError::from(kind);
        assert!(err.status().is_client_error() || err.status().is_server_error());
        assert!(!err.message().is_empty());
    }
}

#[test]
fn is_http1_upgrade_ignores_plain_requests() {
    assert!(is_http1_upgrade(&valid().body(()).unwrap()));
    assert!(!is_http1_upgrade(&Request::get("/").body(()).unwrap()));
    assert!(!is_http1_upgrade(&valid().method("POST").body(()).unwrap()));
}

#[test]
fn a_required_subprotocol_refuses_a_client_offering_none_of_them_with_400_naming_them() {
    let config = Config::default()
        .protocols(["chat.v2", "chat.v1"])
        .require_protocol(true);
    let offers_other = valid()
        .header("sec-websocket-protocol", "chat.v0")
        .body(())
        .unwrap();
    let err = validate(&offers_other, &config).unwrap_err();
    assert_eq!(err.kind(), HandshakeErrorKind::NoCommonProtocol);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(
        err.to_string()
            .ends_with(": this endpoint speaks chat.v2, chat.v1")
    );
    let offers_none = valid().body(()).unwrap();
    assert_eq!(
        validate(&offers_none, &config).unwrap_err().kind(),
        HandshakeErrorKind::NoCommonProtocol
    );
    // One in common: accepted with it. Not required: accepted without one.
    let offers_v1 = valid()
        .header("sec-websocket-protocol", "chat.v0, chat.v1")
        .body(())
        .unwrap();
    assert_eq!(
        validate(&offers_v1, &config).unwrap().protocol().unwrap(),
        "chat.v1"
    );
    let lenient = config.require_protocol(false);
    assert!(
        validate(&offers_none, &lenient)
            .unwrap()
            .protocol()
            .is_none()
    );
}

#[test]
fn validate_takes_request_parts_as_well_as_a_request() {
    let (parts, ()) = valid()
        .header("sec-websocket-protocol", "b")
        .body(())
        .unwrap()
        .into_parts();
    let accept = validate(&parts, &Config::default().protocols(["b"])).unwrap();
    assert_eq!(accept.protocol().unwrap(), "b");
    assert!(is_http1_upgrade(&parts));
    assert_eq!(requested_protocols(&parts).collect::<Vec<_>>(), ["b"]);
}
