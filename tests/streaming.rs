//! Messages streamed in and out (`tower_ws::streaming`): relayed fragment by fragment, never
//! held whole, past any message-size limit, with control frames answered underneath.
//!
//! The big test measures live heap with a counting allocator (this binary's own).

use std::alloc::System;
use std::hash::{DefaultHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tower_ws::streaming::{Incoming, MessageKind};
use tower_ws::{CloseCode, Config, ErrorKind, Message, Role, WebSocket};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const STEP: Duration = Duration::from_secs(60);

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

/// A server and a client socket over an in-memory pipe.
fn pair(server: &Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(256 << 10);
    (
        WebSocket::from_raw(a, Role::Server, server),
        WebSocket::from_raw(b, Role::Client, &Config::default()),
    )
}

/// Echoes every message fragment by fragment as it arrives.
async fn streaming_echo(ws: WebSocket<DuplexStream>) {
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(incoming)) = rx.recv_streaming().await {
        match incoming {
            Incoming::Data(mut reader) => {
                let mut writer = tx.send_streaming(reader.kind()).fragment_size(1 << 20);
                while let Some(chunk) = reader.next_chunk().await {
                    if writer.send_chunk(chunk.unwrap()).await.is_err() {
                        return;
                    }
                }
                writer.finish().await.unwrap();
            }
            Incoming::Message(Message::Close(_)) => {}
            Incoming::Message(_) => {}
        }
    }
}

/// A deterministic payload byte stream, `size` bytes in pieces.
fn piece(i: usize, len: usize) -> Bytes {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

/// Sends `mib` MiB in 1 MiB fragments through a streaming echo whose message limit is 1 MiB,
/// reads the echo as it comes, and checks it by hash; the live heap never grows by 32 MiB.
async fn relay(mib: usize) {
    let region = Region::new(GLOBAL);
    let server_config = Config::default().max_message_size(Some(1 << 20));
    let (server, client) = pair(&server_config);
    let echo = tokio::spawn(streaming_echo(server));
    let (mut tx, mut rx) = client.split();

    let sender = tokio::spawn(async move {
        let mut sent = DefaultHasher::new();
        let mut writer = tx
            .send_streaming(MessageKind::Binary)
            .fragment_size(1 << 20);
        for i in 0..mib {
            let data = piece(i, 1 << 20);
            sent.write(&data);
            writer.send_chunk(data).await.unwrap();
        }
        writer.finish().await.unwrap();
        (sent.finish(), tx)
    });

    let mut received = DefaultHasher::new();
    let mut total = 0usize;
    let mut peak = 0isize;
    let Some(Ok(Incoming::Data(mut reader))) = within(rx.recv_streaming()).await else {
        panic!("expected a data message");
    };
    assert_eq!(reader.kind(), MessageKind::Binary);
    while let Some(chunk) = within(reader.next_chunk()).await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        received.write(&chunk);
        peak = peak.max(live(&region));
    }
    drop(reader);
    let (sent, mut tx) = within(sender).await.unwrap();
    eprintln!(
        "{mib} MiB relayed; live heap peaked {} KiB above the start",
        peak >> 10
    );
    assert_eq!(total, mib << 20);
    assert_eq!(received.finish(), sent, "the echo is what was sent");
    assert!(
        peak < 32 << 20,
        "live heap grew by {} MiB while {mib} MiB went through",
        peak >> 20
    );
    within(tx.close()).await.unwrap();
    while within(rx.next()).await.is_some() {}
    within(echo).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_past_every_limit_is_relayed_without_being_held() {
    relay(64).await;
}

/// The 1 GiB run of the done-when (release build; `.ci/run` runs it):
/// `cargo test --release --test streaming -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB: run in release"]
async fn a_gibibyte_message_is_relayed_without_being_held() {
    relay(1024).await;
}

#[tokio::test]
async fn a_reader_dropped_mid_message_leaves_the_next_message_whole() {
    let (mut server, mut client) = pair(&Config::default());
    let mut writer = client.send_streaming(MessageKind::Text);
    writer
        .send_chunk(Bytes::from_static(b"first "))
        .await
        .unwrap();
    writer
        .send_chunk(Bytes::from_static(b"half"))
        .await
        .unwrap();
    writer.finish().await.unwrap();
    client.send(Message::text("second")).await.unwrap();

    let Some(Ok(Incoming::Data(mut reader))) = within(server.recv_streaming()).await else {
        panic!("expected a data message");
    };
    assert_eq!(reader.kind(), MessageKind::Text);
    assert_eq!(
        within(reader.next_chunk()).await.unwrap().unwrap(),
        "first "
    );
    drop(reader);
    // The rest of the first message is skipped; the next comes whole.
    let next = within(server.next()).await.unwrap().unwrap();
    assert_eq!(next, Message::text("second"));
}

/// A masked client frame.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [1, 2, 3, 4];
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one unmasked server frame: (first byte, payload).
async fn server_frame(io: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    within(io.read_exact(&mut head)).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
    let len = usize::from(head[1] & 0x7f);
    assert!(len < 126);
    let mut payload = vec![0; len];
    within(io.read_exact(&mut payload)).await.unwrap();
    (head[0], payload)
}

#[tokio::test]
async fn pings_between_fragments_are_answered_while_streaming() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let mut server = WebSocket::from_raw(a, Role::Server, &Config::default());
    peer.write_all(&client_frame(0x02, b"abc")).await.unwrap();
    peer.write_all(&client_frame(0x89, b"still there?"))
        .await
        .unwrap();
    peer.write_all(&client_frame(0x80, b"def")).await.unwrap();

    let Some(Ok(Incoming::Data(mut reader))) = within(server.recv_streaming()).await else {
        panic!("expected a data message");
    };
    let mut got = Vec::new();
    while let Some(chunk) = within(reader.next_chunk()).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, b"abcdef");
    drop(reader);
    // The pong went out while the message was being read.
    let pong = tokio::spawn(async move { server_frame(&mut peer).await });
    let _ = tokio::time::timeout(Duration::from_millis(200), server.next()).await;
    assert_eq!(
        within(pong).await.unwrap(),
        (0x8a, b"still there?".to_vec())
    );
}

#[tokio::test]
async fn a_writer_dropped_unfinished_fails_the_connection_with_1011() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let mut server = WebSocket::from_raw(a, Role::Server, &Config::default());
    let mut writer = server.send_streaming(MessageKind::Binary);
    writer
        .send_chunk(Bytes::from_static(b"half a"))
        .await
        .unwrap();
    drop(writer);
    let _ = within(SinkExt::flush(&mut server)).await;
    assert_eq!(server_frame(&mut peer).await, (0x02, b"half a".to_vec()));
    let (b0, payload) = server_frame(&mut peer).await;
    assert_eq!(b0, 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1011);
    assert!(server.send(Message::text("more")).await.is_err());
}

#[tokio::test]
async fn streamed_text_is_checked_both_ways() {
    // Sending: bytes that can never be UTF-8 are refused.
    let (_server, mut client) = pair(&Config::default());
    let mut writer = client.send_streaming(MessageKind::Text);
    let err = writer
        .send_chunk(Bytes::from_static(b"ok \xff"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMessage);
    drop(writer);
    // A code point split across chunks is fine.
    let (mut server, mut client) = pair(&Config::default());
    let mut writer = server.send_streaming(MessageKind::Text);
    writer
        .send_chunk(Bytes::from_static(b"caf\xc3"))
        .await
        .unwrap();
    writer
        .send_chunk(Bytes::from_static(b"\xa9"))
        .await
        .unwrap();
    writer.finish().await.unwrap();
    let Some(Ok(Incoming::Data(mut reader))) = within(client.recv_streaming()).await else {
        panic!("expected a data message");
    };
    let mut text = Vec::new();
    while let Some(chunk) = within(reader.next_chunk()).await {
        text.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(text).unwrap(), "café");
}

#[tokio::test]
async fn invalid_utf8_in_a_streamed_text_fails_the_connection_with_1007() {
    let (a, mut peer) = tokio::io::duplex(1 << 16);
    let mut server = WebSocket::from_raw(a, Role::Server, &Config::default());
    peer.write_all(&client_frame(0x01, b"fine")).await.unwrap();
    peer.write_all(&client_frame(0x80, b"\xff")).await.unwrap();
    let Some(Ok(Incoming::Data(mut reader))) = within(server.recv_streaming()).await else {
        panic!("expected a data message");
    };
    assert_eq!(within(reader.next_chunk()).await.unwrap().unwrap(), "fine");
    let err = within(reader.next_chunk()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUtf8);
    drop(reader);
    let (b0, payload) = server_frame(&mut peer).await;
    assert_eq!(b0, 0x88);
    assert_eq!(
        u16::from_be_bytes([payload[0], payload[1]]),
        u16::from(CloseCode::INVALID_PAYLOAD)
    );
}
