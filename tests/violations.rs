//! Each protocol violation gets its close code, and the server then closes the connection.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use support::{RawClient, serve, within};
use tower_ws::{Config, ErrorKind, UpgradedWebSocket};

type Seen = Arc<Mutex<Vec<ErrorKind>>>;

/// A server that reads until the end and records the error it ended with.
async fn recording_server(config: Config) -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let addr = serve(config, move |mut ws: UpgradedWebSocket| {
        let record = record.clone();
        async move {
            while let Some(item) = ws.next().await {
                if let Err(e) = item {
                    record.lock().unwrap().push(e.kind());
                }
            }
        }
    })
    .await;
    (addr, seen)
}

async fn violation(config: Config, bytes: Vec<u8>) -> (Option<u16>, Vec<ErrorKind>) {
    let (addr, seen) = recording_server(config).await;
    let mut client = RawClient::connect(addr).await;
    client.send_raw(&bytes).await;
    let code = client.expect_close().await;
    // The server task records its error right after closing.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let errors = seen.lock().unwrap().clone();
    (code, errors)
}

#[tokio::test]
async fn each_violation_gets_its_close_code() {
    let small = Config::default()
        .max_frame_size(Some(1024))
        .max_message_size(Some(2048));
    let cases: Vec<(&str, Config, Vec<u8>, u16, ErrorKind)> = vec![
        (
            "unmasked frame",
            Config::default(),
            vec![0x81, 0x02, b'h', b'i'],
            1002,
            ErrorKind::BadMasking,
        ),
        (
            "RSV1 without extension",
            Config::default(),
            support::masked_frame(0xc1, b"x"),
            1002,
            ErrorKind::ReservedBits,
        ),
        (
            "RSV2",
            Config::default(),
            support::masked_frame(0xa2, b"x"),
            1002,
            ErrorKind::ReservedBits,
        ),
        (
            "reserved data opcode 3",
            Config::default(),
            support::masked_frame(0x83, b""),
            1002,
            ErrorKind::ReservedOpcode,
        ),
        (
            "reserved control opcode 0xB",
            Config::default(),
            support::masked_frame(0x8b, b""),
            1002,
            ErrorKind::ReservedOpcode,
        ),
        (
            "fragmented ping",
            Config::default(),
            support::masked_frame(0x09, b"x"),
            1002,
            ErrorKind::BadControlFrame,
        ),
        (
            "ping over 125 bytes",
            Config::default(),
            support::masked_frame(0x89, &[0; 126]),
            1002,
            ErrorKind::BadControlFrame,
        ),
        (
            "continuation without start",
            Config::default(),
            support::masked_frame(0x80, b"x"),
            1002,
            ErrorKind::BadFragmentation,
        ),
        (
            "new message inside a fragmented one",
            Config::default(),
            [
                support::masked_frame(0x01, b"a"),
                support::masked_frame(0x81, b"b"),
            ]
            .concat(),
            1002,
            ErrorKind::BadFragmentation,
        ),
        (
            "1-byte close payload",
            Config::default(),
            support::masked_frame(0x88, b"\x03"),
            1002,
            ErrorKind::BadClosePayload,
        ),
        (
            "close code 1005",
            Config::default(),
            support::masked_frame(0x88, &1005u16.to_be_bytes()),
            1002,
            ErrorKind::BadClosePayload,
        ),
        (
            "close code 999",
            Config::default(),
            support::masked_frame(0x88, &999u16.to_be_bytes()),
            1002,
            ErrorKind::BadClosePayload,
        ),
        (
            "close reason not UTF-8",
            Config::default(),
            support::masked_frame(0x88, b"\x03\xe8\xff"),
            1007,
            ErrorKind::InvalidUtf8,
        ),
        (
            "text not UTF-8",
            Config::default(),
            support::masked_frame(0x81, b"ok \xc3\x28"),
            1007,
            ErrorKind::InvalidUtf8,
        ),
        (
            "text fragment not UTF-8",
            Config::default(),
            [
                support::masked_frame(0x01, b"ok"),
                support::masked_frame(0x00, b"\xed\xa0\x80"),
            ]
            .concat(),
            1007,
            ErrorKind::InvalidUtf8,
        ),
        (
            "frame over max_frame_size",
            small.clone(),
            support::masked_frame(0x82, &[0; 1025]),
            1009,
            ErrorKind::FrameTooLarge,
        ),
        (
            "message over max_message_size",
            small.clone(),
            [
                support::masked_frame(0x02, &[0; 1024]),
                support::masked_frame(0x00, &[0; 1024]),
                support::masked_frame(0x80, &[0; 1]),
            ]
            .concat(),
            1009,
            ErrorKind::MessageTooLarge,
        ),
        (
            "2^63-1 length header",
            Config::default(),
            vec![
                0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
            ],
            1009,
            ErrorKind::FrameTooLarge,
        ),
    ];
    for (name, config, bytes, code, kind) in cases {
        let (got_code, errors) = within(violation(config, bytes)).await;
        assert_eq!(got_code, Some(code), "{name}: close code");
        assert_eq!(errors, [kind], "{name}: error seen by the application");
    }
}

#[tokio::test]
async fn invalid_utf8_fails_before_the_frame_is_complete() {
    let (addr, seen) = recording_server(Config::default()).await;
    let mut client = RawClient::connect(addr).await;
    let whole = support::masked_frame(0x81, &[b"abc\xff".as_slice(), &[b'x'; 1000]].concat());
    // Only the header and the bad byte: the rest of the frame never comes.
    client.send_raw(&whole[..2 + 2 + 4 + 4]).await;
    assert_eq!(client.expect_close().await, Some(1007));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*seen.lock().unwrap(), [ErrorKind::InvalidUtf8]);
}

#[tokio::test]
async fn messages_before_a_violation_are_delivered_first() {
    let addr = serve(Config::default(), |mut ws: UpgradedWebSocket| async move {
        use futures_util::SinkExt;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() {
                let _ = ws.feed(msg).await;
            }
        }
    })
    .await;
    let mut client = RawClient::connect(addr).await;
    let mut bytes = support::masked_frame(0x81, b"one");
    bytes.extend(support::masked_frame(0x81, b"two"));
    bytes.extend(support::masked_frame(0x83, b""));
    client.send_raw(&bytes).await;
    assert_eq!(client.read_frame().await.unwrap().payload, b"one");
    assert_eq!(client.read_frame().await.unwrap().payload, b"two");
    assert_eq!(client.expect_close().await, Some(1002));
}

#[tokio::test]
async fn eof_without_close_is_a_connection_reset_error() {
    let (addr, seen) = recording_server(Config::default()).await;
    let client = RawClient::connect(addr).await;
    drop(client);
    within(async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), [ErrorKind::ConnectionReset]);
}

#[tokio::test]
async fn an_unresponsive_peer_fails_the_keepalive() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(30)))
        .pong_timeout(Duration::from_millis(60));
    let (addr, seen) = recording_server(config).await;
    let mut client = RawClient::connect(addr).await;
    // Read (and ignore) the pings; never answer.
    let first = client.read_frame().await.unwrap();
    assert_eq!(first.opcode(), 9, "expected a keepalive ping");
    assert_eq!(client.expect_close().await, Some(1008));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*seen.lock().unwrap(), [ErrorKind::KeepaliveTimeout]);
}

#[tokio::test]
async fn empty_close_is_answered_with_empty_close() {
    let (addr, seen) = recording_server(Config::default()).await;
    let mut client = RawClient::connect(addr).await;
    client.send_frame(0x88, b"").await;
    assert_eq!(client.expect_close().await, None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "a clean close is not an error"
    );
}

#[tokio::test]
async fn a_peer_close_is_echoed_with_its_code() {
    let (addr, seen) = recording_server(Config::default()).await;
    let mut client = RawClient::connect(addr).await;
    // RFC 6455 §5.5.1: the reply echoes the status code received.
    client.send_frame(0x88, b"\x0f\xa0going").await;
    assert_eq!(client.expect_close().await, Some(4000));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_violation_after_our_close_is_reported_without_a_second_close_frame() {
    use tower_ws::{CloseCode, CloseFrame, Message};

    let seen: Seen = Arc::default();
    let record = seen.clone();
    let addr = serve(Config::default(), move |mut ws: UpgradedWebSocket| {
        let record = record.clone();
        async move {
            let bye = CloseFrame::new(CloseCode::NORMAL, "bye");
            ws.send(Message::Close(Some(bye))).await.unwrap();
            while let Some(item) = ws.next().await {
                if let Err(e) = item {
                    record.lock().unwrap().push(e.kind());
                }
            }
        }
    })
    .await;
    let mut client = RawClient::connect(addr).await;
    let close = client.read_frame().await.expect("the server's close");
    assert_eq!(close.close_code(), Some(1000));
    // A reserved opcode instead of the close reply: the server's close stands (one close frame
    // per connection), and the violation is what its stream reports.
    client.send_frame(0x83, b"").await;
    assert!(
        client.read_frame().await.is_none(),
        "a second close frame was sent"
    );
    within(async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), [ErrorKind::ReservedOpcode]);
}
