//! The signal a socket watches for a graceful shutdown: a leaf module (std and tokio only), so
//! the dependencies run one way: [`Shutdown`](crate::Shutdown) → upgrade → socket → here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Context;

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A shutdown signal and the count of sockets watching it.
#[derive(Default)]
pub(crate) struct Signal {
    token: CancellationToken,
    /// Sockets holding a [`Watch`].
    live: AtomicUsize,
    /// Notified when `live` drops to zero.
    idle: Notify,
}

impl Signal {
    /// Starts the shutdown: every watch fires.
    pub(crate) fn fire(&self) {
        self.token.cancel();
    }

    /// Whether [`fire`](Self::fire) was called.
    pub(crate) fn is_fired(&self) -> bool {
        self.token.is_cancelled()
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
            fired: false,
            inner: Arc::clone(self),
        }
    }
}

/// One socket's view of a [`Shutdown`]: the signal, and its place in the open-socket count.
pub(crate) struct Watch {
    signal: Pin<Box<WaitForCancellationFutureOwned>>,
    fired: bool,
    inner: Arc<Signal>,
}

impl Watch {
    /// Whether the shutdown has started: one atomic load, no waker registration.
    pub(crate) fn fired(&mut self) -> bool {
        if !self.fired {
            self.fired = self.inner.token.is_cancelled();
        }
        self.fired
    }

    /// Whether the shutdown has started; registers the task to be woken when it does.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.fired {
            self.fired = self.signal.as_mut().poll(cx).is_ready();
        }
        self.fired
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
            .field("fired", &self.fired)
            .finish_non_exhaustive()
    }
}
