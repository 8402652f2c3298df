//! Typed JSON messages: a round trip, a bad message skipped or answered with its id, binary
//! frames, encode errors, and (feature `axum`) the axum socket and its split halves.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tower_ws::typed::{Typed, TypedErrorKind};
use tower_ws::{CloseCode, Config, Message, Role, WebSocket};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ToServer {
    Add { a: i64, b: i64 },
    Shout(String),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct FromServer {
    result: String,
}

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("step timed out")
}

#[tokio::test]
async fn typed_round_trip_skips_a_bad_message_and_reads_binary_json() {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    let mut client = WebSocket::from_raw(client_io, Role::Client, &Config::default());

    let server_task = tokio::spawn(async move {
        let mut ws = Typed::<_, ToServer, FromServer>::new(server);
        let mut skipped = 0;
        while let Some(item) = ws.next().await {
            let result = match item {
                Ok(ToServer::Add { a, b }) => (a + b).to_string(),
                Ok(ToServer::Shout(s)) => s.to_uppercase(),
                Err(e) if e.is_decode() => {
                    skipped += 1;
                    continue;
                }
                Err(e) => panic!("socket failed: {e}"),
            };
            ws.send(FromServer { result }).await.unwrap();
        }
        skipped
    });

    let mut client_typed = Typed::<_, FromServer, ToServer>::new(&mut client);
    within(client_typed.send(ToServer::Add { a: 2, b: 40 }))
        .await
        .unwrap();
    assert_eq!(
        within(client_typed.next()).await.unwrap().unwrap().result,
        "42"
    );

    // Not JSON, and JSON of the wrong shape: both skipped by the server, which reads on.
    let raw = client_typed.get_mut();
    within(raw.send(Message::text("{not json"))).await.unwrap();
    within(raw.send(Message::text(r#"{"Multiply":{"a":1}}"#)))
        .await
        .unwrap();

    // Binary frames carry JSON too.
    let mut binary = Typed::<_, FromServer, ToServer>::new(&mut client).send_binary(true);
    within(binary.send(ToServer::Shout("hey".into())))
        .await
        .unwrap();
    assert_eq!(within(binary.next()).await.unwrap().unwrap().result, "HEY");

    within(client.close(CloseCode::NORMAL, "")).await.unwrap();
    assert_eq!(within(server_task).await.unwrap(), 2);
}

#[tokio::test]
async fn typed_client_gets_a_decode_error_for_a_wrong_reply_and_goes_on() {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let mut server = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    let client = WebSocket::from_raw(client_io, Role::Client, &Config::default());
    let mut client = Typed::<_, FromServer, ToServer>::new(client);
    within(server.send(Message::text("[1, 2]"))).await.unwrap();
    within(server.send(Message::text(r#"{"result":"ok"}"#)))
        .await
        .unwrap();
    let err = within(client.next()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), TypedErrorKind::Decode);
    assert!(err.into_socket_error().is_none());
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        FromServer {
            result: "ok".into()
        }
    );
}

#[tokio::test]
async fn typed_encode_errors_send_nothing_and_keep_the_connection() {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let server = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    let mut client = WebSocket::from_raw(client_io, Role::Client, &Config::default());
    let mut server = Typed::<_, serde_json::Value, BTreeMap<(u8, u8), u8>>::new(server);
    // JSON object keys must be strings: a tuple key cannot be serialized.
    let err = within(server.send(BTreeMap::from([((1, 2), 3)])))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TypedErrorKind::Encode);
    within(server.send(BTreeMap::new())).await.unwrap();
    let got = within(client.recv()).await.unwrap().unwrap();
    assert_eq!(got.as_text(), Some("{}"));
}

#[derive(Debug, Deserialize)]
struct Call {
    id: u64,
    #[allow(dead_code)]
    method: String,
}

#[tokio::test]
async fn typed_decode_error_keeps_serdes_reason_and_the_text_so_a_reply_can_name_the_request() {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let mut server = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    let client = WebSocket::from_raw(client_io, Role::Client, &Config::default());
    let mut client = Typed::<_, Call, ()>::new(client);

    // `method` is missing: valid JSON, wrong shape; the id is still there to answer with.
    within(server.send(Message::text(r#"{"id":7,"params":[]}"#)))
        .await
        .unwrap();
    let err = within(client.next()).await.unwrap().unwrap_err();
    assert!(err.is_decode());
    assert_eq!(err.text(), Some(r#"{"id":7,"params":[]}"#));
    let json = err.json_error().expect("serde's error is kept");
    assert!(json.is_data(), "{json}");
    assert!(json.to_string().contains("method"), "{json}");
    let id = serde_json::from_str::<serde_json::Value>(err.text().unwrap()).unwrap()["id"].as_u64();
    assert_eq!(id, Some(7));
    // The source is serde's error too, and Debug shows the message's length, not its text.
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<serde_json::Error>().is_some());
    let debug = format!("{err:?}");
    assert!(debug.contains("Text(20 bytes)"), "{debug}");
    assert!(!debug.contains("params"), "{debug}");

    // Binary JSON that is not UTF-8: no text, the bytes as received.
    within(server.send(Message::binary(vec![0xff, b'{'])))
        .await
        .unwrap();
    let err = within(client.next()).await.unwrap().unwrap_err();
    assert!(err.json_error().unwrap().is_syntax());
    assert_eq!(err.text(), None);
    assert_eq!(
        err.into_received().map(Message::into_data).as_deref(),
        Some(&[0xff, b'{'][..])
    );

    // And the connection goes on.
    within(server.send(Message::text(r#"{"id":8,"method":"m"}"#)))
        .await
        .unwrap();
    assert_eq!(within(client.next()).await.unwrap().unwrap().id, 8);
}

#[tokio::test]
async fn typed_wraps_the_crates_own_split_halves() {
    let (server_io, client_io) = tokio::io::duplex(4096);
    let server = WebSocket::from_raw(server_io, Role::Server, &Config::default());
    let mut client = WebSocket::from_raw(client_io, Role::Client, &Config::default());
    let (write, read) = server.split();
    let mut rx = Typed::<_, ToServer>::new(read);
    let mut tx = Typed::<_, (), FromServer>::new(write);
    within(client.send(Message::text(r#"{"Shout":"split"}"#)))
        .await
        .unwrap();
    let ToServer::Shout(s) = within(rx.next()).await.unwrap().unwrap() else {
        panic!("expected Shout")
    };
    within(tx.send(FromServer { result: s })).await.unwrap();
    let got = within(client.recv()).await.unwrap().unwrap();
    assert_eq!(got.as_text(), Some(r#"{"result":"split"}"#));
}

#[cfg(feature = "axum")]
mod with_axum {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::response::Response;
    use axum::routing::any;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite;
    use tower_ws::ErrorKind;
    use tower_ws::axum::{WebSocket, WebSocketUpgrade};
    use tower_ws::typed::Typed;

    use super::{FromServer, ToServer, within};

    fn answer(call: ToServer) -> FromServer {
        let result = match call {
            ToServer::Add { a, b } => (a + b).to_string(),
            ToServer::Shout(s) => s.to_uppercase(),
        };
        FromServer { result }
    }

    /// The whole socket, typed.
    async fn whole(socket: WebSocket, errors: mpsc::UnboundedSender<Option<ErrorKind>>) {
        let mut ws = Typed::<_, ToServer, FromServer>::new(socket);
        while let Some(call) = ws.next().await {
            match call {
                Ok(call) => {
                    if ws.send(answer(call)).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.is_decode() => {
                    let reply = FromServer {
                        result: format!("bad: {}", e.text().unwrap_or_default()),
                    };
                    if ws.send(reply).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = errors.send(e.into_socket_error().map(|e| e.kind()));
                    return;
                }
            }
        }
    }

    /// Its split halves, typed, with a binary reply.
    async fn halves(socket: WebSocket) {
        let (tx, rx) = socket.split();
        let mut rx = Typed::<_, ToServer>::new(rx);
        let mut tx = Typed::<_, (), FromServer>::new(tx).send_binary(true);
        while let Some(Ok(call)) = rx.next().await {
            if tx.send(answer(call)).await.is_err() {
                return;
            }
        }
    }

    async fn app() -> (SocketAddr, mpsc::UnboundedReceiver<Option<ErrorKind>>) {
        let (errors, seen) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/whole",
                any(move |ws: WebSocketUpgrade| {
                    let errors = errors.clone();
                    async move { ws.on_upgrade(move |socket| whole(socket, errors)) }
                }),
            )
            .route(
                "/halves",
                any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(halves) as Response }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, seen)
    }

    #[tokio::test]
    async fn typed_wraps_the_axum_socket_and_its_split_halves() {
        let (addr, _) = app().await;
        let (mut whole, _) = within(tokio_tungstenite::connect_async(format!(
            "ws://{addr}/whole"
        )))
        .await
        .unwrap();
        within(whole.send(tungstenite::Message::text(r#"{"Add":{"a":2,"b":40}}"#)))
            .await
            .unwrap();
        let got = within(whole.next()).await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), r#"{"result":"42"}"#);
        within(whole.send(tungstenite::Message::text("nope")))
            .await
            .unwrap();
        let got = within(whole.next()).await.unwrap().unwrap();
        assert_eq!(
            got.into_text().unwrap().as_str(),
            r#"{"result":"bad: nope"}"#
        );

        let (mut halves, _) = within(tokio_tungstenite::connect_async(format!(
            "ws://{addr}/halves"
        )))
        .await
        .unwrap();
        within(halves.send(tungstenite::Message::text(r#"{"Shout":"hi"}"#)))
            .await
            .unwrap();
        match within(halves.next()).await.unwrap().unwrap() {
            tungstenite::Message::Binary(data) => assert_eq!(&data[..], br#"{"result":"HI"}"#),
            other => panic!("expected a binary reply, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn typed_axum_socket_errors_unwrap_to_the_crates_error() {
        let (addr, mut seen) = app().await;
        let mut tcp = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
        let request = "GET /whole HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
                       Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        within(tcp.write_all(request.as_bytes())).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(within(tcp.read(&mut byte)).await.unwrap(), 1);
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        // A masked frame with the reserved opcode 0x3: a protocol violation (1002).
        within(tcp.write_all(&[0x83, 0x80, 1, 2, 3, 4]))
            .await
            .unwrap();
        let kind = within(seen.recv()).await.unwrap();
        assert_eq!(kind, Some(ErrorKind::ReservedOpcode));
    }
}
