//! Hubs in one process, connected as nodes would be.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Backplane, Inbound};

#[derive(Default)]
struct Bus {
    /// Each node: where to deliver, and the channels it listens on.
    nodes: Vec<Option<(Inbound, HashSet<String>)>>,
}

/// An in-process backplane: the hubs built with its [`node`](LocalBackplane::node)s act as
/// the nodes of one cluster (a publish on any reaches the subscribers of all). For tests of a
/// multi-node setup, and for servers that run several hubs.
///
/// Delivery is synchronous: the publishing node queues the message for the other nodes'
/// subscribers before `publish` returns.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::Hub;
/// use tower_ws::hub::backplane::LocalBackplane;
///
/// let bus = LocalBackplane::new();
/// let a = Hub::builder().backplane(bus.node()).build();
/// let b = Hub::builder().backplane(bus.node()).build();
/// assert_eq!(a.publish("nobody-listens", "x"), 0);
/// # drop(b);
/// ```
#[derive(Clone, Default)]
pub struct LocalBackplane {
    bus: Arc<Mutex<Bus>>,
}

impl std::fmt::Debug for LocalBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackplane").finish_non_exhaustive()
    }
}

impl LocalBackplane {
    /// A new bus with no nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// let bus = tower_ws::hub::backplane::LocalBackplane::new();
    /// # drop(bus);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A new node on this bus, to build one hub with.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::Hub;
    /// use tower_ws::hub::backplane::LocalBackplane;
    ///
    /// let bus = LocalBackplane::new();
    /// let hub = Hub::builder().backplane(bus.node()).build();
    /// # drop(hub);
    /// ```
    pub fn node(&self) -> LocalNode {
        let mut bus = lock(&self.bus);
        bus.nodes.push(None);
        LocalNode {
            bus: self.bus.clone(),
            index: bus.nodes.len() - 1,
        }
    }
}

/// One node of a [`LocalBackplane`]; give it to one hub.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::Hub;
/// use tower_ws::hub::backplane::LocalBackplane;
///
/// let node = LocalBackplane::new().node();
/// let hub = Hub::builder().backplane(node).build();
/// # drop(hub);
/// ```
pub struct LocalNode {
    bus: Arc<Mutex<Bus>>,
    index: usize,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn lock(bus: &Mutex<Bus>) -> std::sync::MutexGuard<'_, Bus> {
    bus.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Backplane for LocalNode {
    fn start(&self, inbound: Inbound) {
        lock(&self.bus).nodes[self.index] = Some((inbound, HashSet::new()));
    }

    fn subscribe(&self, channel: &str) {
        if let Some((_, channels)) = &mut lock(&self.bus).nodes[self.index] {
            channels.insert(channel.to_owned());
        }
    }

    fn unsubscribe(&self, channel: &str) {
        if let Some((_, channels)) = &mut lock(&self.bus).nodes[self.index] {
            channels.remove(channel);
        }
    }

    fn publish(&self, channel: &str, payload: Bytes) {
        // Collected first: a receiving hub takes its own locks, and may publish in turn.
        let targets: Vec<Inbound> = lock(&self.bus)
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.index)
            .filter_map(|(_, node)| node.as_ref())
            .filter(|(_, channels)| channels.contains(channel))
            .map(|(inbound, _)| inbound.clone())
            .collect();
        for inbound in targets {
            inbound.deliver(channel, &payload);
        }
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        lock(&self.bus).nodes[self.index] = None;
    }
}
