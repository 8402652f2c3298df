//! A chat room on axum: open <http://127.0.0.1:3000> in several tabs; every tab sees every
//! message.
//!
//! ```text
//! cargo run --example chat --features axum -- --addr 127.0.0.1:3000
//! ```
//!
//! The page's JavaScript uses the browser's own `WebSocket`. The route uses
//! `tower_ws::axum::WebSocketUpgrade` exactly as it would use `axum::extract::ws`; a
//! `WebSocketLayer` in front supplies the settings (a 64 KiB message limit, the default
//! same-origin `Origin` check) and graceful shutdown: on Ctrl-C (or SIGTERM) every tab gets close
//! code 1001 and new WebSockets are refused with 503 while the others close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::broadcast;
use tower_ws::axum::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use tower_ws::{Config, Shutdown, WebSocketLayer};

#[derive(Clone)]
struct Room {
    tx: broadcast::Sender<Utf8Bytes>,
    next_guest: Arc<AtomicUsize>,
}

fn main() -> std::io::Result<()> {
    let addr = parse_args();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

fn parse_args() -> SocketAddr {
    let mut addr: SocketAddr = "127.0.0.1:3000".parse().expect("default address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => match value.parse() {
                Ok(a) => addr = a,
                Err(e) => exit_usage(&format!("bad --addr {value:?}: {e}")),
            },
            _ => exit_usage(&format!("unexpected argument {arg:?}")),
        }
    }
    addr
}

fn exit_usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: chat [--addr HOST:PORT]");
    std::process::exit(2)
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    run(listener, shutdown_signal()).await
}

/// Serves the chat on `listener` until `stop` completes, then shuts down gracefully.
pub(crate) async fn run<F>(listener: tokio::net::TcpListener, stop: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let room = Room {
        tx: broadcast::channel(256).0,
        next_guest: Arc::new(AtomicUsize::new(1)),
    };
    let shutdown = Shutdown::new();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", any(upgrade))
        .with_state(room)
        .layer(
            WebSocketLayer::new()
                .config(Config::default().max_message_size(Some(64 << 10)))
                .shutdown(&shutdown),
        );
    // `axum::serve` has no header timeout: serve with hyper-util instead, whose HTTP/1.1 builder
    // drops a client that trickles its request headers (slowloris) once it has a timer.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder.http2().enable_connect_protocol();
    let connections = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
        let conn = connections.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    println!("shutting down");
    let open = shutdown.shutdown(Duration::from_secs(5)).await;
    if open > 0 {
        eprintln!("{open} sockets did not close in time");
    }
    if tokio::time::timeout(Duration::from_secs(5), connections.shutdown())
        .await
        .is_err()
    {
        eprintln!("some HTTP connections did not close in time");
    }
    Ok(())
}

async fn upgrade(ws: WebSocketUpgrade, State(room): State<Room>) -> Response {
    ws.on_upgrade(move |socket| chat(socket, room))
}

async fn chat(socket: WebSocket, room: Room) {
    let me = format!("guest-{}", room.next_guest.fetch_add(1, Ordering::Relaxed));
    let mut inbox = room.tx.subscribe();
    let (mut tx, mut rx) = socket.split();
    if tx
        .send(Message::Text(format!("you are {me}").into()))
        .await
        .is_err()
    {
        return;
    }
    let _ = room.tx.send(format!("{me} joined").into());

    let mut forward = tokio::spawn(async move {
        loop {
            match inbox.recv().await {
                Ok(line) => {
                    if tx.send(Message::Text(line)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let room_tx = room.tx.clone();
    let who = me.clone();
    let mut read = tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(text) = msg {
                let line = text.trim();
                if !line.is_empty() {
                    let _ = room_tx.send(format!("{who}: {line}").into());
                }
            }
        }
    });
    // Whichever side ends first ends the other.
    tokio::select! {
        _ = &mut forward => read.abort(),
        _ = &mut read => forward.abort(),
    }
    let _ = room.tx.send(format!("{me} left").into());
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

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tower-ws chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { list-style: none; padding: 0; min-height: 12em; border: 1px solid #ccc; }
  #log li { padding: .2em .5em; }
  #status { color: #666; }
</style>
</head>
<body>
<h1>tower-ws chat</h1>
<p id="status">connecting…</p>
<ul id="log"></ul>
<form id="form">
  <input id="msg" autocomplete="off" placeholder="say something" autofocus>
  <button id="send" type="submit">Send</button>
</form>
<script>
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const input = document.getElementById("msg");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  function show(text) {
    const li = document.createElement("li");
    li.textContent = text;
    log.appendChild(li);
  }
  ws.onopen = () => { status.textContent = "connected"; };
  ws.onmessage = (event) => show(event.data);
  ws.onclose = (event) => { status.textContent = `closed (${event.code})`; };
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    if (input.value && ws.readyState === WebSocket.OPEN) {
      ws.send(input.value);
      input.value = "";
    }
  };
</script>
</body>
</html>
"#;
