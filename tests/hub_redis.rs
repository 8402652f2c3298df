//! The hub across nodes, with a real Redis server: each test starts its own `redis-server` on a
//! free loopback port (killed when the test ends), builds hubs with a `RedisBackplane` each, and
//! checks what real WebSocket clients (tokio-tungstenite) receive from the sockets the hubs
//! serve.
//!
//! Without `redis-server` on the PATH the tests print a note and pass, unless
//! `TOWER_WS_REQUIRE_REDIS=1` (as in CI), when they fail.

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{STEP, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tower_ws::hub::Hub;
use tower_ws::hub::backplane::{RedisBackplane, RedisEvent, RedisStats};
use tower_ws::{Config, Message, UpgradedWebSocket};

/// The longest a whole test may take.
const TEST: Duration = Duration::from_secs(60);
/// How long a client must receive nothing more to count as "nothing else came".
const QUIET: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// A redis-server of the test's own.

/// A `redis-server` child process on 127.0.0.1, killed (SIGKILL) when dropped.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, or returns `None` (after a note) when `redis-server` is
    /// not installed, unless `TOWER_WS_REQUIRE_REDIS=1`, which makes that a failure.
    async fn start(test: &str) -> Option<Self> {
        if let Err(e) = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            if std::env::var("TOWER_WS_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!(
                    "TOWER_WS_REQUIRE_REDIS=1 but `redis-server` cannot be run ({e}): install it \
                     (Debian: apt-get install redis-server)"
                );
            }
            // Straight to stderr: the test harness would capture `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "note: {test} skipped: `redis-server` is not installed ({e}); set \
                 TOWER_WS_REQUIRE_REDIS=1 to make this a failure"
            );
            return None;
        }
        // The port is free when chosen, but another process may take it before Redis binds
        // it: then Redis exits, and another port is tried.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut server = Self { port, child: None };
            if server.launch().await {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs `redis-server` on `self.port` and waits (bounded) until it answers PING; `false`
    /// if it exited first (the port was taken).
    async fn launch(&mut self) -> bool {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let deadline = Instant::now() + STEP;
        loop {
            if ping(self.port).await {
                return true;
            }
            let child = self.child.as_mut().expect("running");
            if child.try_wait().expect("redis-server's status").is_some() {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {STEP:?}",
                self.port
            );
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients) and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    async fn restart(&mut self) {
        assert!(
            self.launch().await,
            "redis-server could not start again on port {}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis server on `port` answers PING.
async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.write_all(b"PING\r\n").await?;
        let mut reply = [0u8; 7];
        tcp.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(&reply == b"+PONG\r\n")
    };
    matches!(
        timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}

/// A plain Redis connection for the test's own queries.
async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("a valid URL");
    within(client.get_multiplexed_async_connection())
        .await
        .expect("a connection to the test's Redis")
}

/// `PUBSUB CHANNELS pattern`, sorted.
async fn channels(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut channels: Vec<String> = within(
        redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(pattern)
            .query_async(conn),
    )
    .await
    .expect("PUBSUB CHANNELS");
    channels.sort();
    channels
}

/// `PUBSUB NUMSUB channel`: how many connections subscribe to `channel`.
async fn numsub(conn: &mut redis::aio::MultiplexedConnection, channel: &str) -> usize {
    let (_, n): (String, usize) = within(
        redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(conn),
    )
    .await
    .expect("PUBSUB NUMSUB");
    n
}

// ---------------------------------------------------------------------------------------------
// Nodes: a hub with its own Redis backplane, served over real TCP.

struct Node {
    hub: Hub,
    backplane: RedisBackplane,
    addr: SocketAddr,
}

impl Node {
    async fn start(url: &str, prefix: &str) -> Self {
        let backplane = within(RedisBackplane::connect_with_prefix(url, prefix))
            .await
            .expect("RedisBackplane::connect");
        let hub = Hub::builder().backplane(backplane.clone()).build();
        let serving = hub.clone();
        let addr = support::serve(Config::default(), move |ws| {
            node_socket(serving.clone(), ws)
        })
        .await;
        Self {
            hub,
            backplane,
            addr,
        }
    }

    /// Waits (bounded) until the backplane's stats satisfy `ok`.
    async fn wait_stats(&self, what: &str, ok: impl Fn(&RedisStats) -> bool) -> RedisStats {
        let deadline = Instant::now() + STEP;
        loop {
            let stats = self.backplane.stats();
            if ok(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "waited {STEP:?} for {what}; the stats are {stats:?}"
            );
            sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the node is connected and subscribed to exactly `n` channels on Redis.
    async fn wait_subscribed(&self, n: usize) -> RedisStats {
        self.wait_stats(&format!("{n} channels subscribed"), |s| {
            s.connected && s.subscribed_channels == n
        })
        .await
    }
}

/// A node's socket: attached to the hub, it takes commands from its client (each answered
/// with `ok`): `sub TOPIC`, `unsub TOPIC`, `reg KEY`, and `pub TOPIC`, after which every
/// message is published to TOPIC. Whatever the hub delivers reaches the client while this
/// loop polls the socket.
async fn node_socket(hub: Hub, mut ws: UpgradedWebSocket) {
    let me = hub.attach(&mut ws);
    let mut publishing: Option<String> = None;
    while let Some(Ok(msg)) = ws.recv().await {
        let Message::Text(text) = msg else { continue };
        if let Some(topic) = &publishing {
            me.publish(topic, text);
            continue;
        }
        let done = match text.split_once(' ') {
            Some(("sub", topic)) => me.subscribe(topic),
            Some(("unsub", topic)) => me.unsubscribe(topic),
            Some(("reg", key)) => me.register(key),
            Some(("pub", topic)) => {
                publishing = Some(topic.to_owned());
                true
            }
            _ => false,
        };
        let reply = if done { "ok" } else { "failed" };
        if ws.send(Message::text(reply)).await.is_err() {
            return;
        }
    }
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A client of `node` that sent `command` and got its `ok`.
async fn client(node: &Node, command: &str) -> Client {
    let (mut ws, _) = within(tokio_tungstenite::connect_async(format!(
        "ws://{}/",
        node.addr
    )))
    .await
    .expect("WebSocket handshake");
    ws.send(TMessage::text(command)).await.expect("send");
    assert_eq!(next_text(&mut ws).await, "ok", "reply to {command:?}");
    ws
}

/// The next text message (bounded).
async fn next_text(ws: &mut Client) -> String {
    loop {
        match within(ws.next()).await {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Ping(_) | TMessage::Pong(_))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Checks that nothing more arrives for a while.
async fn expect_quiet(ws: &mut Client, who: &str) {
    if let Ok(more) = timeout(QUIET, ws.next()).await {
        panic!("{who} received more than expected: {more:?}");
    }
}

/// Receives exactly `expected`, in order, then nothing more.
async fn expect_messages(ws: &mut Client, who: &str, expected: &[&str]) {
    for want in expected {
        assert_eq!(next_text(ws).await, *want, "{who}");
    }
    expect_quiet(ws, who).await;
}

/// Closes a client with the close handshake.
async fn close(mut ws: Client) {
    within(ws.close(None)).await.expect("close");
    while let Some(Ok(_)) = within(ws.next()).await {}
}

async fn bounded<F: Future>(fut: F) -> F::Output {
    timeout(TEST, fut).await.expect("the test timed out")
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Two nodes, two subscribers and two publishers on each: every subscriber gets every message
/// of every publisher (on either node) once, in each publisher's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_on_either_node_reach_every_subscriber_once_in_order() {
    const N: usize = 200;
    const PUBLISHERS_PER_NODE: usize = 2;
    const SUBSCRIBERS_PER_NODE: usize = 2;
    let Some(redis) = RedisServer::start("fan-out across nodes").await else {
        return;
    };
    bounded(async {
        let nodes = [
            Node::start(&redis.url(), "tower-ws:").await,
            Node::start(&redis.url(), "tower-ws:").await,
        ];
        let mut subscribers = Vec::new();
        let mut publishers = Vec::new();
        for node in &nodes {
            for _ in 0..SUBSCRIBERS_PER_NODE {
                subscribers.push(client(node, "sub room").await);
            }
            for _ in 0..PUBLISHERS_PER_NODE {
                publishers.push(client(node, "pub room").await);
            }
        }
        // Redis drops what is published before a SUBSCRIBE is active: wait for both nodes'
        // subscriptions ("*" for every attached socket, and the topic), and check them on
        // Redis itself.
        for node in &nodes {
            node.wait_subscribed(2).await;
        }
        let mut conn = redis_conn(&redis.url()).await;
        assert_eq!(numsub(&mut conn, "tower-ws:t:room").await, 2);

        let total = N * publishers.len();
        let started = std::time::Instant::now();
        let sending = publishers.into_iter().enumerate().map(|(p, mut ws)| {
            tokio::spawn(async move {
                for seq in 0..N {
                    ws.send(TMessage::text(format!("{p}:{seq}")))
                        .await
                        .expect("publish");
                }
                ws // kept open until every subscriber has everything
            })
        });
        let sending: Vec<_> = sending.collect();
        let receiving: Vec<_> = subscribers
            .into_iter()
            .enumerate()
            .map(|(s, mut ws)| {
                tokio::spawn(async move {
                    let mut next = vec![0usize; 2 * PUBLISHERS_PER_NODE];
                    for _ in 0..total {
                        let text = next_text(&mut ws).await;
                        let (p, seq) = text.split_once(':').expect("p:seq");
                        let (p, seq): (usize, usize) = (p.parse().unwrap(), seq.parse().unwrap());
                        assert_eq!(
                            seq, next[p],
                            "subscriber {s}: publisher {p}'s messages out of order or repeated"
                        );
                        next[p] += 1;
                    }
                    assert!(next.iter().all(|&n| n == N), "subscriber {s}: {next:?}");
                    expect_quiet(&mut ws, &format!("subscriber {s}")).await;
                })
            })
            .collect();
        for r in receiving {
            r.await.expect("a subscriber's checks");
        }
        let elapsed = started.elapsed();
        for s in sending {
            drop(s.await.expect("a publisher"));
        }
        eprintln!(
            "{total} messages to {} subscribers on 2 nodes in {elapsed:?}",
            2 * SUBSCRIBERS_PER_NODE
        );
        for node in &nodes {
            let stats = node.backplane.stats();
            assert_eq!(stats.lost_publishes, 0, "{stats:?}");
            assert_eq!(stats.reconnects, 0, "{stats:?}");
            // Every publish comes back from Redis, the node's own too (the hub drops those).
            assert_eq!(stats.received, total as u64, "{stats:?}");
            let hub = node.hub.stats();
            assert_eq!(hub.published, (N * PUBLISHERS_PER_NODE) as u64, "{hub:?}");
            assert_eq!(hub.received_from_nodes, (N * PUBLISHERS_PER_NODE) as u64);
            assert_eq!(hub.dropped, 0, "{hub:?}");
        }
    })
    .await;
}

/// `send_to(key)` on one node reaches the sockets registered under that key on every node,
/// once, and no other socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_a_key_reaches_its_sockets_on_other_nodes() {
    let Some(redis) = RedisServer::start("registry across nodes").await else {
        return;
    };
    bounded(async {
        let a = Node::start(&redis.url(), "tower-ws:").await;
        let b = Node::start(&redis.url(), "tower-ws:").await;
        let mut on_b = client(&b, "reg user-42").await;
        let mut other_on_b = client(&b, "reg user-7").await;
        let mut on_a = client(&a, "reg user-42").await;
        a.wait_subscribed(2).await; // "*", "k:user-42"
        b.wait_subscribed(3).await; // "*", "k:user-42", "k:user-7"
        assert_eq!(a.hub.connections("user-42"), 1);
        assert_eq!(b.hub.connections("user-42"), 1);

        // Only a socket on B is registered under user-7: none on A queued it.
        assert_eq!(a.hub.send_to("user-7", "for 7"), 0);
        assert_eq!(a.hub.send_to("user-42", "for 42"), 1);
        assert_eq!(a.hub.send_to("user-42", "for 42 again"), 1);
        assert_eq!(a.hub.send_to("nobody", "lost"), 0);

        expect_messages(&mut on_b, "user-42 on B", &["for 42", "for 42 again"]).await;
        expect_messages(&mut on_a, "user-42 on A", &["for 42", "for 42 again"]).await;
        expect_messages(&mut other_on_b, "user-7 on B", &["for 7"]).await;
        assert_eq!(b.hub.stats().received_from_nodes, 3);
        assert_eq!(a.hub.stats().received_from_nodes, 0);
    })
    .await;
}

/// Redis dies (SIGKILL) and comes back on the same port: both nodes reconnect, subscribe again,
/// and report the gap; what was published meanwhile reached the publishing node's own
/// subscribers only, counted as lost, never twice; publishes after the restart reach every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reconnect_after_redis_restarts() {
    const DOWN: usize = 5;
    let Some(mut redis) = RedisServer::start("reconnection").await else {
        return;
    };
    bounded(async {
        let a = Node::start(&redis.url(), "tower-ws:").await;
        let b = Node::start(&redis.url(), "tower-ws:").await;
        let mut on_a = client(&a, "sub room").await;
        let mut on_b = client(&b, "sub room").await;
        a.wait_subscribed(2).await;
        b.wait_subscribed(2).await;
        a.hub.publish("room", "before");
        assert_eq!(next_text(&mut on_a).await, "before");
        assert_eq!(next_text(&mut on_b).await, "before");
        let mut events_a = a.backplane.events();
        let mut events_b = b.backplane.events();

        redis.kill();
        let down = std::time::Instant::now();
        for node in [&a, &b] {
            node.wait_stats("the loss of the connection", |s| !s.connected)
                .await;
        }
        // Published while Redis is down: A's own subscriber gets them, B's cannot.
        let mut expected_on_a = Vec::new();
        for i in 0..DOWN {
            let text = format!("down {i}");
            assert_eq!(a.hub.publish("room", text.as_str()), 1);
            expected_on_a.push(text);
            sleep(Duration::from_millis(20)).await;
        }
        for want in &expected_on_a {
            assert_eq!(&next_text(&mut on_a).await, want, "A's own subscriber");
        }
        // A topic gains its first subscriber on B while Redis is down.
        let mut late = client(&b, "sub late").await;

        redis.restart().await;
        let restarted = std::time::Instant::now();
        for (name, node, channels) in [("A", &a, 2), ("B", &b, 3)] {
            let stats = node
                .wait_stats("resubscribing after the restart", |s| {
                    s.connected && s.subscribed_channels == channels
                })
                .await;
            assert!(stats.reconnects >= 1, "{name}: {stats:?}");
            let gap = stats.last_gap.expect("a gap is reported");
            assert!(
                gap >= restarted.duration_since(down) / 2 && gap < STEP,
                "{name}: a gap of {gap:?} for an outage of {:?}",
                restarted.duration_since(down)
            );
            eprintln!("{name} after the restart: {stats:?}");
        }
        let mut conn = redis_conn(&redis.url()).await;
        assert_eq!(numsub(&mut conn, "tower-ws:t:room").await, 2);
        assert_eq!(numsub(&mut conn, "tower-ws:*").await, 2);
        assert_eq!(numsub(&mut conn, "tower-ws:t:late").await, 1);

        // B published nothing while Redis was down; A did. Both reach every node now.
        for (from, text) in [(&b, "after, from B"), (&a, "after, from A")] {
            from.hub.publish("room", text);
            for (name, ws) in [("A", &mut on_a), ("B", &mut on_b)] {
                let got = timeout(STEP / 2, next_text(ws)).await;
                assert!(
                    matches!(&got, Ok(t) if t == text),
                    "{text:?} did not reach {name}'s subscriber: got {got:?}; the publisher's \
                     stats: {:?}",
                    from.backplane.stats()
                );
            }
        }
        a.hub.publish("late", "late news");
        expect_messages(&mut late, "B's subscriber since the outage", &["late news"]).await;
        expect_quiet(&mut on_a, "A's subscriber").await;
        expect_quiet(&mut on_b, "B's subscriber").await;

        let (sa, sb) = (a.backplane.stats(), b.backplane.stats());
        assert_eq!(sa.lost_publishes, DOWN as u64, "A: {sa:?}");
        assert_eq!(sb.lost_publishes, 0, "B: {sb:?}");

        // The same story, told as it happened: each node lost Redis once and came back after
        // the gap; A's publishes made meanwhile are reported lost.
        for (name, events, lost) in [("A", &mut events_a, DOWN as u64), ("B", &mut events_b, 0)] {
            let mut seen = Vec::new();
            while let Ok(event) = events.try_recv() {
                seen.push(event);
            }
            assert_eq!(
                seen.first(),
                Some(&RedisEvent::Disconnected),
                "{name}: {seen:?}"
            );
            let reconnected: Vec<_> = seen
                .iter()
                .filter_map(|e| match e {
                    RedisEvent::Reconnected { gap } => Some(*gap),
                    _ => None,
                })
                .collect();
            assert_eq!(reconnected.len(), 1, "{name}: {seen:?}");
            let node = if name == "A" { &a } else { &b };
            assert_eq!(
                Some(reconnected[0].as_millis().max(1)),
                node.backplane.stats().last_gap.map(|g| g.as_millis()),
                "{name}: the event's gap is the one in the stats"
            );
            let reported: u64 = seen
                .iter()
                .map(|e| match e {
                    RedisEvent::PublishesLost { count } => *count,
                    _ => 0,
                })
                .sum();
            assert_eq!(reported, lost, "{name}: {seen:?}");
        }
    })
    .await;
}

/// A node subscribes on Redis only to the channels it has subscribers for, and drops a channel
/// when its last subscriber leaves (by unsubscribing, or because its socket ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_follow_local_subscribers() {
    let Some(redis) = RedisServer::start("channels on demand").await else {
        return;
    };
    bounded(async {
        let mut conn = redis_conn(&redis.url()).await;
        let a = Node::start(&redis.url(), "t4:").await;
        let b = Node::start(&redis.url(), "t4:").await;
        assert_eq!(channels(&mut conn, "t4:*").await, Vec::<String>::new());

        let news_1 = client(&a, "sub news").await;
        let mut news_2 = client(&a, "sub news").await;
        let mut sports = client(&b, "sub sports").await;
        a.wait_subscribed(2).await;
        b.wait_subscribed(2).await;
        assert_eq!(
            channels(&mut conn, "t4:*").await,
            ["t4:*", "t4:t:news", "t4:t:sports"]
        );
        // Each topic's channel is held by the one node with subscribers: none on B for
        // news, none on A for sports; nobody anywhere for weather.
        assert_eq!(numsub(&mut conn, "t4:t:news").await, 1);
        assert_eq!(numsub(&mut conn, "t4:t:sports").await, 1);
        assert_eq!(numsub(&mut conn, "t4:*").await, 2);
        assert_eq!(numsub(&mut conn, "t4:t:weather").await, 0);
        assert_eq!(b.hub.subscribers("news"), 0);

        // One of A's two news subscribers leaves: A keeps the channel.
        close(news_1).await;
        let deadline = Instant::now() + STEP;
        while a.hub.subscribers("news") != 1 {
            assert!(Instant::now() < deadline, "the closed socket never left");
            sleep(Duration::from_millis(5)).await;
        }
        sleep(QUIET).await;
        assert_eq!(a.backplane.stats().subscribed_channels, 2);
        assert_eq!(numsub(&mut conn, "t4:t:news").await, 1);

        // The last one unsubscribes (its socket stays attached): the channel goes.
        news_2.send(TMessage::text("unsub news")).await.unwrap();
        assert_eq!(next_text(&mut news_2).await, "ok");
        a.wait_subscribed(1).await;
        assert_eq!(channels(&mut conn, "t4:*").await, ["t4:*", "t4:t:sports"]);
        assert_eq!(numsub(&mut conn, "t4:*").await, 2);

        // B's only socket ends: B holds no channel at all.
        sports.send(TMessage::text("sub weather")).await.unwrap();
        assert_eq!(next_text(&mut sports).await, "ok");
        b.wait_subscribed(3).await;
        assert_eq!(numsub(&mut conn, "t4:t:weather").await, 1);
        close(sports).await;
        b.wait_subscribed(0).await;
        assert_eq!(channels(&mut conn, "t4:*").await, ["t4:*"]);
        assert_eq!(numsub(&mut conn, "t4:*").await, 1);

        // And a publish to a topic nobody subscribes to anywhere goes nowhere.
        assert_eq!(a.hub.publish("sports", "goal"), 0);
        expect_quiet(&mut news_2, "A's remaining socket").await;
        let b_stats = b.backplane.stats();
        assert_eq!(b_stats.received, 0, "{b_stats:?}");
    })
    .await;
}
