//! A chat on axum and the hub: open <http://127.0.0.1:3000> in several tabs; every tab in a
//! room sees every message of that room.
//!
//! ```text
//! cargo run --example chat --features axum,hub -- --addr 127.0.0.1:3000
//! ```
//!
//! `http://127.0.0.1:3000/?room=rust&name=alice` joins room `rust` as `alice` (defaults: room
//! `lobby`, a guest name). A user may have several tabs: `/msg alice hello` sends to every tab
//! of `alice` (the hub's registry), in whatever room. Each socket is attached to one
//! `tower_ws::hub::Hub`: no broadcast channel, no task per socket, no split; the socket's
//! read loop also writes what the hub queued for it.
//!
//! Two nodes sharing one Redis (feature `redis`) make one chat: a message said on either
//! reaches the tabs on both.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --example chat --features axum,redis -- --addr 127.0.0.1:3000 --redis redis://127.0.0.1:6379
//! cargo run --example chat --features axum,redis -- --addr 127.0.0.1:3001 --redis redis://127.0.0.1:6379
//! ```
//!
//! A room keeps its last 200 messages for ten minutes (a hub history): a tab that loses its
//! connection (a dropped Wi-Fi, a server restart of the socket) or is reloaded comes back with
//! the position of the last line it showed (`/ws?since=EPOCH:OFFSET`) and gets what it missed,
//! each line once; if that is not possible (the history moved on, or the node restarted) it
//! says so. Room lines travel as `tower_ws::hub::Envelope` JSON; the page keeps its lines and
//! position in `sessionStorage`.
//!
//! The route uses `tower_ws::axum::WebSocketUpgrade` exactly as it would use
//! `axum::extract::ws`; a `WebSocketLayer` in front supplies the settings (a 64 KiB message
//! limit, the default same-origin `Origin` check) and graceful shutdown: on Ctrl-C (or SIGTERM)
//! every tab gets close code 1001 and new WebSockets are refused with 503 while the others
//! close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{Html, Response};
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_ws::axum::{Message, WebSocket, WebSocketUpgrade};
use tower_ws::hub::{Envelope, History, Hub, HubBuilder};
use tower_ws::{CloseCode, Config, Position, Shutdown, WebSocketLayer};

/// What a room keeps for tabs that come back.
fn room_history() -> History {
    History::new(200, Duration::from_secs(600))
}

/// The chat's hub settings: rooms (topics `room:NAME`) keep a history.
fn hub_builder() -> HubBuilder {
    Hub::builder().history("room:", room_history())
}

#[derive(Clone)]
struct Chat {
    hub: Hub,
    next_guest: Arc<AtomicUsize>,
}

fn main() -> std::io::Result<()> {
    let (addr, redis) = parse_args();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr, redis))
}

fn parse_args() -> (SocketAddr, Option<String>) {
    let mut addr: SocketAddr = "127.0.0.1:3000".parse().expect("default address");
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => match value.parse() {
                Ok(a) => addr = a,
                Err(e) => exit_usage(&format!("bad --addr {value:?}: {e}")),
            },
            ("--redis", Some(url)) => redis = Some(url),
            _ => exit_usage(&format!("unexpected argument {arg:?}")),
        }
    }
    (addr, redis)
}

fn exit_usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: chat [--addr HOST:PORT] [--redis redis://HOST:PORT]");
    std::process::exit(2)
}

async fn serve(addr: SocketAddr, redis: Option<String>) -> std::io::Result<()> {
    let hub = hub(redis).await;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    run_with(listener, hub, shutdown_signal()).await
}

/// A hub alone, or joined to the other nodes on a Redis server.
#[cfg(feature = "redis")]
async fn hub(redis: Option<String>) -> Hub {
    let Some(url) = redis else {
        return hub_builder().build();
    };
    match tower_ws::hub::backplane::RedisBackplane::connect(&url).await {
        Ok(backplane) => hub_builder().backplane(backplane).build(),
        Err(e) => {
            eprintln!("redis {url}: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(not(feature = "redis"))]
async fn hub(redis: Option<String>) -> Hub {
    if redis.is_some() {
        exit_usage("--redis needs the `redis` feature");
    }
    hub_builder().build()
}

/// Serves the chat on `listener` until `stop` completes, then shuts down gracefully.
#[allow(dead_code)] // used by the browser test
pub(crate) async fn run<F>(listener: tokio::net::TcpListener, stop: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    run_with(listener, hub_builder().build(), stop).await
}

/// [`run`] with the given hub.
pub(crate) async fn run_with<F>(
    listener: tokio::net::TcpListener,
    hub: Hub,
    stop: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let chat = Chat {
        hub,
        next_guest: Arc::new(AtomicUsize::new(1)),
    };
    let shutdown = Shutdown::new();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", any(upgrade))
        .with_state(chat)
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

async fn upgrade(ws: WebSocketUpgrade, uri: Uri, State(chat): State<Chat>) -> Response {
    let room = query(&uri, "room").unwrap_or_else(|| "lobby".to_owned());
    let name = query(&uri, "name")
        .unwrap_or_else(|| format!("guest-{}", chat.next_guest.fetch_add(1, Ordering::Relaxed)));
    // The position of the last room line the tab showed, if it comes back.
    let since = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("since="))
        .map(str::parse::<Position>);
    ws.on_upgrade(move |socket| talk(socket, chat.hub, room, name, since))
}

/// A query parameter made of letters, digits, `-` and `_` (anything else is ignored).
fn query(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 32
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

async fn talk(
    mut socket: WebSocket,
    hub: Hub,
    room: String,
    name: String,
    since: Option<Result<Position, tower_ws::ParsePositionError>>,
) {
    let since = match since.transpose() {
        Ok(since) => since,
        Err(e) => {
            let close = tower_ws::axum::CloseFrame {
                code: CloseCode::POLICY_VIOLATION.as_u16(),
                reason: format!("since: {e}").into(),
            };
            let _ = socket.send(Message::Close(Some(close))).await;
            return;
        }
    };
    let me = hub.attach(&mut socket);
    let topic = format!("room:{room}");
    // First the answer (the room's position, and whether the lines missed since `since`
    // follow), then those lines, then the live ones: all in this order, from the room's log.
    me.subscribe_since_with(&topic, since, |s| Envelope::subscribed(None, s));
    me.register(&name);
    let hello = format!("you are {name} in #{room}; /msg NAME TEXT writes to NAME's tabs");
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    // A tab that comes back does not join again.
    if since.is_none() {
        say(&hub, &topic, &format!("{name} joined"));
    }
    // Reading is also what writes: the socket sends what the hub queued for it while it waits
    // for the next message.
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else { continue };
        let line = text.trim();
        if let Some(rest) = line.strip_prefix("/msg ") {
            let (to, said) = rest.split_once(' ').unwrap_or((rest, ""));
            // Every tab of `to`, on this node and (with Redis) the others.
            hub.send_to(to, format!("{name} (to you): {said}"));
        } else if !line.is_empty() {
            say(&hub, &topic, &format!("{name}: {line}"));
        }
    }
}

/// A line in a room: `{"type":"msg","epoch":E,"offset":O,"data":LINE}`, made once with its
/// position.
fn say(hub: &Hub, topic: &str, line: &str) {
    hub.publish_with(topic, |at| Envelope::text(None, at, line));
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
  // The lines shown and the position of the last room line, kept across reloads of this tab.
  const key = `chat${location.search}`;
  const saved = JSON.parse(sessionStorage.getItem(key) || "{}");
  let since = saved.since || null;
  const lines = saved.lines || [];
  let ws = null;
  let retry = 0;
  function show(text, keep) {
    const li = document.createElement("li");
    li.textContent = text;
    log.appendChild(li);
    if (keep) {
      lines.push(text);
      if (lines.length > 500) lines.shift();
    }
    sessionStorage.setItem(key, JSON.stringify({ since, lines }));
  }
  for (const line of lines) show(line, false);
  function connect() {
    // EPOCH:OFFSET needs no escaping (hex digits, a colon, decimal digits).
    const query = since
      ? `${location.search ? location.search + "&" : "?"}since=${since}`
      : location.search;
    ws = new WebSocket(`${scheme}://${location.host}/ws${query}`);
    ws.onopen = () => { status.textContent = "connected"; retry = 0; };
    ws.onmessage = (event) => {
      let m = null;
      try { m = JSON.parse(event.data); } catch (e) {}
      if (m && m.type === "subscribed") {
        // Recovered: the missed lines follow, each moving `since`. If not, start afresh here.
        if (since && !m.recovered) show("(missed messages while away)", true);
        if (!since || !m.recovered) since = `${m.epoch}:${m.offset}`;
      } else if (m && m.type === "msg") {
        since = `${m.epoch}:${m.offset}`;
        show(m.data, true);
      } else {
        show(event.data, false);
      }
    };
    ws.onclose = (event) => {
      status.textContent = `closed (${event.code}), reconnecting`;
      // 1008: the server refused the position; come back without it.
      if (event.code === 1008) since = null;
      setTimeout(connect, Math.min(5000, 250 * 2 ** retry++));
    };
  }
  connect();
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
