//! The drain: writes what is published into the subscribers' sockets, with no task per
//! subscriber and whatever their applications are doing.
//!
//! A hub has a few shards (one per core by default); each subscriber belongs to one. A publish
//! appends the message to its target's log, then marks the subscribers "dirty" (those not
//! already marked, and not waiting for their socket to take more): it puts them on their
//! shard's list (one lock per shard per publish) and wakes the shard's drain task if the list
//! was empty, so a burst of publishes wakes each shard once. The drain takes the whole list and
//! drives each subscriber's socket: under the socket's lock, it has what the subscriber's logs
//! hold past its positions written into the socket's write queue and writes it out with one
//! (vectored) write. A socket that cannot take everything now keeps the rest where it is and
//! registers the subscriber's drain waker with the socket, which puts it back on the list when
//! the connection takes bytes again (or its close deadline comes).
//!
//! Outside a runtime (a publish from a plain thread before any drain runs), the subscribers'
//! own tasks are woken instead, and the sockets write what waits for them when polled.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};

use tokio::sync::Notify;

use super::mailbox::Mailbox;

/// How many sockets a drain drives before letting the worker run other tasks.
const DRIVES_PER_TURN: usize = 64;

/// One drain: a list of dirty subscribers and the task that drives them.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    dirty: Mutex<Vec<Arc<Mailbox>>>,
    /// Whether a drain task runs for this shard (on some runtime).
    running: AtomicBool,
    /// The hub is gone: the task ends once the list is empty.
    closed: AtomicBool,
    notify: Notify,
}

impl Shard {
    fn list(&self) -> MutexGuard<'_, Vec<Arc<Mailbox>>> {
        // Every update of the list is a single push, extend or swap: consistent after a panic.
        self.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds subscribers just marked dirty (each one once: see [`Mailbox::mark_dirty`]), and
    /// has them driven.
    pub(crate) fn enqueue(self: &Arc<Self>, mailboxes: impl IntoIterator<Item = Arc<Mailbox>>) {
        let was_empty = {
            let mut list = self.list();
            let was_empty = list.is_empty();
            list.extend(mailboxes);
            was_empty
        };
        // A non-empty list was seen by a drain that will take it, unless no drain runs.
        if was_empty || !self.running.load(SeqCst) {
            self.kick();
        }
    }

    /// Wakes the drain, starting one on the current runtime if none runs; outside a runtime,
    /// wakes the subscribers' own tasks instead.
    fn kick(self: &Arc<Self>) {
        if self.running.load(SeqCst) {
            self.notify.notify_one();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let list = std::mem::take(&mut *self.list());
            for mailbox in list {
                mailbox.wake_socket();
            }
            return;
        };
        if self
            .running
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_ok()
        {
            runtime.spawn(run(self.clone()));
        } else {
            self.notify.notify_one();
        }
    }

    /// The hub is gone: its drains end.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.notify.notify_one();
    }
}

/// Marks the shard's drain as gone when its task ends (or its runtime drops it), so that the
/// next publish starts another.
struct Running(Arc<Shard>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, SeqCst);
    }
}

/// A shard's drain task.
async fn run(shard: Arc<Shard>) {
    let shard = Running(shard);
    let mut batch = Vec::new();
    loop {
        std::mem::swap(&mut batch, &mut *shard.0.list());
        if batch.is_empty() {
            if shard.0.closed.load(SeqCst) {
                return;
            }
            shard.0.notify.notified().await;
            continue;
        }
        for (i, mailbox) in batch.drain(..).enumerate() {
            mailbox.drive();
            if i % DRIVES_PER_TURN == DRIVES_PER_TURN - 1 {
                tokio::task::yield_now().await;
            }
        }
        // Let the publishers (and everything else on this worker) run between rounds.
        tokio::task::yield_now().await;
    }
}

/// The waker a subscriber's socket wakes when the drain must come back to it (the connection
/// takes bytes again, its close deadline came): puts the subscriber back on its shard's list.
pub(crate) struct DrainWaker {
    pub(crate) mailbox: Weak<Mailbox>,
}

impl DrainWaker {
    pub(crate) fn waker(mailbox: Weak<Mailbox>) -> Waker {
        Waker::from(Arc::new(Self { mailbox }))
    }
}

impl Wake for DrainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(mailbox) = self.mailbox.upgrade() {
            mailbox.unblock();
            if mailbox.mark_dirty() {
                let shard = mailbox.shard().clone();
                shard.enqueue([mailbox]);
            }
        }
    }
}
