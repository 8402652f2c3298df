//! One message to 10,000 sockets: prepared once (the hub) against encoded, and compressed,
//! by each socket; and through the real path, a `Hub` publishing to 10,000 attached
//! `WebSocket`s (ns per delivery, without the kernel: the sockets write into an IO that takes
//! everything): written by the hub's drain on a runtime (`drain`), and, without a runtime,
//! by each socket when its application polls it (`polled`).
//!
//! `cargo bench --bench hub --features hub`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use std::hint::black_box;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::Sink;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_ws::__bench::Fanout;

use tower_ws::hub::{History, Hub, PreparedMessage};
use tower_ws::{Config, Message, Role, Utf8Bytes, WebSocket};

const SOCKETS: usize = 10_000;

/// A JSON-like event of about 512 bytes.
fn event() -> Utf8Bytes {
    let mut text = String::from(r#"{"type":"trade","venue":"XNAS","symbol":"ACME","trades":["#);
    let mut i = 0u32;
    while text.len() < 500 {
        text.push_str(&format!(
            r#"{{"px":{}.{:02},"qty":{}}},"#,
            100 + i % 7,
            i * 37 % 100,
            i * 13 % 500
        ));
        i += 1;
    }
    text.push_str("{}]}");
    text.into()
}

/// Plain, and with permessage-deflate when the feature is on.
fn modes() -> impl Iterator<Item = (bool, &'static str)> {
    [(false, "plain"), (true, "deflate")]
        .into_iter()
        .filter(|&(deflate, _)| !deflate || cfg!(feature = "deflate"))
}

fn fanout(c: &mut Criterion) {
    let msg = event();
    let mut g = c.benchmark_group("fanout-10k");
    g.sample_size(20);
    g.throughput(Throughput::Elements(SOCKETS as u64));
    for (deflate, name) in modes() {
        let mut f = Fanout::new(SOCKETS, deflate);
        g.bench_function(format!("per-socket/{name}"), |b| {
            b.iter(|| f.per_socket(black_box(&msg)));
        });
        let mut f = Fanout::new(SOCKETS, deflate);
        g.bench_function(format!("prepared/{name}"), |b| {
            b.iter(|| f.prepared(black_box(&msg)));
        });
    }
    g.finish();
}

/// A peer that takes every byte at once and never sends anything; counts what it took.
#[derive(Clone, Default)]
struct Drain(Arc<AtomicUsize>);

impl AsyncRead for Drain {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for Drain {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.fetch_add(buf.len(), Relaxed);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// 10,000 server sockets attached to one hub and subscribed to one topic; with `deflate`,
/// each compresses as a server does by default with the hub's settings (no context).
fn attached(deflate: bool, io: &Drain) -> (Hub, Vec<WebSocket<Drain>>) {
    attached_to(Hub::builder().drains(1).build(), SOCKETS, deflate, io)
}

/// `n` server sockets attached to `hub`, subscribed to one topic.
fn attached_to(hub: Hub, n: usize, deflate: bool, io: &Drain) -> (Hub, Vec<WebSocket<Drain>>) {
    let config = Config::default();
    let sockets = (0..n)
        .map(|_| {
            #[cfg(feature = "deflate")]
            let agreed = deflate.then(|| tower_ws::__fuzz::Agreed {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
                level: Hub::deflate_config().level,
                threshold: 0,
            });
            #[cfg(feature = "deflate")]
            let mut ws =
                tower_ws::__fuzz::websocket_with_deflate(io.clone(), Role::Server, &config, agreed);
            #[cfg(not(feature = "deflate"))]
            let mut ws = {
                let _ = deflate;
                WebSocket::from_raw(io.clone(), Role::Server, &config)
            };
            hub.attach(&mut ws).subscribe("t");
            ws
        })
        .collect();
    (hub, sockets)
}

/// One publish, then every socket writes what it was given (as when each is next polled),
/// without a runtime (so no drain).
fn publish_and_poll(hub: &Hub, sockets: &mut [WebSocket<Drain>], msg: &PreparedMessage) {
    hub.publish("t", msg);
    let mut cx = Context::from_waker(Waker::noop());
    for ws in sockets {
        let flushed = <WebSocket<Drain> as Sink<Message>>::poll_flush(Pin::new(ws), &mut cx);
        assert!(flushed.is_ready());
    }
}

fn hub_to_sockets(c: &mut Criterion) {
    let msg = PreparedMessage::text(event());
    let mut g = c.benchmark_group("hub-10k");
    g.sample_size(20);
    g.throughput(Throughput::Elements(SOCKETS as u64));
    for (deflate, name) in modes() {
        // The drain: attached and published on a one-thread runtime, where the hub's drain
        // writes every delivery; an iteration ends when all 10,000 frames were written.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let io = Drain::default();
        let (hub, sockets) = runtime.block_on(async { attached(deflate, &io) });
        let per_publish = SOCKETS * tower_ws::__bench::Fanout::frame_len(&msg, deflate);
        g.bench_function(format!("drain/{name}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let target = io.0.load(Relaxed) + per_publish;
                    hub.publish("t", black_box(&msg));
                    while io.0.load(Relaxed) < target {
                        tokio::task::yield_now().await;
                    }
                });
            });
        });
        assert_eq!(
            io.0.load(Relaxed) % per_publish,
            0,
            "a delivery lost or doubled"
        );
        drop(sockets);

        let io = Drain::default();
        let (hub, mut sockets) = attached(deflate, &io);
        g.bench_function(format!("polled/{name}"), |b| {
            b.iter(|| publish_and_poll(&hub, &mut sockets, black_box(&msg)));
        });
    }
    g.finish();
}

/// Bursts of [`BURST`] publishes before the drain runs, as under load (a publisher's window
/// of messages in flight while the drain goes round 1,000 or 10,000 sockets): each socket is
/// driven once per burst and writes the 16 messages with one write.
const BURST: usize = 16;

fn hub_bursts_to_sockets(c: &mut Criterion) {
    let msg = PreparedMessage::binary(vec![7u8; 64]);
    for sockets in [1_000, SOCKETS] {
        let mut g = c.benchmark_group(format!("hub-{}k-burst16", sockets / 1000));
        g.sample_size(10);
        g.throughput(Throughput::Elements((sockets * BURST) as u64));
        // Without and with a history (the newest 1,000 messages, for an hour): the
        // history's cost is a clock read per publish and the entries it keeps.
        for (history, name) in [(false, "drain/plain"), (true, "drain/plain-history")] {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let io = Drain::default();
            let mut builder = Hub::builder().drains(1);
            if history {
                builder = builder.history("", History::new(1000, Duration::from_secs(3600)));
            }
            let (hub, attached) =
                runtime.block_on(async { attached_to(builder.build(), sockets, false, &io) });
            let per_burst = BURST * sockets * tower_ws::__bench::Fanout::frame_len(&msg, false);
            g.bench_function(name, |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let target = io.0.load(Relaxed) + per_burst;
                        for _ in 0..BURST {
                            hub.publish("t", black_box(&msg));
                        }
                        while io.0.load(Relaxed) < target {
                            tokio::task::yield_now().await;
                        }
                    });
                });
            });
            assert_eq!(
                io.0.load(Relaxed) % per_burst,
                0,
                "a delivery lost or doubled"
            );
            drop(attached);
        }
        g.finish();
    }
}

criterion_group!(benches, fanout, hub_to_sockets, hub_bursts_to_sockets);
criterion_main!(benches);
