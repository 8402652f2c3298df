//! The seam through which something outside the socket hands it messages to write: the socket
//! owns these traits and the hub implements them, so the dependency runs one way (hub →
//! socket), and the socket knows nothing of topics, mailboxes or prepared messages.
//!
//! An [`Outbox`] is attached to a socket with a [`Link`]: the socket's [`Writer`], which its
//! owner drives to have what waits written without the application (a hub's drain), and the
//! socket's waker, for owners that have no drain. Whoever drives the socket (the drain, or the
//! application's own calls) has the outbox write what waits into the write queue through
//! [`Frames`], while the queue has room. The socket holds the outbox as [`Attached`]: the
//! outbox itself, and a guard it drops (which is how the owner learns that the socket ended)
//! when the connection ends or the outbox asks for the socket to be closed.

use std::any::Any;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::message::CloseCode;

/// Messages waiting for one socket, written by the socket into its own write queue.
///
/// `pub` in a crate-private module (as [`Frames`] and [`Encoding`], which it uses): it appears
/// in the sealed trait that attaches sockets to a hub.
#[allow(unreachable_pub)]
pub trait Outbox: Send + Sync {
    /// A hint, read without locking: whether something may wait (messages, or a close).
    fn may_have_pending(&self) -> bool;

    /// Writes what waits into `frames` while [`Frames::room`] allows (at least one message
    /// into an empty queue). `Err(code)`: the socket is to be closed with `code` (its peer is
    /// too slow); nothing was written.
    fn deliver(&self, frames: &mut dyn Frames) -> Result<(), CloseCode>;
}

/// An outbox as a socket holds it: the outbox (shared with its owner, and reached without a
/// box of its own on every write), and a guard the socket drops when it is done with the
/// outbox, which is how the owner learns that the socket ended.
#[allow(unreachable_pub, dead_code)] // Made by the hub (feature "hub") only.
pub struct Attached {
    pub outbox: Arc<dyn Outbox>,
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").finish_non_exhaustive()
    }
}

/// What an outbox's owner gets when the socket is attached.
#[allow(unreachable_pub, dead_code)] // Made by the socket, read by the hub (feature "hub").
pub struct Link {
    /// Wakes the socket's tasks (the application's), for an owner without a drain.
    pub waker: Waker,
    /// The socket's write side, shared with the owner's drain. Weak: the socket's life is the
    /// application's to decide.
    pub writer: Weak<dyn Writer>,
}

/// A socket's write side, as an outbox's owner drives it without the application: the
/// socket's connection behind a lock that the application's own calls take too, so there is
/// one writer at a time, and what the application sends after a delivery goes out after it.
#[allow(unreachable_pub, dead_code)] // Driven by a hub's drain (feature "hub") only.
pub trait Writer: Send + Sync {
    /// Has the outbox write what waits, writes out what is queued, and ends a connection whose
    /// close deadline passed, as far as the connection allows now. `Ready`: nothing is left
    /// to do (everything written, or the connection is over). `Pending`: `cx`'s waker is woken
    /// when the connection can take more or a deadline is due.
    fn poll_drive(&self, cx: &mut Context<'_>) -> Poll<()>;
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("attached", &(self.writer.strong_count() > 0))
            .finish_non_exhaustive()
    }
}

/// How a connection sends a data message: the frame every such connection shares, or one
/// encoded for it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(unreachable_pub, dead_code)] // Made by the socket, read by the hub (feature "hub").
pub enum Encoding {
    /// The shared unmasked frame, uncompressed (a server that does not compress this message).
    Shared,
    /// The shared frame compressed with these settings, without context (a server that
    /// compresses without context takeover).
    #[cfg(feature = "deflate")]
    SharedCompressed { level: u32, bits: u8 },
    /// Encoded by this connection (a client masks each frame; compression with context
    /// takeover depends on what this connection sent before).
    Own { compress: bool },
}

/// A socket's write queue, as an [`Outbox`] writes into it.
#[allow(unreachable_pub, dead_code)] // Called by the hub (feature "hub") only.
pub trait Frames {
    /// How many payload bytes may still be queued before the queue is full: `None` when it is
    /// (nothing more now, until it drains).
    fn room(&self) -> Option<usize>;

    /// How this connection sends a data message of `len` payload bytes.
    fn encoding(&mut self, len: usize) -> Encoding;

    /// Queues a frame ready to go out as it is.
    fn push_frame(&mut self, frame: &Bytes);

    /// Encodes and queues a data message (text or binary) for this connection alone.
    fn encode(&mut self, text: bool, payload: &Bytes, compress: bool);
}
