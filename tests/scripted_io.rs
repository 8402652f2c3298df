//! The socket over in-memory IO that only moves a few bytes at a time (short reads and writes,
//! `Pending` everywhere), in both roles.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tower_ws::{CloseCode, Config, ErrorKind, Message, Role, WebSocket};

fn pair(capacity: usize, config: &Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(capacity);
    (
        WebSocket::from_raw(a, Role::Server, config),
        WebSocket::from_raw(b, Role::Client, config),
    )
}

fn messages() -> Vec<Message> {
    vec![
        Message::text("short"),
        Message::binary(vec![7u8; 3000]),
        Message::text("ü".repeat(40_000)),
        Message::binary(Vec::new()),
        Message::binary((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    ]
}

#[tokio::test]
async fn messages_survive_three_byte_reads_and_writes_both_ways() {
    let (mut server, mut client) = pair(3, &Config::default());
    let expected = messages();
    let sent = expected.clone();
    let writer = tokio::spawn(async move {
        for msg in sent {
            client.send(msg).await.unwrap();
        }
        // Echoes come back through the same tiny pipe.
        let mut back = Vec::new();
        for _ in 0..5 {
            back.push(client.next().await.unwrap().unwrap());
        }
        client.close(CloseCode::NORMAL, "").await.unwrap();
        back
    });
    let mut got = Vec::new();
    while let Some(msg) = server.next().await {
        let msg = msg.unwrap();
        if msg.is_close() {
            continue;
        }
        server.feed(msg.clone()).await.unwrap();
        got.push(msg);
    }
    assert_eq!(got, expected);
    let back = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, expected);
}

#[tokio::test]
async fn cancelled_receives_lose_nothing() {
    let (mut server, mut client) = pair(5, &Config::default());
    let expected = messages();
    let sent = expected.clone();
    tokio::spawn(async move {
        for msg in sent {
            client.send(msg).await.unwrap();
        }
        while client.next().await.is_some() {}
    });
    let mut got = Vec::new();
    while got.len() < expected.len() {
        // Poll `recv` once and drop it, over and over.
        if let Some(msg) = server.recv().now_or_never() {
            got.push(msg.unwrap().unwrap());
        } else {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn poll_ready_pends_above_the_high_water_mark() {
    let config = Config::default()
        .write_buffer_size(1024)
        .max_write_buffer_size(4096);
    let (mut server, _client) = pair(64, &config);
    let mut fed = 0;
    // Nobody reads the client side: the pipe fills, then the write buffer, then feed pends.
    loop {
        match server.feed(Message::binary(vec![0u8; 1000])).now_or_never() {
            Some(Ok(())) => fed += 1,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
        assert!(fed < 100, "backpressure never applied");
    }
    assert!(fed >= 4, "fed only {fed} messages before pending");
}

#[tokio::test]
async fn sending_after_close_is_an_error_and_control_payloads_are_checked() {
    let (mut server, _client) = pair(1024, &Config::default());
    let err = server
        .send(Message::Ping(vec![0u8; 126].into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMessage);
    let err = server
        .send(Message::Close(Some(tower_ws::CloseFrame::new(
            CloseCode::ABNORMAL,
            "",
        ))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMessage);
    server.send(Message::Close(None)).await.unwrap();
    let err = server.send(Message::text("late")).await.unwrap_err();
    assert!(err.is_closed());
}

#[tokio::test]
async fn a_client_rejects_masked_frames() {
    // Two clients facing each other: each sends masked frames, which a client must refuse.
    let (a, b) = tokio::io::duplex(1024);
    let mut left = WebSocket::from_raw(a, Role::Client, &Config::default());
    let mut right = WebSocket::from_raw(b, Role::Client, &Config::default());
    left.send(Message::text("masked")).await.unwrap();
    let err = right.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadMasking);
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_after_the_close_timeout() {
    let config = Config::default().close_timeout(Duration::from_secs(3));
    let (mut server, _silent_client) = pair(1024, &config);
    let err = server.close(CloseCode::NORMAL, "bye").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CloseTimeout);
}
