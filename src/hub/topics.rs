//! A set of subscribers (a topic's, a key's, or everyone attached): a vector to publish over,
//! indexed by member id so that leaving is O(1) at any size.

use std::collections::HashMap;
use std::sync::Arc;

use super::PreparedMessage;
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

    /// Queues `msg` for every subscriber but `except`; returns how many queued it.
    pub(crate) fn publish(
        &self,
        msg: &PreparedMessage,
        except: Option<u64>,
        counters: &Counters,
    ) -> usize {
        let mut queued = 0;
        for mailbox in &self.list {
            if Some(mailbox.id()) != except && mailbox.push(msg) == Pushed::Queued {
                queued += 1;
            }
        }
        counters.queued.fetch_add(queued as u64, Relaxed);
        queued
    }
}
