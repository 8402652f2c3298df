//! The connection's machinery behind [`WebSocket`](super::WebSocket): the engine (decoder,
//! encoder, close state) driven over the IO, with the buffers and timers, and the rules that
//! bound them (the owed pong, the write high-water mark, the close deadline).

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes};
use tokio::io::{AsyncRead, AsyncWrite};

use super::mask_keys::MaskKeys;
use super::outbox::{Attached, Encoding, Frames};
use super::read_pool::ReadBuf;
use super::timer::{Keepalive, Timers};
use crate::config::SocketConfig;
#[cfg(feature = "deflate")]
use crate::deflate::{Deflater, Inflater};
use crate::error::{Error, ErrorKind};
use crate::handshake::Negotiated;
use crate::message::{CloseCode, CloseFrame, Message};
use crate::proto::{self, Decoded, Decoder, Encoder, Limits, OpCode, Role, State};
use crate::write_buf::{MAX_SLICES, WriteBuf};

/// The most the read buffer grows by at once while a large frame arrives.
const MAX_READ_RESERVE: usize = 1 << 20;
/// The most one read asks for, unless the frame being read is known to need more.
const MAX_READ_AHEAD: usize = 256 << 10;

/// Everything but the IO: protocol state, buffers, timers.
///
/// In the order a write touches them (`repr(C)` keeps it): a hub's drain writing to many
/// sockets in turn reads the first few cache lines of each and none of the rest (the read
/// side comes last).
#[repr(C)]
pub(super) struct Core {
    /// Messages from outside (a hub's) that this socket writes while polled; dropped when the
    /// connection ends. Most sockets have none.
    pub(super) outbox: Option<Attached>,
    /// The close handshake and the end of the stream.
    pub(super) state: State,
    /// A pong for the most recent ping, not yet queued because the write queue was full
    /// (RFC 6455 §5.5.3). Boxed: only a peer that pings without reading makes one.
    pub(super) owed_pong: Option<Box<Bytes>>,
    /// Which end this is.
    pub(super) role: Role,
    /// Something changed that the other half must see (our close was queued): the socket
    /// wakes both halves after this operation.
    pub(super) wake_both: bool,
    /// Bytes waiting to be written (bounded by the socket, see [`WriteBuf`]).
    pub(super) write: WriteBuf,
    /// Messages to frames in `write`: compression and (client role) masking.
    pub(super) encoder: Encoder<MaskKeys>,
    /// Limits, buffer sizes, timeouts.
    pub(super) cfg: SocketConfig,
    /// Keepalive, the close deadline, idle compression release.
    pub(super) timers: Timers,
    /// Graceful shutdown: once it fires, close with 1001 (see `crate::shutdown`).
    pub(super) shutdown: Option<crate::signal::Watch>,
    /// Bytes read and not yet decoded (lent to the thread's pool while empty).
    pub(super) read: ReadBuf,
    /// Bytes to messages: the receive side of the engine.
    pub(super) decoder: Decoder,
}

impl Core {
    /// The state of a connection whose handshake agreed to `negotiated`.
    pub(super) fn new(role: Role, cfg: SocketConfig, negotiated: &Negotiated) -> Self {
        let limits = Limits {
            max_frame_size: cfg.max_frame_size,
            max_message_size: cfg.max_message_size,
        };
        let accept_unmasked = cfg.accept_unmasked_frames;
        #[allow(unused_mut)]
        let mut core = Self {
            role,
            cfg,
            read: ReadBuf::default(),
            decoder: Decoder::new(role, limits, accept_unmasked),
            encoder: Encoder::new((role == Role::Client).then(MaskKeys::new)),
            write: WriteBuf::default(),
            state: State::Open,
            timers: Timers::default(),
            wake_both: false,
            owed_pong: None,
            shutdown: None,
            outbox: None,
        };
        #[cfg(not(feature = "deflate"))]
        let _ = negotiated;
        #[cfg(feature = "deflate")]
        if let Some(agreed) = &negotiated.deflate {
            core.encoder
                .set_deflater(Deflater::new(agreed, role == Role::Server));
            core.decoder
                .set_inflater(Inflater::new(agreed, role == Role::Client));
        }
        core
    }

    /// The stream's next item: a message, an error (terminal), or `None` once the connection
    /// is over. Drives everything the connection does by itself on the way: graceful shutdown,
    /// failing on a violation, the reply to the peer's close, the close deadline, writing out
    /// what is queued before waiting, keepalive.
    pub(super) fn poll_next<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.poll_item::<S, Whole>(io, cx)
    }

    /// [`poll_next`](Self::poll_next) for a reader that streams: the data message asked for
    /// with `Decoder::stream_next` comes in chunks, everything else whole.
    pub(super) fn poll_next_piece<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Decoded, Error>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.poll_item::<S, Pieces>(io, cx)
    }

    /// The loop behind [`poll_next`](Self::poll_next) and
    /// [`poll_next_piece`](Self::poll_next_piece); `K` decodes.
    fn poll_item<S, K: Step>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<K::Item, Error>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // The peer closed TCP: what is buffered is decoded first, then the stream ends.
        let mut read_eof = false;
        loop {
            if self.state.is_ended() {
                self.detach();
                return Poll::Ready(None);
            }
            if !self.state.close_queued() && self.shutdown_started() {
                // RFC 6455 §7.4.1: 1001, the server is going away; queued after what the
                // application already queued, so nothing sent before is lost.
                self.send_close(Some(&CloseFrame::new(
                    CloseCode::AWAY,
                    "server shutting down",
                )));
            }
            if let Some(kind) = self.state.failure() {
                // RFC 6455 §7.1.7: fail the connection: send the close frame, then close TCP.
                let _ = ready!(self.poll_finish(io, cx));
                self.state.end();
                return Poll::Ready(Some(Err(Error::new(kind))));
            }
            if self.state.close_received() {
                // RFC 6455 §5.5.1: reply to a close with a close, then (server) close TCP; the
                // application sees the close only once that is done.
                let finished = ready!(self.poll_finish(io, cx));
                return match self.state.take_close() {
                    Some(msg) => Poll::Ready(Some(Ok(K::whole(msg)))),
                    None => {
                        self.state.end();
                        match finished {
                            Ok(()) => Poll::Ready(None),
                            Err(e) => Poll::Ready(Some(Err(e))),
                        }
                    }
                };
            }
            if self.state.close_queued() && self.close_timed_out(cx) {
                // Our close went out (or was queued) `close_timeout` ago and the peer has not
                // answered: whichever path sent it, give up now.
                return Poll::Ready(Some(Err(self.give_up(io, cx))));
            }

            if let Some(item) = K::decode(self) {
                return Poll::Ready(Some(Ok(item)));
            }
            if !self.state.can_read() {
                continue;
            }

            if read_eof {
                self.state.end();
                return Poll::Ready(Some(Err(ErrorKind::ConnectionReset.into())));
            }
            // About to wait for the peer: write what is queued (pongs, fed messages, published
            // messages) first.
            self.pull_deliveries();
            if self.has_output() {
                match self.poll_write_out(io, cx) {
                    Poll::Ready(Err(e)) => {
                        self.state.end();
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Pending if self.write.len() >= self.cfg.max_write_buffer_size => {
                        // Above the high-water mark and not draining: the peer is not taking
                        // our bytes, so stop taking its bytes too and let TCP push back on it.
                        if self.poll_wait(cx) {
                            continue;
                        }
                        return Poll::Pending;
                    }
                    _ => {}
                }
            }
            match self.poll_read(io, cx) {
                Poll::Ready(Ok(0)) => read_eof = true,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.state.end();
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => {
                    if self.poll_wait(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// The next message already in the read buffer, while the connection is plainly open (no
    /// close either way, no failure, no shutdown started): it needs no IO and no timer, so no
    /// waker either. `None` sends the caller down the full path of [`poll_next`](Self::poll_next).
    #[inline]
    pub(super) fn next_buffered(&mut self) -> Option<Message> {
        if !self.state.is_open() || self.shutdown_started() {
            return None;
        }
        self.decode_next()
    }

    /// Whether the graceful shutdown this socket watches (if any) has started.
    #[inline]
    fn shutdown_started(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(crate::signal::Watch::fired)
    }

    /// Decodes the next message for the application from the read buffer. `None` when more
    /// bytes are needed, or when what was decoded changed the connection's state instead (the
    /// peer's close, kept until our reply is written; a violation, now failing it).
    // Always inlined: it is on every message's path (25 instructions a message otherwise).
    #[inline(always)]
    fn decode_next(&mut self) -> Option<Message> {
        if self.decoder.stream_requested() {
            return self.decode_next_after_stream();
        }
        match self.decoder.decode(&mut self.read.buf) {
            Ok(Some(msg)) => self.received(msg),
            Ok(None) => None,
            Err(kind) => {
                self.fail(kind);
                None
            }
        }
    }

    /// [`decode_next`](Self::decode_next) after a streaming reader went away: a stream asked
    /// for and not started is taken back; the rest of one under way is read and dropped.
    #[cold]
    fn decode_next_after_stream(&mut self) -> Option<Message> {
        self.decoder.cancel_stream();
        while self.decoder.stream_requested() {
            match self.decode_next_piece()? {
                Decoded::Message(msg) => return Some(msg),
                Decoded::Chunk(_) => {}
            }
        }
        self.decode_next()
    }

    /// The next piece for a streaming reader from the read buffer: a chunk of the streamed
    /// message, or a whole message (as [`decode_next`](Self::decode_next) gives).
    fn decode_next_piece(&mut self) -> Option<Decoded> {
        match self.decoder.decode_streaming(&mut self.read.buf) {
            Ok(Some(Decoded::Message(msg))) => self.received(msg).map(Decoded::Message),
            Ok(Some(chunk)) => {
                self.timers.on_frame(self.cfg.ping_interval);
                #[cfg(feature = "deflate")]
                self.timers.mark_active();
                Some(chunk)
            }
            Ok(None) => None,
            Err(kind) => {
                self.fail(kind);
                None
            }
        }
    }

    /// What a decoded message does to the connection: a ping is answered; the peer's close is
    /// answered as the state decides and kept there until our reply is written (`None`). The
    /// application gets every other message at once.
    #[inline(always)]
    fn received(&mut self, msg: Message) -> Option<Message> {
        self.timers.on_frame(self.cfg.ping_interval);
        #[cfg(feature = "deflate")]
        self.timers.mark_active();
        match msg {
            Message::Close(frame) => {
                if let Some(reply) = self.state.receive_close(frame) {
                    self.queue_close(reply.frame().as_ref());
                }
                None
            }
            Message::Ping(ref payload) if !self.state.close_queued() => {
                self.answer_ping(payload);
                Some(msg)
            }
            msg => Some(msg),
        }
    }

    /// Before the stream sleeps: gives an empty read buffer back (lending it to the next
    /// connection on this thread that has data), drives keepalive, asks to be woken by a
    /// graceful shutdown and releases idle compression state. `true` if something changed and
    /// the stream must look again instead of sleeping.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> bool {
        if self.read.buf.is_empty() {
            self.read.release();
        }
        if self.poll_keepalive(cx) {
            return true;
        }
        // Once it has fired, the top of the loop queues the close.
        if !self.state.close_queued() && self.shutdown.as_mut().is_some_and(|w| w.poll_fired(cx)) {
            return true;
        }
        #[cfg(feature = "deflate")]
        self.poll_release_compression(cx);
        false
    }

    fn poll_read<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>>
    where
        S: AsyncRead + Unpin,
    {
        if self.read.is_unallocated() {
            self.read = ReadBuf::take();
        }
        let buffered = self.read.buf.len();
        // At least a read buffer's worth; for a large frame, its remainder (up to 1 MiB at a
        // time, so a header alone never makes us allocate a huge buffer).
        let frame_rest = self.decoder.wanted(buffered);
        let want = frame_rest.clamp(
            self.cfg.read_buffer_size,
            MAX_READ_RESERVE.max(self.cfg.read_buffer_size),
        );
        if self.read.buf.capacity() - buffered < want {
            self.read.reserve(want, frame_rest);
        }
        // A buffer reused from a large message has room for one; a read still asks only for
        // what the frame needs or `MAX_READ_AHEAD`: one read of a whole large frame cost the
        // kernel more than a bounded read and then the rest (measured on loopback).
        let ask = want.max(MAX_READ_AHEAD);
        tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut (&mut self.read.buf).limit(ask))
    }

    /// Drives the keepalive timer; `true` if it queued something or failed the connection.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(interval) = self
            .cfg
            .ping_interval
            .filter(|_| !self.state.close_queued())
        else {
            return false;
        };
        match self
            .timers
            .poll_keepalive(cx, interval, self.cfg.pong_timeout)
        {
            Keepalive::Quiet => return false,
            Keepalive::Ping => self.queue(OpCode::Ping, &Bytes::new()),
            Keepalive::TimedOut => self.fail(ErrorKind::KeepaliveTimeout),
        }
        true
    }

    /// With context takeover, hands idle compression state back to the per-thread pool once no
    /// message went either way for a while (see [`timer`](super::timer)): an idle connection then keeps only
    /// its LZ77 windows (`1 << window_bits` bytes each way) instead of whole zlib states.
    #[cfg(feature = "deflate")]
    fn poll_release_compression(&mut self, cx: &mut Context<'_>) {
        let holding = self.encoder.deflater().is_some_and(Deflater::holds_state)
            || self.decoder.inflater_mut().is_some_and(|i| i.holds_state());
        if !self.timers.poll_release(cx, holding) {
            return;
        }
        if let Some(d) = self.encoder.deflater_mut() {
            d.release();
        }
        if let Some(i) = self.decoder.inflater_mut() {
            i.release();
        }
    }

    /// Fails the connection with `kind`: queues the close frame the state owes (none if ours
    /// went earlier); the stream reports `kind` after writing it.
    fn fail(&mut self, kind: ErrorKind) {
        if let Some(reply) = self.state.fail(kind) {
            self.queue_close(reply.frame().as_ref());
        }
    }

    /// Closes on the application's (or the socket's own) behalf: `close()`, a close frame
    /// sent as a message, a graceful shutdown.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidMessage`] for a code that may not be sent or a reason over 123
    /// bytes; [`ErrorKind::Closed`] once a close went either way. Nothing is queued then.
    fn try_send_close(&mut self, frame: Option<&CloseFrame>) -> Result<(), ErrorKind> {
        proto::close::check(frame)?;
        // What was published to the socket before goes out before the close, as before any
        // message of the application's.
        self.deliver_before_send();
        self.state.close()?;
        self.queue_close(frame);
        Ok(())
    }

    /// [`try_send_close`](Self::try_send_close) for a frame the socket built (always valid).
    fn send_close(&mut self, frame: Option<&CloseFrame>) {
        let sent = self.try_send_close(frame);
        debug_assert!(sent.is_ok(), "the socket built an invalid close frame");
    }

    /// Queues our close frame, once the state said it is owed. Every path that closes (the
    /// application's close frame, `close()`, the reply to the peer's close, a violation, a
    /// graceful shutdown) comes through here, so the rules hold for all of them: what was
    /// queued before goes out first, a pong still owed included; nothing is queued after it;
    /// the close timer starts and keepalive stops.
    fn queue_close(&mut self, frame: Option<&CloseFrame>) {
        if let Some(ping) = self.owed_pong.take() {
            self.queue(OpCode::Pong, &ping);
        }
        let queued = self.encoder.close(frame, &mut self.write);
        debug_assert!(queued.is_ok(), "an invalid close frame");
        self.arm_close_timer();
    }

    /// Starts the close timer, and has both halves woken so that whichever is waiting starts
    /// watching the deadline: a close queued by the sending half, whose flush may finish at
    /// once, must still end the receiving half's wait.
    fn arm_close_timer(&mut self) {
        self.wake_both = true;
        self.start_close_timer();
    }

    /// Turns the timer toward the close deadline (keepalive stops), unless it already runs
    /// toward it.
    fn start_close_timer(&mut self) {
        self.timers.start_close(self.cfg.close_timeout);
    }

    /// Whether the close timer (armed with our close frame) has run out; registers for its
    /// wake-up otherwise.
    fn close_timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        self.timers.close_timed_out(cx, self.cfg.close_timeout)
    }

    /// Ends the connection after the close timeout: shuts the IO down without waiting. What
    /// could not be written stays queued, so a later flush reports it as not sent.
    fn give_up<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Error
    where
        S: AsyncWrite + Unpin,
    {
        self.state.end();
        self.state.shut_down();
        // The other half, if it waits, must learn that the connection is over.
        self.wake_both = true;
        let _ = Pin::new(&mut *io).poll_shutdown(cx);
        self.read.release();
        ErrorKind::CloseTimeout.into()
    }

    /// Writes everything queued, flushes, and shuts the connection down (server role; a client
    /// leaves closing TCP to the server as RFC 6455 §7.1.1 asks, up to the close timeout).
    fn poll_finish<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.state.is_shut_down() {
            return Poll::Ready(Ok(()));
        }
        let result = match self.poll_flush(io, cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut *io).poll_shutdown(cx).map_err(Error::from),
            other => other,
        };
        match result {
            // Both close frames went through: the handshake is complete, and a peer that
            // already tore the connection down (an HTTP/2 stream reset, a TCP reset) does not
            // make it less so.
            Poll::Ready(Err(_)) if self.state.close_received() && self.write.is_empty() => {
                self.state.shut_down();
                self.read.release();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(r) => {
                self.state.shut_down();
                self.read.release();
                Poll::Ready(r)
            }
            // A shutdown that writes (TLS's close_notify) is bounded by the close timer too.
            Poll::Pending if self.close_timed_out(cx) => Poll::Ready(Err(self.give_up(io, cx))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether a message can be queued without writing first.
    #[inline]
    pub(super) fn has_room(&self) -> bool {
        self.state.is_open() && self.write.len() < self.cfg.write_buffer_size
    }

    /// Whether a message may be queued: writes out at `write_buffer_size`, waits while the
    /// queue holds `max_write_buffer_size` or more; `Closed` once a close went either way.
    #[inline]
    pub(super) fn poll_ready<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>>
    where
        S: AsyncWrite + Unpin,
    {
        if !self.state.is_open() {
            return Poll::Ready(Err(ErrorKind::Closed.into()));
        }
        if self.write.len() >= self.cfg.write_buffer_size {
            match self.poll_write_out(io, cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if self.write.len() >= self.cfg.max_write_buffer_size => {
                    return Poll::Pending;
                }
                _ => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues `msg` (compressed when agreed, `compress` is on and it is large enough); a close
    /// frame goes through [`try_send_close`](Self::try_send_close).
    pub(super) fn start_send_with(&mut self, msg: Message, compress: bool) -> Result<(), Error> {
        if !self.state.is_open() {
            return Err(ErrorKind::Closed.into());
        }
        match msg {
            Message::Close(frame) => self.try_send_close(frame.as_ref())?,
            msg => {
                self.deliver_before_send();
                let compressed = self.encoder.message(msg, compress, &mut self.write)?;
                #[cfg(feature = "deflate")]
                if compressed {
                    self.timers.mark_active();
                }
                #[cfg(not(feature = "deflate"))]
                let _ = compressed;
            }
        }
        Ok(())
    }

    /// Queues one fragment of a message sent in pieces (`opcode` `Text` or `Binary` on the
    /// first, `Continuation` after; `fin` on the last), compressed as one stream with the
    /// message's other fragments when `compress` (decided at the first and kept).
    pub(super) fn send_fragment(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &Bytes,
        compress: bool,
    ) -> Result<(), Error> {
        if !self.state.is_open() {
            return Err(ErrorKind::Closed.into());
        }
        if opcode != OpCode::Continuation {
            self.deliver_before_send();
        }
        #[cfg(feature = "deflate")]
        if compress {
            self.timers.mark_active();
            self.encoder
                .compressed_fragment(opcode, fin, payload, &mut self.write);
            return Ok(());
        }
        let _ = compress;
        self.encoder.fragment(opcode, fin, payload, &mut self.write);
        Ok(())
    }

    /// Whether a message sent in pieces is compressed: a compressor was agreed and `compress`
    /// is asked for.
    pub(super) fn compresses_fragments(&self, compress: bool) -> bool {
        #[cfg(feature = "deflate")]
        return compress && self.encoder.deflater().is_some();
        #[cfg(not(feature = "deflate"))]
        {
            let _ = compress;
            false
        }
    }

    /// A message sent in pieces was abandoned before its last fragment: the peer could never
    /// tell it from a stalled one, so the connection is failed with 1011 (RFC 6455 §7.4.1,
    /// an unexpected condition) after what was queued.
    pub(super) fn abandon_fragmented(&mut self) {
        if self.state.is_open() {
            self.send_close(Some(&CloseFrame::new(
                CloseCode::INTERNAL_ERROR,
                "message left unfinished",
            )));
        }
    }

    /// Writes everything queued and flushes the IO. Once our close frame is queued, this too
    /// gives up after the close timeout (a peer that stopped reading cannot hold it forever).
    pub(super) fn poll_flush<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>>
    where
        S: AsyncWrite + Unpin,
    {
        if self.state.is_ended() && self.state.is_shut_down() {
            // Closed: everything was written, or the close timed out before it could be.
            return Poll::Ready(if self.write.is_empty() {
                Ok(())
            } else {
                Err(ErrorKind::Closed.into())
            });
        }
        let flushed = match self.poll_write_out(io, cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut *io).poll_flush(cx).map_err(Error::from),
            other => other,
        };
        match flushed {
            Poll::Pending if self.state.close_queued() && self.close_timed_out(cx) => {
                Poll::Ready(Err(self.give_up(io, cx)))
            }
            other => other,
        }
    }

    /// Queues a close frame (code 1000) unless one was sent, flushes, then (with
    /// `await_reply`) reads until the peer's close frame arrives and shuts the connection down.
    /// Messages read meanwhile are dropped. Bounded by the close timeout either way.
    pub(super) fn poll_close<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        await_reply: bool,
    ) -> Poll<Result<(), Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.state.is_open() {
            self.send_close(Some(&CloseFrame::new(CloseCode::NORMAL, "")));
        }
        if !await_reply {
            return self.poll_flush(io, cx);
        }
        loop {
            if self.state.is_ended() || self.state.close_received() {
                let r = ready!(self.poll_finish(io, cx));
                self.state.end();
                return Poll::Ready(r);
            }
            match self.poll_flush(io, cx) {
                // Everything, our close included, was handed to the IO: read the reply even if
                // the IO's flush failed (a peer that answered and reset its HTTP/2 stream).
                Poll::Ready(Err(e)) if !self.write.is_empty() => {
                    self.state.end();
                    return Poll::Ready(Err(e));
                }
                _ => {}
            }
            match ready!(self.poll_next(io, cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Queues a control frame the socket built itself (a pong, a keepalive ping): its payload
    /// is a ping's, at most 125 bytes, so the encoder never refuses it.
    fn queue(&mut self, opcode: OpCode, payload: &Bytes) {
        let queued = self.encoder.control(opcode, payload, &mut self.write);
        debug_assert!(queued.is_ok(), "the socket built an invalid control frame");
    }

    /// Whether anything waits to be written: queued bytes or an owed pong.
    fn has_output(&self) -> bool {
        !self.write.is_empty() || self.owed_pong.is_some()
    }

    /// RFC 6455 §5.5.2-3: answers a ping with a pong of the same payload, queued now while the
    /// write queue is below `write_buffer_size`; beyond it, a pong for the most recent ping is
    /// enough, so at most one is owed. The socket's own replies never take the queue past it,
    /// however many pings a peer sends without reading.
    fn answer_ping(&mut self, payload: &Bytes) {
        if self.has_room_for_pong() {
            self.owed_pong = None;
            self.queue(OpCode::Pong, payload);
        } else {
            self.owed_pong = Some(Box::new(payload.clone()));
        }
    }

    /// Whether a pong may be queued: below `write_buffer_size`, or into an empty queue (a
    /// `write_buffer_size` of 0 means "write at once", not "never answer").
    fn has_room_for_pong(&self) -> bool {
        self.write.is_empty() || self.write.len() < self.cfg.write_buffer_size
    }

    /// Queues the owed pong once the write queue has room for it again.
    fn queue_owed_pong(&mut self) {
        if self.has_room_for_pong() {
            if let Some(ping) = self.owed_pong.take() {
                self.queue(OpCode::Pong, &ping);
            }
        }
    }

    /// Writes queued bytes (and an owed pong) until none are left or the connection would
    /// block.
    fn poll_write_out<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
    where
        S: AsyncWrite + Unpin,
    {
        loop {
            self.queue_owed_pong();
            self.pull_deliveries();
            if self.write.is_empty() {
                break;
            }
            let n = if io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = self.write.slices(&mut slices);
                if count == 1 {
                    // One contiguous run: a plain write (a socket's `send`) is cheaper in the
                    // kernel than a vectored one.
                    ready!(Pin::new(&mut *io).poll_write(cx, &slices[0]))?
                } else {
                    ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?
                }
            } else {
                ready!(Pin::new(&mut *io).poll_write(cx, self.write.first_slice()))?
            };
            if n == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.write.advance(n);
        }
        self.write.release();
        Poll::Ready(Ok(()))
    }
}

/// Delivery of what an [`Outbox`] (a hub's) has for this socket.
impl Core {
    /// Has the outbox write what waits into the write queue (never while a message sent in
    /// pieces is under way: no other data frame may come between its fragments, RFC 6455
    /// §5.4), up to `write_buffer_size` (the rest waits in the outbox, under its owner's
    /// bounds and policy: a subscriber that does not read does not grow this socket's queue).
    /// A socket the outbox asks to close (a subscriber too slow) is closed here with its code.
    /// Before a message of the application's own: what was published to this socket goes
    /// first, all of it whatever the room (the outbox bounds it), so that a publish and a send
    /// made after it keep their order.
    #[inline]
    fn deliver_before_send(&mut self) {
        if self
            .outbox
            .as_ref()
            .is_some_and(|o| o.outbox.may_have_pending())
            && !self.encoder.mid_message()
        {
            self.pull_deliveries_now(true);
        }
    }

    #[inline]
    pub(super) fn pull_deliveries(&mut self) {
        if self.outbox.as_ref().is_some_and(|o| {
            (o.outbox.may_have_pending() && !self.encoder.mid_message()) || !self.state.is_open()
        }) {
            self.pull_deliveries_now(false);
        }
    }

    /// With `all`, whatever the room in the write queue.
    #[inline(never)]
    fn pull_deliveries_now(&mut self, all: bool) {
        let Some(outbox) = self.outbox.take() else {
            return;
        };
        if !self.state.is_open() {
            // Our close is queued (or the connection is over): nothing more goes out, and the
            // outbox is dropped (its owner forgets the socket).
            return;
        }
        let delivered = if all {
            outbox.outbox.deliver(&mut Unbounded(self))
        } else {
            outbox.outbox.deliver(self)
        };
        match delivered {
            Ok(()) => self.outbox = Some(outbox),
            Err(code) => self.send_close(Some(&CloseFrame::new(code, "subscriber too slow"))),
        }
    }

    /// The outbox owner's drain drives the socket, whatever the application does: has the
    /// outbox write what waits into the write queue and writes it out, as far as the
    /// connection takes it now. A subscriber the outbox asks to close gets its close frame the
    /// same way, and once the close deadline passes without the peer answering (or taking our
    /// bytes), the connection is shut down here: a peer that stopped reading is cut off even
    /// if the application never polls its socket. `Pending`: woken (through `cx`) when the IO
    /// takes bytes again or the close deadline comes.
    ///
    /// A write error, or the end of the connection, detaches the outbox: the application's
    /// next call on the socket reports the error.
    #[allow(dead_code)] // Driven by a hub's drain (feature "hub") only.
    pub(super) fn poll_drain<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<()>
    where
        S: AsyncWrite + Unpin,
    {
        if self.state.is_ended() {
            self.detach();
            return Poll::Ready(());
        }
        self.pull_deliveries();
        let written = if self.has_output() {
            self.poll_write_out(io, cx)
        } else {
            Poll::Ready(Ok(()))
        };
        if let Poll::Ready(Err(_)) = written {
            // The error stays the connection's: the application's next write meets it.
            self.detach();
            return Poll::Ready(());
        }
        if self.state.close_queued() {
            // Ours is out or on its way: the peer has until the deadline to answer.
            if self.close_timed_out(cx) {
                let _ = self.give_up(io, cx);
                self.detach();
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        written.map(|_| ())
    }

    /// Drops the outbox: its owner forgets the socket.
    pub(super) fn detach(&mut self) {
        self.outbox = None;
    }
}

/// The write queue without its bound, for what must go out before the application's message.
struct Unbounded<'a>(&'a mut Core);

impl Frames for Unbounded<'_> {
    fn room(&self) -> Option<usize> {
        Some(usize::MAX)
    }

    fn encoding(&mut self, len: usize) -> Encoding {
        self.0.encoding(len)
    }

    fn push_frame(&mut self, frame: &Bytes) {
        self.0.push_frame(frame);
    }

    fn encode(&mut self, text: bool, payload: &Bytes, compress: bool) {
        self.0.encode(text, payload, compress);
    }
}

impl Frames for Core {
    fn room(&self) -> Option<usize> {
        let room = self.cfg.write_buffer_size.saturating_sub(self.write.len());
        (room > 0 || self.write.is_empty()).then_some(room)
    }

    fn encoding(&mut self, len: usize) -> Encoding {
        #[cfg(feature = "deflate")]
        if let Some(d) = self.encoder.deflater().filter(|d| d.wants(len)) {
            self.timers.mark_active();
            if d.takes_over() || self.role == Role::Client {
                return Encoding::Own { compress: true };
            }
            let (level, bits) = d.params();
            return Encoding::SharedCompressed { level, bits };
        }
        #[cfg(not(feature = "deflate"))]
        let _ = len;
        if self.role == Role::Client {
            Encoding::Own { compress: false }
        } else {
            Encoding::Shared
        }
    }

    fn push_frame(&mut self, frame: &Bytes) {
        self.write.push_payload(frame);
    }

    fn encode(&mut self, text: bool, payload: &Bytes, compress: bool) {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        self.encoder
            .data(opcode, payload, compress, &mut self.write);
    }
}

/// How [`Core::poll_item`] decodes: whole messages, or pieces for a streaming reader.
trait Step {
    type Item;
    /// The next item from the read buffer, if one is complete.
    fn decode(core: &mut Core) -> Option<Self::Item>;
    /// The peer's close, as an item.
    fn whole(msg: Message) -> Self::Item;
}

/// Whole messages (the `Stream` of the socket).
struct Whole;

impl Step for Whole {
    type Item = Message;
    #[inline(always)]
    fn decode(core: &mut Core) -> Option<Message> {
        core.decode_next()
    }
    fn whole(msg: Message) -> Message {
        msg
    }
}

/// Chunks of a streamed message, and whole messages around it.
struct Pieces;

impl Step for Pieces {
    type Item = Decoded;
    fn decode(core: &mut Core) -> Option<Decoded> {
        core.decode_next_piece()
    }
    fn whole(msg: Message) -> Decoded {
        Decoded::Message(msg)
    }
}
