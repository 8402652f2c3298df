//! A target's log: every message published to a topic (or to a key, or to everyone) is stored
//! once, at an offset that rises by one per message, and each subscriber reads it through its
//! own cursor ([`Subscription::next`](super::topics::Subscription)) instead of holding a queue
//! of its own.
//!
//! The log keeps at most the hub's bounds (messages and payload bytes, at least the newest
//! message): a subscriber whose next message was pushed out by the bounds has fallen behind,
//! and the hub's [`Overflow`](super::Overflow) policy says what happens to it. Messages every
//! subscriber has taken are dropped at the next publish, so a log whose subscribers keep up
//! holds only what is in flight.
//!
//! Each entry also carries the hub-wide sequence number of its publish: a subscriber reading
//! several logs (its topics, its key, everyone) merges them by it, so that what one publisher
//! published in one order reaches every subscriber in that order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use super::mailbox::Bounds;
use super::position::{History, new_epoch};
use super::prepared::PreparedMessage;
use crate::{Epoch, Position};

/// One published message.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The hub-wide order of publishes.
    pub(crate) seq: u64,
    pub(crate) msg: PreparedMessage,
    /// The member that published it (all-but-sender): it does not get it.
    pub(crate) except: Option<u64>,
    /// When it was appended, in a log with a history (which keeps nothing older than its
    /// age).
    pub(crate) at: Option<Instant>,
}

/// The entries a log holds, from offset `first` on.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    first: u64,
    entries: VecDeque<Entry>,
    /// Payload bytes held.
    bytes: usize,
}

impl Ring {
    /// The offset of the oldest entry held.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The offset the next message will get.
    pub(crate) fn tail(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The entry at `offset`, if held.
    #[inline]
    pub(crate) fn get(&self, offset: u64) -> Option<&Entry> {
        let at = usize::try_from(offset.checked_sub(self.first)?).ok()?;
        self.entries.get(at)
    }

    /// How many entries from `offset` on are for member `id`, and their payload bytes.
    pub(crate) fn pending_for(&self, offset: u64, id: u64) -> (usize, usize) {
        let from = usize::try_from(offset.saturating_sub(self.first)).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(from)
            .filter(|e| e.except != Some(id))
            .fold((0, 0), |(n, b), e| (n + 1, b + e.msg.payload_len()))
    }
}

/// What an append pushed out of the log because of its bounds: entries
/// `evicted.start..evicted.end`, which subscribers still behind them have lost.
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// The new entry's offset.
    pub(crate) offset: u64,
    /// Entries pushed out by the bounds (not those every subscriber had taken).
    pub(crate) evicted: std::ops::Range<u64>,
    /// Payload bytes the log holds, the new entry's included.
    pub(crate) bytes: usize,
    /// The new entry's position.
    pub(crate) position: Position,
}

/// A target's log.
#[derive(Debug)]
pub(crate) struct Log {
    ring: RwLock<Ring>,
    /// Every subscriber had taken the entries before this offset at the last publish: the
    /// next append drops them.
    taken: AtomicU64,
    /// The ring's tail, readable without the lock (stored under it, after each append).
    tail: AtomicU64,
    /// This log's identity: offsets are positions in it.
    epoch: Epoch,
    /// What it keeps after every subscriber took it, if anything.
    history: Option<History>,
}

impl Default for Log {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Log {
    /// An empty log in a new epoch, keeping `history`.
    pub(crate) fn new(history: Option<History>) -> Self {
        Self {
            ring: RwLock::default(),
            taken: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            epoch: new_epoch(),
            history,
        }
    }

    /// The position the next message appended will have (offsets count from 1: the entry at
    /// ring offset `k` is at position `k + 1`).
    pub(crate) fn next_position(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.tail() + 1,
        }
    }

    /// Appends `entry` under `bounds`: drops what every subscriber took (but what the history
    /// keeps), then (beyond the bounds) the oldest entries, keeping at least the new one.
    pub(crate) fn append(&self, mut entry: Entry, bounds: &Bounds) -> Appended {
        let len = entry.msg.payload_len();
        let mut ring = self.write();
        let taken = self.taken.load(SeqCst);
        let now = self.history.map(|_| Instant::now());
        entry.at = now;
        // The history keeps the newest `messages` entries (the new one among them).
        let kept_from = self.history.map_or(u64::MAX, |h| {
            (ring.tail() + 1).saturating_sub(h.messages as u64)
        });
        while ring.first < taken && (ring.first < kept_from || self.expired(&ring, now)) {
            if !ring.pop() {
                break;
            }
        }
        let start = ring.first;
        let messages = bounds.messages.max(self.history.map_or(0, |h| h.messages));
        while !ring.entries.is_empty()
            && (ring.entries.len() >= messages || ring.bytes + len > bounds.bytes)
        {
            ring.pop();
        }
        let evicted = start..ring.first;
        ring.bytes += len;
        ring.entries.push_back(entry);
        self.tail.store(ring.tail(), SeqCst);
        Appended {
            offset: ring.tail() - 1,
            evicted,
            bytes: ring.bytes,
            position: Position {
                epoch: self.epoch,
                offset: ring.tail(),
            },
        }
    }

    /// The offset the next message will get (as [`Ring::tail`], without the lock).
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        self.tail.load(SeqCst)
    }

    /// Whether the oldest entry is older than the history keeps.
    fn expired(&self, ring: &Ring, now: Option<Instant>) -> bool {
        match (self.history, now, ring.entries.front().and_then(|e| e.at)) {
            (Some(h), Some(now), Some(at)) => now.saturating_duration_since(at) > h.max_age,
            _ => false,
        }
    }

    /// Where a subscriber that has everything up to `since` goes on from: `Ok(ring offset)`
    /// if every message after it is held and young enough for the history to replay,
    /// `Err(tail)` if not (another epoch, older than what is held, or ahead of the log); with
    /// the log's newest position. Called with the target's subscribers locked, so no append
    /// comes between this and the new subscriber's cursor.
    pub(crate) fn resume(&self, since: Option<Position>) -> (Position, Result<u64, u64>) {
        let ring = self.read();
        let tail = ring.tail();
        // What may be replayed: the history's newest entries (the log may hold more, for
        // subscribers still reading them or until its next trim); without a history, nothing
        // (a position is recovered only if nothing was missed).
        let mut oldest = match self.history {
            Some(h) => ring.first.max(tail.saturating_sub(h.messages as u64)),
            None => tail,
        };
        if let Some(h) = self.history {
            let now = Instant::now();
            let skip = usize::try_from(oldest - ring.first).unwrap_or(usize::MAX);
            // Entries are in the order they were appended: skip those past the age.
            oldest += ring
                .entries
                .iter()
                .skip(skip)
                .take_while(|e| {
                    e.at.is_some_and(|at| now.saturating_duration_since(at) > h.max_age)
                })
                .count() as u64;
        }
        let newest = Position {
            epoch: self.epoch,
            offset: tail,
        };
        let from = match since {
            None => Ok(tail),
            Some(p) if p.epoch == self.epoch && p.offset >= oldest && p.offset <= tail => {
                Ok(p.offset)
            }
            Some(_) => Err(tail),
        };
        (newest, from)
    }

    /// Whether the log keeps nothing worth a position: no history, nothing held, or only
    /// messages past the history's age. A target with no subscriber in that state can be
    /// forgotten (its next log starts a new epoch).
    pub(crate) fn is_spent(&self) -> bool {
        let ring = self.read();
        match (self.history, ring.entries.back()) {
            (_, None) | (None, _) => true,
            (Some(h), Some(newest)) => newest
                .at
                .is_none_or(|at| Instant::now().saturating_duration_since(at) > h.max_age),
        }
    }

    /// Every subscriber has taken the entries before `offset`.
    pub(crate) fn taken_before(&self, offset: u64) {
        self.taken.store(offset, SeqCst);
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Ring> {
        // Every update is a push or a pop: consistent after a panic.
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Ring> {
        self.ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ring {
    fn pop(&mut self) -> bool {
        match self.entries.pop_front() {
            Some(old) => {
                self.bytes -= old.msg.payload_len();
                self.first += 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Overflow;

    fn bounds(messages: usize, bytes: usize) -> Bounds {
        Bounds {
            messages,
            bytes,
            overflow: Overflow::DropOldest,
        }
    }

    fn entry(seq: u64, len: usize) -> Entry {
        Entry {
            seq,
            msg: PreparedMessage::binary(vec![0u8; len]),
            except: None,
            at: None,
        }
    }

    #[test]
    fn offsets_rise_by_one_and_the_bounds_push_out_the_oldest() {
        let log = Log::default();
        let b = bounds(3, 1 << 20);
        for seq in 0..3 {
            let a = log.append(entry(seq, 10), &b);
            assert_eq!(a.offset, seq);
            assert!(a.evicted.is_empty());
        }
        let a = log.append(entry(3, 10), &b);
        assert_eq!((a.offset, a.evicted), (3, 0..1));
        let ring = log.read();
        assert_eq!((ring.first(), ring.tail()), (1, 4));
        assert_eq!(ring.get(0).map(|e| e.seq), None);
        assert_eq!(ring.get(1).map(|e| e.seq), Some(1));
        assert_eq!(ring.get(4).map(|e| e.seq), None);
    }

    #[test]
    fn bytes_bound_the_log_but_the_newest_message_stays() {
        let log = Log::default();
        let b = bounds(100, 25);
        log.append(entry(0, 10), &b);
        log.append(entry(1, 10), &b);
        let a = log.append(entry(2, 10), &b);
        assert_eq!(a.evicted, 0..1);
        let a = log.append(entry(3, 100), &b);
        assert_eq!(a.evicted, 1..3);
        let ring = log.read();
        assert_eq!((ring.first(), ring.tail()), (3, 4));
    }

    #[test]
    fn what_every_subscriber_took_is_dropped_without_counting_as_lost() {
        let log = Log::default();
        let b = bounds(3, 1 << 20);
        for seq in 0..3 {
            log.append(entry(seq, 10), &b);
        }
        log.taken_before(2);
        let a = log.append(entry(3, 10), &b);
        assert!(a.evicted.is_empty(), "{:?}", a.evicted);
        let ring = log.read();
        assert_eq!((ring.first(), ring.tail()), (2, 4));
        assert_eq!(ring.pending_for(2, 7), (2, 20));
    }

    #[test]
    fn a_members_own_messages_are_not_pending_for_it() {
        let log = Log::default();
        let b = bounds(10, 1 << 20);
        log.append(entry(0, 5), &b);
        log.append(
            Entry {
                except: Some(7),
                ..entry(1, 5)
            },
            &b,
        );
        assert_eq!(log.read().pending_for(0, 7), (1, 5));
        assert_eq!(log.read().pending_for(0, 8), (2, 10));
    }
}
