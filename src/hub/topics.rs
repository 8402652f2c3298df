//! A set of subscribers (a topic's, a key's, or everyone attached): a vector to publish over,
//! indexed by member id so that leaving is O(1) at any size.

use std::collections::HashMap;
use std::sync::Arc;

use super::PreparedMessage;
use super::drain::Shard;
use super::mailbox::{Counters, Mailbox, Pushed};
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    list: Vec<Arc<Mailbox>>,
    /// Member id → position in `list`.
    index: HashMap<u64, usize>,
}

impl Subscribers {
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds `mailbox`; `false` if it was there already.
    pub(crate) fn insert(&mut self, mailbox: &Arc<Mailbox>) -> bool {
        if self.index.contains_key(&mailbox.id()) {
            return false;
        }
        self.index.insert(mailbox.id(), self.list.len());
        self.list.push(mailbox.clone());
        true
    }

    /// Removes the member `id`; `false` if it was not there.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Some(at) = self.index.remove(&id) else {
            return false;
        };
        self.list.swap_remove(at);
        if let Some(moved) = self.list.get(at) {
            self.index.insert(moved.id(), at);
        }
        if self.list.is_empty() {
            // A topic that had 100,000 subscribers does not keep their room.
            self.list = Vec::new();
            self.index = HashMap::new();
        }
        true
    }

    /// Queues `msg` for every subscriber but `except`, and has the drains of those whose
    /// queue was empty drive them; returns how many queued it.
    pub(crate) fn publish(
        &self,
        msg: &PreparedMessage,
        except: Option<u64>,
        counters: &Counters,
    ) -> usize {
        let mut queued = 0;
        let mut dirty = Dirty::default();
        for mailbox in &self.list {
            if Some(mailbox.id()) == except {
                continue;
            }
            let pushed = mailbox.push(msg);
            if matches!(pushed, Pushed::Queued { .. }) {
                queued += 1;
            }
            if pushed.drive() && mailbox.mark_dirty() {
                dirty.add(mailbox);
            }
        }
        dirty.enqueue();
        counters.queued.fetch_add(queued as u64, Relaxed);
        queued
    }
}

/// The subscribers a publish marked dirty, grouped by shard, so that each shard's list is
/// locked once per publish.
#[derive(Default)]
struct Dirty {
    /// (shard, its subscribers); most publishes touch few shards.
    shards: Vec<(Arc<Shard>, Vec<Arc<Mailbox>>)>,
}

impl Dirty {
    fn add(&mut self, mailbox: &Arc<Mailbox>) {
        let shard = mailbox.shard();
        match self.shards.iter_mut().find(|(s, _)| Arc::ptr_eq(s, shard)) {
            Some((_, list)) => list.push(mailbox.clone()),
            None => self.shards.push((shard.clone(), vec![mailbox.clone()])),
        }
    }

    fn enqueue(self) {
        for (shard, list) in self.shards {
            shard.enqueue(list);
        }
    }
}
