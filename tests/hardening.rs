//! Faults no conformance suite exercises, tried the way an attacker and an axum user would:
//! peers that never read, peers that never answer a close, a socket shared between tasks with
//! `futures_util::StreamExt::split`. Each test here failed before the fix it guards (see
//! CHANGELOG); time is tokio's paused clock where timers matter, so they run in milliseconds.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::masked_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tower_ws::{CloseCode, CloseFrame, Config, ErrorKind, Message, Role, WebSocket};

fn server(capacity: usize, config: &Config) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(capacity);
    (WebSocket::from_raw(a, Role::Server, config), b)
}

/// The frames in `bytes` (unmasked, as a server sends them): `(first byte, payload)`.
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let (b0, len7) = (bytes[0], bytes[1] & 0x7f);
        let (len, at) = match len7 {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        out.push((b0, bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    out
}

/// Everything the peer receives until nothing arrives for `quiet`.
async fn drain(peer: &mut DuplexStream, quiet: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, peer.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

// --- 1. The socket's own writes are bounded ------------------------------------------------

/// 40,000 pings of 125 bytes from a peer that never reads: before, every ping queued a pong
/// and the write queue grew past 5 MB; now pongs never take it past `write_buffer_size`.
#[tokio::test]
async fn a_ping_flood_from_a_peer_that_never_reads_stays_bounded() {
    let config = Config::default();
    let (mut ws, mut peer) = server(64 * 1024, &config);
    let flood = tokio::spawn(async move {
        let ping = masked_frame(0x89, &[0x55; 125]);
        for _ in 0..40_000 {
            peer.write_all(&ping).await.unwrap();
        }
        peer // keep it open, and never read
    });
    let mut most = 0;
    for _ in 0..40_000 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the socket kept reading pings")
            .unwrap()
            .unwrap();
        assert!(msg.is_ping());
        most = most.max(ws.buffered_amount());
    }
    let _peer = flood.await.unwrap();
    let bound = config.write_buffer_size + 127;
    assert!(most <= bound, "{most} bytes queued; bound {bound}");
}

/// `write_buffer_size(0)` (axum's "write at once") still answers every ping.
#[tokio::test]
async fn pings_are_answered_with_a_zero_write_buffer_size() {
    let (mut ws, mut peer) = server(64 * 1024, &Config::default().write_buffer_size(0));
    for i in 0..3u8 {
        peer.write_all(&masked_frame(0x89, &[i])).await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(msg.is_ping());
        let mut pong = [0u8; 3];
        let _ = tokio::time::timeout(Duration::from_millis(10), ws.next()).await;
        tokio::time::timeout(Duration::from_secs(2), peer.read_exact(&mut pong))
            .await
            .expect("no pong")
            .unwrap();
        assert_eq!(pong, [0x8a, 1, i]);
    }
}

/// With the application's messages above the high-water mark and the peer not reading, the
/// socket stops reading too, so TCP pushes back on the flood instead of our CPU absorbing it.
#[tokio::test]
async fn above_the_high_water_mark_the_socket_stops_reading() {
    let config = Config::default()
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(64 * 1024);
    let (mut ws, peer) = server(16 * 1024, &config);
    // Fill the queue until `poll_ready` pushes back.
    let big = Message::binary(vec![1u8; 32 * 1024]);
    while tokio::time::timeout(Duration::from_millis(50), ws.feed(big.clone()))
        .await
        .is_ok()
    {}
    let queued = ws.buffered_amount();
    assert!(queued >= 64 * 1024, "{queued}");
    let (mut peer_rx, mut peer_tx) = tokio::io::split(peer);
    let flood = tokio::spawn(async move {
        let ping = masked_frame(0x89, b"p");
        for _ in 0..200_000 {
            if peer_tx.write_all(&ping).await.is_err() {
                return false;
            }
        }
        true
    });
    // The application keeps asking for messages; it gets at most what was already buffered.
    let mut got = 0;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
        got += 1;
    }
    assert!(
        !flood.is_finished(),
        "the socket read all 200,000 pings ({got} returned) while the peer read nothing"
    );
    assert!(ws.buffered_amount() <= queued + 16 * 1024);
    // Once the peer reads, everything moves again.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        while peer_rx.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let pump = async {
        while !flood.is_finished() {
            let _ = tokio::time::timeout(Duration::from_millis(50), ws.next()).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), pump)
        .await
        .expect("the flood never finished once the peer read");
    drop(ws);
    reader.await.unwrap();
}

// --- 2. The close timer runs from the moment any path queues a close ------------------------

fn closing_config() -> Config {
    Config::default().close_timeout(Duration::from_millis(200))
}

async fn assert_close_times_out(
    next: impl Future<Output = Option<Result<Message, tower_ws::Error>>>,
) {
    match tokio::time::timeout(Duration::from_secs(3), next).await {
        Ok(Some(Err(e))) => assert_eq!(e.kind(), ErrorKind::CloseTimeout),
        Ok(other) => panic!("expected the close timeout, got {other:?}"),
        Err(_) => panic!("still waiting 3 s after a 200 ms close timeout"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_close_timer_runs_after_the_write_half_closes() {
    for keepalive in [None, Some(Duration::from_millis(50))] {
        let (ws, _peer) = server(1 << 20, &closing_config().ping_interval(keepalive));
        let (mut tx, mut rx) = ws.split();
        tx.close().await.unwrap();
        assert_close_times_out(rx.next()).await;
    }
}

/// The reader is already waiting when the writer queues the close, and the flush finishes at
/// once: before, nothing polled the new timer, so nothing woke the reader at the deadline
/// (found by the `socket` fuzz target).
#[tokio::test(start_paused = true)]
async fn the_close_timer_wakes_a_reader_that_was_already_waiting() {
    for futures_split in [false, true] {
        let (ws, _peer) = server(1 << 20, &closing_config());
        let (mut tx, reader) = if futures_split {
            let (tx, mut rx) = StreamExt::split(ws);
            let reader = tokio::spawn(async move { rx.next().await });
            (futures_util::future::Either::Left(tx), reader)
        } else {
            let (tx, mut rx) = ws.split();
            let reader = tokio::spawn(async move { rx.next().await });
            (futures_util::future::Either::Right(tx), reader)
        };
        tokio::task::yield_now().await;
        tx.send(Message::Close(None)).await.unwrap();
        assert_close_times_out(async { reader.await.unwrap() }).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_close_timer_runs_after_sending_a_close_message() {
    for keepalive in [None, Some(Duration::from_millis(50))] {
        let (mut ws, _peer) = server(1 << 20, &closing_config().ping_interval(keepalive));
        let frame = CloseFrame::new(CloseCode::NORMAL, "bye");
        ws.send(Message::Close(Some(frame))).await.unwrap();
        assert_close_times_out(ws.next()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_close_timer_runs_for_futures_split_halves() {
    let (ws, _peer) = server(1 << 20, &closing_config());
    let (mut tx, mut rx) = StreamExt::split(ws);
    tx.send(Message::Close(None)).await.unwrap();
    assert_close_times_out(rx.next()).await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_stops_once_our_close_is_queued() {
    let config = closing_config()
        .close_timeout(Duration::from_secs(1))
        .ping_interval(Some(Duration::from_millis(50)));
    let (mut ws, mut peer) = server(1 << 20, &config);
    ws.send(Message::Close(None)).await.unwrap();
    let (_, wire) = tokio::join!(ws.next(), drain(&mut peer, Duration::from_millis(2000)));
    let frames = frames(&wire);
    let close = frames.iter().position(|(b0, _)| b0 & 0x0f == 0x8).unwrap();
    assert!(
        frames[close + 1..].is_empty(),
        "frames after our close: {:x?}",
        &frames[close + 1..]
    );
}

// --- 3. Sharing the socket between tasks never loses a wake-up ----------------------------

/// The reader's poll writes the writer's queued bytes out: before, it took the IO's write
/// waker with it, and the writer's `send` never completed although every byte arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_split_writer_completes_while_the_reader_writes_out() {
    for _ in 0..20 {
        let (ws, mut peer) = server(4 * 1024, &Config::default());
        let (mut sink, mut stream) = StreamExt::split(ws);
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        let sink_task = tokio::spawn(async move {
            sink.send(Message::binary(vec![7u8; 256 * 1024]))
                .await
                .unwrap();
            sink
        });
        // The peer reads everything, slowly, and sends small messages meanwhile, so the reader
        // wakes up and polls the IO while the writer waits for it.
        let peer_task = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = vec![0u8; 1024];
            let text = masked_frame(0x81, b"x");
            while got < 256 * 1024 + 10 {
                let n = peer.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got += n;
                peer.write_all(&text).await.unwrap();
                tokio::task::yield_now().await;
            }
            peer
        });
        let _peer = tokio::time::timeout(Duration::from_secs(10), peer_task)
            .await
            .expect("the bytes never reached the peer")
            .unwrap();
        let _sink = tokio::time::timeout(Duration::from_secs(5), sink_task)
            .await
            .expect("every byte reached the peer but send() never completed")
            .unwrap();
        reader.abort();
    }
}

/// `SinkExt::close` on the sink half reads until the peer's close arrives: before, it read
/// with the writer's waker and the reader task was never woken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_split_reader_wakes_after_the_sink_closes() {
    let (ws, mut peer) = server(64 * 1024, &Config::default());
    let (mut sink, mut stream) = StreamExt::split(ws);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(Ok(msg)) = stream.next().await {
            seen.push(msg);
        }
        seen
    });
    // Let the reader go to sleep on the IO first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let closer = tokio::spawn(async move { sink.close().await });
    // The peer sees our close and answers it.
    let mut head = [0u8; 4];
    peer.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x88);
    peer.write_all(&masked_frame(0x88, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), closer)
        .await
        .expect("close never completed")
        .unwrap()
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the reader task was never woken after the close")
        .unwrap();
    assert!(seen.iter().all(Message::is_close), "{seen:?}");
}

/// The same socket behind an `Arc<Mutex<_>>`, polled from two tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_behind_a_mutex_wakes_both_tasks() {
    use std::sync::Arc;
    let (ws, mut peer) = server(4 * 1024, &Config::default());
    let ws = Arc::new(tokio::sync::Mutex::new(ws));
    let writer = {
        let ws = ws.clone();
        tokio::spawn(async move {
            for i in 0..100u8 {
                // Hold the lock only to queue; flush below.
                ws.lock()
                    .await
                    .feed(Message::binary(vec![i; 4096]))
                    .await
                    .unwrap();
            }
            std::future::poll_fn(|cx| {
                let Ok(mut ws) = ws.try_lock() else {
                    cx.waker().wake_by_ref();
                    return std::task::Poll::Pending;
                };
                futures_util::Sink::poll_flush(std::pin::Pin::new(&mut *ws), cx)
            })
            .await
            .unwrap();
        })
    };
    let mut got = 0;
    let mut buf = vec![0u8; 1024];
    while got < 100 * (4096 + 4) {
        let n = tokio::time::timeout(Duration::from_secs(5), peer.read(&mut buf))
            .await
            .expect("writer stalled")
            .unwrap();
        got += n;
    }
    tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("flush never completed")
        .unwrap();
}

// --- 5. The read-buffer pool keeps no more than its budget -------------------------------
// (tests/pool_memory.rs measures the allocator; a test binary of its own.)

// --- 6. Masks -----------------------------------------------------------------------------

/// A client masks every frame with a fresh key (RFC 6455 §5.3); keys differ between frames
/// and between connections.
#[tokio::test]
async fn client_masking_keys_are_fresh_per_frame_and_connection() {
    let mut keys = std::collections::HashSet::new();
    for _ in 0..4 {
        let (a, mut peer) = tokio::io::duplex(1 << 20);
        let mut client = WebSocket::from_raw(a, Role::Client, &Config::default());
        for _ in 0..64 {
            client.feed(Message::binary(vec![0u8; 8])).await.unwrap();
        }
        client.flush().await.unwrap();
        let mut wire = vec![0u8; 64 * 14];
        peer.read_exact(&mut wire).await.unwrap();
        for frame in wire.chunks(14) {
            assert_eq!(frame[1], 0x80 | 8);
            // Zeros masked: the payload is the key, twice.
            assert_eq!(frame[6..10], frame[10..14]);
            keys.insert(<[u8; 4]>::try_from(&frame[2..6]).unwrap());
        }
    }
    assert!(keys.len() >= 255, "{} distinct keys of 256", keys.len());
}
