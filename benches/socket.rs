//! Whole-socket throughput over an in-memory pipe: the write batching and the zero-copy read
//! path, without the kernel in the way.
//!
//! `cargo bench --bench socket`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tower_ws::{Config, Message, Role, Shutdown, WebSocket};

/// A client sends `count` messages of `size` bytes (fed, one flush), a server echoes them
/// (fed, flushed when it would wait), and the client reads every echo back. With `shutdown`,
/// the server socket watches a graceful shutdown (that never starts), as under `serve` or a
/// layer with `Shutdown`.
async fn round_trip(count: usize, size: usize, shutdown: Option<&Shutdown>) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let mut server = WebSocket::from_raw(a, Role::Server, &Config::default());
    if let Some(shutdown) = shutdown {
        shutdown.register(&mut server);
    }
    let client = WebSocket::from_raw(b, Role::Client, &Config::default());
    let echo = tokio::spawn(async move {
        while let Some(Ok(msg)) = server.next().await {
            if msg.is_binary() && server.feed(msg).await.is_err() {
                break;
            }
        }
    });
    let payload = bytes::Bytes::from(vec![0x5a; size]);
    let (mut tx, mut rx) = client.split();
    let send = async move {
        for _ in 0..count {
            tx.feed(Message::Binary(payload.clone())).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    };
    let receive = async move {
        let mut got = 0;
        while got < count {
            match rx.next().await {
                Some(Ok(Message::Binary(_))) => got += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        rx
    };
    let reader = tokio::spawn(async move {
        let (mut tx, _rx) = tokio::join!(send, receive);
        tx.close().await.unwrap();
    });
    reader.await.unwrap();
    echo.await.unwrap();
}

fn echo(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("echo");
    for (count, size) in [(1000usize, 16usize), (200, 1024), (4, 1 << 20)] {
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(format!("{count}x{size}B"), |b| {
            b.iter(|| rt.block_on(round_trip(count, size, None)));
        });
    }
    let shutdown = Shutdown::new();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000x16B-watching-shutdown", |b| {
        b.iter(|| rt.block_on(round_trip(1000, 16, Some(&shutdown))));
    });
    g.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
