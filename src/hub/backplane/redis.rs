//! Nodes sharing one Redis server's pub/sub.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::{Notify, broadcast, mpsc};

use super::{Backplane, Inbound};

/// Publishes waiting to be sent to Redis, at most; beyond, they are dropped and counted.
const PUBLISH_QUEUE: usize = 8192;
/// Publishes sent in one pipeline, at most.
const PUBLISH_BATCH: usize = 256;
/// Every Redis operation (connect, a pipeline, a subscription) is given up after this.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts back off from the first to the last of these.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));
/// Events kept for a receiver that has not read them; a slower one skips the oldest.
const EVENTS: usize = 64;

/// A [`Backplane`] over Redis pub/sub: every node connects to the same Redis server, publishes
/// there, and subscribes to the channels of the topics (and keys) it has subscribers for.
///
/// Two connections per node: one pipelines the node's publishes (in order, so messages from
/// one publisher reach every node in the order they were published), one holds the
/// subscriptions. Channel names are the hub's, prefixed (`tower-ws:` unless set with
/// [`connect_with_prefix`](RedisBackplane::connect_with_prefix)), so several applications can
/// share a Redis server.
///
/// # Failures
///
/// Redis pub/sub has no replay: what is published while a node is disconnected never reaches
/// it. When a connection is lost, the backplane reconnects (backing off from 50 ms to 2 s),
/// subscribes again to every channel the node still needs, and reports the gap in
/// [`stats`](RedisBackplane::stats): `reconnects`, the length of the last outage, and how many
/// of this node's own publishes could not be sent (they reached this node's subscribers, not
/// the others'). Publishing never waits for Redis: a publish that finds the queue to Redis
/// full (8192 messages) is dropped and counted the same way. Applications that need every
/// message after a gap must fetch the state again (the usual pattern: on reconnect, clients
/// reload). [`events`](RedisBackplane::events) tells the application as it happens.
///
/// # Examples
///
/// ```no_run
/// use tower_ws::hub::Hub;
/// use tower_ws::hub::backplane::RedisBackplane;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let backplane = RedisBackplane::connect("redis://127.0.0.1:6379").await?;
/// let stats = backplane.clone();
/// let hub = Hub::builder().backplane(backplane).build();
/// hub.publish("news", "reaches every node");
/// println!("reconnects so far: {}", stats.stats().reconnects);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    shared: Arc<Shared>,
}

struct Shared {
    prefix: String,
    inbound: OnceLock<Inbound>,
    /// The channels this node needs (without the prefix).
    wanted: Mutex<HashSet<String>>,
    /// `wanted` changed.
    changed: Arc<Notify>,
    outgoing: mpsc::Sender<(String, Bytes)>,
    counters: Counters,
    events: broadcast::Sender<RedisEvent>,
    /// Ends the background tasks when the last handle is dropped.
    closing: Arc<Notify>,
}

/// Something that happened to a [`RedisBackplane`]'s connections, as it happens (see
/// [`RedisBackplane::events`]).
///
/// # Examples
///
/// ```no_run
/// use tower_ws::hub::backplane::{RedisBackplane, RedisEvent};
///
/// # async fn run() -> redis::RedisResult<()> {
/// let backplane = RedisBackplane::connect("redis://127.0.0.1:6379").await?;
/// let mut events = backplane.events();
/// tokio::spawn(async move {
///     while let Ok(event) = events.recv().await {
///         match event {
///             RedisEvent::Disconnected => eprintln!("redis: lost; messages from other nodes are missed"),
///             RedisEvent::Reconnected { gap } => eprintln!("redis: back after {gap:?}"),
///             RedisEvent::PublishesLost { count } => eprintln!("redis: {count} publishes not sent"),
///             _ => {}
///         }
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisEvent {
    /// The subscription connection was lost: until [`Reconnected`](RedisEvent::Reconnected),
    /// what other nodes publish does not reach this one.
    Disconnected,
    /// Subscribed again to every channel this node needs, `gap` after the connection was
    /// lost. What was published meanwhile is lost for this node (Redis pub/sub has no replay).
    Reconnected {
        /// From losing the connection to being subscribed again.
        gap: Duration,
    },
    /// This many of this node's publishes did not reach Redis (the connection was down, or the
    /// queue to Redis was full): this node's subscribers got them, the other nodes' did not.
    PublishesLost {
        /// Publishes lost since the last such event.
        count: u64,
    },
}

#[derive(Default)]
struct Counters {
    connected: AtomicBool,
    reconnects: AtomicU64,
    lost: AtomicU64,
    subscribed: AtomicUsize,
    last_gap_ms: AtomicU64,
    received: AtomicU64,
    /// Publishes dropped on a full queue and not yet reported as an event.
    unreported: AtomicU64,
    /// Bumped when the subscription connection is lost and when it is subscribed again: the
    /// publishing task then drops its connection to the same server (most likely dead too:
    /// the next batch sent on it would be lost although Redis is back) and connects again
    /// without waiting out its backoff.
    epoch: AtomicU64,
}

/// A [`RedisBackplane`]'s counters.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> redis::RedisResult<()> {
/// let backplane = tower_ws::hub::backplane::RedisBackplane::connect("redis://127.0.0.1").await?;
/// let stats = backplane.stats();
/// if stats.reconnects > 0 {
///     println!("lost Redis {} times, last for {:?}", stats.reconnects, stats.last_gap);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether the subscription connection is up, with every wanted channel subscribed.
    pub connected: bool,
    /// How many times the subscription connection was lost (it is re-established by itself;
    /// `connected` tells when): each is a gap in what this node received.
    pub reconnects: u64,
    /// How long the last gap lasted (from losing the connection to being subscribed again).
    pub last_gap: Option<Duration>,
    /// This node's publishes that did not reach Redis (connection down, queue full).
    pub lost_publishes: u64,
    /// Channels subscribed on Redis right now.
    pub subscribed_channels: usize,
    /// Messages received from Redis (including this node's own, which the hub drops).
    pub received: u64,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("prefix", &self.shared.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBackplane {
    /// Connects to the Redis server at `url` (`redis://host:port[/db]`), with the channel
    /// prefix `tower-ws:`. Must be called within a Tokio runtime: the connections are driven
    /// by tasks spawned on it.
    ///
    /// # Errors
    ///
    /// An invalid URL, or a first connection that fails (or takes over 5 seconds). Later
    /// failures are not errors: the backplane reconnects by itself (see the type's docs).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// let backplane = tower_ws::hub::backplane::RedisBackplane::connect("redis://127.0.0.1:6379").await?;
    /// # drop(backplane); Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        Self::connect_with_prefix(url, "tower-ws:").await
    }

    /// [`connect`](RedisBackplane::connect) with another channel prefix (nodes of one
    /// application must share it; applications sharing a Redis server must not).
    ///
    /// # Errors
    ///
    /// As for [`connect`](RedisBackplane::connect).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// use tower_ws::hub::backplane::RedisBackplane;
    /// let backplane = RedisBackplane::connect_with_prefix("redis://127.0.0.1", "chat:").await?;
    /// # drop(backplane); Ok(()) }
    /// ```
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let first = timed(client.get_multiplexed_async_connection()).await?;
        let (outgoing, queue) = mpsc::channel(PUBLISH_QUEUE);
        let closing = Arc::new(Notify::new());
        let changed = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            prefix: prefix.to_owned(),
            inbound: OnceLock::new(),
            wanted: Mutex::default(),
            changed: changed.clone(),
            outgoing,
            counters: Counters::default(),
            events: broadcast::channel(EVENTS).0,
            closing: closing.clone(),
        });
        tokio::spawn(publish_loop(
            client.clone(),
            first,
            queue,
            Arc::downgrade(&shared),
            prefix.to_owned(),
        ));
        tokio::spawn(subscribe_loop(
            client,
            Arc::downgrade(&shared),
            closing,
            changed,
        ));
        Ok(Self { shared })
    }

    /// The backplane's events from now on: losing Redis, being back (with the gap), publishes
    /// that could not be sent. A receiver that falls more than 64 events behind skips the
    /// oldest (`recv` says how many, as [`broadcast`] does); the counters in
    /// [`stats`](RedisBackplane::stats) keep the totals.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// let backplane = tower_ws::hub::backplane::RedisBackplane::connect("redis://127.0.0.1").await?;
    /// let mut events = backplane.events();
    /// if let Ok(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> broadcast::Receiver<RedisEvent> {
        self.shared.events.subscribe()
    }

    /// The backplane's counters so far.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// let backplane = tower_ws::hub::backplane::RedisBackplane::connect("redis://127.0.0.1").await?;
    /// assert_eq!(backplane.stats().lost_publishes, 0);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> RedisStats {
        let c = &self.shared.counters;
        let gap = c.last_gap_ms.load(Relaxed);
        RedisStats {
            connected: c.connected.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            last_gap: (gap > 0).then(|| Duration::from_millis(gap)),
            lost_publishes: c.lost.load(Relaxed),
            subscribed_channels: c.subscribed.load(Relaxed),
            received: c.received.load(Relaxed),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.closing.notify_one();
    }
}

impl Backplane for RedisBackplane {
    fn start(&self, inbound: Inbound) {
        let _ = self.shared.inbound.set(inbound);
        self.shared.changed.notify_one();
    }

    fn subscribe(&self, channel: &str) {
        lock(&self.shared.wanted).insert(channel.to_owned());
        self.shared.changed.notify_one();
    }

    fn unsubscribe(&self, channel: &str) {
        lock(&self.shared.wanted).remove(channel);
        self.shared.changed.notify_one();
    }

    fn publish(&self, channel: &str, payload: Bytes) {
        if self
            .shared
            .outgoing
            .try_send((channel.to_owned(), payload))
            .is_err()
        {
            // Reported as an event by the publishing task, with its next batch.
            self.shared.counters.lost.fetch_add(1, Relaxed);
            self.shared.counters.unreported.fetch_add(1, Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn timed<T>(op: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::TimedOut,
        ))),
    }
}

/// Sends the node's publishes, in order, pipelined in batches. While Redis is unreachable,
/// publishes are dropped and counted (one connection attempt per backoff period).
async fn publish_loop(
    client: redis::Client,
    first: MultiplexedConnection,
    mut queue: mpsc::Receiver<(String, Bytes)>,
    shared: std::sync::Weak<Shared>,
    prefix: String,
) {
    let mut conn = Some(first);
    let mut next_attempt = Instant::now();
    let mut backoff = BACKOFF.0;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut epoch = 0;
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        // The subscription connection was lost or is back since the last batch: see `epoch`.
        let now = shared
            .upgrade()
            .map_or(epoch, |s| s.counters.epoch.load(Relaxed));
        if now != epoch {
            epoch = now;
            conn = None;
            next_attempt = Instant::now();
            backoff = BACKOFF.0;
        }
        if conn.is_none() && Instant::now() >= next_attempt {
            match timed(client.get_multiplexed_async_connection()).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff = BACKOFF.0;
                }
                Err(_) => {
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
        let sent = match &mut conn {
            Some(c) => {
                let mut pipe = redis::pipe();
                for (channel, payload) in &batch {
                    pipe.cmd("PUBLISH")
                        .arg(format!("{prefix}{channel}"))
                        .arg(&payload[..])
                        .ignore();
                }
                timed(pipe.query_async::<()>(c)).await.is_ok()
            }
            None => false,
        };
        let Some(s) = shared.upgrade() else { return };
        let mut lost = s.counters.unreported.swap(0, Relaxed);
        if !sent {
            conn = None;
            s.counters.lost.fetch_add(batch.len() as u64, Relaxed);
            lost += batch.len() as u64;
        }
        if lost > 0 {
            let _ = s.events.send(RedisEvent::PublishesLost { count: lost });
        }
        drop(s);
        batch.clear();
    }
}

/// Holds the node's subscriptions: connects, subscribes to every wanted channel, follows
/// changes, hands messages to the hub; on a lost connection, reconnects and starts over.
async fn subscribe_loop(
    client: redis::Client,
    shared: std::sync::Weak<Shared>,
    closing: Arc<Notify>,
    changed: Arc<Notify>,
) {
    let mut backoff = BACKOFF.0;
    let mut down_since: Option<Instant> = None;
    loop {
        let connected = tokio::select! {
            c = timed(client.get_async_pubsub()) => c,
            () = closing.notified() => return,
        };
        let Ok(pubsub) = connected else {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = closing.notified() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
            continue;
        };
        backoff = BACKOFF.0;
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed = HashSet::new();
        loop {
            let Some(s) = shared.upgrade() else { return };
            if sync(&s, &mut sink, &mut subscribed).await.is_err() {
                break;
            }
            if let Some(since) = down_since.take() {
                let gap = since.elapsed();
                let ms = gap.as_millis().max(1);
                s.counters
                    .last_gap_ms
                    .store(u64::try_from(ms).unwrap_or(u64::MAX), Relaxed);
                s.counters.epoch.fetch_add(1, Relaxed);
                let _ = s.events.send(RedisEvent::Reconnected { gap });
            }
            s.counters.connected.store(true, Relaxed);
            let prefix = s.prefix.clone();
            drop(s);
            // Deliver until the wanted channels change or the connection is lost.
            let lost = loop {
                tokio::select! {
                    msg = stream.next() => {
                        let Some(msg) = msg else { break true };
                        let Some(s) = shared.upgrade() else { return };
                        s.counters.received.fetch_add(1, Relaxed);
                        if let (Some(channel), Some(inbound)) =
                            (msg.get_channel_name().strip_prefix(prefix.as_str()), s.inbound.get())
                        {
                            inbound.deliver(channel, msg.get_payload_bytes());
                        }
                    }
                    () = changed.notified() => break false,
                    () = closing.notified() => return,
                }
            };
            if lost {
                break;
            }
        }
        // Lost: count the gap, and start over with a new connection.
        let Some(s) = shared.upgrade() else { return };
        s.counters.connected.store(false, Relaxed);
        s.counters.subscribed.store(0, Relaxed);
        s.counters.reconnects.fetch_add(1, Relaxed);
        s.counters.epoch.fetch_add(1, Relaxed);
        // One gap, however many attempts fail before it ends.
        if down_since.is_none() {
            down_since = Some(Instant::now());
            let _ = s.events.send(RedisEvent::Disconnected);
        }
    }
}

/// Subscribes to the wanted channels not yet subscribed, and unsubscribes from the others.
async fn sync(
    s: &Shared,
    sink: &mut PubSubSink,
    subscribed: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    let wanted = lock(&s.wanted).clone();
    let add: Vec<String> = wanted
        .difference(subscribed)
        .map(|c| format!("{}{c}", s.prefix))
        .collect();
    let remove: Vec<String> = subscribed
        .difference(&wanted)
        .map(|c| format!("{}{c}", s.prefix))
        .collect();
    if !add.is_empty() {
        timed(sink.subscribe(&add)).await?;
    }
    if !remove.is_empty() {
        timed(sink.unsubscribe(&remove)).await?;
    }
    *subscribed = wanted;
    s.counters.subscribed.store(subscribed.len(), Relaxed);
    Ok(())
}
