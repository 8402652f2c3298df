//! Positions in a topic's stream of messages, and the history that makes them resumable.
//!
//! Every message published to a topic has a [`Position`]: the topic's [`Epoch`] and an offset
//! that rises by exactly one per message (the first message of an epoch has offset 1, so an
//! offset is also how many messages the epoch has had). The epoch changes whenever the
//! history behind the offsets is lost: a topic's log is made afresh (after the node restarted,
//! or after the topic was forgotten for having had no subscriber and no history left). A
//! subscriber that knows the position of the last message it got can therefore tell "I have
//! everything up to here" (same epoch) from "there may be a gap" (another epoch).
//!
//! A topic keeps a [`History`] if the hub was built with one for it
//! ([`HubBuilder::history`](super::HubBuilder::history)): its newest messages, bounded by
//! count and by age, kept whether or not anyone subscribes. A subscriber that comes back with
//! the position it had ([`Member::subscribe_since`](super::Member::subscribe_since)) gets what
//! it missed, then what comes live, with nothing lost or doubled in between; or learns that
//! this is not possible (`recovered: false`) and should reload its state.

use std::time::Duration;

use crate::{Epoch, Position};

/// A new epoch, unlike any other this process or another made (random).
pub(crate) fn new_epoch() -> Epoch {
    let bytes: [u8; 16] = unique_bytes();
    let (low, _) = bytes.split_at(8);
    Epoch(u64::from_le_bytes(low.try_into().expect("8 bytes")))
}

/// Random bytes (a node's id, an epoch): they only tell one node or log apart from others, so
/// the clock is enough if the OS cannot give random bytes.
pub(crate) fn unique_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
    }
    bytes
}

/// How much of a topic's past the hub keeps for subscribers that come back: at most
/// `messages` of its newest messages, none older than `max_age` (and, as for every log, no
/// more than the hub's byte bound, [`HubBuilder::queue_limits`](super::HubBuilder::queue_limits)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_ws::hub::{History, Hub};
///
/// // Rooms keep their last 100 messages for 5 minutes; other topics keep nothing.
/// let hub = Hub::builder()
///     .history("room:", History::new(100, Duration::from_secs(300)))
///     .build();
/// # drop(hub);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub(crate) messages: usize,
    pub(crate) max_age: Duration,
}

impl History {
    /// Keep the newest `messages` messages (at least one), none older than `max_age`.
    pub fn new(messages: usize, max_age: Duration) -> Self {
        Self {
            messages: messages.max(1),
            max_age,
        }
    }
}

/// What [`Member::subscribe_since`](super::Member::subscribe_since) did.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_ws::hub::{History, Hub};
/// use tower_ws::{Config, Role, WebSocket};
///
/// let hub = Hub::builder().history("", History::new(10, Duration::from_secs(60))).build();
/// let (io, _peer) = tokio::io::duplex(1024);
/// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
/// let me = hub.attach(&mut ws);
/// let subscribed = me.subscribe_since("news", None).unwrap();
/// assert_eq!(subscribed.position.offset, 0); // nothing published yet
/// assert!(subscribed.recovered);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribed {
    /// The topic's newest position when the subscription began (offset 0: no message yet in
    /// this epoch): live messages follow it.
    pub position: Position,
    /// `true`: every message after the position asked for follows (or none was asked for).
    /// `false`: the position was of another epoch, or older than what the history keeps, or
    /// ahead of the topic; the subscriber gets what comes from now on and should reload its
    /// state.
    pub recovered: bool,
    /// How many messages of the history are delivered before the live ones.
    pub replayed: u64,
}

/// What [`Hub::publish_with`](super::Hub::publish_with) did.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::{Hub, PreparedMessage};
///
/// let hub = Hub::new();
/// let published = hub.publish_with("news", |at| PreparedMessage::text(format!("#{}", at.offset)));
/// assert_eq!(published.position.offset, 1);
/// assert_eq!(published.subscribers, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The message's position in its topic.
    pub position: Position,
    /// How many subscribers on this node will get it.
    pub subscribers: usize,
}
