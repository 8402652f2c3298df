//! Many nodes, one hub: a [`Backplane`] carries what is published on one node to the
//! subscribers on the others.
//!
//! A hub with a backplane delivers a publish to its own subscribers at once and hands it to
//! the backplane, which sends it to the other nodes subscribed to the same channel; each of
//! those delivers it to its own subscribers. A node receives its own publishes back from a
//! broadcast medium like Redis and drops them, so every subscriber gets a message exactly
//! once. A node asks the backplane for a channel only while it has subscribers on it.
//!
//! Two are provided: [`LocalBackplane`], hubs in one process (tests, or several hubs in one
//! server), and, with the `redis` feature, [`RedisBackplane`], nodes sharing a Redis server's
//! pub/sub.
//!
//! # Examples
//!
//! Two hubs in one process, as two nodes would be:
//!
//! ```
//! use tower_ws::hub::Hub;
//! use tower_ws::hub::backplane::LocalBackplane;
//!
//! let bus = LocalBackplane::new();
//! let node_a = Hub::builder().backplane(bus.node()).build();
//! let node_b = Hub::builder().backplane(bus.node()).build();
//! // A publish on either reaches the subscribers of both.
//! node_a.publish("news", "hello");
//! # drop(node_b);
//! ```

use std::sync::Weak;

use bytes::Bytes;

mod local;
#[cfg(feature = "redis")]
mod redis;

pub use local::{LocalBackplane, LocalNode};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackplane, RedisEvent, RedisStats};

/// Carries published messages between the nodes of a hub.
///
/// A hub calls [`start`](Backplane::start) once, when it is built, then
/// [`subscribe`](Backplane::subscribe) and [`unsubscribe`](Backplane::unsubscribe) as its
/// channels gain their first local subscriber and lose their last, and
/// [`publish`](Backplane::publish) for every message published on it. None of these may
/// wait: a backplane that cannot keep up drops messages and counts them (a slow backplane
/// must not slow the node's own subscribers).
///
/// Channels are the hub's names: `t:` and a topic, `k:` and a registry key, `*` for
/// everyone. Payloads are opaque bytes made by the hub (they name the node that published,
/// so a node drops its own messages when the medium echoes them).
///
/// # Examples
///
/// A backplane that only logs (a node alone):
///
/// ```
/// use bytes::Bytes;
/// use tower_ws::hub::Hub;
/// use tower_ws::hub::backplane::{Backplane, Inbound};
///
/// struct Log;
///
/// impl Backplane for Log {
///     fn start(&self, _inbound: Inbound) {}
///     fn subscribe(&self, channel: &str) {
///         println!("now listening on {channel}");
///     }
///     fn unsubscribe(&self, channel: &str) {
///         println!("no longer listening on {channel}");
///     }
///     fn publish(&self, channel: &str, payload: Bytes) {
///         println!("{} bytes for {channel}", payload.len());
///     }
/// }
///
/// let hub = Hub::builder().backplane(Log).build();
/// hub.publish("news", "hello");
/// ```
pub trait Backplane: Send + Sync + 'static {
    /// Called once, when the hub is built: messages other nodes publish on the channels this
    /// node subscribed to go to `inbound`.
    fn start(&self, inbound: Inbound);
    /// This node now has subscribers on `channel`.
    fn subscribe(&self, channel: &str);
    /// This node no longer has subscribers on `channel`.
    fn unsubscribe(&self, channel: &str);
    /// Sends `payload` to the other nodes subscribed to `channel`, without waiting.
    fn publish(&self, channel: &str, payload: Bytes);
}

/// Where a [`Backplane`] hands the messages it receives from other nodes: the hub delivers
/// them to its subscribers on that channel (and drops its own, echoed back).
///
/// # Examples
///
/// ```
/// use tower_ws::hub::backplane::Inbound;
///
/// fn on_message(inbound: &Inbound, channel: &str, payload: &[u8]) {
///     if !inbound.deliver(channel, payload) {
///         // The hub is gone: stop listening.
///     }
/// }
/// # let _ = on_message;
/// ```
#[derive(Clone, Debug)]
pub struct Inbound {
    pub(super) hub: Weak<super::Shared>,
}

impl Inbound {
    /// Delivers a payload received on `channel` to this node's subscribers. Returns `false`
    /// once the hub is dropped (the backplane may stop). Payloads that are not the hub's (or
    /// that this node published itself) are dropped.
    pub fn deliver(&self, channel: &str, payload: &[u8]) -> bool {
        let Some(hub) = self.hub.upgrade() else {
            return false;
        };
        hub.deliver_remote(channel, payload);
        true
    }

    /// Whether the hub still exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::backplane::Inbound;
    ///
    /// fn keep_going(inbound: &Inbound) -> bool {
    ///     inbound.is_open()
    /// }
    /// # let _ = keep_going;
    /// ```
    pub fn is_open(&self) -> bool {
        self.hub.strong_count() > 0
    }
}
