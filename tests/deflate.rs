//! permessage-deflate on the wire: negotiation over HTTP, compressed echoes, and every kind of
//! bad input getting its answer.

#![cfg(feature = "deflate")]

mod support;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::StreamExt;
use support::{RawClient, serve};
use tower_ws::{Config, DeflateConfig, UpgradedWebSocket};

const HANDSHAKE: &str = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

async fn echo(mut ws: UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

fn config() -> Config {
    Config::default()
        .deflate(Some(DeflateConfig::default()))
        .max_message_size(Some(1 << 20))
}

/// Connects offering `offer`; returns the client and the response head.
async fn connect(config: Config, offer: &str) -> (RawClient, String) {
    let addr = serve(config, echo).await;
    RawClient::request(
        addr,
        &format!("{HANDSHAKE}Sec-WebSocket-Extensions: {offer}\r\n"),
    )
    .await
}

/// Raw deflate with a sync flush, tail removed (RFC 7692 §7.2.1).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

#[tokio::test]
async fn offer_is_accepted_and_messages_echo_compressed() {
    let (mut c, head) = connect(config(), "permessage-deflate; client_max_window_bits").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    let text = "compress me, compress me, compress me, compress me, compress me!".repeat(20);
    c.send_frame(0xc1, &compress(text.as_bytes())).await;
    let frame = c.read_frame().await.unwrap();
    assert_eq!(frame.b0, 0xc1, "FIN + RSV1 + text");
    assert!(frame.payload.len() < text.len() / 4);
    assert_eq!(inflate(&frame.payload), text.as_bytes());

    // An uncompressed message on the same connection is fine too, and small replies stay
    // uncompressed (below the threshold).
    c.send_frame(0x81, b"plain").await;
    let frame = c.read_frame().await.unwrap();
    assert_eq!(
        (frame.b0, frame.payload.as_slice()),
        (0x81, b"plain".as_slice())
    );
}

#[tokio::test]
async fn fragmented_compressed_message_is_reassembled() {
    let (mut c, _) = connect(config(), "permessage-deflate").await;
    let text = "fragments of a compressed message ".repeat(50);
    let compressed = compress(text.as_bytes());
    let (a, b) = compressed.split_at(compressed.len() / 2);
    c.send_frame(0x41, a).await; // text, RSV1, not final
    c.send_frame(0x89, b"ping in between").await;
    c.send_frame(0x80, b).await; // continuation, final, no RSV1
    let pong = c.read_frame().await.unwrap();
    assert_eq!(pong.opcode(), 0xa);
    let frame = c.read_frame().await.unwrap();
    assert_eq!(inflate(&frame.payload), text.as_bytes());
}

#[tokio::test]
async fn without_the_feature_enabled_offers_are_declined() {
    let addr = serve(Config::default(), echo).await;
    let (mut c, head) = RawClient::request(
        addr,
        &format!("{HANDSHAKE}Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    // And RSV1 is then a protocol error.
    c.send_frame(0xc1, &compress(b"x")).await;
    assert_eq!(c.expect_close().await, Some(1002));
}

#[tokio::test]
async fn malformed_extension_header_is_400() {
    let (mut c, head) = connect(config(), "permessage-deflate; server_max_window_bits=\"1").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let len: usize = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let body = String::from_utf8(c.read_exact(len).await).unwrap();
    assert!(body.contains("Sec-WebSocket-Extensions"), "{body}");
}

#[tokio::test]
async fn invalid_offers_are_declined_not_refused() {
    let (_c, head) = connect(
        config(),
        "permessage-deflate; server_max_window_bits=20, permessage-deflate; x=1",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
}

#[tokio::test]
async fn bad_compressed_input_gets_its_close_code() {
    let bomb = {
        let zeros = vec![0u8; 8 << 20];
        compress(&zeros)
    };
    let cases: Vec<(&str, Vec<Vec<u8>>, u16)> = vec![
        (
            "RSV1 on a ping",
            vec![support::masked_frame(0xc9, b"")],
            1002,
        ),
        (
            "RSV1 on a continuation",
            vec![
                support::masked_frame(0x41, &compress(b"a")),
                support::masked_frame(0xc0, &compress(b"b")),
            ],
            1002,
        ),
        (
            "corrupt deflate data",
            vec![support::masked_frame(0xc2, &[0xff, 0xff, 0xff, 0xff, 0xff])],
            1007,
        ),
        (
            "compressed invalid UTF-8",
            vec![support::masked_frame(0xc1, &compress(b"ok \xff"))],
            1007,
        ),
        (
            "inflate bomb over max_message_size",
            vec![support::masked_frame(0xc2, &bomb)],
            1009,
        ),
    ];
    for (name, frames, code) in cases {
        let (mut c, head) = connect(config(), "permessage-deflate").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{name}: {head}");
        for f in frames {
            c.send_raw(&f).await;
        }
        assert_eq!(c.expect_close().await, Some(code), "{name}");
    }
}

#[tokio::test]
async fn send_uncompressed_opts_one_message_out() {
    let addr = serve(config(), |mut ws: UpgradedWebSocket| async move {
        let big = tower_ws::Message::text("x".repeat(1000));
        ws.send_uncompressed(big.clone()).await.unwrap();
        ws.send(big).await.unwrap();
        let _ = ws.next().await;
    })
    .await;
    let (mut c, _) = RawClient::request(
        addr,
        &format!("{HANDSHAKE}Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    )
    .await;
    let first = c.read_frame().await.unwrap();
    assert_eq!((first.b0, first.payload.len()), (0x81, 1000));
    let second = c.read_frame().await.unwrap();
    assert_eq!(second.b0, 0xc1);
    assert_eq!(inflate(&second.payload), "x".repeat(1000).as_bytes());
}

/// A server that runs the pure handshake itself keeps the agreed compression through
/// `WebSocket::from_accept` (with `from_raw` it was lost: frames went out uncompressed).
#[tokio::test]
async fn from_accept_keeps_the_negotiated_deflate() {
    use tokio::io::AsyncReadExt;
    let config = tower_ws::Config::default().deflate(Some(Default::default()));
    let req = http::Request::get("/")
        .header("host", "example.com")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-extensions", "permessage-deflate")
        .body(())
        .unwrap();
    let accept = tower_ws::handshake::validate(&req, &config).unwrap();
    assert!(accept.extensions().is_some());
    let (io, mut peer) = tokio::io::duplex(1 << 16);
    let mut ws = tower_ws::WebSocket::from_accept(io, accept, &config);
    ws.send(tower_ws::Message::text("abc".repeat(400)))
        .await
        .unwrap();
    let mut head = [0u8; 2];
    peer.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x80 | 0x40 | 0x1, "FIN + RSV1 (compressed) + text");
    assert!(
        usize::from(head[1] & 0x7f) < 100,
        "1,200 bytes compressed well"
    );
}
