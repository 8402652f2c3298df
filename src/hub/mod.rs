//! Fan-out: one message to many connections, on one node or many.
//!
//! A [`Hub`] holds the sockets attached to it. A socket joins and leaves named topics, may be
//! registered under an application key (a user id: one user, several tabs and devices), and
//! receives what is published to its topics, to its key, or to everyone:
//!
//! - A message is encoded once ([`PreparedMessage`]) and kept once, in its topic's log, at an
//!   offset that rises by one per message; each subscriber reads the log from its own
//!   position: no copy, no queue per subscriber, no second encoding, no compression per
//!   subscriber (see [`PreparedMessage`] for what permessage-deflate allows). A subscriber of
//!   several topics (and of its key, and of everyone) gets what one publisher published in the
//!   order it was published.
//! - Delivery needs no task per subscriber, and does not depend on the application: a few
//!   drain tasks (one per core by default) write what is published into the subscribers'
//!   sockets, many queued messages in one (vectored) write, whether the socket's handler reads,
//!   sends, or awaits something else entirely. The application's own sends take turns with
//!   the drain, so a message it sends after a publish goes out after it.
//! - Each log is bounded, in messages and bytes; when a subscriber falls behind what the log
//!   keeps, the hub's [`Overflow`] policy applies to that subscriber only. Publishing never
//!   waits, so a slow subscriber never slows the publisher or the others. [`Hub::stats`] and
//!   [`Member::stats`] count what was queued, dropped and closed.
//! - With a [`Backplane`] (see [`backplane`]), publishes reach the subscribers on every
//!   node (Redis pub/sub with the `redis` feature).
//!
//! A socket's membership ends when the socket ends (its close handshake, an error) or is
//! dropped: it leaves every topic and its key.
//!
//! # How delivery works, and what it costs
//!
//! Attaching moves the socket's connection (its IO and protocol state) behind a lock shared
//! with the hub's drains; from then on each of the socket's own calls (`recv`, `send`, a
//! stream or sink poll) takes that lock, uncontended unless a drain is writing to the same
//! socket at that moment (tens of nanoseconds either way). A publish appends the message to
//! its target's log (one lock, and one hub-wide sequence number for the order of publishes),
//! then only marks each subscriber for its shard's drain (a flag; those not yet marked go on
//! the shard's list, locked once per publish). Each shard's drain task (one per core by
//! default: [`HubBuilder::drains`]) takes its list, and for each subscriber, under the
//! socket's lock, writes what its logs hold past its positions (merged by publish order) into
//! the socket's write buffer and the buffer into the connection with one write. Whatever the
//! connection does not take stays behind; the socket wakes the drain when it can take more,
//! or when its close deadline comes.
//!
//! Every transport takes this path: plain TCP from hyper's upgrade, TLS, an HTTP/2 stream
//! (RFC 8441) and in-memory IO alike, since the drain writes through the socket's own
//! `AsyncWrite`. What differs is what a write costs in the transport (TLS encrypts in the
//! drain's task; an HTTP/2 stream hands the bytes to its connection's task, which writes
//! them). Without a Tokio runtime (a hub used from plain threads), no drain can run: a publish
//! wakes the subscribers' own tasks, and each socket writes its queue when its application
//! polls it.
//!
//! # Examples
//!
//! A chat room on axum-free hyper (`tower_ws::serve`): every message a member sends goes to
//! the others in the room.
//!
//! ```no_run
//! use tower_ws::hub::Hub;
//! use tower_ws::{Message, UpgradedWebSocket};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! tower_ws::serve(listener, move |mut ws: UpgradedWebSocket, _parts| {
//!     let hub = hub.clone();
//!     async move {
//!         let me = hub.attach(&mut ws);
//!         me.subscribe("lobby");
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if let Message::Text(text) = msg {
//!                 me.publish("lobby", text); // to everyone in the lobby but me
//!             }
//!         }
//!     }
//! })
//! .await
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{BufMut, Bytes, BytesMut};

pub mod backplane;
mod drain;
mod envelope;
mod log;
pub(crate) mod mailbox;
mod position;
mod prepared;
mod topics;

pub use envelope::Envelope;
pub use mailbox::Overflow;
pub use position::{History, Published, Subscribed};
pub use prepared::PreparedMessage;

use crate::Position;
use crate::socket::outbox::Attached;
use backplane::{Backplane, Inbound};
use drain::Shard;
use mailbox::{Bounds, Detach, Detacher, Mailbox, Policy};
use topics::{Msg, Subscribers};

/// A subscriber's queue holds at most this many messages by default.
const DEFAULT_QUEUE_MESSAGES: usize = 1024;
/// ... and at most this many payload bytes.
const DEFAULT_QUEUE_BYTES: usize = 4 << 20;
/// The backplane channel of messages for everyone.
const EVERYONE: &str = "*";
/// Topics kept without subscribers are looked over once the map holds this many (then
/// twice as many as after the last look).
const SWEEP_FLOOR: usize = 64;

/// The fan-out hub: topics, a registry of connections by application key, and the sockets
/// attached to it. Cloning is cheap and shares the hub.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::Hub;
///
/// let hub = Hub::new();
/// assert_eq!(hub.publish("prices", "EURUSD 1.0842"), 0); // no subscribers yet
/// assert_eq!(hub.len(), 0);
/// ```
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

/// What a hub's clones share.
pub(crate) struct Shared {
    /// This node's id in the payloads it sends over the backplane.
    node: [u8; 16],
    next_id: AtomicU64,
    policy: Arc<Policy>,
    published: AtomicU64,
    remote: AtomicU64,
    everyone: RwLock<Subscribers>,
    topics: RwLock<HashMap<Arc<str>, Subscribers>>,
    keys: RwLock<HashMap<Arc<str>, Subscribers>>,
    backplane: Option<Box<dyn Backplane>>,
    /// The drains; a subscriber belongs to `shards[id % len]`.
    shards: Box<[Arc<Shard>]>,
    /// What topics keep for subscribers that come back, by name prefix, longest first.
    history: Box<[(Box<str>, History)]>,
    /// Topics without subscribers are kept while their history lasts: when the map grows
    /// past this many, the spent ones are forgotten.
    sweep_at: AtomicUsize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for shard in &*self.shards {
            shard.close();
        }
    }
}

/// Builds a [`Hub`] with non-default bounds, policy or backplane.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::{Hub, Overflow};
///
/// let hub = Hub::builder()
///     .queue_limits(64, 256 << 10)
///     .overflow(Overflow::DropOldest)
///     .build();
/// # drop(hub);
/// ```
#[must_use]
pub struct HubBuilder {
    bounds: Bounds,
    backplane: Option<Box<dyn Backplane>>,
    drains: usize,
    history: Vec<(Box<str>, History)>,
}

impl fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder")
            .field("bounds", &self.bounds)
            .field("backplane", &self.backplane.is_some())
            .field("drains", &self.drains)
            .field("history", &self.history)
            .finish()
    }
}

impl HubBuilder {
    /// How far behind a subscriber may fall: each topic's log (and each key's, and
    /// everyone's) keeps at most `messages` messages and `bytes` payload bytes not yet taken
    /// by all its subscribers (a single larger message is still kept, alone). A subscriber
    /// whose next message the log let go of is handled by the [`Overflow`] policy. Defaults:
    /// 1024 messages, 4 MiB. At least one message is kept.
    ///
    /// Memory: a message is kept once per log, whatever the number of subscribers; a log whose
    /// subscribers keep up holds only what is being written, and `bytes` bounds what slow
    /// subscribers keep alive, per log.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::builder().queue_limits(256, 1 << 20).build();
    /// # drop(hub);
    /// ```
    pub fn queue_limits(mut self, messages: usize, bytes: usize) -> Self {
        self.bounds.messages = messages.max(1);
        self.bounds.bytes = bytes;
        self
    }

    /// What happens to a subscriber that falls behind (default: [`Overflow::DropOldest`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::{CloseCode, hub::{Hub, Overflow}};
    ///
    /// let hub = Hub::builder().overflow(Overflow::Close(CloseCode::TRY_AGAIN_LATER)).build();
    /// # drop(hub);
    /// ```
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.bounds.overflow = match overflow {
            Overflow::Close(code) if !code.is_sendable() => {
                Overflow::Close(crate::CloseCode::POLICY_VIOLATION)
            }
            other => other,
        };
        self
    }

    /// How many drain tasks write published messages into the subscribers' sockets (each
    /// subscriber belongs to one). Default: one per core the process may use, so delivery
    /// spreads over a multi-threaded runtime's workers. At least one.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::builder().drains(4).build();
    /// # drop(hub);
    /// ```
    pub fn drains(mut self, drains: usize) -> Self {
        self.drains = drains.max(1);
        self
    }

    /// Topics whose name starts with `prefix` keep a [`History`]: their newest messages, for
    /// subscribers that come back with the [`Position`] they had
    /// ([`Member::subscribe_since`]). The longest matching prefix applies (`""` matches every
    /// topic); other topics keep nothing (what all subscribers took is let go, as before).
    ///
    /// A topic with a history is kept while its history lasts, even without subscribers, and
    /// a publish to it is kept even if no one subscribes yet. Positions are this node's: with
    /// a backplane, each node numbers the messages it delivers itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_ws::hub::{History, Hub};
    ///
    /// let hub = Hub::builder()
    ///     .history("chat:", History::new(500, Duration::from_secs(600)))
    ///     .build();
    /// hub.publish("chat:rust", "hello");
    /// assert_eq!(hub.position("chat:rust").map(|p| p.offset), Some(1));
    /// ```
    pub fn history(mut self, prefix: &str, history: History) -> Self {
        self.history.retain(|(p, _)| &**p != prefix);
        self.history.push((prefix.into(), history));
        self
    }

    /// Connects the hub to other nodes through `backplane` (see [`backplane`]).
    pub fn backplane(mut self, backplane: impl Backplane) -> Self {
        self.backplane = Some(Box::new(backplane));
        self
    }

    /// The hub. With a backplane, the backplane is started here.
    pub fn build(self) -> Hub {
        let node = position::unique_bytes();
        let shared = Arc::new(Shared {
            node,
            next_id: AtomicU64::new(1),
            policy: Arc::new(Policy::new(self.bounds)),
            published: AtomicU64::new(0),
            remote: AtomicU64::new(0),
            everyone: RwLock::default(),
            topics: RwLock::default(),
            keys: RwLock::default(),
            backplane: self.backplane,
            shards: (0..self.drains).map(|_| Arc::default()).collect(),
            history: {
                let mut history = self.history;
                history.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
                history.into()
            },
            sweep_at: AtomicUsize::new(SWEEP_FLOOR),
        });
        if let Some(b) = &shared.backplane {
            b.start(Inbound {
                hub: Arc::downgrade(&shared),
            });
        }
        Hub { shared }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("attached", &self.len())
            .field("bounds", &self.shared.policy.bounds)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub alone (no other nodes), with the default bounds and policy.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for bounds, policy and backplane.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::builder().queue_limits(100, 1 << 20).build();
    /// # drop(hub);
    /// ```
    pub fn builder() -> HubBuilder {
        HubBuilder {
            bounds: Bounds {
                messages: DEFAULT_QUEUE_MESSAGES,
                bytes: DEFAULT_QUEUE_BYTES,
                overflow: Overflow::DropOldest,
            },
            backplane: None,
            drains: std::thread::available_parallelism().map_or(1, usize::from),
            history: Vec::new(),
        }
    }

    /// The permessage-deflate settings that make fan-out cheap: the server compresses each
    /// message without context (`server_no_context_takeover`), so a published message is
    /// compressed once and the same frame goes to every subscriber (see
    /// [`PreparedMessage`]). Clients keep their context (better compression of what they
    /// send). Give it to [`Config::deflate`](crate::Config::deflate) on the hub's routes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::Config;
    /// use tower_ws::hub::Hub;
    ///
    /// let config = Config::default().deflate(Some(Hub::deflate_config()));
    /// # drop(config);
    /// ```
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub fn deflate_config() -> crate::DeflateConfig {
        crate::DeflateConfig::default().server_no_context_takeover(true)
    }

    /// Attaches a socket: from now on, the hub's drains write what is published to its
    /// topics, its key and everyone into it, whatever its handler does meanwhile. Returns the
    /// handle to subscribe and publish with. Attach before splitting the socket; attaching it
    /// again (to this hub or another) ends its earlier membership.
    ///
    /// The membership ends when the socket ends (close handshake, error) or is dropped.
    ///
    /// The socket's connection is shared with the drains from now on: the socket's own calls
    /// and the drain take turns under a lock, held only inside a poll. Without a Tokio
    /// runtime (no drain can run), the socket writes its deliveries when it is polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::Hub;
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let hub = Hub::new();
    /// let (io, _peer) = tokio::io::duplex(1024);
    /// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let me = hub.attach(&mut ws);
    /// me.subscribe("news");
    /// assert_eq!(hub.subscribers("news"), 1);
    /// drop(ws);
    /// assert_eq!(hub.subscribers("news"), 0);
    /// ```
    pub fn attach<T: Attach>(&self, socket: &mut T) -> Member {
        let id = self.shared.next_id.fetch_add(1, Relaxed);
        let shared = &self.shared;
        let shard = shared.shards[id as usize % shared.shards.len()].clone();
        let mailbox = sealed::Sealed::attach_with(socket, |link| {
            let mailbox = Mailbox::new(id, link, shard);
            let attached = Attached {
                outbox: mailbox.clone(),
                guard: Box::new(Detacher {
                    mailbox: mailbox.clone(),
                    owner: shared.clone(),
                }),
            };
            (attached, mailbox)
        });
        let first = {
            let mut everyone = write(&shared.everyone);
            if let Some(sub) = everyone.insert(&mailbox) {
                mailbox.add(sub, None);
            }
            everyone.len() == 1
        };
        if first {
            shared.listen(EVERYONE);
        }
        Member {
            hub: self.clone(),
            mailbox,
        }
    }

    /// Publishes to every subscriber of `topic`, on every node; returns how many subscribers
    /// on this node queued it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::{Hub, PreparedMessage};
    ///
    /// let hub = Hub::new();
    /// let msg = PreparedMessage::text("price update");
    /// hub.publish("prices", &msg); // encoded once, whatever the number of subscribers
    /// ```
    pub fn publish(&self, topic: &str, msg: impl Into<PreparedMessage>) -> usize {
        self.shared.publish(Target::Topic(topic), &msg.into(), None)
    }

    /// Publishes to every subscriber of `topic` a message made from its position (called
    /// once, with the position the message gets, while the hub holds its order of publishes:
    /// keep it short, and do not call the hub from it). Returns the position and how many
    /// subscribers on this node queued it. The topic's log is made if it has none (a topic
    /// nobody subscribes to and without a history is forgotten again later).
    ///
    /// This is how a message carries its own position to the subscribers (see
    /// [`Envelope`] for a JSON rendering).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::{Hub, PreparedMessage};
    ///
    /// let hub = Hub::new();
    /// let first = hub.publish_with("news", |at| PreparedMessage::text(format!("{at} hello")));
    /// let second = hub.publish_with("news", |at| PreparedMessage::text(format!("{at} again")));
    /// assert_eq!(second.position.offset, first.position.offset + 1);
    /// assert_eq!(second.position.epoch, first.position.epoch);
    /// ```
    pub fn publish_with(
        &self,
        topic: &str,
        mut make: impl FnMut(Position) -> PreparedMessage,
    ) -> Published {
        self.shared.publish_at(topic, &mut make, None)
    }

    /// The position of the newest message `topic` holds or held (offset 0: none yet in this
    /// epoch); `None` if the hub has no log for it (no subscriber, no history).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::new();
    /// assert_eq!(hub.position("news"), None);
    /// ```
    pub fn position(&self, topic: &str) -> Option<Position> {
        read(&self.shared.topics)
            .get(topic)
            .map(Subscribers::position)
    }

    /// Publishes to every attached socket, on every node; returns how many on this node
    /// queued it.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::new();
    /// hub.broadcast("server restarting in 5 minutes");
    /// ```
    pub fn broadcast(&self, msg: impl Into<PreparedMessage>) -> usize {
        self.shared.publish(Target::Everyone, &msg.into(), None)
    }

    /// Sends to every connection registered under `key` (see [`Member::register`]), on every
    /// node; returns how many on this node queued it.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::new();
    /// hub.send_to("user-42", "you have mail"); // every tab and device of user 42
    /// ```
    pub fn send_to(&self, key: &str, msg: impl Into<PreparedMessage>) -> usize {
        self.shared.publish(Target::Key(key), &msg.into(), None)
    }

    /// How many sockets on this node are registered under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tower_ws::hub::Hub::new().connections("user-42"), 0);
    /// ```
    pub fn connections(&self, key: &str) -> usize {
        read(&self.shared.keys).get(key).map_or(0, Subscribers::len)
    }

    /// The keys registered on this node.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tower_ws::hub::Hub::new().keys().is_empty());
    /// ```
    pub fn keys(&self) -> Vec<String> {
        read(&self.shared.keys)
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// How many sockets on this node subscribe to `topic`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tower_ws::hub::Hub::new().subscribers("news"), 0);
    /// ```
    pub fn subscribers(&self, topic: &str) -> usize {
        read(&self.shared.topics)
            .get(topic)
            .map_or(0, Subscribers::len)
    }

    /// The topics with subscribers on this node.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tower_ws::hub::Hub::new().topics().is_empty());
    /// ```
    pub fn topics(&self) -> Vec<String> {
        read(&self.shared.topics)
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// How many sockets are attached to this node's hub.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tower_ws::hub::Hub::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        read(&self.shared.everyone).len()
    }

    /// Whether no socket is attached.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tower_ws::hub::Hub::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hub's counters so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = tower_ws::hub::Hub::new();
    /// hub.publish("news", "hi");
    /// assert_eq!(hub.stats().published, 1);
    /// assert_eq!(hub.stats().queued, 0);
    /// ```
    pub fn stats(&self) -> HubStats {
        let c = &self.shared.policy.counters;
        HubStats {
            published: self.shared.published.load(Relaxed),
            received_from_nodes: self.shared.remote.load(Relaxed),
            queued: c.queued.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            closed_as_slow: c.closed_slow.load(Relaxed),
        }
    }
}

/// A hub's counters, totals since it was built.
///
/// # Examples
///
/// ```
/// let stats = tower_ws::hub::Hub::new().stats();
/// assert_eq!(stats.dropped, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Messages published on this node (by `publish`, `broadcast`, `send_to` and members).
    pub published: u64,
    /// Messages received from other nodes through the backplane.
    pub received_from_nodes: u64,
    /// Deliveries queued for this node's subscribers (one message to 100 subscribers is 100).
    pub queued: u64,
    /// Deliveries lost to the logs' bounds (a subscriber that fell behind), including what
    /// subscribers closed for being slow had not taken.
    pub dropped: u64,
    /// Subscribers closed for being slow ([`Overflow::Close`]).
    pub closed_as_slow: u64,
}

/// One subscriber's counters.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::Hub;
/// use tower_ws::{Config, Role, WebSocket};
///
/// let hub = Hub::new();
/// let (io, _peer) = tokio::io::duplex(1024);
/// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
/// let me = hub.attach(&mut ws);
/// assert_eq!(me.stats().queued, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStats {
    /// Messages published to it and not yet taken by the socket (what its logs hold past its
    /// positions).
    pub queued: usize,
    /// Their payload bytes.
    pub queued_bytes: usize,
    /// Messages the socket took from its queue (written, or being written).
    pub delivered: u64,
    /// Messages this subscriber lost to the overflow policy.
    pub dropped: u64,
    /// Whether it was closed for being slow.
    pub closed_as_slow: bool,
}

/// A socket's membership in a [`Hub`]: join and leave topics, register under a key, publish
/// to the others. Cloning is cheap; every clone refers to the same socket.
///
/// After the socket ends, the calls do nothing (and `subscribe` returns `false`).
///
/// # Examples
///
/// ```
/// use tower_ws::hub::Hub;
/// use tower_ws::{Config, Role, WebSocket};
///
/// let hub = Hub::new();
/// let (io, _peer) = tokio::io::duplex(1024);
/// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
/// let me = hub.attach(&mut ws);
/// me.register("user-42");
/// me.subscribe("room:rust");
/// me.subscribe("room:tokio");
/// assert_eq!(hub.connections("user-42"), 1);
/// assert_eq!(me.topics().len(), 2);
/// me.unsubscribe("room:tokio");
/// assert_eq!(hub.subscribers("room:tokio"), 0);
/// ```
#[derive(Clone)]
pub struct Member {
    hub: Hub,
    mailbox: Arc<Mailbox>,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.mailbox.id())
            .finish_non_exhaustive()
    }
}

impl Member {
    /// This member's id, unique within its hub.
    pub fn id(&self) -> u64 {
        self.mailbox.id()
    }

    /// The hub this member belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Joins `topic`; `false` if already a subscriber or the socket has ended.
    pub fn subscribe(&self, topic: &str) -> bool {
        self.join(topic, None, None).is_some()
    }

    /// Joins `topic` from a position: with `since` (the position of the last message the
    /// subscriber got, of this topic), what the topic's log holds after it is delivered first,
    /// then what is published from now on, with nothing lost or doubled at the seam (both
    /// come from the same log). `None` if already a subscriber or the socket has ended.
    ///
    /// [`Subscribed::recovered`] is `false` if the position cannot be resumed from (another
    /// epoch, older than what the topic keeps, or ahead of it): the subscriber gets what is
    /// published from now on and should reload its state. Without `since`, it is a plain
    /// subscription that also tells the topic's position (`recovered` is `true`). What a
    /// topic keeps is its [`History`] ([`HubBuilder::history`]); a topic without one recovers
    /// a position only if nothing was published after it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_ws::hub::{History, Hub};
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let hub = Hub::builder().history("", History::new(100, Duration::from_secs(60))).build();
    /// let seen = hub.publish_with("news", |_| "one".into()).position;
    /// hub.publish("news", "two");
    /// hub.publish("news", "three");
    ///
    /// let (io, _peer) = tokio::io::duplex(1 << 16);
    /// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let me = hub.attach(&mut ws);
    /// let subscribed = me.subscribe_since("news", Some(seen)).unwrap();
    /// assert!(subscribed.recovered);
    /// assert_eq!(subscribed.replayed, 2); // "two" and "three", then live messages
    /// assert_eq!(subscribed.position.offset, 3);
    /// ```
    pub fn subscribe_since(&self, topic: &str, since: Option<Position>) -> Option<Subscribed> {
        self.join(topic, since, None)
    }

    /// As [`subscribe_since`](Self::subscribe_since), with a first message for the socket
    /// made from the result (a "subscribed" frame telling the client its position and whether
    /// it recovered): it goes out before anything of the topic, replayed or live. `first` is
    /// called once, while the hub holds the topic: keep it short, and do not call the hub
    /// from it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::{Hub, PreparedMessage};
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let hub = Hub::new();
    /// let (io, _peer) = tokio::io::duplex(1 << 16);
    /// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let me = hub.attach(&mut ws);
    /// me.subscribe_since_with("news", None, |s| {
    ///     PreparedMessage::text(format!("subscribed at {} ({})", s.position, s.recovered))
    /// });
    /// ```
    pub fn subscribe_since_with(
        &self,
        topic: &str,
        since: Option<Position>,
        first: impl FnOnce(&Subscribed) -> PreparedMessage,
    ) -> Option<Subscribed> {
        let mut first = Some(first);
        let mut make = |s: &Subscribed| first.take().map(|f| f(s));
        self.join(topic, since, Some(&mut make))
    }

    fn join(
        &self,
        topic: &str,
        since: Option<Position>,
        first: Option<MakeFirst<'_>>,
    ) -> Option<Subscribed> {
        let shared = &self.hub.shared;
        let mut membership = lock(&self.mailbox.membership);
        if !membership.attached {
            return None;
        }
        let (name, subscribed, kick) = shared.with_topic(topic, |name, subscribers| {
            let (sub, subscribed) = subscribers.insert_since(&self.mailbox, since)?;
            let first = first.and_then(|make| make(&subscribed));
            let kick = first.is_some() || subscribed.replayed > 0;
            // The first message and the cursor at once: a drain sees both or neither.
            self.mailbox.add(sub, first);
            Some((name.clone(), subscribed, kick))
        })?;
        // Most sockets join one topic: no room reserved for more.
        membership.topics.reserve_exact(1);
        membership.topics.push(name);
        drop(membership);
        if kick {
            self.mailbox.kick();
        }
        Some(subscribed)
    }

    /// Leaves `topic`; `false` if not a subscriber.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let shared = &self.hub.shared;
        let mut membership = lock(&self.mailbox.membership);
        let Some(at) = membership.topics.iter().position(|t| &**t == topic) else {
            return false;
        };
        membership.topics.swap_remove(at);
        if let Some(sub) = shared.leave_topic(topic, self.id()) {
            self.mailbox.remove(&sub);
        }
        true
    }

    /// The topics this member subscribes to.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.mailbox.membership)
            .topics
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    /// Registers this socket under `key` (a user id, a device group): [`Hub::send_to`] with
    /// that key reaches it, with every other socket registered under it. A socket has one key;
    /// registering again moves it. `false` if the socket has ended.
    pub fn register(&self, key: &str) -> bool {
        let shared = &self.hub.shared;
        let mut membership = lock(&self.mailbox.membership);
        if !membership.attached {
            return false;
        }
        if let Some(old) = membership.key.take() {
            if let Some(sub) = shared.leave_key(&old, self.id()) {
                self.mailbox.remove(&sub);
            }
        }
        let key: Arc<str> = key.into();
        let first = {
            let mut keys = write(&shared.keys);
            let sockets = keys.entry(key.clone()).or_default();
            if let Some(sub) = sockets.insert(&self.mailbox) {
                self.mailbox.add(sub, None);
            }
            sockets.len() == 1
        };
        membership.key = Some(key.clone());
        if first {
            shared.listen(&channel(Target::Key(&key)));
        }
        true
    }

    /// The key this socket is registered under.
    pub fn key(&self) -> Option<String> {
        lock(&self.mailbox.membership)
            .key
            .as_ref()
            .map(|k| k.to_string())
    }

    /// Publishes to every subscriber of `topic` but this one (on every node); returns how
    /// many on this node queued it.
    pub fn publish(&self, topic: &str, msg: impl Into<PreparedMessage>) -> usize {
        self.hub
            .shared
            .publish(Target::Topic(topic), &msg.into(), Some(self.id()))
    }

    /// Publishes to every attached socket but this one (on every node).
    pub fn broadcast(&self, msg: impl Into<PreparedMessage>) -> usize {
        self.hub
            .shared
            .publish(Target::Everyone, &msg.into(), Some(self.id()))
    }

    /// This subscriber's counters.
    pub fn stats(&self) -> MemberStats {
        let s = self.mailbox.stats();
        MemberStats {
            queued: s.queued,
            queued_bytes: s.queued_bytes,
            delivered: s.delivered,
            dropped: s.dropped,
            closed_as_slow: s.closed_as_slow,
        }
    }

    /// Whether the socket is still attached (it has not ended).
    pub fn is_attached(&self) -> bool {
        lock(&self.mailbox.membership).attached
    }
}

/// Where a publish goes.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Topic(&'a str),
    Key(&'a str),
    Everyone,
}

/// Makes the first message of a subscription from its outcome (once: `None` after that).
type MakeFirst<'a> = &'a mut dyn FnMut(&Subscribed) -> Option<PreparedMessage>;

/// The backplane channel of a target.
fn channel(target: Target<'_>) -> String {
    match target {
        Target::Topic(t) => format!("t:{t}"),
        Target::Key(k) => format!("k:{k}"),
        Target::Everyone => EVERYONE.to_owned(),
    }
}

/// Opcode bytes in a backplane payload.
const TEXT: u8 = 1;
const BINARY: u8 = 2;

impl Shared {
    fn publish(&self, target: Target<'_>, msg: &PreparedMessage, except: Option<u64>) -> usize {
        self.published.fetch_add(1, Relaxed);
        let queued = self.deliver(target, msg, except);
        self.announce(target, msg);
        queued
    }

    /// Publishes to `topic` a message made from its position, making the topic's log if
    /// there is none.
    fn publish_at(
        &self,
        topic: &str,
        make: &mut dyn FnMut(Position) -> PreparedMessage,
        except: Option<u64>,
    ) -> Published {
        self.published.fetch_add(1, Relaxed);
        let published = {
            let topics = read(&self.topics);
            match topics.get(topic) {
                Some(subscribers) => subscribers.publish(Msg::At(make), except, &self.policy),
                None => {
                    drop(topics);
                    self.with_topic(topic, |_, subscribers| {
                        subscribers.publish(Msg::At(make), except, &self.policy)
                    })
                }
            }
        };
        if let Some(msg) = &published.msg {
            self.announce(Target::Topic(topic), msg);
        }
        Published {
            position: published.position,
            subscribers: published.subscribers,
        }
    }

    /// Sends a publish to the other nodes.
    fn announce(&self, target: Target<'_>, msg: &PreparedMessage) {
        if let Some(b) = &self.backplane {
            // node id, kind, payload: other nodes deliver it; this one drops it if echoed.
            let mut payload = BytesMut::with_capacity(17 + msg.len());
            payload.put_slice(&self.node);
            payload.put_u8(if msg.is_text() { TEXT } else { BINARY });
            payload.put_slice(msg.payload());
            b.publish(&channel(target), payload.freeze());
        }
    }

    fn deliver(&self, target: Target<'_>, msg: &PreparedMessage, except: Option<u64>) -> usize {
        let published = match target {
            Target::Topic(t) => {
                let topics = read(&self.topics);
                match topics.get(t) {
                    Some(subscribers) => subscribers.publish(Msg::Ready(msg), except, &self.policy),
                    // A topic with a history keeps what is published before anyone subscribes.
                    None if self.history_for(t).is_some() => {
                        drop(topics);
                        self.with_topic(t, |_, subscribers| {
                            subscribers.publish(Msg::Ready(msg), except, &self.policy)
                        })
                    }
                    None => return 0,
                }
            }
            Target::Key(k) => match read(&self.keys).get(k) {
                Some(s) => s.publish(Msg::Ready(msg), except, &self.policy),
                None => return 0,
            },
            Target::Everyone => read(&self.everyone).publish(Msg::Ready(msg), except, &self.policy),
        };
        published.subscribers
    }

    /// The history topics named `topic` keep, if any.
    fn history_for(&self, topic: &str) -> Option<History> {
        self.history
            .iter()
            .find(|(prefix, _)| topic.starts_with(&**prefix))
            .map(|(_, history)| *history)
    }

    /// Runs `f` on `topic`'s subscribers (under the topics' write lock), making the topic
    /// (with its history) if there is none; forgets spent topics first when the map has grown.
    fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&Arc<str>, &mut Subscribers) -> R) -> R {
        let mut forgotten = Vec::new();
        let mut made = false;
        let r = {
            let mut topics = write(&self.topics);
            if !topics.contains_key(topic) && topics.len() >= self.sweep_at.load(Relaxed) {
                topics.retain(|name, subscribers| {
                    let spent = subscribers.is_spent();
                    if spent {
                        forgotten.push(name.clone());
                    }
                    !spent
                });
                self.sweep_at
                    .store((topics.len() * 2).max(SWEEP_FLOOR), Relaxed);
            }
            let name = match topics.get_key_value(topic) {
                Some((name, _)) => name.clone(),
                None => {
                    made = true;
                    let name: Arc<str> = topic.into();
                    let subscribers = Subscribers::with_history(self.history_for(topic));
                    topics.insert(name.clone(), subscribers);
                    name
                }
            };
            let subscribers = topics.get_mut(topic).expect("just found or made");
            f(&name, subscribers)
        };
        for name in forgotten {
            self.stop_listening(&channel(Target::Topic(&name)));
        }
        if made {
            self.listen(&channel(Target::Topic(topic)));
        }
        r
    }

    /// A payload from another node, on `channel`.
    fn deliver_remote(&self, channel: &str, payload: &[u8]) {
        if payload.len() < 17 || payload[..16] == self.node {
            return;
        }
        let data = Bytes::copy_from_slice(&payload[17..]);
        let msg = match payload[16] {
            TEXT => match crate::Utf8Bytes::try_from(data) {
                Ok(text) => PreparedMessage::text(text),
                Err(_) => return,
            },
            BINARY => PreparedMessage::binary(data),
            _ => return,
        };
        let target = if channel == EVERYONE {
            Target::Everyone
        } else if let Some(t) = channel.strip_prefix("t:") {
            Target::Topic(t)
        } else if let Some(k) = channel.strip_prefix("k:") {
            Target::Key(k)
        } else {
            return;
        };
        self.remote.fetch_add(1, Relaxed);
        self.deliver(target, &msg, None);
    }

    fn listen(&self, channel: &str) {
        if let Some(b) = &self.backplane {
            b.subscribe(channel);
        }
    }

    fn stop_listening(&self, channel: &str) {
        if let Some(b) = &self.backplane {
            b.unsubscribe(channel);
        }
    }

    /// Removes member `id` from `topic`; its subscription, if it had one. A topic left
    /// without subscribers is forgotten, unless its history keeps something.
    fn leave_topic(&self, topic: &str, id: u64) -> Option<Arc<topics::Subscription>> {
        let (sub, last) = {
            let mut topics = write(&self.topics);
            let subscribers = topics.get_mut(topic)?;
            let sub = subscribers.remove(id);
            let last = subscribers.is_spent();
            if last {
                topics.remove(topic);
            }
            (sub, last)
        };
        if last {
            self.stop_listening(&channel(Target::Topic(topic)));
        }
        sub
    }

    /// Removes member `id` from `key`; its subscription, if it had one.
    fn leave_key(&self, key: &str, id: u64) -> Option<Arc<topics::Subscription>> {
        let (sub, last) = {
            let mut keys = write(&self.keys);
            let sockets = keys.get_mut(key)?;
            let sub = sockets.remove(id);
            let last = sockets.is_empty();
            if last {
                keys.remove(key);
            }
            (sub, last)
        };
        if last {
            self.stop_listening(&channel(Target::Key(key)));
        }
        sub
    }
}

impl Detach for Shared {
    fn detach(&self, mailbox: &Mailbox) {
        let id = mailbox.id();
        let membership = {
            let mut m = lock(&mailbox.membership);
            if !m.attached {
                return;
            }
            m.attached = false;
            std::mem::take(&mut *m)
        };
        for topic in &membership.topics {
            self.leave_topic(topic, id);
        }
        if let Some(key) = &membership.key {
            self.leave_key(key, id);
        }
        let last = {
            let mut everyone = write(&self.everyone);
            everyone.remove(id).is_some() && everyone.is_empty()
        };
        if last {
            self.stop_listening(EVERYONE);
        }
    }
}

/// A socket that can be attached to a [`Hub`]: [`WebSocket`](crate::WebSocket) and, with the
/// `axum` feature, [`tower_ws::axum::WebSocket`](crate::axum::WebSocket).
///
/// # Examples
///
/// ```
/// use tower_ws::hub::{Attach, Hub, Member};
///
/// fn join_lobby<T: Attach>(hub: &Hub, socket: &mut T) -> Member {
///     let me = hub.attach(socket);
///     me.subscribe("lobby");
///     me
/// }
/// # let _ = join_lobby::<tower_ws::UpgradedWebSocket>;
/// ```
pub trait Attach: sealed::Sealed {}

impl<S> Attach for crate::WebSocket<S> where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
}

#[cfg(feature = "axum")]
impl Attach for crate::axum::WebSocket {}

mod sealed {
    use tokio::io::{AsyncRead, AsyncWrite};

    use crate::socket::outbox::{Attached, Link};

    #[allow(unreachable_pub)] // `pub` in a private module: the seal of a public trait.
    pub trait Sealed {
        /// Gives the socket the outbox `make` builds with the socket's link.
        fn attach_with<R>(&mut self, make: impl FnOnce(Link) -> (Attached, R)) -> R;
    }

    impl<S> Sealed for crate::WebSocket<S>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        fn attach_with<R>(&mut self, make: impl FnOnce(Link) -> (Attached, R)) -> R {
            self.attach_outbox(make)
        }
    }

    #[cfg(feature = "axum")]
    impl Sealed for crate::axum::WebSocket {
        fn attach_with<R>(&mut self, make: impl FnOnce(Link) -> (Attached, R)) -> R {
            self.inner_mut().attach_outbox(make)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
