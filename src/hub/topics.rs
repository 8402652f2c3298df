//! A target (a topic, a key, or everyone attached): its log, and its subscribers, each with its
//! cursor into the log; a vector to publish over, indexed by member id so that leaving is O(1)
//! at any size.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed};

use super::PreparedMessage;
use super::drain::Shard;
use super::log::{Appended, Entry, Log};
use super::mailbox::{Mailbox, Overflow, Policy};
use super::position::{History, Subscribed};
use crate::Position;

/// How many appends a log takes between two looks at every subscriber's position (to drop
/// what all of them took): a publish that pushes nothing out of the log touches only each
/// subscriber's mailbox, not its position, and a log whose subscribers keep up holds at most
/// this many entries more than are in flight...
const TRIM_EVERY: u64 = 16;
/// ...or this many payload bytes: a log of large messages looks at every append once it holds
/// this much, so that what was taken is freed (and its memory reused) at once.
const TRIM_BYTES: usize = 64 << 10;

/// One subscriber's place in one target's log.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) log: Arc<Log>,
    /// The offset of the next entry this subscriber takes. Moved forward only by the
    /// subscriber's own delivery (under its mailbox's lock); read by publishers.
    pub(crate) next: AtomicU64,
}

/// A subscriber of a target, as publishes walk over them: the mailbox (what every publish
/// reads) beside its position (what only some publishes read), so a publish reaches each
/// subscriber with one pointer.
#[derive(Debug)]
struct Member {
    mailbox: Arc<Mailbox>,
    sub: Arc<Subscription>,
}

/// What a publish appends: a message made already, or one made from its position (rendered
/// once, while the log's order is held).
pub(crate) enum Msg<'a> {
    Ready(&'a PreparedMessage),
    At(&'a mut dyn FnMut(Position) -> PreparedMessage),
}

#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    log: Arc<Log>,
    list: Vec<Member>,
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

    /// No subscriber yet, and a log that keeps `history`.
    pub(crate) fn with_history(history: Option<History>) -> Self {
        Self {
            log: Arc::new(Log::new(history)),
            ..Self::default()
        }
    }

    /// The position of the newest message the log holds or held.
    pub(crate) fn position(&self) -> Position {
        self.log.resume(None).0
    }

    /// Whether the target can be forgotten: no subscriber, and nothing a position could
    /// resume from.
    pub(crate) fn is_spent(&self) -> bool {
        self.list.is_empty() && self.log.is_spent()
    }

    /// Adds `mailbox`, reading from what is published next; `None` if it was there already.
    pub(crate) fn insert(&mut self, mailbox: &Arc<Mailbox>) -> Option<Arc<Subscription>> {
        self.insert_since(mailbox, None).map(|(sub, _)| sub)
    }

    /// Adds `mailbox`, reading from what follows `since` if the log still holds all of it,
    /// else from what is published next; `None` if it was there already.
    pub(crate) fn insert_since(
        &mut self,
        mailbox: &Arc<Mailbox>,
        since: Option<Position>,
    ) -> Option<(Arc<Subscription>, Subscribed)> {
        if self.index.contains_key(&mailbox.id()) {
            return None;
        }
        let (position, from) = self.log.resume(since);
        let next = from.unwrap_or_else(|tail| tail);
        let subscribed = Subscribed {
            position,
            recovered: from.is_ok(),
            replayed: position.offset - next,
        };
        let sub = Arc::new(Subscription {
            log: self.log.clone(),
            next: AtomicU64::new(next),
        });
        self.index.insert(mailbox.id(), self.list.len());
        self.list.push(Member {
            mailbox: mailbox.clone(),
            sub: sub.clone(),
        });
        Some((sub, subscribed))
    }

    /// Removes the member `id`; its subscription if it was there.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<Subscription>> {
        let at = self.index.remove(&id)?;
        let member = self.list.swap_remove(at);
        if let Some(moved) = self.list.get(at) {
            self.index.insert(moved.mailbox.id(), at);
        }
        if self.list.is_empty() {
            // A target that had 100,000 subscribers does not keep their room.
            self.list = Vec::new();
            self.index = HashMap::new();
        }
        Some(member.sub)
    }

    /// Appends `msg` to the log (in the hub's order of publishes), and has the drains of the
    /// subscribers but `except` deliver it. Applies the overflow policy to subscribers the
    /// log's bounds left behind. Returns how many subscribers will get it.
    pub(crate) fn publish(&self, msg: Msg<'_>, except: Option<u64>, policy: &Policy) -> Published {
        let (appended, msg) = {
            // One order for every publish of the hub, whatever its target: a subscriber
            // reading several logs merges them by it.
            let mut seq = policy.sequence();
            *seq += 1;
            let (entry, made) = match msg {
                Msg::Ready(msg) => (msg.clone(), None),
                Msg::At(render) => {
                    let made = render(self.log.next_position());
                    (made.clone(), Some(made))
                }
            };
            let appended = self.log.append(
                Entry {
                    seq: *seq,
                    msg: entry,
                    except,
                    at: None,
                },
                &policy.bounds,
            );
            (appended, made)
        };
        let queued = if appended.evicted.is_empty()
            && appended.offset % TRIM_EVERY != 0
            && appended.bytes < TRIM_BYTES
        {
            self.mark(except)
        } else {
            self.mark_and_look(except, policy, &appended)
        };
        policy.counters.queued.fetch_add(queued as u64, Relaxed);
        Published {
            position: appended.position,
            subscribers: queued,
            msg,
        }
    }

    /// The common publish: nothing was pushed out of the log, so no subscriber fell behind;
    /// marks each one dirty (one read of its mailbox if it is marked already).
    fn mark(&self, except: Option<u64>) -> usize {
        let mut queued = 0;
        let mut dirty = Dirty::default();
        for Member { mailbox, .. } in &self.list {
            if Some(mailbox.id()) == except || mailbox.is_closed() {
                continue;
            }
            queued += 1;
            mailbox.set_pending();
            if !mailbox.is_blocked() && mailbox.mark_dirty() {
                dirty.add(mailbox);
            }
        }
        dirty.enqueue();
        queued
    }

    /// A publish that pushed entries out of the log (or one every [`TRIM_EVERY`], or into a log
    /// holding [`TRIM_BYTES`]): reads each subscriber's position too, applies the overflow
    /// policy to those that lost entries, and lets the log drop what every subscriber took.
    fn mark_and_look(&self, except: Option<u64>, policy: &Policy, appended: &Appended) -> usize {
        let counters = &policy.counters;
        let mut queued = 0;
        let mut taken = appended.offset;
        let mut dirty = Dirty::default();
        for Member { mailbox, sub } in &self.list {
            let next = sub.next.load(Acquire);
            taken = taken.min(next);
            if Some(mailbox.id()) == except || mailbox.is_closed() {
                continue;
            }
            // Entries this subscriber had not taken, pushed out by this append.
            let lost = appended
                .evicted
                .end
                .saturating_sub(next.max(appended.evicted.start));
            if lost > 0 {
                if let Overflow::Close(code) = policy.bounds.overflow {
                    let dropped = appended.offset + 1 - next;
                    if mailbox.evict(code, dropped) {
                        counters.dropped.fetch_add(dropped, Relaxed);
                        counters.closed_slow.fetch_add(1, Relaxed);
                        if mailbox.mark_dirty() {
                            dirty.add(mailbox);
                        }
                    }
                    continue;
                }
                mailbox.lost(lost);
                counters.dropped.fetch_add(lost, Relaxed);
            }
            queued += 1;
            mailbox.set_pending();
            if !mailbox.is_blocked() && mailbox.mark_dirty() {
                dirty.add(mailbox);
            }
        }
        self.log.taken_before(taken);
        dirty.enqueue();
        queued
    }
}

/// What a publish appended, where, and for how many subscribers.
pub(crate) struct Published {
    pub(crate) position: Position,
    pub(crate) subscribers: usize,
    /// The message made from its position (for [`Msg::At`]).
    pub(crate) msg: Option<PreparedMessage>,
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
