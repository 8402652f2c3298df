//! Waker fan-out: the connection is always polled with a waker that wakes every task waiting
//! on the socket, whichever of them is polling it now.
//!
//! A connection keeps one waker per direction, and a socket's reader writes (pongs, queued
//! messages) while its writer may read (a close waiting for the reply). Shared between two tasks
//! (the crate's `split`, `futures_util::StreamExt::split`, an `Arc<Mutex<_>>`), polling the IO
//! with the current task's waker would let one task take the other's wake-up. So the IO and
//! timers only ever see the fan-out waker, and each side's task is registered in its own slot.
//!
//! A task is registered only when its poll returns `Pending` (a `Ready` poll owes no wake-up),
//! so the common path costs one atomic load. A wake-up that lands between the poll and the
//! registration is caught by a counter of wake-ups, checked after registering.
//!
//! A socket attached to a hub has a third waiter: the hub's drain, which writes published
//! messages for the socket whatever its tasks are doing. It registers like a side, and is woken
//! by the same events (the IO taking bytes again, the close timer), so neither the drain nor
//! the application's tasks can take the other's wake-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

#[derive(Default)]
struct Slots {
    /// The task receiving messages.
    read: AtomicWaker,
    /// The task sending messages (ready, flush, close).
    write: AtomicWaker,
    /// The drain writing deliveries (a socket attached to a hub), when it waits.
    drain: AtomicWaker,
    /// Wake-ups so far.
    wakes: AtomicUsize,
}

impl Wake for Slots {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        self.read.wake();
        self.write.wake();
        self.drain.wake();
    }
}

/// Which task a poll is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    Read,
    Write,
    /// The drain of the hub the socket is attached to.
    Drain,
}

/// The registered wakers and the waker that wakes them all.
#[derive(Clone)]
pub(super) struct Fanout {
    slots: Arc<Slots>,
    waker: Waker,
}

impl Fanout {
    pub(super) fn new() -> Self {
        let slots = Arc::new(Slots::default());
        Self {
            waker: Waker::from(slots.clone()),
            slots,
        }
    }

    /// Runs `poll` with the fan-out waker; if it returns `Pending`, registers the calling task
    /// for `side`.
    #[inline]
    pub(super) fn poll<T>(
        &self,
        side: Side,
        cx: &Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let seen = self.slots.wakes.load(SeqCst);
        let result = poll(&mut Context::from_waker(&self.waker));
        if result.is_pending() {
            self.slot(side).register(cx.waker());
            // Woken after the poll but before the registration: that wake-up found no one.
            if self.slots.wakes.load(SeqCst) != seen {
                cx.waker().wake_by_ref();
            }
        }
        result
    }

    /// As [`poll`](Self::poll), for a caller whose poll may run twice (the drain's): no
    /// counter is read before polling (a drive that completes touches nothing here); a poll
    /// that returns `Pending` registers the calling task, then polls again, which sees
    /// whatever a wake-up before the registration announced.
    #[inline]
    pub(super) fn poll_twice<T>(
        &self,
        side: Side,
        cx: &Context<'_>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut fanout = Context::from_waker(&self.waker);
        if let Poll::Ready(done) = poll(&mut fanout) {
            return Poll::Ready(done);
        }
        self.slot(side).register(cx.waker());
        poll(&mut fanout)
    }

    fn slot(&self, side: Side) -> &AtomicWaker {
        match side {
            Side::Read => &self.slots.read,
            Side::Write => &self.slots.write,
            Side::Drain => &self.slots.drain,
        }
    }

    /// Wakes the task of the other side than `side` (the drain's writes wake a sender waiting
    /// for room or for its flush; a receiver is woken by the events it waits for).
    pub(super) fn wake_other(&self, side: Side) {
        match side {
            Side::Read => self.slots.write.wake(),
            Side::Write => self.slots.read.wake(),
            Side::Drain => self.slots.write.wake(),
        }
    }

    /// The waker that wakes both tasks, for those outside the socket that make work for it
    /// (a hub queuing a published message).
    pub(super) fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Wakes both tasks, so each polls again and sees what changed.
    pub(super) fn wake_all(&self) {
        self.waker.wake_by_ref();
    }
}
