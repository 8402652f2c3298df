//! Where a socket keeps its connection (the IO and the engine's state): owned by the socket, or,
//! once the socket is attached to a hub, shared with the hub's drain behind a lock.
//!
//! A socket of its own pays nothing for this: its state is a box it alone reaches. Attaching
//! moves that state behind a mutex (once), so that the drain can write what is published to
//! the socket whatever the application does with it (reads, sends, awaits something else). The
//! lock is held only inside a poll, never across an await, by the application's calls and by the
//! drain alike: one writer at a time, in the order they come.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

use super::core::Core;
use super::outbox::Writer;
use super::wake::{Fanout, Side};

/// The IO and the engine over it: the engine first (`repr(C)`), so that the lock, the
/// outbox and the connection's state share a cache line.
#[repr(C)]
pub(super) struct Parts<S> {
    pub(super) core: Core,
    pub(super) io: S,
}

/// A socket's connection: its own, or shared with a hub's drain.
pub(super) enum Conn<S> {
    /// Boxed: the socket stays small wherever the application keeps it, and attaching moves
    /// a pointer's worth out of it.
    Own(Box<Parts<S>>),
    Shared(Arc<Shared<S>>),
    /// Only while [`share`](Conn::share) moves the state (nothing can observe it).
    Moving,
}

/// A connection shared with a hub's drain (the lock and the connection first: see [`Parts`]).
#[repr(C)]
pub(super) struct Shared<S> {
    parts: Mutex<Parts<S>>,
    /// The socket's waker fan-out, in which the drain registers as a third waiter.
    #[allow(dead_code)] // Driven by a hub's drain (feature "hub") only.
    wake: Fanout,
}

impl<S> Conn<S> {
    pub(super) fn new(io: S, core: Core) -> Self {
        Self::Own(Box::new(Parts { io, core }))
    }

    /// The connection, locked if it is shared.
    #[inline]
    pub(super) fn lock(&mut self) -> PartsMut<'_, S> {
        match self {
            Self::Own(parts) => PartsMut::Own(parts),
            Self::Shared(shared) => PartsMut::Locked(shared.lock()),
            Self::Moving => unreachable!("a socket's state is only moved inside `share`"),
        }
    }

    /// The connection, for reading, locked if it is shared.
    pub(super) fn get(&self) -> PartsRef<'_, S> {
        match self {
            Self::Own(parts) => PartsRef::Own(parts),
            Self::Shared(shared) => PartsRef::Locked(shared.lock()),
            Self::Moving => unreachable!("a socket's state is only moved inside `share`"),
        }
    }

    /// Shares the connection (once) with whoever writes for the socket, waking through `wake`;
    /// returns the handle the writer drives it with.
    pub(super) fn share(&mut self, wake: &Fanout) -> Weak<dyn Writer>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = match std::mem::replace(self, Self::Moving) {
            Self::Own(parts) => Arc::new(Shared {
                parts: Mutex::new(*parts),
                wake: wake.clone(),
            }),
            Self::Shared(shared) => shared,
            Self::Moving => unreachable!("a socket's state is only moved inside `share`"),
        };
        let writer = Arc::downgrade(&shared);
        *self = Self::Shared(shared);
        writer
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Parts<S>> {
        // A panic while holding the lock can only come from the IO type itself; the engine's
        // state stays consistent between polls, so keep going with it.
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<S> Writer for Shared<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_drive(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut parts = self.lock();
        let Parts { io, core } = &mut *parts;
        let queued = core.write.len();
        let driven = self.wake.poll_twice(Side::Drain, cx, |cx| {
            let driven = core.poll_drain(io, cx);
            if core.wake_both {
                // The drain queued a close or gave up on the peer: the application's tasks
                // must see it (`cx` wakes every waiter).
                core.wake_both = false;
                cx.waker().wake_by_ref();
            }
            driven
        });
        if core.write.len() < queued {
            // Room again, or everything flushed: a sender waiting for it goes on.
            self.wake.wake_other(Side::Drain);
        }
        driven
    }
}

/// The connection, mutably: the socket's own, or the shared one, locked.
pub(super) enum PartsMut<'a, S> {
    Own(&'a mut Parts<S>),
    Locked(MutexGuard<'a, Parts<S>>),
}

impl<S> Deref for PartsMut<'_, S> {
    type Target = Parts<S>;

    #[inline]
    fn deref(&self) -> &Parts<S> {
        match self {
            Self::Own(parts) => parts,
            Self::Locked(guard) => guard,
        }
    }
}

impl<S> DerefMut for PartsMut<'_, S> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Parts<S> {
        match self {
            Self::Own(parts) => parts,
            Self::Locked(guard) => guard,
        }
    }
}

/// The connection, for reading: the socket's own, or the shared one, locked.
pub(super) enum PartsRef<'a, S> {
    Own(&'a Parts<S>),
    Locked(MutexGuard<'a, Parts<S>>),
}

impl<S> Deref for PartsRef<'_, S> {
    type Target = Parts<S>;

    #[inline]
    fn deref(&self) -> &Parts<S> {
        match self {
            Self::Own(parts) => parts,
            Self::Locked(guard) => guard,
        }
    }
}

/// The connection's IO, borrowed from a socket (locked while it is shared).
pub(super) struct IoRef<'a, S>(pub(super) PartsRef<'a, S>);

impl<S> Deref for IoRef<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0.io
    }
}

/// The connection's IO, borrowed mutably from a socket (locked while it is shared).
pub(super) struct IoMut<'a, S>(pub(super) PartsMut<'a, S>);

impl<S> Deref for IoMut<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0.io
    }
}

impl<S> DerefMut for IoMut<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0.io
    }
}
