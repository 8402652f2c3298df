//! Typed JSON messages: a round trip, a bad message skipped, binary frames, encode errors.

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
