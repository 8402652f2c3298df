//! The whole socket, driven by a script: `WebSocket::from_raw` (or with permessage-deflate
//! agreed) over an in-memory IO whose behaviour, the peer's bytes, the application's calls and
//! the clock all come from the input.
//!
//! Futures are polled by hand with counting wakers, on a current-thread runtime with the clock
//! paused, so the target sees every `Pending` and every wake-up. Tasks: one for the whole socket;
//! after a split, one per half (the crate's `ws.split()` or `futures_util::StreamExt::split`).
//!
//! With the setup's hub flag, the socket is attached to a `tower_ws::hub::Hub` and subscribed to
//! one topic before the first step; steps publish to that topic between the others, and the
//! hub's drain (a task the hub spawns on the runtime) writes the deliveries whenever the
//! runtime runs its tasks (a drain step, a clock step, the end of the run), whatever the
//! application's tasks are doing. With the replay flag too, the topic keeps a history, two
//! messages are published before the socket attaches, and it subscribes from the position
//! before them: they go out first, replayed from the topic's log, then the rest.
//!
//! Input: four config bytes (see `Setup::from`), then steps, one opcode byte each plus its
//! arguments (see `Harness::step`), until the input runs out.
//!
//! Invariants, checked after every step:
//!
//! - no panic;
//! - `buffered_amount()` stays within `max_write_buffer_size` plus the largest message the
//!   application submitted plus a few control frames (whatever the peer sends);
//! - no lost wake-ups: a task whose poll returned `Pending` after registering with the IO for
//!   reading or writing is woken once the IO becomes ready that way; checked at `Settle`
//!   steps and at the end, after every woken task has run, by polling a task that should have
//!   been woken and was not: if it is ready, its wake-up was lost;
//! - the close timeout holds on every close path: once we have started closing (the
//!   application sent or requested a close, or the socket sent one), a task waiting for the
//!   stream or for `poll_close` is woken and finished within `close_timeout`;
//! - the stream: text is UTF-8 and messages respect `max_message_size`; nothing after the end
//!   or after an error (errors are terminal) but `None`; no data after a close; while the peer
//!   only sent well-formed frames, the messages received are the ones it sent, in order;
//! - the bytes the socket writes decode cleanly as the peer (right masking, valid frames),
//!   hold the application's messages in order, no data frame after a close, and only pongs
//!   that echo a ping;
//! - attached to a hub: a published message is written as a data frame with its payload, in
//!   the data order above as if the application had sent it at the moment of the publish
//!   (after everything the application queued before, before anything it sends after); one
//!   not yet written when a close is queued may never be, and nothing is written after the
//!   close frame. `buffered_amount()` may also hold the published messages not yet written
//!   (the socket takes all that waits before a message of the application's own, whatever
//!   the room). At the end of the run, once the drain has run: if the socket is still open
//!   and writes are accepted, every published message has reached the peer and nothing is
//!   left queued or was dropped (the queue bounds are never reached).

#![no_main]

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::FusedStream;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower_ws::__fuzz::{Agreed, Deflater, FrameDecoder, Inflater, websocket_with_deflate};
use tower_ws::Position;
use tower_ws::hub::{History, Hub, Member, Overflow, PreparedMessage};
use tower_ws::{
    CloseCode, CloseFrame, Config, Error, Message, ReadHalf, Role, WebSocket, WriteHalf,
};

const READ: usize = 0;
const WRITE: usize = 1;
/// Room for the control frames the socket may queue on its own beyond the high-water mark: a
/// pong, a keepalive ping, a close frame, and one spare (each at most 125 + 14 bytes).
const CONTROL_SLACK: usize = 4 * (125 + 14);
/// Timers fire on the first millisecond tick at or after their deadline.
const TIMER_SLACK: Duration = Duration::from_millis(10);
const MAX_STEPS: usize = 400;
/// Opcodes: a step's byte is taken modulo this (see `Harness::step`).
const OPS: u8 = 30;
const MAX_DELIVERED: usize = 2 << 20;
/// The topic the socket subscribes to when attached to a hub.
const TOPIC: &str = "t";
/// Times the runtime's tasks (the hub's drain) get to run at a drain step.
const DRAIN_YIELDS: usize = 8;

fn trace() -> bool {
    std::env::var_os("SOCKET_FUZZ_TRACE").is_some()
}

macro_rules! log {
    ($($arg:tt)*) => {
        if trace() {
            eprintln!($($arg)*);
        }
    };
}

// ------------------------------------------------------------------------------------------
// The in-memory IO.

#[derive(Default)]
struct IoState {
    /// Bytes the peer delivered that the socket has not read.
    inbound: VecDeque<u8>,
    /// Reads return `Pending` even with data available.
    read_blocked: bool,
    /// The peer closed its side: reads return 0 once `inbound` is empty.
    eof: bool,
    /// The connection is broken: every call fails.
    broken: bool,
    /// The most one read returns; 0 for no limit.
    read_chunk: usize,
    /// How many more bytes writes accept; `None` for no limit.
    credit: Option<usize>,
    vectored: bool,
    shut_down: bool,
    /// Bytes written, not yet decoded by the peer.
    outbound: Vec<u8>,
    /// One waker per direction, as a real socket keeps: the last poll's.
    wakers: [Option<Waker>; 2],
    /// Registrations per direction (a poll that returned `Pending` and kept the waker).
    registered: [u64; 2],
    /// Times each direction became ready (and woke its waker).
    ready: [u64; 2],
}

impl IoState {
    fn readable(&self) -> bool {
        self.broken || (!self.read_blocked && (!self.inbound.is_empty() || self.eof))
    }

    fn writable(&self) -> bool {
        self.broken || self.shut_down || self.credit != Some(0)
    }

    fn fire(&mut self, d: usize) {
        self.ready[d] += 1;
        if let Some(w) = self.wakers[d].take() {
            w.wake();
        }
    }

    fn read_changed(&mut self) {
        if self.readable() {
            self.fire(READ);
        }
    }

    fn write_changed(&mut self) {
        if self.writable() {
            self.fire(WRITE);
        }
    }

    fn register(&mut self, d: usize, cx: &Context<'_>) {
        self.wakers[d] = Some(cx.waker().clone());
        self.registered[d] += 1;
    }
}

/// Shared with the socket, and through it with the hub's drain (a task on the runtime), so
/// `Send`: behind a mutex, locked only for one call (never across a poll of the socket).
#[derive(Clone, Default)]
struct Io(Arc<Mutex<IoState>>);

impl Io {
    fn state(&self) -> MutexGuard<'_, IoState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut s = self.state();
        if s.broken {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if s.read_blocked || (s.inbound.is_empty() && !s.eof) {
            s.register(READ, cx);
            return Poll::Pending;
        }
        let mut n = buf.remaining().min(s.inbound.len());
        if s.read_chunk > 0 {
            n = n.min(s.read_chunk);
        }
        let bytes: Vec<u8> = s.inbound.drain(..n).collect();
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl Io {
    fn write_with(&self, cx: &Context<'_>, bufs: &[&[u8]]) -> Poll<io::Result<usize>> {
        let mut s = self.state();
        if s.broken || s.shut_down {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut room = match s.credit {
            Some(0) => {
                s.register(WRITE, cx);
                return Poll::Pending;
            }
            Some(c) => c,
            None => usize::MAX,
        };
        let mut n = 0;
        for b in bufs {
            let k = b.len().min(room);
            s.outbound.extend_from_slice(&b[..k]);
            n += k;
            room -= k;
            if room == 0 {
                break;
            }
        }
        if let Some(c) = &mut s.credit {
            *c -= n;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_with(cx, &[buf])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
        self.write_with(cx, &slices)
    }

    fn is_write_vectored(&self) -> bool {
        self.state().vectored
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state().broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.state();
        if s.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        s.shut_down = true;
        Poll::Ready(Ok(()))
    }
}

// ------------------------------------------------------------------------------------------
// Tasks and their wakers.

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
enum Op {
    Next,
    Send { msg: Message, flush: bool },
    Flush,
    Close,
}

impl Op {
    /// Waits for the stream to end or the close handshake to finish: bounded by the close
    /// timeout once closing started.
    fn closing_bounded(&self) -> bool {
        matches!(self, Op::Next | Op::Close)
    }
}

/// A task whose last poll returned `Pending`.
#[derive(Debug, Clone, Copy)]
struct Wait {
    /// Directions the IO took a waker for during that poll.
    registered: [bool; 2],
    /// The IO's readiness counters right after that poll.
    epoch: [u64; 2],
}

struct Task {
    counter: Arc<Counter>,
    waker: Waker,
    /// The wake count when last polled.
    polled_at: usize,
    op: Option<Op>,
    started: Instant,
    wait: Option<Wait>,
}

impl Task {
    fn new() -> Self {
        let counter = Arc::new(Counter::default());
        Self {
            waker: Waker::from(counter.clone()),
            counter,
            polled_at: 0,
            op: None,
            started: Instant::now(),
            wait: None,
        }
    }

    fn woken(&self) -> bool {
        self.counter.0.load(Ordering::SeqCst) > self.polled_at
    }

    fn set_op(&mut self, op: Op) {
        self.op = Some(op);
        self.started = Instant::now();
        self.wait = None;
    }

    fn cancel(&mut self) {
        self.op = None;
        self.wait = None;
    }
}

enum Mode {
    Whole(WebSocket<Io>),
    Halves(WriteHalf<Io>, ReadHalf<Io>),
    Futures(
        SplitSink<WebSocket<Io>, Message>,
        SplitStream<WebSocket<Io>>,
    ),
    Gone,
}

/// Runs `$body` with `$s` bound to the sink of the current mode, pinned.
macro_rules! with_sink {
    ($mode:expr, $s:ident => $body:expr) => {
        match $mode {
            Mode::Whole(ws) => {
                let $s = Pin::new(ws);
                $body
            }
            Mode::Halves(w, _) => {
                let $s = Pin::new(w);
                $body
            }
            Mode::Futures(w, _) => {
                let $s = Pin::new(w);
                $body
            }
            Mode::Gone => unreachable!(),
        }
    };
}

// ------------------------------------------------------------------------------------------
// The peer: frames it sends, and what it decodes from the socket's bytes.

struct Peer {
    /// The peer masks its frames (the socket is a server).
    masks: bool,
    key: u32,
    deflater: Option<Deflater>,
    /// Only well-formed frames were delivered so far.
    clean: bool,
    /// Data messages delivered, well-formed.
    sent: Vec<Message>,
    /// Ping payloads delivered.
    pings: Vec<Bytes>,
    delivered: usize,
    eof: bool,
    /// The socket's bytes, decoded as the peer.
    decoder: FrameDecoder,
    buf: BytesMut,
    /// The socket's data messages.
    received: Vec<Message>,
    close_seen: bool,
}

impl Peer {
    fn frame(&mut self, out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
        self.frame_masked(out, b0, payload, self.masks);
    }

    fn frame_masked(&mut self, out: &mut Vec<u8>, b0: u8, payload: &[u8], masked: bool) {
        out.push(b0);
        let m = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => out.push(m | n as u8),
            n @ 126..=0xffff => {
                out.push(m | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(m | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            self.key = self.key.wrapping_mul(0x9e37_79b9).wrapping_add(0x7f4a_7c15);
            let key = self.key.to_le_bytes();
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        } else {
            out.extend_from_slice(payload);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Input.

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// Text of `len` bytes or a little more, from a pattern: ASCII with some multi-byte characters.
fn text(len: usize, seed: u8) -> String {
    const PIECES: &[&str] = &["a", "b", "hello ", "é", "€", "😀", "z", " ", "ü"];
    let mut s = String::with_capacity(len + 4);
    let mut i = usize::from(seed);
    while s.len() < len {
        s.push_str(PIECES[i % PIECES.len()]);
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    s
}

fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Close codes, valid and not.
const CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999, 1005, 1006, 999, 5000, 1015,
];

const DURATIONS_MS: &[u64] = &[
    1, 5, 10, 100, 500, 999, 1000, 1001, 2000, 5000, 10_000, 10_010, 20_000, 30_000, 60_000,
];

struct Setup {
    role: Role,
    config: Config,
    deflate: Option<Agreed>,
    vectored: bool,
    /// Attach the socket to a hub, subscribed to `TOPIC`, before the first step.
    hub: bool,
    /// The hub's topic keeps a history, two messages were published to it before the socket
    /// attached, and the socket subscribes from before them: they are replayed first.
    replay: bool,
}

impl Setup {
    /// Four bytes: flags (1 client, 2 deflate, 4 vectored writes, 8 keepalive, 0x10 with 0x20
    /// a history replayed, 0x20 attached to a hub, 0x40 no context takeover; 0x80 unused), sizes (write buffer, high-water
    /// mark, read buffer, limits, 0x80 unmasked frames accepted), times (close timeout,
    /// keepalive interval), and more (pong timeout, window bits, 0x80 compression threshold 0).
    fn from(r: &mut Reader<'_>) -> Self {
        let flags = r.u8();
        let sizes = r.u8();
        let times = r.u8();
        let more = r.u8();
        let role = if flags & 1 != 0 {
            Role::Client
        } else {
            Role::Server
        };
        let mut config = Config::default();
        config.write_buffer_size = [0, 64, 512, 4096][usize::from(sizes & 3)];
        config.max_write_buffer_size = [0, 256, 1024, 8192][usize::from((sizes >> 2) & 3)];
        config.read_buffer_size = [256, 4096][usize::from((sizes >> 4) & 1)];
        let limit = [None, Some(300), Some(4096), Some(1 << 16)][usize::from((sizes >> 5) & 3)];
        config.max_message_size = limit;
        config.max_frame_size = limit;
        config.accept_unmasked_frames = sizes & 0x80 != 0;
        config.close_timeout = Duration::from_secs(u64::from(1 + (times & 15)));
        config.ping_interval =
            (flags & 8 != 0).then(|| Duration::from_secs(u64::from(1 + (times >> 4))));
        config.pong_timeout = Duration::from_secs(u64::from(1 + (more & 15)));
        let deflate = (flags & 2 != 0).then(|| {
            let bits = 8 + (more >> 4) % 8;
            Agreed {
                server_no_context_takeover: flags & 0x40 != 0,
                client_no_context_takeover: flags & 0x40 != 0,
                server_max_window_bits: bits.max(9),
                client_max_window_bits: bits,
                level: 1,
                threshold: if more & 0x80 != 0 { 0 } else { 64 },
            }
        });
        Self {
            role,
            config,
            deflate,
            vectored: flags & 4 != 0,
            hub: flags & 0x20 != 0,
            replay: flags & 0x30 == 0x30,
        }
    }
}

// ------------------------------------------------------------------------------------------
// The harness.

/// A data message the socket is to write, in the order it must go out.
struct Sent {
    msg: Message,
    /// Published to the hub (not sent by the application).
    published: bool,
}

/// A data message `SplitSink` may have handed to the socket while `Pending` (taken as
/// submitted then), or may still hold: it reaches the socket when it is handed over, so the
/// messages published in the meantime may go out before it. The model keeps it at `at` in
/// `sent`; it may come after up to `past` of the published messages that follow it.
#[derive(Debug)]
struct Float {
    at: usize,
    past: usize,
    /// Still unknown whether it was handed over: a publish now may go out before it.
    open: bool,
}

/// The hub the socket is attached to (setup flag 0x20), kept alive for the run.
struct Attached {
    hub: Hub,
    member: Member,
    /// Publishes the hub queued for the socket.
    queued: u64,
}

struct Harness<'rt> {
    rt: &'rt Runtime,
    start: Instant,
    io: Io,
    mode: Mode,
    /// Task 0 drives the whole socket, or the write half; task 1 the read half.
    tasks: [Task; 2],
    peer: Peer,
    max_message_size: usize,
    close_timeout: Duration,
    /// `max_write_buffer_size` as the socket uses it.
    high_water: usize,
    /// The largest frame the application submitted, with header and compression overhead.
    largest_frame: usize,
    deflate: bool,
    /// The data messages the application submitted (accepted by `start_send`), and the
    /// messages the hub queued for the socket, each where it was published.
    sent: Vec<Sent>,
    /// Data messages of `sent` whose place among the publishes after them is not known yet.
    floats: VecDeque<Float>,
    /// A message `SplitSink` took and may not have handed to the socket yet.
    slot: Option<Message>,
    /// `sent` holds exactly what the socket got, in order (up to `floats`).
    sent_exact: bool,
    app_pongs: Vec<Bytes>,
    /// `SplitSink` returned `Pending` holding an item, which may have reached the socket.
    handed_maybe: bool,
    /// When we started closing (the application asked, or the socket sent a close frame).
    closing_since: Option<Instant>,
    /// The data messages the stream gave.
    received: Vec<Message>,
    /// No message was dropped on the way (a close that reads drops what arrives meanwhile).
    recv_exact: bool,
    got_close: bool,
    errored: bool,
    ended: bool,
    hub: Option<Attached>,
    /// What the published messages the peer has not received may take in the write queue
    /// (each one's frame, with header and compression overhead): the socket takes everything
    /// published before a message of the application's own, whatever the room. Counted down
    /// as the peer receives them while `sent_exact`.
    hub_unseen: usize,
}

impl Harness<'_> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn task_name(&self, t: usize) -> &'static str {
        match (&self.mode, t) {
            (Mode::Whole(_), _) => "the socket's task",
            (_, 0) => "the write half's task",
            _ => "the read half's task",
        }
    }

    fn read_task(&self) -> usize {
        match self.mode {
            Mode::Whole(_) => 0,
            _ => 1,
        }
    }

    fn start_closing(&mut self, why: &str) {
        if self.closing_since.is_none() {
            log!("  closing since now ({why})");
            self.closing_since = Some(self.now());
        }
    }

    // --- the peer's side ---

    fn deliver(&mut self, bytes: &[u8]) {
        if self.peer.eof || self.peer.delivered > MAX_DELIVERED {
            return;
        }
        self.peer.delivered += bytes.len();
        let mut s = self.io.state();
        s.inbound.extend(bytes);
        s.read_changed();
    }

    /// A data message from the peer, in `fragments` frames, maybe compressed, maybe with a ping
    /// between fragments.
    fn deliver_message(&mut self, msg: Message, fragments: usize, ping: bool, compress: bool) {
        let opcode = if msg.is_text() { 1 } else { 2 };
        let data = msg.clone().into_data();
        let (payload, rsv1) = match (&mut self.peer.deflater, compress) {
            (Some(d), true) => (d.compress(&data), true),
            _ => (data.to_vec(), false),
        };
        let n = fragments.clamp(1, 4);
        let step = payload.len().div_ceil(n).max(1);
        let mut chunks: Vec<&[u8]> = payload.chunks(step).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let fin = i + 1 == chunks.len();
            let mut b0 = if i == 0 { opcode } else { 0 };
            if fin {
                b0 |= 0x80;
            }
            if rsv1 && i == 0 {
                b0 |= 0x40;
            }
            self.peer.frame(&mut out, b0, chunk);
            if ping && !fin {
                self.peer.frame(&mut out, 0x89, b"between");
                self.peer.pings.push(Bytes::from_static(b"between"));
            }
        }
        if !self.peer.eof && self.peer.delivered <= MAX_DELIVERED {
            self.peer.sent.push(msg);
        }
        self.deliver(&out);
    }

    fn deliver_bad(&mut self, kind: u8) {
        self.peer.clean = false;
        let mut out = Vec::new();
        let p = &mut self.peer;
        match kind % 14 {
            0 => p.frame(&mut out, 0x83, b"reserved opcode"),
            1 => p.frame(&mut out, 0xa1, b"rsv2"),
            2 => p.frame(&mut out, 0xc9, b"rsv1 on a ping"),
            3 => p.frame(&mut out, 0x09, b"fragmented ping"),
            4 => p.frame(&mut out, 0x89, &[b'p'; 126]),
            5 => p.frame(&mut out, 0x80, b"continuation of nothing"),
            6 => p.frame(&mut out, 0x81, b"bad \xff utf-8"),
            7 => p.frame(&mut out, 0x88, b"\x03"),
            8 => p.frame(&mut out, 0x88, &1005u16.to_be_bytes()),
            9 => {
                let masks = !p.masks;
                p.frame_masked(&mut out, 0x82, b"wrong masking", masks);
            }
            10 => {
                // A header announcing 2^40 bytes, and nothing after it.
                out.extend_from_slice(&[0x82, if p.masks { 0xff } else { 0x7f }]);
                out.extend_from_slice(&(1u64 << 40).to_be_bytes());
                if p.masks {
                    out.extend_from_slice(&[1, 2, 3, 4]);
                }
            }
            11 => p.frame(&mut out, 0xc2, b"\xff\xff\xff\xff not deflate"),
            12 => {
                p.frame(&mut out, 0x01, b"unfinished");
                p.frame(&mut out, 0x82, b"new message");
            }
            _ => p.frame(&mut out, 0x88, b"\x03\xe8bad \xc0 reason"),
        }
        self.deliver(&out);
    }

    /// Decodes what the socket wrote, as the peer, and checks it.
    fn drain_outbound(&mut self) {
        let bytes = std::mem::take(&mut self.io.state().outbound);
        if bytes.is_empty() {
            return;
        }
        log!(
            "  socket wrote {} bytes: {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(16)]
        );
        self.peer.buf.extend_from_slice(&bytes);
        loop {
            let msg = match self.peer.decoder.decode(&mut self.peer.buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(e) => panic!("the socket wrote an invalid frame: {e:?}"),
            };
            log!("  peer got {msg:?}");
            let same_kind = |s: &Message| {
                s.is_close() == msg.is_close()
                    && s.is_pong() == msg.is_pong()
                    && s.is_ping() == msg.is_ping()
                    && (s.is_text() || s.is_binary()) == (msg.is_text() || msg.is_binary())
            };
            // Attached to a hub, a data message the peer gets may be a published one, while the
            // slot's is not handed over before the sink's next poll (which settles the slot).
            let published_maybe =
                |s: &Message| self.hub.is_some() && (s.is_text() || s.is_binary());
            if self
                .slot
                .as_ref()
                .is_some_and(|s| same_kind(s) && !published_maybe(s))
            {
                self.slot_flushed();
            }
            match &msg {
                Message::Text(_) | Message::Binary(_) => {
                    assert!(
                        !self.peer.close_seen,
                        "the socket sent data after its close frame"
                    );
                    let i = self.peer.received.len();
                    if self.sent_exact {
                        self.expect_data(i, &msg);
                    }
                    self.peer.received.push(msg);
                }
                Message::Pong(payload) => {
                    if self.peer.clean {
                        assert!(
                            self.peer.pings.contains(payload) || self.app_pongs.contains(payload),
                            "a pong that echoes no ping: {payload:?}"
                        );
                    }
                }
                Message::Ping(_) => {}
                Message::Close(_) => {
                    assert!(!self.peer.close_seen, "the socket sent two close frames");
                    self.peer.close_seen = true;
                    self.start_closing("the socket sent a close frame");
                }
            }
        }
    }

    /// The peer got `msg` as the socket's data message #`i`: it must be the one `sent` has
    /// there, or, for a message that may float past publishes, the next publish.
    fn expect_data(&mut self, i: usize, msg: &Message) {
        let data = |m: &Message| m.clone().into_data();
        let at = |sent: &[Sent], i: usize| sent.get(i).map(|s| s.msg.clone());
        match self.floats.front_mut().filter(|f| f.at == i) {
            Some(f) => {
                if at(&self.sent, i).as_ref() == Some(msg) {
                    // There it is: whatever is published from now on goes after it.
                    self.floats.pop_front();
                } else if f.past > 0 && at(&self.sent, i + 1).as_ref() == Some(msg) {
                    log!("  a publish went out before the message SplitSink held");
                    self.sent.swap(i, i + 1);
                    f.at += 1;
                    f.past -= 1;
                    if f.past == 0 && !f.open {
                        self.floats.pop_front();
                    }
                } else {
                    panic!(
                        "the socket's data message #{i} is neither the application's message \
                         {:x?} nor one of the {} published after it (next {:x?}): peer got {:x?}",
                        at(&self.sent, i).map(|m| data(&m)),
                        f.past,
                        at(&self.sent, i + 1).map(|m| data(&m)),
                        data(msg)
                    );
                }
            }
            None => {
                let expected = self.sent.get(i);
                assert!(
                    expected.is_some_and(|s| &s.msg == msg),
                    "the socket's data message #{i} is not the {}: sent {:x?}, peer got {:x?}",
                    match expected {
                        Some(s) if s.published => "one published to the hub",
                        _ => "application's",
                    },
                    expected.map(|s| data(&s.msg)),
                    data(msg)
                );
            }
        }
        if self.sent[i].published {
            self.hub_unseen = self.hub_unseen.saturating_sub(self.frame_bound(msg.len()));
        }
    }

    /// The most a data message of `len` bytes takes in the write queue: header (with a mask)
    /// and compression overhead.
    fn frame_bound(&self, len: usize) -> usize {
        let overhead = if self.deflate { len / 8 + 64 } else { 0 };
        len + 14 + overhead
    }

    // --- the hub ---

    /// Publishes a message of `len` bytes to the socket's topic (when attached).
    fn publish(&mut self, binary_msg: bool, len: usize, seed: u8) {
        if self.hub.is_none() {
            return;
        }
        let (msg, prepared) = if binary_msg {
            let data = binary(len, seed);
            (Message::binary(data.clone()), PreparedMessage::binary(data))
        } else {
            let t = text(len, seed);
            (Message::text(t.clone()), PreparedMessage::text(t))
        };
        // A socket surely still attached: open, no close either way, its IO never failed.
        let attached = match &self.mode {
            Mode::Whole(ws) => {
                let state = format!("{ws:?}");
                let io = self.io.state();
                state.contains("close_sent: false")
                    && state.contains("close_received: false")
                    && !ws.is_terminated()
                    && !io.broken
                    && !io.shut_down
            }
            _ => false,
        };
        let a = self.hub.as_mut().expect("attached");
        let queued = a.hub.publish(TOPIC, prepared);
        log!("  published {:?}: queued for {queued}", msg);
        assert!(queued <= 1, "one subscriber, {queued} deliveries");
        assert!(
            queued == 1 || !attached,
            "a publish to the topic of an open socket was not queued for it"
        );
        if queued == 0 {
            // The socket ended and left the hub: it never gets this one.
            return;
        }
        self.queued_for_socket(msg);
    }

    /// A message the hub queued for the socket (published now, or replayed from the topic's
    /// history): it goes out where it stands in `sent`.
    fn queued_for_socket(&mut self, msg: Message) {
        let a = self.hub.as_mut().expect("attached");
        a.queued += 1;
        self.hub_unseen += self.frame_bound(msg.len());
        if let Some(f) = self.floats.back_mut().filter(|f| f.open) {
            f.past += 1;
        }
        self.sent.push(Sent {
            msg,
            published: true,
        });
    }

    /// Lets the runtime run its spawned tasks (the hub's drain), without moving the clock.
    fn run_tasks(&mut self) {
        let before = self.now();
        self.rt.block_on(async {
            for _ in 0..DRAIN_YIELDS {
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(self.now(), before, "running the tasks moved the clock");
    }

    /// The end of the run: once the drain has run, a socket still open whose writes are
    /// accepted has written every published message.
    fn check_hub_delivered(&mut self) {
        if self.hub.is_none() {
            return;
        }
        self.run_tasks();
        self.drain_outbound();
        self.check_whole();
        let Mode::Whole(ws) = &self.mode else {
            unreachable!("reunited")
        };
        let state = format!("{ws:?}");
        let open = state.contains("close_sent: false")
            && state.contains("close_received: false")
            && !ws.is_terminated()
            && !self.ended
            && !self.errored
            && self.closing_since.is_none();
        let writable = {
            let io = self.io.state();
            io.credit.is_none() && !io.broken && !io.shut_down
        };
        let a = self.hub.as_ref().expect("attached");
        let stats = a.member.stats();
        log!(
            "  hub: {stats:?}, {} published, open {open}, writable {writable}",
            a.queued
        );
        assert_eq!(
            stats.dropped, 0,
            "the hub dropped a delivery under bounds never reached"
        );
        assert!(!stats.closed_as_slow);
        if !open || !writable {
            return;
        }
        assert_eq!(
            stats.queued, 0,
            "published messages still queued for an open socket whose writes are accepted, \
             after the drain ran"
        );
        assert_eq!(
            stats.delivered, a.queued,
            "not every queued publish was taken"
        );
        // The last publish and everything before it (unless the model lost track).
        let last = self.sent.iter().rposition(|s| s.published);
        if let Some(last) = last.filter(|_| self.sent_exact) {
            assert!(
                self.peer.received.len() > last,
                "published message #{last} of the socket's data never reached the peer (it got \
                 {} data messages), though the socket is open and writable and the drain ran",
                self.peer.received.len()
            );
        }
    }

    // --- the application's side ---

    /// `start_send` took `msg`.
    fn on_start_send(&mut self, msg: &Message) {
        let len = msg.len();
        let overhead = if self.deflate { len / 8 + 64 } else { 0 };
        self.largest_frame = self.largest_frame.max(len + 14 + overhead);
        if let Mode::Futures(..) = self.mode {
            // `SplitSink` keeps the item until its next poll hands it to the socket. A
            // `start_send` without `poll_ready` replaces an item still held (dropping it) or
            // follows one already handed over: which one is not observable.
            if self.slot.is_some() {
                self.sent_exact = false;
            }
            // Likewise an item taken as submitted on `Pending` (`handed_maybe`) may still be
            // held, and dropped now. Without a hub that changes no data order (the item
            // replacing it is a close frame), so only the hub's runs stop expecting it.
            if self.handed_maybe && self.hub.is_some() {
                self.sent_exact = false;
            }
            self.slot = Some(msg.clone());
        } else {
            self.on_submitted(msg);
        }
    }

    /// A sink poll of `SplitSink` returned `Ready(Ok)`: its slot went to the socket.
    fn slot_flushed(&mut self) {
        self.handed_maybe = false;
        self.settle_float();
        if let Some(msg) = self.slot.take() {
            self.on_submitted(&msg);
        }
    }

    /// A sink poll of `SplitSink` returned `Pending`: it may have handed its item to the socket
    /// before the socket's own poll waited (it hands the slot over first, then flushes), and
    /// the socket may write it from then on. Which one is not observable; the item is taken as
    /// submitted now (nothing can be submitted ahead of it: the slot goes first), and an error
    /// after this leaves the model without an exact sequence.
    fn slot_pending(&mut self) {
        // A close frame stays in the slot: taken as submitted, it would start the model's
        // close deadline before the socket has it (the socket's own close frame, once
        // written, is seen by the peer anyway).
        if let (Mode::Futures(..), Some(msg)) = (&self.mode, &self.slot) {
            if !matches!(msg, Message::Close(_)) {
                let msg = self.slot.take().expect("just seen");
                if self.hub.is_some() && (msg.is_text() || msg.is_binary()) {
                    // Until it is handed over, what is published goes out before it.
                    self.floats.push_back(Float {
                        at: self.sent.len(),
                        past: 0,
                        open: true,
                    });
                }
                self.on_submitted(&msg);
                self.handed_maybe = true;
            }
        }
    }

    /// A sink poll of `SplitSink` returned an error: the item it held was taken from its slot
    /// and either refused by the socket (an invalid close frame) or taken before a later step
    /// failed. Which one is not observable, so the model forgets it (and expects no exact
    /// sequence from here on).
    fn slot_lost(&mut self) {
        if self.slot.take().is_some() || std::mem::take(&mut self.handed_maybe) {
            self.sent_exact = false;
        }
        self.settle_float();
    }

    /// The item taken as submitted on `Pending` is known to be the socket's now (or lost): no
    /// later publish can go out before it.
    fn settle_float(&mut self) {
        if let Some(f) = self.floats.back_mut().filter(|f| f.open) {
            f.open = false;
            if f.past == 0 {
                self.floats.pop_back();
            }
        }
    }

    /// The socket has `msg`.
    fn on_submitted(&mut self, msg: &Message) {
        match msg {
            Message::Pong(p) => self.app_pongs.push(p.clone()),
            Message::Close(_) => self.start_closing("the application sent a close frame"),
            Message::Text(_) | Message::Binary(_) => self.sent.push(Sent {
                msg: msg.clone(),
                published: false,
            }),
            Message::Ping(_) => {}
        }
    }

    fn on_item(&mut self, item: Option<Result<Message, Error>>) {
        log!("  stream gave {item:?}");
        if self.ended || self.errored {
            assert!(
                item.is_none(),
                "the stream went on after its end or an error: {item:?}"
            );
            return;
        }
        match item {
            None => self.ended = true,
            Some(Err(_)) => self.errored = true,
            Some(Ok(msg)) => match &msg {
                Message::Text(_) | Message::Binary(_) => {
                    assert!(!self.got_close, "a data message after the close frame");
                    if let Message::Text(t) = &msg {
                        assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                    }
                    assert!(msg.len() <= self.max_message_size, "message over the limit");
                    let i = self.received.len();
                    if self.peer.clean && self.recv_exact {
                        assert!(
                            self.peer.sent.get(i) == Some(&msg),
                            "received message #{i} is not the one the peer sent"
                        );
                    }
                    self.received.push(msg);
                }
                Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                Message::Close(_) => {
                    assert!(!self.got_close, "two close frames from the stream");
                    self.got_close = true;
                }
            },
        }
    }

    /// Polls task `t`'s operation once; `true` if it finished.
    fn poll_task(&mut self, t: usize) -> bool {
        let Some(op) = self.tasks[t].op.take() else {
            return true;
        };
        let waker = self.tasks[t].waker.clone();
        let mut cx = Context::from_waker(&waker);
        self.tasks[t].polled_at = self.tasks[t].counter.0.load(Ordering::SeqCst);
        let registered_before = self.io.state().registered;
        let bound = self.close_deadline(t, &op);
        log!("  poll {} {:?}", self.task_name(t), op);
        let remaining = self.poll_op(op, &mut cx);
        log!(
            "    -> {}",
            if remaining.is_some() {
                "Pending"
            } else {
                "Ready"
            }
        );
        if let (Some(op), Some(deadline)) = (&remaining, bound) {
            assert!(
                self.now() < deadline + TIMER_SLACK,
                "close timeout: {} {op:?} still pending {:?} after the close deadline",
                self.task_name(t),
                self.now() - deadline
            );
        }
        self.after_poll();
        let io = self.io.state();
        let task = &mut self.tasks[t];
        match remaining {
            Some(op) => {
                task.op = Some(op);
                task.wait = Some(Wait {
                    registered: [
                        io.registered[READ] > registered_before[READ],
                        io.registered[WRITE] > registered_before[WRITE],
                    ],
                    epoch: io.ready,
                });
                false
            }
            None => {
                task.wait = None;
                true
            }
        }
    }

    /// The time by which task `t`'s `op` must be done, if we are closing.
    fn close_deadline(&self, t: usize, op: &Op) -> Option<Instant> {
        let since = self.closing_since?;
        op.closing_bounded()
            .then(|| since.max(self.tasks[t].started) + self.close_timeout)
    }

    /// One poll of `op`; what is left of it if it is still pending.
    fn poll_op(&mut self, op: Op, cx: &mut Context<'_>) -> Option<Op> {
        match op {
            Op::Next => {
                let r = match &mut self.mode {
                    Mode::Whole(ws) => Pin::new(ws).poll_next(cx),
                    Mode::Halves(_, r) => Pin::new(r).poll_next(cx),
                    Mode::Futures(_, r) => r.poll_next_unpin(cx),
                    Mode::Gone => unreachable!(),
                };
                match r {
                    Poll::Pending => {
                        assert!(
                            !self.ended && !self.errored,
                            "pending after the stream ended"
                        );
                        Some(Op::Next)
                    }
                    Poll::Ready(item) => {
                        self.on_item(item);
                        None
                    }
                }
            }
            Op::Send { msg, flush } => {
                match with_sink!(&mut self.mode, s => s.poll_ready(cx)) {
                    Poll::Pending => {
                        self.slot_pending();
                        return Some(Op::Send { msg, flush });
                    }
                    Poll::Ready(Err(e)) => {
                        log!("    poll_ready: {e}");
                        self.slot_lost();
                        return None;
                    }
                    Poll::Ready(Ok(())) => self.slot_flushed(),
                }
                match with_sink!(&mut self.mode, s => s.start_send(msg.clone())) {
                    Ok(()) => self.on_start_send(&msg),
                    Err(e) => {
                        log!("    start_send: {e}");
                        return None;
                    }
                }
                self.check_whole();
                if flush {
                    self.poll_op(Op::Flush, cx)
                } else {
                    None
                }
            }
            Op::Flush => match with_sink!(&mut self.mode, s => s.poll_flush(cx)) {
                Poll::Pending => {
                    self.slot_pending();
                    Some(Op::Flush)
                }
                Poll::Ready(r) => {
                    if r.is_ok() {
                        self.slot_flushed();
                    } else {
                        self.slot_lost();
                    }
                    None
                }
            },
            Op::Close => {
                // `SplitSink` first hands over the item it holds, which may wait (for room in
                // the socket's queue, with no deadline: no close was queued yet), including
                // one taken as submitted on `Pending` (`handed_maybe`).
                if !matches!(self.mode, Mode::Futures(..))
                    || (self.slot.is_none() && !self.handed_maybe)
                {
                    self.start_closing("the application closes");
                }
                // `WebSocket`'s `poll_close` reads until the peer's close, dropping messages.
                if !matches!(self.mode, Mode::Halves(..)) {
                    self.recv_exact = false;
                }
                match with_sink!(&mut self.mode, s => s.poll_close(cx)) {
                    Poll::Pending => {
                        self.slot_pending();
                        Some(Op::Close)
                    }
                    Poll::Ready(r) => {
                        log!("    close: {r:?}");
                        if r.is_ok() {
                            self.slot_flushed();
                        } else {
                            self.slot_lost();
                        }
                        None
                    }
                }
            }
        }
    }

    /// Checks that hold after any call into the socket.
    fn after_poll(&mut self) {
        self.check_whole();
        self.drain_outbound();
    }

    fn check_whole(&mut self) {
        let Mode::Whole(ws) = &self.mode else {
            return;
        };
        let buffered = ws.buffered_amount();
        let bound = self.high_water + self.largest_frame + CONTROL_SLACK + self.hub_unseen;
        assert!(
            buffered <= bound,
            "buffered_amount {buffered} over {bound} (high-water mark {}, largest message \
             frame {}, published and not yet received {})",
            self.high_water,
            self.largest_frame,
            self.hub_unseen
        );
        // The socket queued a close frame by itself (a violation, the peer's close).
        if format!("{ws:?}").contains("close_sent: true") {
            self.start_closing("the socket queued a close frame");
        }
    }

    /// Runs every woken task until none is left, as an executor would, then checks the tasks
    /// still waiting: none may have been owed a wake-up.
    fn settle(&mut self) {
        for _ in 0..64 {
            let woken: Vec<usize> = (0..2)
                .filter(|&t| self.tasks[t].op.is_some() && self.tasks[t].woken())
                .collect();
            if woken.is_empty() {
                break;
            }
            for t in woken {
                self.poll_task(t);
            }
        }
        for t in 0..2 {
            let task = &self.tasks[t];
            let (Some(op), Some(wait)) = (&task.op, task.wait) else {
                continue;
            };
            if task.woken() {
                continue;
            }
            let io = self.io.state();
            let owed: Vec<usize> = (0..2)
                .filter(|&d| wait.registered[d] && io.ready[d] > wait.epoch[d])
                .collect();
            drop(io);
            let deadline = self.close_deadline(t, op);
            let overdue = deadline.is_some_and(|d| self.now() >= d + TIMER_SLACK);
            if owed.is_empty() && !overdue {
                continue;
            }
            let name = self.task_name(t);
            let op_text = format!("{op:?}");
            log!("  probing {name} {op_text}: owed {owed:?}, overdue {overdue}");
            let ready = self.poll_task(t);
            assert!(
                !ready || owed.is_empty(),
                "lost wake-up: {name} {op_text} registered with the IO for {}, the IO became \
                 ready and woke its waker, yet the task was never woken; polled anyway it \
                 completes",
                if owed.contains(&READ) {
                    "reading"
                } else {
                    "writing"
                }
            );
            assert!(
                !overdue,
                "close timeout: {name} {op_text} was not woken by the close deadline \
                 (closing since {:?} ago, close_timeout {:?}); polled anyway it is {}",
                self.now() - self.closing_since.unwrap(),
                self.close_timeout,
                if ready { "ready" } else { "still pending" }
            );
        }
    }

    fn split(&mut self, futures: bool) {
        let Mode::Whole(_) = self.mode else { return };
        let Mode::Whole(ws) = std::mem::replace(&mut self.mode, Mode::Gone) else {
            unreachable!()
        };
        self.tasks[0].cancel();
        self.tasks[1].cancel();
        self.mode = if futures {
            let (w, r) = StreamExt::split(ws);
            Mode::Futures(w, r)
        } else {
            let (w, r) = ws.split();
            Mode::Halves(w, r)
        };
    }

    fn reunite(&mut self) {
        if let Some(msg) = self.slot.take() {
            // `SplitSink` may still hold it (reuniting drops it) or may have handed it over.
            // A data message it took since its last poll is still held (only a poll of the
            // sink hands it over, and each one settles the slot): dropped, never submitted;
            // with a hub, the model stays exact for what is published.
            if !(self.hub.is_some() && (msg.is_text() || msg.is_binary())) {
                self.sent_exact = false;
            }
        }
        if std::mem::take(&mut self.handed_maybe) {
            // Taken as submitted on `Pending`, it may still be in `SplitSink`, which drops it.
            self.sent_exact = false;
        }
        self.settle_float();
        self.tasks[0].cancel();
        self.tasks[1].cancel();
        self.mode = match std::mem::replace(&mut self.mode, Mode::Gone) {
            Mode::Halves(w, r) => Mode::Whole(r.reunite(w).expect("halves of one socket")),
            Mode::Futures(w, r) => Mode::Whole(r.reunite(w).ok().expect("halves of one socket")),
            whole => whole,
        };
        self.check_whole();
    }

    fn app_message(&self, r: &mut Reader<'_>) -> Message {
        let kind = r.u8();
        let seed = r.u8();
        match kind % 5 {
            0 => Message::text(text(usize::from(r.u16()), seed)),
            1 => Message::binary(binary(usize::from(r.u16()), seed)),
            2 => Message::text(text(usize::from(r.u8()), seed)),
            3 => Message::Ping(binary(usize::from(r.u8() % 130), seed).into()),
            _ => Message::Pong(binary(usize::from(r.u8() % 130), seed).into()),
        }
    }

    fn close_frame(r: &mut Reader<'_>) -> Option<CloseFrame> {
        let c = r.u8();
        let len = usize::from(r.u8() % 130);
        if c == 0 {
            return None;
        }
        let code = CODES[usize::from(c) % CODES.len()];
        let reason: String = text(len, c).chars().take(len).collect();
        Some(CloseFrame::new(CloseCode::from(code), reason))
    }

    /// One step of the script: an opcode byte (taken modulo `OPS`, 30), then its arguments.
    ///
    /// | op | step | arguments |
    /// |----|------|-----------|
    /// | 0 | the peer sends raw bytes | length, bytes |
    /// | 1, 2 | the peer sends a text / binary message | length (u16), seed, how (bits 0-1 fragments - 1, 0x10 a ping between fragments, 0x20 compressed) |
    /// | 3 | ping flood | count / 4, payload size |
    /// | 4 | the peer's close frame | code index (0: no payload), reason length |
    /// | 5 | a malformed frame | kind |
    /// | 6 | an unsolicited pong | size |
    /// | 7 | the peer closes its side (EOF) | |
    /// | 8, 9 | reads return `Pending` / become ready again | |
    /// | 10 | writes accept n more bytes | n (u16) |
    /// | 11, 12 | writes accept everything / nothing | |
    /// | 13 | the connection breaks (every call fails) | |
    /// | 14 | the application polls `next()` once | |
    /// | 15, 16 | `feed` / `send` a message | kind, seed, size |
    /// | 17 | close: `Sink::poll_close`, `close(code, reason)` or `send(Close)` | how, code index, reason length |
    /// | 18 | `flush` | |
    /// | 19 | drop a task's pending future | task (bit 0) |
    /// | 20 | advance the clock | index into `DURATIONS_MS`, or n × 97 ms |
    /// | 21 | split: the crate's (even) or `StreamExt::split` (odd) | which |
    /// | 22 | reunite the halves | |
    /// | 23 | poll a task's pending future again | task (bit 0) |
    /// | 24 | settle: run woken tasks, then check wake-ups and close deadlines | |
    /// | 25 | reads return at most n bytes (0: no limit) | n |
    /// | 26 | the application sends a ping | size |
    /// | 27 | `while let Some(msg) = next()`: poll until it waits | count / 4 |
    /// | 28 | the hub publishes to the socket's topic (attached only) | kind (bit 0 binary, bit 1 size u16), seed, size (u8, or u16 with bit 1) |
    /// | 29 | the runtime runs its spawned tasks: the hub's drain (attached only) | |
    fn step(&mut self, r: &mut Reader<'_>) {
        let op = r.u8();
        log!("step {op} (at {:?})", self.now() - self.start);
        match op % OPS {
            0 => {
                let n = usize::from(r.u8());
                let bytes = r.bytes(n).to_vec();
                self.peer.clean = false;
                self.deliver(&bytes);
            }
            1 | 2 => {
                let len = usize::from(r.u16());
                let seed = r.u8();
                let how = r.u8();
                let msg = if op % OPS == 1 {
                    Message::text(text(len, seed))
                } else {
                    Message::binary(binary(len, seed))
                };
                let compress = how & 0x20 != 0 && self.peer.deflater.is_some();
                self.deliver_message(msg, usize::from(how & 3) + 1, how & 0x10 != 0, compress);
            }
            3 => {
                // A ping flood.
                let count = 1 + usize::from(r.u8()) * 4;
                let size = usize::from(r.u8() % 126);
                let mut out = Vec::new();
                for i in 0..count {
                    let payload = binary(size, i as u8);
                    self.peer.frame(&mut out, 0x89, &payload);
                    self.peer.pings.push(payload.into());
                }
                self.deliver(&out);
            }
            4 => {
                let mut out = Vec::new();
                let payload = match Self::close_frame(r) {
                    None => Vec::new(),
                    Some(f) => {
                        if !f.code.is_sendable() || f.reason.len() > 123 {
                            self.peer.clean = false;
                        }
                        let mut p = f.code.as_u16().to_be_bytes().to_vec();
                        p.extend_from_slice(f.reason.as_bytes());
                        p.truncate(125);
                        p
                    }
                };
                self.peer.frame(&mut out, 0x88, &payload);
                self.deliver(&out);
            }
            5 => {
                let kind = r.u8();
                self.deliver_bad(kind);
            }
            6 => {
                let size = usize::from(r.u8() % 126);
                let mut out = Vec::new();
                self.peer.frame(&mut out, 0x8a, &binary(size, 7));
                self.deliver(&out);
            }
            7 => {
                self.peer.eof = true;
                let mut s = self.io.state();
                s.eof = true;
                s.read_changed();
            }
            8 => self.io.state().read_blocked = true,
            9 => {
                let mut s = self.io.state();
                s.read_blocked = false;
                s.read_changed();
            }
            10 => {
                let n = usize::from(r.u16());
                let mut s = self.io.state();
                s.credit = Some(s.credit.map_or(n, |c| c + n));
                s.write_changed();
            }
            11 => {
                let mut s = self.io.state();
                s.credit = None;
                s.write_changed();
            }
            12 => self.io.state().credit = Some(0),
            13 => {
                let mut s = self.io.state();
                s.broken = true;
                s.fire(READ);
                s.fire(WRITE);
            }
            14 => {
                let t = self.read_task();
                if !matches!(self.tasks[t].op, Some(Op::Next)) {
                    self.tasks[t].set_op(Op::Next);
                }
                self.poll_task(t);
            }
            15 | 16 => {
                let msg = self.app_message(r);
                self.tasks[0].set_op(Op::Send {
                    msg,
                    flush: op % OPS == 16,
                });
                self.poll_task(0);
            }
            17 => {
                let how = r.u8();
                let frame = Self::close_frame(r);
                match how % 3 {
                    // `Sink::poll_close`.
                    0 => self.tasks[0].set_op(Op::Close),
                    // `WebSocket::close(code, reason)`: queue the frame, then close.
                    1 => {
                        let queued = with_sink!(&mut self.mode, s => s.start_send(Message::Close(frame.clone())));
                        if queued.is_ok() {
                            self.on_start_send(&Message::Close(frame));
                        }
                        self.tasks[0].set_op(Op::Close);
                    }
                    // `send(Message::Close(..))`.
                    _ => self.tasks[0].set_op(Op::Send {
                        msg: Message::Close(frame),
                        flush: true,
                    }),
                }
                self.poll_task(0);
            }
            18 => {
                self.tasks[0].set_op(Op::Flush);
                self.poll_task(0);
            }
            19 => {
                let t = usize::from(r.u8() & 1);
                self.tasks[t].cancel();
            }
            20 => {
                let d = r.u8();
                let ms = match DURATIONS_MS.get(usize::from(d)) {
                    Some(&ms) => ms,
                    None => u64::from(d) * 97,
                };
                self.rt
                    .block_on(tokio::time::advance(Duration::from_millis(ms)));
            }
            21 => {
                let futures = r.u8() & 1 != 0;
                self.split(futures);
            }
            22 => self.reunite(),
            23 => {
                let t = usize::from(r.u8() & 1);
                self.poll_task(t);
            }
            24 => self.settle(),
            25 => self.io.state().read_chunk = usize::from(r.u8() % 17),
            28 => {
                let kind = r.u8();
                let seed = r.u8();
                let len = if kind & 2 != 0 {
                    usize::from(r.u16())
                } else {
                    usize::from(r.u8())
                };
                self.publish(kind & 1 != 0, len, seed);
            }
            29 => {
                if self.hub.is_some() {
                    self.run_tasks();
                }
            }
            27 => {
                // `while let Some(msg) = ws.next().await`: receive until it would wait.
                let count = 1 + usize::from(r.u8()) * 4;
                let t = self.read_task();
                for _ in 0..count {
                    if !matches!(self.tasks[t].op, Some(Op::Next)) {
                        self.tasks[t].set_op(Op::Next);
                    }
                    if !self.poll_task(t) || self.ended || self.errored {
                        break;
                    }
                }
            }
            _ => {
                let size = usize::from(r.u8() % 126);
                let t = self.read_task();
                // Let the read side run a little too, as a select! loop would.
                self.tasks[0].set_op(Op::Send {
                    msg: Message::Ping(binary(size, 1).into()),
                    flush: true,
                });
                self.poll_task(0);
                if t != 0 && self.tasks[t].op.is_some() {
                    self.poll_task(t);
                }
            }
        }
        self.drain_outbound();
        self.check_whole();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let setup = Setup::from(&mut r);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let _entered = rt.enter();

    let io = Io::default();
    io.state().vectored = setup.vectored;
    let mut ws = match setup.deflate {
        Some(agreed) => websocket_with_deflate(io.clone(), setup.role, &setup.config, Some(agreed)),
        None => WebSocket::from_raw(io.clone(), setup.role, &setup.config),
    };
    // With a history, what was published before the socket attached and is replayed to it.
    let replayed = if setup.replay {
        vec![
            (
                Message::text(text(20, 1)),
                PreparedMessage::text(text(20, 1)),
            ),
            (
                Message::binary(binary(200, 2)),
                PreparedMessage::binary(binary(200, 2)),
            ),
        ]
    } else {
        Vec::new()
    };
    let hub = setup.hub.then(|| {
        // Bounds no script reaches (400 publishes of at most 64 KiB): nothing is dropped.
        let mut builder = Hub::builder()
            .queue_limits(1 << 20, 1 << 30)
            .overflow(Overflow::DropOldest)
            .drains(1);
        if setup.replay {
            builder = builder.history(TOPIC, History::new(16, Duration::from_secs(3600)));
        }
        let hub = builder.build();
        let mut since = None;
        for (_, prepared) in &replayed {
            let at = hub.publish_with(TOPIC, |_| prepared.clone()).position;
            since.get_or_insert(Position {
                offset: at.offset - 1,
                ..at
            });
        }
        let member = hub.attach(&mut ws);
        let subscribed = member.subscribe_since(TOPIC, since).expect("subscribed");
        assert!(subscribed.recovered, "{subscribed:?}");
        assert_eq!(subscribed.replayed, replayed.len() as u64);
        Attached {
            hub,
            member,
            queued: 0,
        }
    });
    let peer_role = match setup.role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut decoder = FrameDecoder::new(peer_role, usize::MAX, usize::MAX, false);
    if let Some(agreed) = &setup.deflate {
        // The peer inflates what the socket sends: the server's settings if it is the server.
        decoder.set_inflater(Inflater::new(agreed, setup.role == Role::Server));
    }
    let peer = Peer {
        masks: setup.role == Role::Server,
        key: 0x1234_5678,
        // The peer compresses with the settings of its own role.
        deflater: setup
            .deflate
            .map(|agreed| Deflater::new(&agreed, setup.role == Role::Client)),
        clean: true,
        sent: Vec::new(),
        pings: Vec::new(),
        delivered: 0,
        eof: false,
        decoder,
        buf: BytesMut::new(),
        received: Vec::new(),
        close_seen: false,
    };
    let config = &setup.config;
    let mut h = Harness {
        rt: &rt,
        start: Instant::now(),
        io,
        mode: Mode::Whole(ws),
        tasks: [Task::new(), Task::new()],
        peer,
        max_message_size: config.max_message_size.unwrap_or(usize::MAX),
        close_timeout: config.close_timeout,
        high_water: config.max_write_buffer_size.max(config.write_buffer_size),
        largest_frame: 0,
        deflate: setup.deflate.is_some(),
        sent: Vec::new(),
        floats: VecDeque::new(),
        slot: None,
        sent_exact: true,
        app_pongs: Vec::new(),
        handed_maybe: false,
        closing_since: None,
        received: Vec::new(),
        recv_exact: true,
        got_close: false,
        errored: false,
        ended: false,
        hub,
        hub_unseen: 0,
    };
    for (msg, _) in replayed {
        h.queued_for_socket(msg);
    }
    let mut steps = 0;
    while !r.0.is_empty() && steps < MAX_STEPS {
        h.step(&mut r);
        steps += 1;
    }
    h.settle();
    h.reunite();
    h.check_hub_delivered();
});
