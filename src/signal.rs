//! The signal a socket watches for a graceful shutdown: a leaf module (std and tokio only), so
//! the dependencies run one way: [`Shutdown`](crate::Shutdown) → upgrade → socket → here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Waker};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A shutdown signal and the count of sockets watching it.
#[derive(Default)]
pub(crate) struct Signal {
    token: CancellationToken,
    /// Set by [`fire`](Self::fire) before the token is cancelled: what a socket checks on each
    /// poll, one atomic load (the token's own check takes a lock every socket shares).
    fired: AtomicBool,
    /// Sockets holding a [`Watch`].
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    idle: Notify,
}

impl Signal {
    /// Starts the shutdown: every watch fires.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether [`fire`](Self::fire) was called.
    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Resolves once [`fire`](Self::fire) is called.
    pub(crate) async fn fired(&self) {
        self.token.cancelled().await;
    }

    /// Sockets still watching.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Notified when the last watch is dropped (create it before checking [`live`](Self::live)).
    pub(crate) fn idle(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }

    /// A watch for one socket, counted until it is dropped.
    pub(crate) fn watch(self: &Arc<Self>) -> Watch {
        self.live.fetch_add(1, Ordering::AcqRel);
        Watch {
            signal: Box::pin(self.token.clone().cancelled_owned()),
            registered: None,
            inner: Arc::clone(self),
        }
    }
}

/// One socket's view of a [`Shutdown`]: the signal, and its place in the open-socket count.
pub(crate) struct Watch {
    signal: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `signal` will wake: polling it again with the same one is skipped, since each
    /// poll locks the waiter list every socket shares (a socket is always polled with its own
    /// waker fan-out, so this registers once per socket).
    registered: Option<Waker>,
    inner: Arc<Signal>,
}

impl Watch {
    /// Whether the shutdown has started: one atomic load, no waker registration.
    pub(crate) fn fired(&self) -> bool {
        self.inner.is_fired()
    }

    /// Whether the shutdown has started; registers the task to be woken when it does.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.fired() {
            return true;
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            // `fire` wakes this waker after setting the flag checked above.
            return false;
        }
        if self.signal.as_mut().poll(cx).is_ready() {
            return true;
        }
        self.registered = Some(cx.waker().clone());
        false
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.inner.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("fired", &self.fired())
            .finish_non_exhaustive()
    }
}
