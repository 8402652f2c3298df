//! A fan-out server: every message a publisher sends goes to every subscriber.
//!
//! ```text
//! cargo run --release --example fanout --features hub -- --addr 127.0.0.1:9002
//! ```
//!
//! Connections on `/sub` subscribe (what they send is ignored; pings and closes are
//! answered); every text or binary message received on `/pub` is published, unchanged, to
//! every subscriber connected at that moment, and not echoed to the publisher. Any other path
//! echoes. One `Hub` topic, no task per subscriber: a publish appends the encoded frame to the
//! topic's log once, and the hub's drains write it into every subscriber's socket.
//!
//! `--deflate` accepts permessage-deflate with the hub's settings (the server compresses
//! without context, so a message is compressed once for all subscribers). `--redis URL`
//! (feature `redis`) joins the other nodes on that Redis server: a message published on any
//! node reaches the subscribers of all.
//!
//! `--history N` keeps the topic's last N messages (for an hour) so that a subscriber can come
//! back without losing any: `/sub?since=EPOCH:OFFSET` (the position of the last message it got)
//! first gets `{"type":"subscribed","epoch":E,"offset":O,"recovered":true|false,"replayed":N}`
//! (O: the newest offset when it subscribed), then, if recovered, every message after OFFSET,
//! then the live ones, each a text frame `{"type":"msg","epoch":E,"offset":O,"data":"..."}`
//! with offsets rising by exactly one. `/pub` then publishes text messages only.
//!
//! `--threads N` sets the runtime's worker threads (one:
//! a single-threaded runtime; default: one per CPU) and `--drains N` the hub's drains (default:
//! one per CPU).

use std::net::SocketAddr;

use std::time::Duration;

use tower_ws::hub::{Envelope, History, Hub, HubBuilder, PreparedMessage};
use tower_ws::{CloseCode, Config, Message, OriginPolicy, Position, UpgradedWebSocket};

const TOPIC: &str = "all";
/// How long `--history` keeps a message.
const HISTORY_AGE: Duration = Duration::from_secs(3600);

struct Args {
    addr: SocketAddr,
    config: Config,
    redis: Option<String>,
    drains: Option<usize>,
    threads: Option<usize>,
    history: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        addr: "127.0.0.1:9002".parse().expect("default address"),
        config: Config::default()
            .origin(OriginPolicy::Any)
            .max_message_size(Some(16 << 20)),
        redis: None,
        drains: None,
        threads: None,
        history: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--addr" => match argv.next().map(|v| v.parse()) {
                Some(Ok(a)) => args.addr = a,
                _ => exit_usage("--addr needs HOST:PORT"),
            },
            "--deflate" => args.config = with_deflate(args.config),
            "--redis" => match argv.next() {
                Some(url) => args.redis = Some(url),
                None => exit_usage("--redis needs a URL"),
            },
            "--drains" => match argv.next().map(|v| v.parse()) {
                Some(Ok(n)) if n > 0 => args.drains = Some(n),
                _ => exit_usage("--drains needs a count above 0"),
            },
            "--history" => match argv.next().map(|v| v.parse()) {
                Some(Ok(n)) if n > 0 => args.history = Some(n),
                _ => exit_usage("--history needs a count above 0"),
            },
            "--threads" => match argv.next().map(|v| v.parse()) {
                Some(Ok(n)) if n > 0 => args.threads = Some(n),
                _ => exit_usage("--threads needs a count above 0"),
            },
            _ => exit_usage(&format!("unexpected argument {arg:?}")),
        }
    }
    args
}

#[cfg(feature = "deflate")]
fn with_deflate(config: Config) -> Config {
    config.deflate(Some(Hub::deflate_config()))
}

#[cfg(not(feature = "deflate"))]
fn with_deflate(_: Config) -> Config {
    exit_usage("--deflate needs the `deflate` feature")
}

fn exit_usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: fanout [--addr HOST:PORT] [--deflate] [--redis URL] [--history N] [--drains N] [--threads N]"
    );
    std::process::exit(2)
}

#[cfg(feature = "redis")]
async fn build_hub(builder: HubBuilder, redis: Option<String>) -> Hub {
    use tower_ws::hub::backplane::RedisBackplane;
    let Some(url) = redis else {
        return builder.build();
    };
    match RedisBackplane::connect(&url).await {
        Ok(backplane) => builder.backplane(backplane).build(),
        Err(e) => {
            eprintln!("redis {url}: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(not(feature = "redis"))]
async fn build_hub(builder: HubBuilder, redis: Option<String>) -> Hub {
    if redis.is_some() {
        exit_usage("--redis needs the `redis` feature");
    }
    builder.build()
}

fn main() -> std::io::Result<()> {
    let args = parse_args();
    // One thread when the process may run on one CPU only (as when pinned with `taskset`):
    // a single-threaded runtime skips the work-stealing scheduler's cross-thread bookkeeping.
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let mut builder = Hub::builder();
    if let Some(n) = args.drains {
        builder = builder.drains(n);
    }
    if let Some(n) = args.history {
        builder = builder.history(TOPIC, History::new(n, HISTORY_AGE));
    }
    let history = args.history.is_some();
    let hub = build_hub(builder, args.redis).await;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    tower_ws::serve(
        listener,
        move |ws: UpgradedWebSocket, parts: http::request::Parts| {
            let hub = hub.clone();
            // Only the path (and `since`) is needed: the request's headers are not kept for
            // the socket's life.
            let path = match (parts.uri.path(), history) {
                ("/sub", false) => Path::Sub,
                ("/sub", true) => Path::Resume(since(parts.uri.query())),
                ("/pub", false) => Path::Pub,
                ("/pub", true) => Path::PubPositioned,
                _ => Path::Other,
            };
            drop(parts);
            async move {
                // The socket lives here, once; the routes borrow it (a route taking it by
                // value would keep a second copy in this future for the socket's life).
                let mut ws = ws;
                match path {
                    Path::Sub => subscriber(&mut ws, &hub).await,
                    Path::Resume(since) => resuming_subscriber(&mut ws, &hub, since).await,
                    Path::Pub => publisher(&mut ws, &hub).await,
                    Path::PubPositioned => positioned_publisher(&mut ws, &hub).await,
                    Path::Other => echo(&mut ws).await,
                }
            }
        },
    )
    .config(args.config)
    .await
}

enum Path {
    Sub,
    /// `/sub` with `--history`: from the position in `since`, if any.
    Resume(Result<Option<Position>, String>),
    Pub,
    /// `/pub` with `--history`: each text message published in an envelope with its position.
    PubPositioned,
    Other,
}

/// The `since=EPOCH:OFFSET` of a query string, if there is one.
fn since(query: Option<&str>) -> Result<Option<Position>, String> {
    let Some(value) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("since="))
    else {
        return Ok(None);
    };
    value.parse().map(Some).map_err(|e| format!("since: {e}"))
}

/// Reads (and drops) what the subscriber sends; reading is what writes its deliveries.
async fn subscriber(ws: &mut UpgradedWebSocket, hub: &Hub) {
    hub.attach(ws).subscribe(TOPIC);
    while let Some(Ok(_)) = ws.recv().await {}
}

/// With `--history`: the first frame is `{"type":"subscribed",...}` with the topic's position
/// and whether `since` was recovered, then every message after `since` (if recovered) and the
/// live ones, each as `{"type":"msg","epoch":E,"offset":O,"data":"..."}`. A `since` that is
/// not `EPOCH:OFFSET` is answered with a close (1008) saying why.
async fn resuming_subscriber(
    ws: &mut UpgradedWebSocket,
    hub: &Hub,
    since: Result<Option<Position>, String>,
) {
    let since = match since {
        Ok(since) => since,
        Err(why) => {
            let _ = ws.close(CloseCode::POLICY_VIOLATION, &why).await;
            return;
        }
    };
    hub.attach(ws)
        .subscribe_since_with(TOPIC, since, |s| Envelope::subscribed(None, s));
    while let Some(Ok(_)) = ws.recv().await {}
}

/// With `--history`: every text message is published in an envelope carrying its position
/// (rendered once, for every subscriber).
async fn positioned_publisher(ws: &mut UpgradedWebSocket, hub: &Hub) {
    while let Some(Ok(msg)) = ws.recv().await {
        if let Message::Text(text) = msg {
            hub.publish_with(TOPIC, |at| Envelope::text(None, at, &text));
        }
    }
}

async fn publisher(ws: &mut UpgradedWebSocket, hub: &Hub) {
    while let Some(Ok(msg)) = ws.recv().await {
        if let Ok(msg) = PreparedMessage::try_from(msg) {
            hub.publish(TOPIC, msg);
        }
    }
}

async fn echo(ws: &mut UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.recv().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).await.is_err() {
            break;
        }
    }
}
