//! Handshake rules over real HTTP: each refusal's status, headers and body.

mod support;

use support::{RawClient, serve};
use tower_ws::{Config, OriginPolicy, UpgradedWebSocket};

const GOOD: &str = "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

async fn server(config: Config) -> std::net::SocketAddr {
    serve(config, |_ws: UpgradedWebSocket| async {}).await
}

#[tokio::test]
async fn firefox_style_connection_header_upgrades() {
    let addr = server(Config::default()).await;
    let (_c, head) = RawClient::request(addr, GOOD).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=")
    );
}

#[tokio::test]
async fn refusals_carry_status_headers_and_a_reason() {
    let addr = server(Config::default().protocols(["chat"])).await;
    let cases = [
        (
            GOOD.replace("13", "8"),
            "426",
            &["sec-websocket-version: 13", "upgrade: websocket"][..],
            "version",
        ),
        (
            GOOD.replace("Upgrade: websocket", "Upgrade: h2c"),
            "426",
            &["upgrade: websocket"][..],
            "upgrade",
        ),
        (
            GOOD.replace("keep-alive, Upgrade", "keep-alive"),
            "400",
            &[][..],
            "connection",
        ),
        (
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            "400",
            &[][..],
            "sec-websocket-key",
        ),
        (
            GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
            &[][..],
            "missing",
        ),
        (
            format!("{GOOD}Origin: https://evil.example\r\n"),
            "403",
            &[][..],
            "origin",
        ),
    ];
    for (headers, status, must_have, reason) in cases {
        let (mut c, head) = RawClient::request(addr, &headers).await;
        let lower = head.to_ascii_lowercase();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{headers:?} -> {head}"
        );
        for h in must_have {
            assert!(lower.contains(h), "{headers:?}: missing {h} in {head}");
        }
        let body = read_body(&mut c, &lower).await.to_ascii_lowercase();
        assert!(
            body.contains(reason),
            "{headers:?}: body {body:?} should mention {reason}"
        );
    }
}

#[tokio::test]
async fn post_is_405_with_allow_get() {
    let addr = server(Config::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n{GOOD}\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = support::within(tcp.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(head.contains("allow: get"));
}

#[tokio::test]
async fn same_origin_and_configured_origins_are_accepted() {
    let addr = server(Config::default()).await;
    let (_c, head) = RawClient::request(addr, &format!("{GOOD}Origin: http://{addr}\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    let addr = server(Config::default().origin(OriginPolicy::allow(["https://app.example"]))).await;
    let (_c, head) =
        RawClient::request(addr, &format!("{GOOD}Origin: https://app.example\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let addr = server(Config::default().protocols(["v2", "v1"])).await;
    let (_c, head) =
        RawClient::request(addr, &format!("{GOOD}Sec-WebSocket-Protocol: v1, v2\r\n")).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: v2"),
        "{head}"
    );
}

async fn read_body(c: &mut RawClient, head: &str) -> String {
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    String::from_utf8(c.read_exact(len).await).unwrap()
}
