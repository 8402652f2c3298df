//! A subscriber: its positions in the logs it reads (see [`log`](super::log)), the hub's
//! overflow policy, and how what the logs hold past its positions is written into its socket,
//! by its shard's drain (see [`drain`](super::drain)) or by the socket itself when it is
//! polled.
//!
//! The socket knows none of it: the mailbox reaches the socket as an
//! [`Outbox`](crate::socket::outbox::Outbox), and drives it through the socket's
//! [`Writer`](crate::socket::outbox::Writer), the seam the socket owns, so the dependencies run
//! one way (hub → socket).

use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::Release, Ordering::SeqCst,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLockReadGuard, Weak};
use std::task::{Context, Waker};

use super::PreparedMessage;
use super::drain::{DrainWaker, Shard};
use super::log::{Entry, Log, Ring};
use super::topics::Subscription;
use crate::message::CloseCode;
use crate::socket::outbox::{Frames, Link, Outbox, Writer};

/// What happens to a subscriber that falls behind: one whose next message the hub no longer
/// keeps.
///
/// A hub keeps each published message once, in its topic's log (bounded by
/// [`HubBuilder::queue_limits`](super::HubBuilder::queue_limits)), and each subscriber reads
/// the log at its own position. A subscriber falls behind when the log had to let go of a
/// message it had not taken yet. Whatever the choice, the publisher never waits and the other
/// subscribers are not affected.
///
/// There is no "drop the newest" policy: the log is shared, so a subscriber cannot keep older
/// messages than the log keeps for everyone, and keeping a private copy of them for each slow
/// subscriber is the per-subscriber queue the log replaces.
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
    /// Go on from the oldest message the log still keeps: the messages it lost are skipped
    /// (counted as dropped), the rest arrive in order (the subscriber sees the most recent
    /// state: dashboards, prices, positions).
    DropOldest,
    /// Close the subscriber's connection with this code, dropping what it had not taken:
    /// 1008 (policy violation) or 1013 (try again later) are the usual ones. A code that may
    /// not be sent in a close frame is replaced by 1008.
    Close(CloseCode),
}

/// The hub's bounds: each log keeps at most `messages` messages and `bytes` of payload (a
/// single message larger than `bytes` is still kept, alone), so a subscriber falls behind when
/// it is that far behind the newest message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    pub(crate) overflow: Overflow,
}

/// What every subscriber of a hub shares: its bounds and policy, the order of its publishes,
/// and its counters.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) bounds: Bounds,
    pub(crate) counters: Counters,
    /// The last publish's sequence number (see [`log`](super::log)).
    pub(crate) sequence: Mutex<u64>,
}

impl Policy {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            counters: Counters::default(),
            sequence: Mutex::new(0),
        }
    }

    /// Held while a publish takes its number and appends to its log.
    pub(crate) fn sequence(&self) -> MutexGuard<'_, u64> {
        lock(&self.sequence)
    }
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

/// One subscriber: its place in each log it reads (its topics, its key, everyone), how the
/// drain reaches its socket, and its counters.
///
/// Laid out for the publish loop: every publish reads `id` and the flags of each of a target's
/// subscribers, and the drain `dirty`, `blocked` and `writer`; they come first, in the
/// mailbox's own cache line (a publish to 10,000 subscribers reads 10,000 of these lines, and
/// no other of their lines).
#[repr(C, align(64))]
pub(crate) struct Mailbox {
    id: u64,
    /// On its shard's dirty list (set by whoever puts it there, cleared by the drain just
    /// before it drives the socket).
    dirty: AtomicBool,
    /// The socket could not take everything at its last drive: it wakes the drain when it can,
    /// and publishes leave it alone meanwhile.
    blocked: AtomicBool,
    /// Messages may wait past its cursors: set by a publish after appending, cleared by a
    /// delivery that took everything (while it still holds the logs, so that no append
    /// comes between).
    pending: AtomicBool,
    /// The socket ended: nothing more is delivered.
    closed: AtomicBool,
    /// The subscriber fell behind under `Overflow::Close`: the code to close it with (set
    /// once).
    evict: OnceLock<CloseCode>,
    /// The socket's write side, which the drain drives.
    writer: Weak<dyn Writer>,
    /// The drain this subscriber belongs to.
    shard: Arc<Shard>,
    /// Where it is in each log it reads, in no order (the logs are merged by publish order).
    /// Locked by the delivery (which moves the cursors) and by joining and leaving.
    cursors: Mutex<Cursors>,
    /// What the socket wakes when the drain must come back to it.
    drain_waker: Waker,
    /// Wakes the socket's tasks (its waker fan-out), when no drain runs.
    waker: Waker,
    delivered: AtomicU64,
    dropped: AtomicU64,
    /// Its topics and key (the hub's bookkeeping; locked before the hub's maps).
    pub(crate) membership: Mutex<Membership>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Mailbox {
    pub(crate) fn new(id: u64, link: Link, shard: Arc<Shard>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id,
            cursors: Mutex::new(Cursors::default()),
            waker: link.waker,
            writer: link.writer,
            shard,
            drain_waker: DrainWaker::waker(me.clone()),
            dirty: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            evict: OnceLock::new(),
            closed: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            membership: Mutex::new(Membership {
                attached: true,
                ..Membership::default()
            }),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// Reads `sub`'s log from now on.
    /// With `first`, a message that goes out before anything the logs hold for it.
    pub(crate) fn add(&self, sub: Arc<Subscription>, first: Option<PreparedMessage>) {
        if !self.is_closed() {
            let mut cursors = lock(&self.cursors);
            cursors.push(Cursor {
                log: sub.log.clone(),
                next: Cell::new(sub.next.load(SeqCst)),
                sub,
            });
            cursors.first.extend(first);
        }
    }

    /// Has the drain come to it (something was given to it outside a publish: a replay, a
    /// first message).
    pub(crate) fn kick(self: &Arc<Self>) {
        self.set_pending();
        if !self.is_blocked() && self.mark_dirty() {
            self.shard.enqueue([self.clone()]);
        }
    }

    /// Stops reading `sub`'s log.
    pub(crate) fn remove(&self, sub: &Arc<Subscription>) {
        lock(&self.cursors).retain(|c| !Arc::ptr_eq(&c.sub, sub));
    }

    /// Marks the subscriber for its drain; `true` if it was not yet marked (then the caller
    /// puts it on its shard's list).
    #[inline]
    pub(crate) fn mark_dirty(&self) -> bool {
        // Read first: most publishes find it marked, and a read leaves the line shared with
        // the drain. A stale `true` is harmless: the drain clears the mark before it reads
        // the logs, so it either reads this publish's entry or clears it before the append
        // (which this thread then sees, through the log's lock).
        !self.dirty.load(Relaxed) && !self.dirty.swap(true, SeqCst)
    }

    /// A publish appended something for it.
    #[inline]
    pub(crate) fn set_pending(&self) {
        // As in `mark_dirty`: a delivery clears it while it holds the logs, so after this
        // publish's append, a `true` read here is current.
        if !self.pending.load(SeqCst) {
            self.pending.store(true, SeqCst);
        }
    }

    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.load(Relaxed)
    }

    /// The socket can take more: publishes mark it again.
    pub(crate) fn unblock(&self) {
        self.blocked.store(false, SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed) || self.evict.get().is_some()
    }

    /// Closes the subscriber for falling behind, with `code`, losing `dropped` messages;
    /// `false` if it was closed already.
    pub(crate) fn evict(&self, code: CloseCode, dropped: u64) -> bool {
        if self.closed.load(SeqCst) || self.evict.set(code).is_err() {
            return false;
        }
        self.dropped.fetch_add(dropped, Relaxed);
        true
    }

    /// The subscriber lost `n` messages to the log's bounds.
    pub(crate) fn lost(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
    }

    /// The drain's turn: writes what is pending into the socket, as far as its connection
    /// takes it now (the socket wakes [`DrainWaker`] when it can take more).
    pub(crate) fn drive(&self) {
        // Cleared first: whatever comes after this (a publish, the socket's wake-up) marks it
        // again and puts it back on the list.
        self.dirty.store(false, SeqCst);
        if let Some(writer) = self.writer.upgrade() {
            let driven = writer.poll_drive(&mut Context::from_waker(&self.drain_waker));
            self.blocked.store(driven.is_pending(), SeqCst);
        }
    }

    /// No drain can run (no runtime): the socket's own tasks are woken to write.
    pub(crate) fn wake_socket(&self) {
        self.dirty.store(false, SeqCst);
        self.waker.wake_by_ref();
    }

    /// Whether something may wait for the socket (messages or an eviction): a hint for a
    /// socket polled by its application, read without locking the logs.
    #[inline]
    pub(crate) fn may_have_pending(&self) -> bool {
        self.pending.load(Relaxed) || self.evict.get().is_some()
    }

    /// Writes pending messages into `frames`, in the order they were published, while
    /// `frames` has room (at least one message into an empty queue); `room` of `None` writes
    /// nothing. `Err(code)`: the subscriber is to be closed with `code`.
    fn deliver(&self, frames: &mut dyn Frames) -> Result<(), CloseCode> {
        if let Some(&code) = self.evict.get() {
            return Err(code);
        }
        let Some(room) = frames.room() else {
            return Ok(());
        };
        let mut cursors = lock(&self.cursors);
        let mut n = 0;
        for first in cursors.first.drain(..) {
            first.write_to(frames);
            n += 1;
        }
        n += cursors
            .with_slice(|cursors| deliver_from(cursors, self.id, room, frames, &self.pending));
        drop(cursors);
        self.delivered.fetch_add(n, Relaxed);
        Ok(())
    }

    /// The socket ended: nothing more is delivered, and its logs forget it.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        lock(&self.cursors).clear();
    }

    /// This subscriber's counters.
    pub(crate) fn stats(&self) -> MailboxStats {
        let (mut queued, mut queued_bytes) = (0, 0);
        if !self.is_closed() {
            for cursor in lock(&self.cursors).iter() {
                let (n, b) = cursor.log.read().pending_for(cursor.next.get(), self.id);
                queued += n;
                queued_bytes += b;
            }
        }
        MailboxStats {
            queued,
            queued_bytes,
            delivered: self.delivered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            closed_as_slow: self.evict.get().is_some(),
        }
    }
}

/// One log a subscriber reads, and where it is in it: the delivery reads its position here,
/// beside the log's address, and publishes read the copy in the [`Subscription`] the log's
/// subscriber list shares (stored, while the log is held, whenever the position moves).
#[derive(Debug)]
struct Cursor {
    log: Arc<Log>,
    /// The offset of the next entry to take (a cell: moved while the log it lives beside is
    /// borrowed for reading).
    next: Cell<u64>,
    sub: Arc<Subscription>,
}

impl Cursor {
    /// Whether the log holds something past the position (read without the log's lock).
    #[inline]
    fn has_new(&self) -> bool {
        self.next.get() < self.log.tail()
    }
}

/// A subscriber's cursors: the first two (everyone's log and one topic's, the usual
/// subscriber) inside the mailbox, so a delivery finds them in the lines it already reads, the
/// rest in a vector.
#[derive(Debug, Default)]
struct Cursors {
    inline: [Option<Cursor>; 2],
    more: Vec<Cursor>,
    /// Messages that go out before anything the logs hold (see [`Mailbox::add`]).
    first: Vec<PreparedMessage>,
}

impl Cursors {
    fn iter(&self) -> impl Iterator<Item = &Cursor> {
        self.inline.iter().flatten().chain(&self.more)
    }

    fn push(&mut self, cursor: Cursor) {
        match self.inline.iter_mut().find(|c| c.is_none()) {
            Some(slot) => *slot = Some(cursor),
            None => self.more.push(cursor),
        }
    }

    fn retain(&mut self, keep: impl Fn(&Cursor) -> bool) {
        for slot in &mut self.inline {
            if slot.as_ref().is_some_and(|c| !keep(c)) {
                *slot = None;
            }
        }
        self.more.retain(keep);
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    /// Runs `f` over the cursors as one slice of references (on the stack for most
    /// subscribers).
    fn with_slice<R>(&self, f: impl FnOnce(&[&Cursor]) -> R) -> R {
        const INLINE: usize = 4;
        let Some(first) = self.iter().next() else {
            return f(&[]);
        };
        if self.more.len() + 2 <= INLINE {
            let mut refs = [first; INLINE];
            let mut n = 0;
            for (slot, cursor) in refs.iter_mut().zip(self.iter()) {
                *slot = cursor;
                n += 1;
            }
            f(&refs[..n])
        } else {
            f(&self.iter().collect::<Vec<_>>())
        }
    }
}

/// Merges the logs of `cursors` by publish order from each one's position, writing into
/// `frames` until `room` bytes are written (at least one message); moves the positions, and
/// clears `pending` if everything was taken. Returns how many messages were written.
fn deliver_from(
    cursors: &[&Cursor],
    id: u64,
    room: usize,
    frames: &mut dyn Frames,
    pending: &AtomicBool,
) -> u64 {
    /// Most subscribers read one to three logs (everyone, a topic, a key).
    const INLINE: usize = 8;
    // The logs read are read-locked for the whole merge: a snapshot in which whatever one
    // publisher appended to two of them is either both there or only the earlier one (it
    // appended to the first before it could append to the second, which we hold).
    let mut more = Vec::new();
    let mut inline: [Option<RwLockReadGuard<'_, Ring>>; INLINE] = Default::default();
    let rings: &mut [Option<RwLockReadGuard<'_, Ring>>] = if cursors.len() <= INLINE {
        &mut inline[..cursors.len()]
    } else {
        more.resize_with(cursors.len(), || None);
        &mut more
    };
    // Only the logs with something new for this subscriber (most reads find one of its
    // logs busy and the others empty: an empty one is not locked).
    let mut skipped = false;
    for (ring, cursor) in rings.iter_mut().zip(cursors.iter()) {
        if cursor.has_new() {
            *ring = Some(cursor.log.read());
        } else {
            skipped = true;
        }
    }
    // An entry in a log just locked may follow one its publisher appended to a log skipped as
    // empty: look again, the locks held; if one came, hold every log (then all are read at
    // once, and the snapshot is whole).
    if skipped
        && rings
            .iter()
            .zip(cursors.iter())
            .any(|(r, cursor)| r.is_none() && cursor.has_new())
    {
        for (ring, cursor) in rings.iter_mut().zip(cursors.iter()) {
            if ring.is_none() {
                *ring = Some(cursor.log.read());
            }
        }
        skipped = false;
    }
    let rings = &*rings;
    let mut at = [0u64; INLINE];
    let mut more_at = Vec::new();
    let at: &mut [u64] = if cursors.len() <= INLINE {
        &mut at[..cursors.len()]
    } else {
        more_at.resize(cursors.len(), 0);
        &mut more_at
    };
    for ((at, cursor), ring) in at.iter_mut().zip(cursors.iter()).zip(rings) {
        let next = cursor.next.get();
        let first = ring.as_ref().map_or(next, |r| r.first());
        // Behind what the log holds: the rest was lost (`DropOldest`), counted by the
        // publish that pushed it out.
        *at = next.max(first);
    }
    let (mut written, mut bytes) = (0u64, 0usize);
    while written == 0 || bytes < room {
        // The oldest publish among the logs' next entries.
        let mut best: Option<(usize, &Entry)> = None;
        for (i, ring) in rings.iter().enumerate() {
            if let Some(entry) = ring.as_ref().and_then(|r| r.get(at[i])) {
                if best.is_none_or(|(_, b)| entry.seq < b.seq) {
                    best = Some((i, entry));
                }
            }
        }
        let Some((i, entry)) = best else {
            break;
        };
        at[i] += 1;
        if entry.except == Some(id) {
            continue;
        }
        entry.msg.write_to(frames);
        written += 1;
        bytes += entry.msg.payload_len();
    }
    let mut caught_up = true;
    for ((at, cursor), ring) in at.iter().zip(cursors).zip(rings) {
        if let Some(ring) = ring {
            if *at != cursor.next.get() {
                // Stored while the log is held: a publish appends after the lock is let go,
                // and reads it after that (the lock orders the two; a plain store, which
                // does not wait for the line as a locked one would).
                cursor.next.set(*at);
                cursor.sub.next.store(*at, Release);
            }
            caught_up &= *at >= ring.tail();
        }
    }
    if caught_up {
        // Still holding the logs read: a publish to them appends after this, then sets it
        // again. One to a log not read may have appended since it was found empty: look
        // once more (a publish stores its log's tail, then reads this flag).
        pending.store(false, SeqCst);
        if skipped && cursors.iter().any(|c| c.has_new()) {
            pending.store(true, SeqCst);
        }
    }
    written
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves the state consistent: carry on after a panic.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ends a socket's membership when the socket ends or is dropped.
pub(crate) trait Detach: Send + Sync {
    /// Removes `mailbox` from every topic, key and list it is in.
    fn detach(&self, mailbox: &Mailbox);
}

/// What the socket drops when its connection ends (or the socket is dropped): the mailbox is
/// closed and the hub forgets it.
pub(crate) struct Detacher {
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) owner: Arc<dyn Detach>,
}

impl Drop for Detacher {
    fn drop(&mut self) {
        self.mailbox.close();
        self.owner.detach(&self.mailbox);
    }
}

/// The socket reads its mailbox through the seam it owns (the hub's drain reaches the mailbox
/// directly).
impl Outbox for Mailbox {
    #[inline]
    fn may_have_pending(&self) -> bool {
        Mailbox::may_have_pending(self)
    }

    fn deliver(&self, frames: &mut dyn Frames) -> Result<(), CloseCode> {
        Mailbox::deliver(self, frames)
    }
}
