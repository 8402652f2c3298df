//! Waker fan-out: the connection is always polled with a waker that wakes every task waiting
//! on the socket, whichever of them is polling it now.
//!
//! A connection keeps one waker per direction, and a socket's reader writes (pongs, queued
//! messages) while its writer may read (a close waiting for the reply). Shared between two tasks
//! (the crate's `split`, `futures_util::StreamExt::split`, an `Arc<Mutex<_>>`), polling the IO
//! with the current task's waker would let one task take the other's wake-up. So each side
//! registers its own waker here, and the IO and timers only ever see the fan-out waker.

use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use futures_util::task::AtomicWaker;

#[derive(Default)]
struct Slots {
    /// The task receiving messages.
    read: AtomicWaker,
    /// The task sending messages (ready, flush, close).
    write: AtomicWaker,
}

impl Wake for Slots {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read.wake();
        self.write.wake();
    }
}

/// The two registered wakers and the waker that wakes both.
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

    /// The waker that wakes both tasks.
    pub(super) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Registers the receiving task; returns the context to poll the connection with.
    pub(super) fn reader(&self, cx: &Context<'_>) -> Context<'_> {
        self.slots.read.register(cx.waker());
        Context::from_waker(&self.waker)
    }

    /// Registers the sending task; returns the context to poll the connection with.
    pub(super) fn writer(&self, cx: &Context<'_>) -> Context<'_> {
        self.slots.write.register(cx.waker());
        Context::from_waker(&self.waker)
    }
}
