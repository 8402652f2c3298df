//! The connection's lifecycle as one state: the close handshake (RFC 6455 §5.5.1, §7), failing
//! the connection on a violation (§7.1.7), and the end of the stream.
//!
//! [`State`] decides; the socket acts. Each event (our close, the peer's close, a violation,
//! the IO shut down, the stream ended) is a method that moves the state and says what to queue:
//! a [`CloseReply`], or nothing. The queries say what is still allowed (sending, reading),
//! whether the close timer must run, and when the connection is done.

use crate::error::ErrorKind;
use crate::message::{CloseCode, CloseFrame, Message};

/// A close frame the socket must queue: with this code (and no reason), or empty for `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseReply(pub(crate) Option<CloseCode>);

impl CloseReply {
    /// The frame to queue.
    pub(crate) fn frame(self) -> Option<CloseFrame> {
        self.0.map(|code| CloseFrame::new(code, ""))
    }
}

/// Where the connection is in its lifecycle.
#[derive(Debug, Default)]
pub(crate) enum State {
    /// No close frame either way: messages flow in both directions.
    #[default]
    Open,
    /// Our close frame is queued (by the application, `close()`, a graceful shutdown); the
    /// peer's has not arrived. We send nothing more; the peer may still send data.
    ClosedByUs,
    /// The peer's close frame arrived, and ours is queued (our earlier close, or the reply).
    /// Nothing more is read or sent; the IO is shut down, then the application gets the peer's
    /// close, then the stream ends.
    CloseReceived {
        /// The peer's close, for the application once our reply is written.
        /// Boxed: it is rare, and the state sits in every connection.
        close: Option<Box<Message>>,
        /// The IO was shut down.
        shut_down: bool,
    },
    /// The peer broke the protocol (or keepalive timed out): our close frame is queued (with
    /// the violation's code, unless ours went earlier); the stream reports the violation once
    /// it is written.
    Failed(ErrorKind),
    /// The stream has ended (returned `None` or an error); what happened before is kept for
    /// the rules that still apply (a shutdown error after a completed handshake is no error).
    Ended {
        /// A close frame of ours was queued.
        close_sent: bool,
        /// The peer's close frame arrived.
        close_received: bool,
        /// The IO was shut down.
        shut_down: bool,
    },
}

impl State {
    /// Whether the connection is plainly open: the application may send, and a message
    /// already read is handed out without any close bookkeeping.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    /// Whether the peer's frames are still read: until its close arrives or the connection
    /// fails (RFC 6455 §5.5.1: after sending a close, an endpoint still reads until it
    /// receives one).
    pub(crate) fn can_read(&self) -> bool {
        matches!(self, Self::Open | Self::ClosedByUs)
    }

    /// Whether a close frame of ours was queued, by any path. From then on the close timer
    /// runs and keepalive stops; pings are no longer answered.
    #[inline]
    pub(crate) fn close_queued(&self) -> bool {
        match self {
            Self::Open => false,
            Self::ClosedByUs | Self::CloseReceived { .. } | Self::Failed(_) => true,
            Self::Ended { close_sent, .. } => *close_sent,
        }
    }

    /// Whether the peer's close frame arrived.
    pub(crate) fn close_received(&self) -> bool {
        match self {
            Self::CloseReceived { .. } => true,
            Self::Ended { close_received, .. } => *close_received,
            Self::Open | Self::ClosedByUs | Self::Failed(_) => false,
        }
    }

    /// The violation to report once our close frame is written.
    pub(crate) fn failure(&self) -> Option<ErrorKind> {
        match self {
            Self::Failed(kind) => Some(*kind),
            _ => None,
        }
    }

    /// Whether the stream has ended: it yields `None` from here on.
    #[inline]
    pub(crate) fn is_ended(&self) -> bool {
        matches!(self, Self::Ended { .. })
    }

    /// Whether the IO was shut down.
    pub(crate) fn is_shut_down(&self) -> bool {
        match self {
            Self::CloseReceived { shut_down, .. } | Self::Ended { shut_down, .. } => *shut_down,
            Self::Open | Self::ClosedByUs | Self::Failed(_) => false,
        }
    }

    /// The application (or the socket on its behalf: `close()`, a graceful shutdown) queues a
    /// close frame.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] once a close frame went either way or the stream ended: a second
    /// close frame is never sent (RFC 6455 §5.5.1). The state is left as it was.
    pub(crate) fn close(&mut self) -> Result<(), ErrorKind> {
        match self {
            Self::Open => {
                *self = Self::ClosedByUs;
                Ok(())
            }
            _ => Err(ErrorKind::Closed),
        }
    }

    /// The peer's close frame arrived (`frame`: its code and reason, `None` for an empty one).
    /// Returns the reply to queue, if one is owed.
    pub(crate) fn receive_close(&mut self, frame: Option<CloseFrame>) -> Option<CloseReply> {
        let reply = match self {
            // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
            // send a Close frame, the endpoint MUST send a Close frame in response", typically
            // echoing the status code it received; an empty close (1005, §7.1.5) gets an empty
            // one.
            Self::Open => Some(CloseReply(frame.as_ref().map(|f| f.code))),
            // RFC 6455 §5.5.1: our close went first; the handshake is complete.
            Self::ClosedByUs => None,
            // Nothing is read after a violation or the end.
            Self::CloseReceived { .. } | Self::Failed(_) | Self::Ended { .. } => return None,
        };
        *self = Self::CloseReceived {
            close: Some(Box::new(Message::Close(frame))),
            shut_down: false,
        };
        reply
    }

    /// The peer's close, handed out once (after our reply is written).
    pub(crate) fn take_close(&mut self) -> Option<Message> {
        match self {
            Self::CloseReceived { close, .. } => close.take().map(|msg| *msg),
            _ => None,
        }
    }

    /// The peer broke the protocol (or keepalive timed out): the connection fails with `kind`.
    /// Returns the close frame to queue, if one is owed.
    pub(crate) fn fail(&mut self, kind: ErrorKind) -> Option<CloseReply> {
        let reply = match self {
            // RFC 6455 §7.1.7: to fail the connection, send a close frame with the
            // violation's code (§7.4.1), then close the connection.
            Self::Open => Some(CloseReply(kind.close_code())),
            // Our close is already queued and a second is never sent: its code stands; the
            // violation is still what the stream reports.
            Self::ClosedByUs => None,
            // Nothing is read after the peer's close, a first violation or the end.
            Self::CloseReceived { .. } | Self::Failed(_) | Self::Ended { .. } => return None,
        };
        *self = Self::Failed(kind);
        reply
    }

    /// The IO was shut down (or given up on). Nothing more can be read or written, so the
    /// connection is over, except that the peer's close is still handed out.
    pub(crate) fn shut_down(&mut self) {
        match self {
            Self::CloseReceived { shut_down, .. } | Self::Ended { shut_down, .. } => {
                *shut_down = true;
            }
            Self::Open | Self::ClosedByUs | Self::Failed(_) => {
                *self = Self::Ended {
                    close_sent: self.close_queued(),
                    close_received: false,
                    shut_down: true,
                };
            }
        }
    }

    /// The stream ends: it has returned, or is about to return, `None` or an error.
    pub(crate) fn end(&mut self) {
        *self = Self::Ended {
            close_sent: self.close_queued(),
            close_received: self.close_received(),
            shut_down: self.is_shut_down(),
        };
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::proto::encoder::{Encoder, FixedKeys};
    use crate::proto::{Decoder, Limits, Role};
    use crate::write_buf::WriteBuf;

    fn frame(code: CloseCode, reason: &str) -> Option<CloseFrame> {
        Some(CloseFrame::new(code, reason))
    }

    /// The close handshake on the wire, server side: the peer's masked bytes are decoded, the
    /// state decides the reply, and the encoder writes it.
    fn server_reply_to(state: &mut State, wire: &[u8]) -> Vec<u8> {
        let limits = Limits {
            max_frame_size: 1 << 16,
            max_message_size: 1 << 16,
        };
        let mut decoder = Decoder::new(Role::Server, limits, false);
        let mut encoder = Encoder::<FixedKeys>::new(None);
        let mut out = WriteBuf::default();
        let mut buf = BytesMut::from(wire);
        match decoder.decode(&mut buf) {
            Ok(Some(Message::Close(f))) => {
                if let Some(reply) = state.receive_close(f) {
                    encoder.close(reply.frame().as_ref(), &mut out).unwrap();
                }
            }
            Ok(other) => panic!("not a close: {other:?}"),
            Err(kind) => {
                if let Some(reply) = state.fail(kind) {
                    encoder.close(reply.frame().as_ref(), &mut out).unwrap();
                }
            }
        }
        out.to_vec()
    }

    #[test]
    fn a_peer_close_is_echoed_with_its_code_on_the_wire() {
        // Masked close, key 0, code 1001 "bye".
        let wire = [0x88, 0x85, 0, 0, 0, 0, 0x03, 0xe9, b'b', b'y', b'e'];
        let mut state = State::Open;
        // RFC 6455 §5.5.1: the reply echoes the status code (an unmasked server frame).
        assert_eq!(server_reply_to(&mut state, &wire), [0x88, 0x02, 0x03, 0xe9]);
        assert!(state.close_received() && state.close_queued());
        assert_eq!(
            state.take_close(),
            Some(Message::Close(frame(CloseCode::AWAY, "bye")))
        );
    }

    #[test]
    fn an_empty_peer_close_gets_an_empty_close() {
        // RFC 6455 §7.1.5: no status code is 1005, which is never sent (§7.4.1): the reply is
        // empty too.
        let wire = [0x88, 0x80, 1, 2, 3, 4];
        let mut state = State::Open;
        assert_eq!(server_reply_to(&mut state, &wire), [0x88, 0x00]);
        assert_eq!(state.take_close(), Some(Message::Close(None)));
    }

    #[test]
    fn a_bad_close_payload_fails_with_1002() {
        // RFC 6455 §5.5.1: a one-byte close body has no room for a status code.
        let wire = [0x88, 0x81, 0, 0, 0, 0, 0x03];
        let mut state = State::Open;
        assert_eq!(server_reply_to(&mut state, &wire), [0x88, 0x02, 0x03, 0xea]);
        assert_eq!(state.failure(), Some(ErrorKind::BadClosePayload));
    }

    #[test]
    fn the_peer_close_after_ours_completes_the_handshake_without_a_second_close() {
        let mut state = State::Open;
        assert_eq!(state.close(), Ok(()));
        // RFC 6455 §5.5.1: our close went first; nothing more is sent.
        let wire = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
        assert!(server_reply_to(&mut state, &wire).is_empty());
        assert!(state.close_received());
        assert_eq!(
            state.take_close(),
            Some(Message::Close(frame(CloseCode::NORMAL, "")))
        );
    }

    #[test]
    fn the_peer_close_is_handed_out_once_then_the_stream_ends() {
        let mut state = State::Open;
        state.receive_close(frame(CloseCode::NORMAL, "bye"));
        state.shut_down();
        assert!(state.is_shut_down() && !state.is_ended());
        assert!(state.take_close().is_some());
        assert_eq!(state.take_close(), None);
        state.end();
        assert!(state.is_ended() && state.is_shut_down() && state.close_received());
    }

    #[test]
    fn a_violation_closes_with_its_code_and_is_reported() {
        // RFC 6455 §7.1.7 and §7.4.1: 1007 for invalid UTF-8, 1009 for too big, 1002 for
        // protocol errors; keepalive (our policy) closes with 1008.
        for (kind, code) in [
            (ErrorKind::InvalidUtf8, 1007),
            (ErrorKind::MessageTooLarge, 1009),
            (ErrorKind::ReservedBits, 1002),
            (ErrorKind::KeepaliveTimeout, 1008),
        ] {
            let mut state = State::Open;
            assert_eq!(
                state.fail(kind),
                Some(CloseReply(Some(CloseCode::from(code))))
            );
            assert_eq!(state.failure(), Some(kind));
            assert!(state.close_queued() && !state.can_read() && !state.is_open());
        }
    }

    #[test]
    fn our_earlier_close_wins_over_a_later_violation() {
        let mut state = State::Open;
        state.close().unwrap();
        // One close frame per connection (RFC 6455 §5.5.1): the violation sends none.
        assert_eq!(state.fail(ErrorKind::InvalidUtf8), None);
        assert_eq!(state.failure(), Some(ErrorKind::InvalidUtf8));
    }

    #[test]
    fn the_first_close_wins_whoever_sends_it() {
        // The peer's close first: the application may not close any more.
        let mut state = State::Open;
        assert!(state.receive_close(frame(CloseCode::AWAY, "")).is_some());
        assert_eq!(state.close(), Err(ErrorKind::Closed));
        assert_eq!(state.fail(ErrorKind::InvalidUtf8), None);
        assert_eq!(state.failure(), None);
        // A violation first: the peer's close that follows is not read, not answered.
        let mut state = State::Open;
        state.fail(ErrorKind::ReservedOpcode);
        assert_eq!(state.receive_close(frame(CloseCode::NORMAL, "")), None);
        assert_eq!(state.failure(), Some(ErrorKind::ReservedOpcode));
        assert_eq!(state.close(), Err(ErrorKind::Closed));
        // Our close first: a second one is refused.
        let mut state = State::Open;
        state.close().unwrap();
        assert_eq!(state.close(), Err(ErrorKind::Closed));
    }

    #[test]
    fn sending_stops_at_the_first_close_and_reading_at_the_peers() {
        let mut state = State::Open;
        assert!(state.is_open() && state.can_read());
        state.close().unwrap();
        // RFC 6455 §5.5.1: after sending a close, no more data frames; the peer's still come.
        assert!(!state.is_open() && state.can_read());
        state.receive_close(None);
        assert!(!state.is_open() && !state.can_read());
    }

    #[test]
    fn once_a_close_is_queued_by_any_path_the_close_timer_runs() {
        let mut by_us = State::Open;
        by_us.close().unwrap();
        let mut by_peer = State::Open;
        by_peer.receive_close(None);
        let mut failed = State::Open;
        failed.fail(ErrorKind::KeepaliveTimeout);
        for state in [&by_us, &by_peer, &failed] {
            assert!(state.close_queued(), "{state:?}");
        }
        assert!(!State::Open.close_queued());
    }

    #[test]
    fn an_ended_stream_remembers_the_handshake() {
        // Ended while open (a reset, EOF): no close either way.
        let mut state = State::Open;
        state.end();
        assert!(state.is_ended() && !state.close_queued() && !state.close_received());
        assert!(!state.is_shut_down());
        assert_eq!(state.close(), Err(ErrorKind::Closed));
        state.shut_down();
        assert!(state.is_shut_down());
        // Ended after our close timed out.
        let mut state = State::Open;
        state.close().unwrap();
        state.end();
        state.shut_down();
        assert!(state.is_ended() && state.close_queued() && !state.close_received());
    }

    #[test]
    fn shutting_the_io_down_after_a_failure_ends_the_connection() {
        let mut state = State::Open;
        state.fail(ErrorKind::BadMasking);
        state.shut_down();
        assert!(state.is_ended() && state.is_shut_down() && state.close_queued());
        assert_eq!(state.failure(), None);
    }

    #[test]
    fn a_close_reply_is_a_code_without_a_reason() {
        assert_eq!(
            CloseReply(Some(CloseCode::AWAY)).frame(),
            frame(CloseCode::AWAY, "")
        );
        assert_eq!(CloseReply(None).frame(), None);
    }
}
