//! An echo server: every text and binary message comes back as it was sent.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:9001
//! ```
//!
//! Plain hyper (HTTP/1.1), any path, any `Origin`, messages up to 64 MiB. With `--deflate` it
//! accepts permessage-deflate offers with the default settings. Messages that arrive
//! together are echoed together: each is fed without a flush, and the socket writes everything
//! queued before it waits for the peer again. Ctrl-C (or SIGTERM) stops it.
//!
//! With `--stream`, every message is echoed fragment by fragment as it arrives (see
//! `tower_ws::streaming`): never held whole, so there is no message size limit (frames are
//! still capped at 64 MiB). Works with `--deflate` too.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_ws::streaming::Incoming;
use tower_ws::{Config, Message, OriginPolicy, UpgradedWebSocket};

fn main() -> std::io::Result<()> {
    let (addr, config, stream) = parse_args();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr, config, stream))
}

fn parse_args() -> (SocketAddr, Config, bool) {
    let mut addr: SocketAddr = "127.0.0.1:9001".parse().expect("default address");
    let mut config = Config::default()
        .origin(OriginPolicy::Any)
        .max_frame_size(Some(64 << 20))
        .max_message_size(Some(64 << 20));
    let mut stream = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next().map(|v| v.parse()) {
                Some(Ok(a)) => addr = a,
                _ => exit_usage("--addr needs HOST:PORT"),
            },
            "--deflate" => config = with_deflate(config),
            "--stream" => stream = true,
            _ => exit_usage(&format!("unexpected argument {arg:?}")),
        }
    }
    (addr, config, stream)
}

#[cfg(feature = "deflate")]
fn with_deflate(config: Config) -> Config {
    config.deflate(Some(Default::default()))
}

#[cfg(not(feature = "deflate"))]
fn with_deflate(_: Config) -> Config {
    exit_usage("--deflate needs the `deflate` feature")
}

fn exit_usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: echo [--addr HOST:PORT] [--deflate] [--stream]");
    std::process::exit(2)
}

async fn serve(addr: SocketAddr, config: Config, stream: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => {
                println!("shutting down");
                return Ok(());
            }
        };
        let _ = tcp.set_nodelay(true);
        let config = config.clone();
        let service = service_fn(move |mut req| {
            let result = tower_ws::upgrade(&mut req, &config);
            async move {
                let (response, ws) = match result {
                    Ok(ok) => ok,
                    Err(refused) => return Ok::<_, hyper::Error>(refused.into_response()),
                };
                tokio::spawn(async move {
                    match ws.await {
                        Ok(ws) if stream => echo_streaming(ws).await,
                        Ok(ws) => echo(ws).await,
                        Err(_) => {}
                    }
                });
                Ok(response)
            }
        });
        tokio::spawn(
            http1::Builder::new()
                // Slowloris: drop a client that trickles its request headers.
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades(),
        );
    }
}

async fn echo(mut ws: UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.next().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.feed(msg).await.is_err() {
            return;
        }
    }
}

/// Echoes each message as it arrives, fragment by fragment: the read half hands the message
/// out chunk by chunk, the write half sends each chunk on as a fragment.
async fn echo_streaming(ws: UpgradedWebSocket) {
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(incoming)) = rx.recv_streaming().await {
        // Pings are answered by the socket; the peer's close ends the loop.
        let Incoming::Data(mut message) = incoming else {
            continue;
        };
        let mut echo = tx.send_streaming(message.kind()).fragment_size(1 << 20);
        while let Some(chunk) = message.next_chunk().await {
            let Ok(chunk) = chunk else { return };
            if echo.send_chunk(chunk).await.is_err() {
                return;
            }
        }
        if echo.finish().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
