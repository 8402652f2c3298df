//! A subscriber's queue of published messages: bounded in messages and bytes, with the hub's
//! overflow policy, written into the subscriber's socket by its shard's drain (see
//! [`drain`](super::drain)) or by the socket itself when it is polled.
//!
//! The socket knows none of it: the mailbox reaches the socket as an
//! [`Outbox`](crate::socket::outbox::Outbox), and drives it through the socket's
//! [`Writer`](crate::socket::outbox::Writer), the seam the socket owns, so the dependencies run
//! one way (hub → socket).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Waker};

use super::drain::{DrainWaker, Shard};
use super::prepared::PreparedMessage;
use crate::message::CloseCode;
use crate::socket::outbox::{Frames, Link, Outbox, Writer};

/// What a subscriber's queue does when a message would take it past its bounds.
///
/// Whatever the choice, the publisher never waits and the other subscribers are not affected:
/// the policy only decides which of the slow subscriber's own messages it loses.
///
/// # Examples
///
/// ```
/// use tower_ws::CloseCode;
/// use tower_ws::hub::{Hub, Overflow};
///
/// // A live feed: a subscriber that falls behind is told to come back later (1013).
/// let hub = Hub::builder()
///     .queue_limits(256, 1 << 20)
///     .overflow(Overflow::Close(CloseCode::TRY_AGAIN_LATER))
///     .build();
/// # drop(hub);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the oldest queued messages to make room (the subscriber sees the most recent
    /// state: dashboards, prices, positions).
    DropOldest,
    /// Drop the new message (the subscriber keeps what it had: logs, chat history).
    DropNewest,
    /// Close the subscriber's connection with this code, dropping what it had queued: 1008
    /// (policy violation) or 1013 (try again later) are the usual ones. A code that may not be
    /// sent in a close frame is replaced by 1008.
    Close(CloseCode),
}

/// A subscriber's bounds: at most `messages` queued, and at most `bytes` of payload (a single
/// message larger than `bytes` is still queued into an empty queue, so it can be delivered).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) overflow: Overflow,
}

/// What every subscriber of a hub shares: its bounds and policy, and the hub's counters.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) bounds: Bounds,
    pub(crate) counters: Counters,
}

/// Which topics and key a subscriber has, to leave them when its socket ends.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Whether the socket is still attached (cleared once, when it ends).
    pub(crate) attached: bool,
    pub(crate) topics: Vec<Arc<str>>,
    pub(crate) key: Option<Arc<str>>,
}

/// Counters the hub keeps for all its subscribers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) closed_slow: AtomicU64,
}

/// What [`Mailbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued (possibly after dropping older messages); `drive`: the queue was empty (or the
    /// subscriber is to be closed now), so the socket must be driven for it.
    Queued { drive: bool },
    /// Not queued: the queue was full and the policy drops new messages.
    Dropped,
    /// Not queued: the subscriber was closed for being slow (now: `drive`, or earlier), or is
    /// gone.
    Closed { drive: bool },
}

impl Pushed {
    /// Whether the subscriber's socket must be driven for what this push did.
    pub(crate) fn drive(self) -> bool {
        matches!(
            self,
            Self::Queued { drive: true } | Self::Closed { drive: true }
        )
    }
}

struct Queue {
    items: VecDeque<PreparedMessage>,
    bytes: usize,
    /// The subscriber fell behind and is to be closed with this code.
    evict: Option<CloseCode>,
    /// The socket ended: nothing more is queued.
    closed: bool,
    dropped: u64,
}

/// One subscriber's queue, shared by the hub (which pushes) and the socket (which drains).
pub(crate) struct Mailbox {
    id: u64,
    queue: Mutex<Queue>,
    /// Wakes the socket's tasks (its waker fan-out), when no drain runs.
    waker: Waker,
    /// The socket's write side, which the drain drives.
    writer: Weak<dyn Writer>,
    /// The drain this subscriber belongs to.
    shard: Arc<Shard>,
    /// What the socket wakes when the drain must come back to it.
    drain_waker: Waker,
    /// On its shard's dirty list (set by whoever puts it there, cleared by the drain just
    /// before it drives the socket).
    dirty: AtomicBool,
    policy: Arc<Policy>,
    delivered: AtomicU64,
    /// Its topics and key (the hub's bookkeeping; locked before the hub's maps).
    pub(crate) membership: Mutex<Membership>,
    /// Whether the queue may hold something for the socket (messages or an eviction): set
    /// under the lock by a push, cleared under the lock by a take that empties the queue.
    /// Read without the lock, so that a socket polled with nothing for it takes no lock.
    pending: AtomicBool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Mailbox {
    pub(crate) fn new(id: u64, policy: Arc<Policy>, link: Link, shard: Arc<Shard>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                evict: None,
                closed: false,
                dropped: 0,
            }),
            waker: link.waker,
            writer: link.writer,
            shard,
            drain_waker: DrainWaker::waker(me.clone()),
            dirty: AtomicBool::new(false),
            policy,
            delivered: AtomicU64::new(0),
            membership: Mutex::new(Membership {
                attached: true,
                ..Membership::default()
            }),
            pending: AtomicBool::new(false),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// Marks the subscriber for its drain; `true` if it was not yet marked (then the caller
    /// puts it on its shard's list).
    pub(crate) fn mark_dirty(&self) -> bool {
        !self.dirty.swap(true, SeqCst)
    }

    /// The drain's turn: writes what is queued into the socket, as far as its connection
    /// takes it now (the socket wakes [`DrainWaker`] when it can take more).
    pub(crate) fn drive(&self) {
        // Cleared first: whatever comes after this (a push, the socket's wake-up) marks it
        // again and puts it back on the list.
        self.dirty.store(false, SeqCst);
        if let Some(writer) = self.writer.upgrade() {
            let _ = writer.poll_drive(&mut Context::from_waker(&self.drain_waker));
        }
    }

    /// No drain can run (no runtime): the socket's own tasks are woken to write the queue.
    pub(crate) fn wake_socket(&self) {
        self.dirty.store(false, SeqCst);
        self.waker.wake_by_ref();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves the queue consistent (every update is a
        // single push or pop): carry on.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `msg` under the bounds and policy. [`Pushed::drive`] says whether the socket
    /// must now be driven (the queue was empty; otherwise that is already under way).
    pub(crate) fn push(&self, msg: &PreparedMessage) -> Pushed {
        let len = msg.payload_len();
        let mut q = self.lock();
        if q.closed || q.evict.is_some() {
            return Pushed::Closed { drive: false };
        }
        let over = |q: &Queue| {
            !q.items.is_empty()
                && (q.items.len() >= self.policy.bounds.messages
                    || q.bytes + len > self.policy.bounds.bytes)
        };
        if over(&q) {
            match self.policy.bounds.overflow {
                Overflow::DropOldest => {
                    while over(&q) {
                        let Some(old) = q.items.pop_front() else {
                            break;
                        };
                        q.bytes -= old.payload_len();
                        q.dropped += 1;
                        self.policy.counters.dropped.fetch_add(1, Relaxed);
                    }
                }
                Overflow::DropNewest => {
                    q.dropped += 1;
                    drop(q);
                    self.policy.counters.dropped.fetch_add(1, Relaxed);
                    return Pushed::Dropped;
                }
                Overflow::Close(code) => {
                    let dropped = q.items.len() as u64 + 1;
                    q.items.clear();
                    q.bytes = 0;
                    q.dropped += dropped;
                    q.evict = Some(code);
                    self.pending.store(true, Relaxed);
                    drop(q);
                    self.policy.counters.dropped.fetch_add(dropped, Relaxed);
                    self.policy.counters.closed_slow.fetch_add(1, Relaxed);
                    return Pushed::Closed { drive: true };
                }
            }
        }
        let was_empty = q.items.is_empty();
        q.items.push_back(msg.clone());
        q.bytes += len;
        if was_empty {
            self.pending.store(true, Relaxed);
        }
        drop(q);
        Pushed::Queued { drive: was_empty }
    }

    /// Moves up to `out.len()` queued messages, and at most about `budget` payload bytes (at
    /// least one, unless `out` is empty), into `out`; returns how many, and the close code if
    /// the subscriber is to be closed for being slow (then nothing is moved).
    pub(crate) fn take(
        &self,
        out: &mut [Option<PreparedMessage>],
        budget: usize,
    ) -> (usize, Option<CloseCode>) {
        // Relaxed is enough: a push that this load misses stores `true` before it wakes the
        // socket, and the wake-up makes the socket poll (and look) again.
        if !self.pending.load(Relaxed) {
            return (0, None);
        }
        let mut q = self.lock();
        if let Some(code) = q.evict {
            return (0, Some(code));
        }
        let mut n = 0;
        let mut taken = 0;
        while n < out.len() && (n == 0 || taken < budget) {
            let Some(msg) = q.items.pop_front() else {
                break;
            };
            taken += msg.payload_len();
            out[n] = Some(msg);
            n += 1;
        }
        q.bytes -= taken;
        if q.items.is_empty() {
            self.pending.store(false, Relaxed);
        }
        drop(q);
        self.delivered.fetch_add(n as u64, Relaxed);
        (n, None)
    }

    /// Whether something may wait (messages or an eviction): a hint without the lock, for a
    /// socket polled with nothing for it.
    #[inline]
    pub(crate) fn may_have_pending(&self) -> bool {
        self.pending.load(Relaxed)
    }

    /// The socket ended: drop what is queued and refuse more.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.items.clear();
        q.bytes = 0;
    }

    /// This subscriber's counters.
    pub(crate) fn stats(&self) -> MailboxStats {
        let q = self.lock();
        MailboxStats {
            queued: q.items.len(),
            queued_bytes: q.bytes,
            delivered: self.delivered.load(Relaxed),
            dropped: q.dropped,
            closed_as_slow: q.evict.is_some(),
        }
    }
}

/// A snapshot of one subscriber's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MailboxStats {
    pub(crate) queued: usize,
    pub(crate) queued_bytes: usize,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) closed_as_slow: bool,
}

/// Ends a socket's membership when the socket ends or is dropped.
pub(crate) trait Detach: Send + Sync {
    /// Removes `mailbox` from every topic, key and list it is in.
    fn detach(&self, mailbox: &Mailbox);
}

/// A socket's link to its hub: the mailbox it drains, and who to tell when it ends. The
/// socket holds it as its [`Outbox`] and drops it when the connection ends.
pub(crate) struct Attachment {
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) owner: Arc<dyn Detach>,
}

impl Attachment {
    /// How many published messages are taken from the mailbox at once.
    const BATCH: usize = 32;
}

impl Outbox for Attachment {
    #[inline]
    fn may_have_pending(&self) -> bool {
        self.mailbox.may_have_pending()
    }

    fn deliver(&self, frames: &mut dyn Frames) -> Result<(), CloseCode> {
        let mut batch: [Option<PreparedMessage>; Self::BATCH] = Default::default();
        loop {
            let room = frames.room();
            // Full, nothing is taken, but an eviction is still seen: the subscriber the hub
            // found too slow is most often one whose write queue the peer stopped draining.
            let take = if room.is_some() {
                &mut batch[..]
            } else {
                &mut batch[..0]
            };
            let (n, evict) = self.mailbox.take(take, room.unwrap_or(0));
            if let Some(code) = evict {
                return Err(code);
            }
            for msg in batch[..n].iter_mut().filter_map(Option::take) {
                msg.write_to(frames);
            }
            if room.is_none() || n < Self::BATCH {
                return Ok(());
            }
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.mailbox.close();
        self.owner.detach(&self.mailbox);
    }
}
