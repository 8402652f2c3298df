//! `tower_ws::serve`: the accept loop that takes only a handler.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{raw_response, within};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite;
use tower_ws::{Config, OriginPolicy, Shutdown, UpgradedWebSocket};

async fn echo(mut ws: UpgradedWebSocket, _parts: http::request::Parts) {
    while let Some(Ok(msg)) = ws.recv().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn serve_echoes_refuses_plain_http_and_stops_with_its_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(
        tower_ws::serve(listener, echo)
            .config(Config::default().origin(OriginPolicy::Any))
            .shutdown(&shutdown)
            .into_future(),
    );

    let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/x")))
        .await
        .unwrap();
    within(client.send(tungstenite::Message::text("hello")))
        .await
        .unwrap();
    let back = within(client.next()).await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "hello");

    let (status, head) = raw_response(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 426, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );

    let closing = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.shutdown(Duration::from_secs(5)).await }
    });
    // The open socket is closed with 1001 (going away); reading it answers the close ...
    let close = within(client.next()).await.unwrap().unwrap();
    match close {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(within(client.next()).await.is_none());
    assert_eq!(
        within(closing).await.unwrap(),
        0,
        "every socket finished its close"
    );
    // ... and the server stopped accepting and resolved.
    within(server).await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A client that never finishes its request head is dropped after the header timeout.
#[tokio::test]
async fn serve_drops_a_client_trickling_its_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tower_ws::serve(listener, echo)
            .header_read_timeout(Duration::from_millis(200))
            .into_future(),
    );
    let mut tcp = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // The server closes the connection (after a 408, if it sends one) well before STEP.
    within(tcp.read_to_end(&mut rest)).await.unwrap();
    server.abort();
}

/// A hand-made client reads the `101` head and, in the same read, the server's first message:
/// `from_partially_read` takes those bytes, so the message is not lost (with `from_raw` it was).
#[tokio::test]
async fn a_client_built_from_a_partial_read_keeps_the_servers_first_message() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_ws::{Message, Role, WebSocket};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tower_ws::serve(listener, |mut ws: UpgradedWebSocket, _parts| async move {
            let _ = ws.send(Message::text("welcome")).await;
            while let Some(Ok(_)) = ws.recv().await {}
        })
        .config(Config::default().origin(OriginPolicy::Any))
        .into_future(),
    );
    let mut tcp = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(support::upgrade_request("/", "").as_bytes())
        .await
        .unwrap();
    // Read until the head is complete and the first frame is in too.
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 1024];
        let n = within(tcp.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if buf.len() > end + 4 + 2 {
                break end + 4;
            }
        }
    };
    assert!(buf.starts_with(b"HTTP/1.1 101"));
    let mut ws =
        WebSocket::from_partially_read(tcp, &buf[head_end..], Role::Client, &Config::default());
    let first = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(first, Message::text("welcome"));
    server.abort();
}
