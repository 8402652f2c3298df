//! A bounded soak test: a few thousand WebSocket connections of every kind against hyper
//! servers, then checks that nothing was lost, nothing is left and the heap went back to idle.
//!
//! ```text
//! cargo test --release --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! It takes about 60 s on 2 cores (a hard deadline fails it before 2 minutes). The seed is printed
//! first; `SOAK_SEED=<seed>` replays a run (the connection plans, payloads and schedule; not the
//! thread interleavings), and `SOAK_SEED=<seed> SOAK_REPLAY=<id>,<id>` with the test filter
//! `replay` runs single connections of it alone, printing their plans.
//!
//! What runs, all on 127.0.0.1:
//!
//! - Two rounds of runtimes (2 server workers, 2 client workers each). Round 1 is a warm-up
//!   whose runtimes are dropped again, so that every lazily initialised global exists before
//!   the heap baseline is taken.
//! - Round 2: server A (`WebSocketLayer` + `Shutdown`) gets a warm-up, then phase 1: about 1,500
//!   connections, with bursts up to several hundred open at once, ending in a graceful shutdown
//!   while hundreds are open (they get 1001; late comers get 503). Then server B (plain hyper with
//!   `Shutdown::upgrade`, three permessage-deflate policies chosen by the request) gets phase 2:
//!   about 1,300 connections.
//! - Servers echo text and binary messages; four handler shapes (`send`, `feed`, the crate's
//!   `split`, `futures_util::StreamExt::split`); a text `close-me` makes the server close with
//!   4000. Every server has a 64 KiB write high-water mark, a 1 s close timeout and 1 s keepalive
//!   pings (2 s pong timeout).
//! - Clients, picked per connection by a seeded RNG: `tokio-tungstenite`, a raw frame client in
//!   this file (with or without permessage-deflate, using flate2), and tower-ws itself as a client
//!   (`WebSocket::from_raw` with `Role::Client`, split into two halves). Messages of 0 B to
//!   256 KiB, text (with multi-byte characters cut across fragments) and binary, compressible or
//!   not, fragmented (with pings between fragments), pings, pauses, slow readers, ping floods
//!   from a client that does not read, a client that never reads (keepalive failure), client
//!   closes, server closes (answered or ignored), and abrupt drops (FIN, RST, mid-frame).
//!
//! Afterwards it asserts that every echo came back intact and in order (all of them on a
//! connection that ended with its planned close handshake, a prefix otherwise), that every
//! connection ended with a close code or a drop its own client caused, that no server or
//! client task is left, that a socket's write buffer stayed under its high-water mark plus one
//! message, and that the live heap went back to its idle level: with the runtimes still up,
//! within what the per-thread pools may keep; with them dropped (their threads' pools gone),
//! within 1 MiB of the level before the run. Everything is bounded: each
//! connection has its own time budget, the whole run a deadline (it then prints the stuck
//! connections and fails), and a watchdog thread ends the process if even that does not return.

mod support;

use std::alloc::System;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tower::Layer;
use tower_ws::{
    CloseCode, CloseFrame, Config, DeflateConfig, ErrorKind, Message, Role, Shutdown,
    UpgradedWebSocket, WebSocket, WebSocketLayer,
};

/// Counts every allocation of the process: the live heap is allocated minus freed bytes.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_heap() -> usize {
    let s = GLOBAL.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}

// ---------------------------------------------------------------------------------------------
// Limits of the run
// ---------------------------------------------------------------------------------------------

/// The largest message any client sends.
const MAX_MSG: usize = 256 << 10;
/// The most one message can take on the wire: compressed, incompressible data grows (zlib-rs
/// at level 1 writes static Huffman blocks, whose literal codes are at most 9 bits: 9/8), plus
/// frame headers.
const MAX_ENCODED_MSG: usize = MAX_MSG * 9 / 8 + 1024;
/// Server `write_buffer_size` and `max_write_buffer_size` (the high-water mark).
const WRITE_BUFFER: usize = 16 << 10;
const MAX_WRITE_BUFFER: usize = 64 << 10;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
const PING_INTERVAL: Duration = Duration::from_secs(1);
const PONG_TIMEOUT: Duration = Duration::from_secs(2);
/// Client connections open at once, at most.
const MAX_OPEN: usize = 1000;
/// Round 2 as a whole (warm-up, both phases, the idle checks).
const RUN_DEADLINE: Duration = Duration::from_secs(110);
/// Round 1, the warm-up whose runtimes are dropped.
const WARM_DEADLINE: Duration = Duration::from_secs(30);
/// Last resort if a runtime cannot even be shut down: print what is stuck and exit.
const WATCHDOG: Duration = Duration::from_secs(170);
/// How long a server may take to become idle (no task) once its clients are done.
const IDLE_WAIT: Duration = Duration::from_secs(6);
/// Pings a flooding client sends at most.
const MAX_FLOOD_PINGS: u32 = 60_000;
/// RFC 7692 §7.2.1: the tail every sync flush ends with, removed by the sender.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Worker threads whose thread-local pools can hold tower-ws buffers: 2 server workers and 2
/// client workers (tower-ws is a client there too). The test thread runs no socket.
const POOL_THREADS: usize = 4;
/// `src/socket/read_pool.rs`: up to 16 idle read buffers per thread, at most 4 MiB each and
/// 8 MiB of allocation together (its `BUDGET`).
const READ_POOL_PER_THREAD: usize = 8 << 20;
/// `src/deflate/codec.rs`: up to 8 compressors and 8 decompressors per thread. zlib's own
/// formula (zconf.h) for deflate is 2^(windowBits + 2) + 2^(memLevel + 9) = 256 KiB with 15-bit
/// windows and memLevel 8, for inflate 2^windowBits plus about 7 KiB; taken as 400 KiB and
/// 64 KiB to leave room for zlib-rs's own layout.
const CODEC_POOL_PER_THREAD: usize = 8 * (400 << 10) + 8 * (64 << 10);
/// Allocator-visible runtime state that may grow with the peak load and stay: tokio's
/// per-worker run queues and timer wheel, hyper's and tokio's bookkeeping.
const RUNTIME_SLACK: usize = 8 << 20;
/// After the runtimes are dropped their threads' pools are gone: what may remain then is
/// bookkeeping that does not scale with connections. 1 MiB over ~3,000 connections catches
/// any leak of more than ~350 bytes per connection.
const LEAK_SLACK: usize = 1 << 20;

// Connection ids of each part of the run.
const WARM1: Range<usize> = 0..80;
const WARM2: Range<usize> = 80..160;
const P1_NORMAL: Range<usize> = 160..860;
const P1_BURST_A: Range<usize> = 860..1010;
const P1_BURST_B: Range<usize> = 1010..1660;
const P1_LATE: Range<usize> = 1660..1680;
const P2_NORMAL: Range<usize> = 1680..2480;
const P2_BURST: Range<usize> = 2480..2980;
const TOTAL: usize = 2980;

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

/// `SplitMix64`: small, fast and good enough to pick plans and fill payloads.
#[derive(Clone, Debug)]
struct Rng(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn new(seed: u64) -> Self {
        Self(mix(seed ^ 0x5851_f42d_4c95_7f2d))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, weighted: &[(T, u64)]) -> T {
        let total: u64 = weighted.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for &(item, w) in weighted {
            if at < w {
                return item;
            }
            at -= w;
        }
        weighted[weighted.len() - 1].0
    }
}

fn soak_seed() -> u64 {
    if let Ok(s) = std::env::var("SOAK_SEED") {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        };
        return parsed.unwrap_or_else(|_| panic!("SOAK_SEED={s:?} is not a number"));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix(nanos ^ u64::from(std::process::id())) >> 16
}

// ---------------------------------------------------------------------------------------------
// Connection plans
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Tungstenite,
    Raw,
    RawDeflate,
    TowerWs,
}

impl Client {
    const ALL: [Self; 4] = [
        Self::Tungstenite,
        Self::Raw,
        Self::RawDeflate,
        Self::TowerWs,
    ];

    fn is_raw(self) -> bool {
        matches!(self, Self::Raw | Self::RawDeflate)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `recv` then `send` (flushes each echo).
    Echo,
    /// `recv` then `feed` (the stream writes echoes before it waits for the peer).
    Feed,
    /// The crate's `WebSocket::split`, a reader and a writer task.
    Split,
    /// `futures_util::StreamExt::split`, a reader and a writer task.
    FuturesSplit,
}

impl Route {
    const ALL: [Self; 4] = [Self::Echo, Self::Feed, Self::Split, Self::FuturesSplit];

    fn path(self) -> &'static str {
        match self {
            Self::Echo => "/echo",
            Self::Feed => "/feed",
            Self::Split => "/split",
            Self::FuturesSplit => "/futures-split",
        }
    }

    fn from_path(path: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.path() == path)
            .unwrap_or(Self::Echo)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Send messages (with pauses, pings, fragments), read the echoes, end.
    Echo,
    /// A few small messages, then stay open (answering keepalive pings), then end.
    Hold,
    /// Write a lot while not reading for a while: the server hits its high-water mark.
    SlowReader,
    /// Flood pings without reading (raw clients), then read everything and close.
    PingFlood,
    /// Never read nor write: the server's keepalive must fail it with 1008.
    DeadPeer,
    /// Ask the server to close, then neither read nor answer: its close timer must end it.
    CloseMeIgnored,
}

impl Scenario {
    const ALL: [Self; 6] = [
        Self::Echo,
        Self::Hold,
        Self::SlowReader,
        Self::PingFlood,
        Self::DeadPeer,
        Self::CloseMeIgnored,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Wait for every echo, then close with 1000.
    Close,
    /// Close with 1000 right after the last message (sequential server handlers only).
    CloseEager,
    /// Send `close-me`; the server closes with 4000.
    CloseMe,
    /// Drop the TCP connection after `after` messages (RST instead of FIN with `rst`).
    Drop { after: usize, rst: bool },
    /// Drop in the middle of a frame (raw clients).
    DropMidFrame { rst: bool },
}

impl Ending {
    fn index(self) -> usize {
        match self {
            Self::Close => 0,
            Self::CloseEager => 1,
            Self::CloseMe => 2,
            Self::Drop { .. } => 3,
            Self::DropMidFrame { .. } => 4,
        }
    }

    fn rst(self) -> bool {
        matches!(
            self,
            Self::Drop { rst: true, .. } | Self::DropMidFrame { rst: true }
        )
    }
}

const ENDING_NAMES: [&str; 5] = ["close", "close-eager", "close-me", "drop", "drop-mid-frame"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Warm,
    Normal,
    Burst { hold_min: u64, hold_max: u64 },
    Late,
}

#[derive(Clone, Debug)]
struct MsgSpec {
    text: bool,
    len: usize,
    seed: u64,
    /// 1: a single frame.
    frags: u64,
    ping_before: bool,
    /// A ping between the first and the second fragment.
    ping_inside: bool,
    /// Compressed (raw deflate clients only).
    compress: bool,
    pause_ms: u64,
}

#[derive(Clone, Debug)]
struct Plan {
    id: usize,
    mode: Mode,
    client: Client,
    route: Route,
    /// Server B's deflate policy, see [`server_config`].
    cfg: u8,
    scenario: Scenario,
    ending: Ending,
    msgs: Vec<MsgSpec>,
    /// Before the first read.
    read_delay_ms: u64,
    /// After the last echo, before the ending.
    hold_ms: u64,
    flood_ms: u64,
    /// Client compression level (raw deflate).
    level: u32,
    frag_seed: u64,
}

fn random_len(rng: &mut Rng) -> usize {
    let len = match rng.below(100) {
        0..10 => 0,
        10..50 => rng.range(1, 125),
        50..75 => rng.range(126, 4096),
        75..90 => rng.range(4097, 65_535),
        90..97 => rng.range(65_536, 200_000),
        _ => rng.range(200_001, MAX_MSG as u64),
    };
    len as usize
}

impl Plan {
    fn new(seed: u64, id: usize, mode: Mode) -> Self {
        let mut rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0xd6e8_feb8_6659_fd93));
        let mut client = rng.pick(&[
            (Client::Tungstenite, 30),
            (Client::Raw, 25),
            (Client::RawDeflate, 30),
            (Client::TowerWs, 15),
        ]);
        let route = rng.pick(&[
            (Route::Echo, 35),
            (Route::Feed, 25),
            (Route::Split, 20),
            (Route::FuturesSplit, 20),
        ]);
        let cfg = rng.below(3) as u8;
        let scenario = match mode {
            Mode::Warm => rng.pick(&[
                (Scenario::Echo, 75),
                (Scenario::Hold, 15),
                (Scenario::SlowReader, 10),
            ]),
            Mode::Normal => rng.pick(&[
                (Scenario::Echo, 58),
                (Scenario::Hold, 18),
                (Scenario::SlowReader, 8),
                (Scenario::PingFlood, 6),
                (Scenario::DeadPeer, 4),
                (Scenario::CloseMeIgnored, 6),
            ]),
            Mode::Burst { .. } => Scenario::Hold,
            Mode::Late => Scenario::Echo,
        };
        let raw_only = matches!(
            scenario,
            Scenario::PingFlood | Scenario::DeadPeer | Scenario::CloseMeIgnored
        );
        if raw_only && !client.is_raw() {
            client = if rng.chance(50) {
                Client::Raw
            } else {
                Client::RawDeflate
            };
        }
        let count = match (mode, scenario) {
            (Mode::Late, _) => 1,
            (_, Scenario::Echo) => rng.range(1, 12),
            (_, Scenario::Hold | Scenario::CloseMeIgnored) => rng.range(1, 4),
            (_, Scenario::SlowReader) => rng.range(16, 40),
            (_, Scenario::PingFlood) => 2,
            (_, Scenario::DeadPeer) => 0,
        } as usize;
        let small = matches!(mode, Mode::Burst { .. } | Mode::Late)
            || matches!(
                scenario,
                Scenario::Hold | Scenario::PingFlood | Scenario::CloseMeIgnored
            );
        let can_fragment = client != Client::TowerWs;
        let msgs = (0..count)
            .map(|_| {
                let len = if scenario == Scenario::SlowReader {
                    rng.range(8 << 10, 64 << 10) as usize
                } else if small {
                    rng.range(0, 2048) as usize
                } else {
                    random_len(&mut rng)
                };
                let frags = if can_fragment && rng.chance(20) {
                    rng.range(2, 6)
                } else {
                    1
                };
                MsgSpec {
                    text: rng.chance(50),
                    len,
                    seed: rng.next(),
                    frags,
                    ping_before: rng.chance(10),
                    ping_inside: frags > 1 && rng.chance(30),
                    compress: client == Client::RawDeflate && rng.chance(80),
                    pause_ms: if mode == Mode::Normal && scenario == Scenario::Echo && rng.chance(4)
                    {
                        rng.range(100, 1500)
                    } else {
                        0
                    },
                }
            })
            .collect();
        let ending = match scenario {
            _ if mode == Mode::Late => Ending::Close,
            Scenario::Echo | Scenario::Hold => {
                let rst = rng.chance(50);
                match rng.pick(&[(0u8, 45), (1, 10), (2, 25), (3, 15), (4, 5)]) {
                    1 if matches!(route, Route::Echo | Route::Feed) => Ending::CloseEager,
                    0 | 1 => Ending::Close,
                    2 => Ending::CloseMe,
                    3 => Ending::Drop {
                        after: rng.below(count as u64 + 1) as usize,
                        rst,
                    },
                    _ if client.is_raw() => Ending::DropMidFrame { rst },
                    _ => Ending::Drop { after: count, rst },
                }
            }
            Scenario::SlowReader => {
                if rng.chance(60) {
                    Ending::Close
                } else {
                    Ending::CloseMe
                }
            }
            Scenario::CloseMeIgnored => Ending::CloseMe,
            Scenario::PingFlood | Scenario::DeadPeer => Ending::Close,
        };
        let flood_ms = if scenario == Scenario::PingFlood {
            rng.range(800, 1800)
        } else {
            0
        };
        let read_delay_ms = match scenario {
            Scenario::SlowReader => rng.range(800, 2000),
            // It closes right after the flood: it must start reading well within the server's
            // 1 s close timeout, or the server rightly gives up on the close handshake.
            Scenario::PingFlood => flood_ms + rng.range(200, 600),
            Scenario::CloseMeIgnored => rng.range(2200, 3000),
            Scenario::DeadPeer => rng.range(5000, 5600),
            Scenario::Echo | Scenario::Hold => 0,
        };
        let hold_ms = match (mode, scenario) {
            (Mode::Burst { hold_min, hold_max }, _) => rng.range(hold_min, hold_max),
            (Mode::Warm, Scenario::Hold) => rng.range(0, 500),
            (_, Scenario::Hold) => rng.range(500, 4000),
            _ => 0,
        };
        Self {
            id,
            mode,
            client,
            route,
            cfg,
            scenario,
            ending,
            msgs,
            read_delay_ms,
            hold_ms,
            flood_ms,
            level: if rng.chance(50) { 1 } else { 6 },
            frag_seed: rng.next(),
        }
    }

    /// The most this connection may take before it counts as stuck.
    fn budget(&self) -> Duration {
        let pauses: u64 = self.msgs.iter().map(|m| m.pause_ms).sum();
        Duration::from_millis(15_000 + self.read_delay_ms + self.hold_ms + self.flood_ms + pauses)
    }

    fn describe(&self) -> String {
        format!(
            "#{} {:?} {:?} {} cfg{} {:?} {:?}, {} msgs ({} B), delay {} ms, hold {} ms",
            self.id,
            self.client,
            self.mode,
            self.route.path(),
            self.cfg,
            self.scenario,
            self.ending,
            self.msgs.len(),
            self.msgs.iter().map(|m| m.len).sum::<usize>(),
            self.read_delay_ms,
            self.hold_ms,
        )
    }
}

/// The payload of a message: valid UTF-8 for text (with 2-, 3- and 4-byte characters), exactly
/// `spec.len` bytes, compressible (repeated words) for even seeds and random for odd ones.
fn payload(spec: &MsgSpec) -> Vec<u8> {
    const WORDS: &[u8] = b"the quick brown fox jumps over the lazy dog; ";
    let mut rng = Rng::new(spec.seed);
    let compressible = spec.seed & 1 == 0;
    let mut out = Vec::with_capacity(spec.len);
    if spec.text {
        while out.len() < spec.len {
            let left = spec.len - out.len();
            match rng.below(48) {
                0 if left >= 4 => out.extend_from_slice("🦀".as_bytes()),
                1 if left >= 3 => out.extend_from_slice("€".as_bytes()),
                2 if left >= 2 => out.extend_from_slice("é".as_bytes()),
                _ if compressible => out.push(WORDS[out.len() % WORDS.len()]),
                _ => out.push(b' ' + rng.below(95) as u8),
            }
        }
    } else if compressible {
        out.extend((0..spec.len).map(|i| WORDS[i % WORDS.len()] ^ (i >> 12) as u8));
    } else {
        while out.len() < spec.len {
            let word = rng.next().to_le_bytes();
            let take = word.len().min(spec.len - out.len());
            out.extend_from_slice(&word[..take]);
        }
    }
    out
}

fn check_echo(spec: &MsgSpec, index: usize, text: bool, got: &[u8]) -> Result<(), String> {
    let kind = |t: bool| if t { "text" } else { "binary" };
    if text != spec.text {
        return Err(format!(
            "echo #{index}: sent {} of {} B, got {} of {} B",
            kind(spec.text),
            spec.len,
            kind(text),
            got.len()
        ));
    }
    let want = payload(spec);
    if got.len() != want.len() {
        return Err(format!(
            "echo #{index} ({}): got {} B, sent {} B",
            kind(text),
            got.len(),
            want.len()
        ));
    }
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        return Err(format!(
            "echo #{index} ({} of {} B): corrupted from byte {at}",
            kind(text),
            want.len()
        ));
    }
    Ok(())
}

/// Ping payloads carry their index so pongs can be checked: `P` + index for a single ping,
/// `F` + index + 95 filler bytes for a flood ping.
fn ping_payload(index: u32, flood: bool) -> Bytes {
    let mut p = Vec::with_capacity(100);
    p.push(if flood { b'F' } else { b'P' });
    p.extend_from_slice(&index.to_be_bytes());
    if flood {
        p.extend((0..95u8).map(|i| (index as u8).wrapping_add(i)));
    }
    Bytes::from(p)
}

fn check_pong(payload: &[u8], last: &mut Option<u32>, sent: u32) -> Result<(), String> {
    let (Some(&tag), Some(index)) = (payload.first(), payload.get(1..5)) else {
        return Err(format!("pong with a payload we never sent: {payload:?}"));
    };
    let index = u32::from_be_bytes(index.try_into().expect("4 bytes"));
    if payload != &ping_payload(index, tag == b'F')[..] {
        return Err(format!("pong #{index} with a corrupted payload"));
    }
    if index >= sent {
        return Err(format!("pong #{index} before its ping was sent"));
    }
    if last.is_some_and(|l| index <= l) {
        return Err(format!("pong #{index} after pong #{last:?}: out of order"));
    }
    *last = Some(index);
    Ok(())
}

/// Cuts `data` into `n` pieces at random places (pieces may be empty).
fn cut(data: &Bytes, n: u64, rng: &mut Rng) -> Vec<Bytes> {
    let mut points: Vec<usize> = (1..n)
        .map(|_| rng.below(data.len() as u64 + 1) as usize)
        .collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(n as usize);
    let mut start = 0;
    for p in points {
        pieces.push(data.slice(start..p));
        start = p;
    }
    pieces.push(data.slice(start..));
    pieces
}

// ---------------------------------------------------------------------------------------------
// Shared state: per-connection slots, counters, failures
// ---------------------------------------------------------------------------------------------

// Stages, for the report on stuck connections.
const ST_CONNECTING: u8 = 1;
const ST_HANDSHAKE: u8 = 2;
const ST_SENDING: u8 = 3;
const ST_WAIT_ECHOES: u8 = 4;
const ST_HOLDING: u8 = 5;
const ST_CLOSING: u8 = 6;
const ST_FLOODING: u8 = 7;
const ST_NOT_READING: u8 = 8;
const ST_READING: u8 = 9;
const ST_AWAIT_EOF: u8 = 10;
const ST_DONE: u8 = 11;
const ST_SERVER_ECHO: u8 = 12;
const ST_SERVER_CLOSING: u8 = 13;
const ST_SERVER_DRAINING: u8 = 14;
const STAGES: [&str; 15] = [
    "-",
    "connecting",
    "handshake",
    "sending",
    "waiting for echoes",
    "holding",
    "closing",
    "flooding",
    "not reading yet",
    "reading",
    "awaiting EOF",
    "done",
    "echoing",
    "closing (close-me)",
    "draining after close",
];

struct Slot {
    started: AtomicBool,
    done: AtomicBool,
    /// Client, route, scenario, ending as indexes.
    desc: AtomicU32,
    writer: AtomicU8,
    reader: AtomicU8,
    server: AtomicU8,
    sent: AtomicU32,
    echoed: AtomicU32,
    /// The last error a server handler saw, an index into [`ERROR_KINDS`] (`u8::MAX`: none).
    server_error: AtomicU8,
}

const ERROR_KINDS: [ErrorKind; 16] = [
    ErrorKind::Io,
    ErrorKind::BadMasking,
    ErrorKind::ReservedBits,
    ErrorKind::ReservedOpcode,
    ErrorKind::BadControlFrame,
    ErrorKind::BadFragmentation,
    ErrorKind::BadClosePayload,
    ErrorKind::InvalidUtf8,
    ErrorKind::FrameTooLarge,
    ErrorKind::MessageTooLarge,
    ErrorKind::BadCompression,
    ErrorKind::KeepaliveTimeout,
    ErrorKind::CloseTimeout,
    ErrorKind::ConnectionReset,
    ErrorKind::Closed,
    ErrorKind::InvalidMessage,
];

impl Default for Slot {
    fn default() -> Self {
        Self {
            started: AtomicBool::new(false),
            done: AtomicBool::new(false),
            desc: AtomicU32::new(0),
            writer: AtomicU8::new(0),
            reader: AtomicU8::new(0),
            server: AtomicU8::new(0),
            sent: AtomicU32::new(0),
            echoed: AtomicU32::new(0),
            server_error: AtomicU8::new(u8::MAX),
        }
    }
}

impl Slot {
    fn describe(&self, id: usize) -> String {
        let d = self.desc.load(Relaxed);
        let [c, r, s, e] = d.to_be_bytes().map(usize::from);
        format!(
            "#{id} {:?} {} {:?} {}: writer {}, reader {}, server {} (last error {:?}), {} sent, \
             {} echoed",
            Client::ALL[c],
            Route::ALL[r].path(),
            Scenario::ALL[s],
            ENDING_NAMES[e],
            STAGES[usize::from(self.writer.load(Relaxed))],
            STAGES[usize::from(self.reader.load(Relaxed))],
            STAGES[usize::from(self.server.load(Relaxed))],
            ERROR_KINDS.get(usize::from(self.server_error.load(Relaxed))),
            self.sent.load(Relaxed),
            self.echoed.load(Relaxed),
        )
    }
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    /// The planned close handshake completed (1000 or 4000) with every echo.
    Clean(u16),
    /// 1001 from a graceful shutdown.
    Shutdown,
    /// 1008 after the keepalive failed (dead peer).
    Keepalive,
    /// 1008 for a ping flood (acceptable).
    FloodPolicy,
    /// 4000 that the client never answered; the server's close timer ended it.
    CloseUnanswered,
    /// The client dropped the TCP connection itself.
    ClientDrop {
        rst: bool,
        mid_frame: bool,
    },
    /// 503 while the server was shutting down.
    Refused503,
    Failed(String),
}

const END_NAMES: [&str; 9] = [
    "clean close 1000",
    "clean close 4000 (close-me)",
    "shutdown 1001",
    "keepalive 1008",
    "ping flood 1008",
    "close-me unanswered, 4000",
    "client drop",
    "503 during shutdown",
    "FAILED",
];

impl End {
    fn index(&self) -> usize {
        match self {
            Self::Clean(1000) => 0,
            Self::Clean(_) => 1,
            Self::Shutdown => 2,
            Self::Keepalive => 3,
            Self::FloodPolicy => 4,
            Self::CloseUnanswered => 5,
            Self::ClientDrop { .. } => 6,
            Self::Refused503 => 7,
            Self::Failed(_) => 8,
        }
    }
}

#[derive(Default)]
struct Counters {
    launched: AtomicU64,
    connected: AtomicU64,
    deflate_agreed: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    msgs_sent: AtomicU64,
    msgs_echoed: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_echoed: AtomicU64,
    fragmented: AtomicU64,
    compressed: AtomicU64,
    pings_sent: AtomicU64,
    flood_pings: AtomicU64,
    pongs: AtomicU64,
    server_pings: AtomicU64,
    drops_fin: AtomicU64,
    drops_rst: AtomicU64,
    drops_mid_frame: AtomicU64,
    resets_after_close: AtomicU64,
    ends: [AtomicU64; 9],
    /// 1000, 1001, 1008, 4000, other, none.
    closes: [AtomicU64; 6],
    by_client: [AtomicU64; 4],
    by_scenario: [AtomicU64; 6],
    by_route: [AtomicU64; 4],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

struct Ctx {
    seed: u64,
    slots: Vec<Slot>,
    c: Counters,
    /// The first failures (preallocated; later ones are only counted).
    failures: Mutex<Vec<String>>,
    failure_count: AtomicUsize,
    /// The current server's graceful shutdown has started (1001 and 503 are expected).
    shutting_down: AtomicBool,
    server_errors: Mutex<HashMap<ErrorKind, u64>>,
    max_buffered: AtomicUsize,
    max_buffered_id: AtomicUsize,
    /// Progress lines, printed at the end (printing while the heap is measured would grow the
    /// test harness's capture buffer).
    log: Mutex<String>,
    peak_heap: AtomicUsize,
    sampling: AtomicBool,
    finished: AtomicBool,
    open_limit: Arc<Semaphore>,
}

impl Ctx {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            slots: (0..TOTAL).map(|_| Slot::default()).collect(),
            c: Counters::default(),
            failures: Mutex::new(Vec::with_capacity(64)),
            failure_count: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            server_errors: Mutex::new(HashMap::with_capacity(64)),
            max_buffered: AtomicUsize::new(0),
            max_buffered_id: AtomicUsize::new(usize::MAX),
            log: Mutex::new(String::with_capacity(64 << 10)),
            peak_heap: AtomicUsize::new(0),
            sampling: AtomicBool::new(true),
            finished: AtomicBool::new(false),
            open_limit: Arc::new(Semaphore::new(MAX_OPEN)),
        }
    }

    fn fail(&self, msg: String) {
        self.failure_count.fetch_add(1, SeqCst);
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < failures.capacity() {
            failures.push(msg);
        }
    }

    /// Heap held by the failure messages, to leave out of the heap comparisons.
    fn failure_bytes(&self) -> usize {
        self.failures
            .lock()
            .unwrap()
            .iter()
            .map(String::capacity)
            .sum()
    }

    fn log(&self, args: std::fmt::Arguments<'_>) {
        let mut log = self.log.lock().unwrap();
        if log.capacity() - log.len() > 512 {
            let _ = log.write_fmt(args);
            log.push('\n');
        }
    }

    fn slot(&self, id: usize) -> Option<&Slot> {
        self.slots.get(id)
    }

    fn server_stage(&self, id: usize, stage: u8) {
        if let Some(slot) = self.slot(id) {
            slot.server.store(stage, Relaxed);
        }
    }

    fn server_error(&self, id: usize, kind: ErrorKind) {
        *self.server_errors.lock().unwrap().entry(kind).or_insert(0) += 1;
        if let Some(slot) = self.slot(id) {
            let i = ERROR_KINDS
                .iter()
                .position(|k| *k == kind)
                .map_or(u8::MAX, |i| i as u8);
            slot.server_error.store(i, Relaxed);
        }
    }

    fn note_buffered(&self, amount: usize, id: usize) {
        if self.max_buffered.fetch_max(amount, Relaxed) < amount {
            self.max_buffered_id.store(id, Relaxed);
        }
    }

    fn record(&self, plan: &Plan, end: &End) {
        add(&self.c.ends[end.index()], 1);
        match end {
            End::ClientDrop { rst, mid_frame } => {
                if *mid_frame {
                    add(&self.c.drops_mid_frame, 1);
                }
                add(
                    if *rst {
                        &self.c.drops_rst
                    } else {
                        &self.c.drops_fin
                    },
                    1,
                );
            }
            End::Failed(why) => {
                let server = self
                    .slot(plan.id)
                    .map(|slot| slot.describe(plan.id))
                    .unwrap_or_default();
                self.fail(format!("{}: {why}\n      ({server})", plan.describe()));
            }
            _ => {}
        }
    }

    fn record_close(&self, code: Option<u16>) {
        let i = match code {
            Some(1000) => 0,
            Some(1001) => 1,
            Some(1008) => 2,
            Some(4000) => 3,
            Some(_) => 4,
            None => 5,
        };
        add(&self.c.closes[i], 1);
    }

    /// Client connections not finished, and server handlers still running.
    fn stuck_report(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for (id, slot) in self.slots.iter().enumerate() {
            let client_stuck = slot.started.load(Relaxed) && !slot.done.load(Relaxed);
            let server_stage = slot.server.load(Relaxed);
            let server_stuck = server_stage != 0 && server_stage != ST_DONE;
            if client_stuck || server_stuck {
                n += 1;
                if n <= 40 {
                    let what = if client_stuck {
                        "client unfinished"
                    } else {
                        "server handler alive"
                    };
                    let _ = writeln!(out, "  {what}: {}", slot.describe(id));
                }
            }
        }
        if n > 40 {
            let _ = writeln!(out, "  ... and {} more", n - 40);
        }
        let _ = writeln!(
            out,
            "  live tasks: {} server connection, {} server socket, {} client",
            SERVER_CONN_TASKS.load(SeqCst),
            SERVER_WS_TASKS.load(SeqCst),
            CLIENT_TASKS.load(SeqCst)
        );
        out
    }
}

static SERVER_CONN_TASKS: AtomicUsize = AtomicUsize::new(0);
static SERVER_WS_TASKS: AtomicUsize = AtomicUsize::new(0);
static CLIENT_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Counts a live task while it exists.
struct TaskGuard(&'static AtomicUsize);

impl TaskGuard {
    fn new(counter: &'static AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Self(counter)
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Server configs: 0 the default deflate policy (context takeover, 15-bit windows), 1 no
/// context takeover either way, 2 9-bit windows, level 6, every message compressed.
fn server_config(variant: u8) -> Config {
    let deflate = match variant {
        1 => DeflateConfig::default()
            .server_no_context_takeover(true)
            .client_no_context_takeover(true),
        2 => DeflateConfig::default()
            .server_max_window_bits(9)
            .client_max_window_bits(9)
            .level(6)
            .threshold(0),
        _ => DeflateConfig::default(),
    };
    Config::default()
        .deflate(Some(deflate))
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .close_timeout(CLOSE_TIMEOUT)
        .ping_interval(Some(PING_INTERVAL))
        .pong_timeout(PONG_TIMEOUT)
}

fn parse_target(uri: &Uri) -> (Route, usize, u8) {
    let mut id = usize::MAX;
    let mut cfg = 0;
    for pair in uri.query().unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("id", v)) => id = v.parse().unwrap_or(usize::MAX),
            Some(("cfg", v)) => cfg = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (Route::from_path(uri.path()), id, cfg)
}

fn is_close_me(msg: &Message) -> bool {
    matches!(msg, Message::Text(t) if t.as_str() == "close-me")
}

async fn serve_socket(ctx: Arc<Ctx>, ws: UpgradedWebSocket, route: Route, id: usize) {
    let _task = TaskGuard::new(&SERVER_WS_TASKS);
    ctx.server_stage(id, ST_SERVER_ECHO);
    match route {
        Route::Echo => echo_sequential(&ctx, ws, id, false).await,
        Route::Feed => echo_sequential(&ctx, ws, id, true).await,
        Route::Split => {
            let (tx, rx) = ws.split();
            echo_split(&ctx, tx, rx, id).await;
        }
        Route::FuturesSplit => {
            let (tx, rx) = StreamExt::split(ws);
            echo_split(&ctx, tx, rx, id).await;
        }
    }
    ctx.server_stage(id, ST_DONE);
}

async fn echo_sequential(ctx: &Ctx, mut ws: UpgradedWebSocket, id: usize, feed: bool) {
    loop {
        let msg = match ws.recv().await {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return ctx.server_error(id, e.kind()),
            None => return,
        };
        ctx.note_buffered(ws.buffered_amount(), id);
        if is_close_me(&msg) {
            ctx.server_stage(id, ST_SERVER_CLOSING);
            if let Err(e) = ws.close(CloseCode::from(4000), "bye").await {
                ctx.server_error(id, e.kind());
            }
            return;
        }
        if !(msg.is_text() || msg.is_binary()) {
            continue;
        }
        let sent = if feed {
            ws.feed(msg).await
        } else {
            ws.send(msg).await
        };
        ctx.note_buffered(ws.buffered_amount(), id);
        if let Err(e) = sent {
            ctx.server_error(id, e.kind());
            if e.kind() == ErrorKind::Closed {
                // A close is under way (graceful shutdown): let it finish its handshake.
                ctx.server_stage(id, ST_SERVER_DRAINING);
                while let Some(Ok(_)) = ws.recv().await {}
            }
            return;
        }
    }
}

async fn echo_split<W, R>(ctx: &Arc<Ctx>, mut tx: W, mut rx: R, id: usize)
where
    W: Sink<Message, Error = tower_ws::Error> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, tower_ws::Error>> + Unpin,
{
    let (queue, mut queued) = tokio::sync::mpsc::channel::<Message>(4);
    let writer_ctx = ctx.clone();
    let writer = tokio::spawn(async move {
        let _task = TaskGuard::new(&SERVER_WS_TASKS);
        while let Some(msg) = queued.recv().await {
            let close_me = is_close_me(&msg);
            let sent = if close_me {
                writer_ctx.server_stage(id, ST_SERVER_CLOSING);
                let frame = CloseFrame::new(CloseCode::from(4000), "bye");
                tx.send(Message::Close(Some(frame))).await
            } else {
                tx.send(msg).await
            };
            if let Err(e) = sent {
                writer_ctx.server_error(id, e.kind());
                break;
            }
            if close_me {
                break;
            }
        }
    });
    while let Some(item) = rx.next().await {
        match item {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                // A closed queue means the writer is done: keep reading to finish the close.
                let _ = queue.send(msg).await;
            }
            Ok(_) => {}
            Err(e) => {
                ctx.server_error(id, e.kind());
                break;
            }
        }
    }
    drop(queue);
    let _ = writer.await;
}

async fn not_found(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"not a websocket",
    ))))
}

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Serves on `rt`: through a `WebSocketLayer` (`layer`) or plain hyper with
/// `Shutdown::upgrade` and a deflate policy picked by the request.
fn start_server(rt: &Runtime, ctx: &Arc<Ctx>, layer: bool) -> Server {
    let shutdown = Shutdown::new();
    let stop = Arc::new(Notify::new());
    let listener = {
        let _enter = rt.enter();
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        socket.listen(4096).expect("listen")
    };
    let addr = listener.local_addr().expect("local address");
    let task = rt.spawn(accept_loop(
        listener,
        ctx.clone(),
        shutdown.clone(),
        stop.clone(),
        layer,
    ));
    Server {
        addr,
        shutdown,
        stop,
        task,
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shutdown: Shutdown,
    stop: Arc<Notify>,
    layer: bool,
) {
    let configs = Arc::new([server_config(0), server_config(1), server_config(2)]);
    let layered = {
        let ctx = ctx.clone();
        WebSocketLayer::new()
            .config(server_config(0))
            .shutdown(&shutdown)
            .on_upgrade(move |ws: UpgradedWebSocket, parts: http::request::Parts| {
                let ctx = ctx.clone();
                async move {
                    let (route, id, _) = parse_target(&parts.uri);
                    serve_socket(ctx, ws, route, id).await;
                }
            })
            .layer(tower::service_fn(not_found))
    };
    loop {
        let tcp = tokio::select! {
            () = stop.notified() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    ctx.log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let guard = TaskGuard::new(&SERVER_CONN_TASKS);
        let io = TokioIo::new(tcp);
        if layer {
            let service = TowerToHyperService::new(layered.clone());
            tokio::spawn(async move {
                let _guard = guard;
                let _ = http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await;
            });
        } else {
            let (ctx, shutdown, configs) = (ctx.clone(), shutdown.clone(), configs.clone());
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let (route, id, cfg) = parse_target(req.uri());
                let result = shutdown.upgrade(&mut req, &configs[usize::from(cfg.min(2))]);
                let ctx = ctx.clone();
                async move {
                    Ok::<_, Infallible>(match result {
                        Ok((response, upgrade)) => {
                            tokio::spawn(async move {
                                if let Ok(ws) = upgrade.await {
                                    serve_socket(ctx, ws, route, id).await;
                                }
                            });
                            response
                        }
                        Err(refused) => refused.into_response(),
                    })
                }
            });
            tokio::spawn(async move {
                let _guard = guard;
                let _ = http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await;
            });
        }
    }
}

async fn stop_server(server: Server) {
    server.stop.notify_one();
    let _ = server.task.await;
}

// ---------------------------------------------------------------------------------------------
// Raw client: frames by hand, permessage-deflate with flate2
// ---------------------------------------------------------------------------------------------

/// One write for a raw client's pump: whole frames, and who waits for the result.
type Outgoing = (Vec<u8>, Option<oneshot::Sender<Result<(), String>>>);

/// A raw client's writing side, shared by its writer and its reader (which answers pings and
/// closes). Every write goes through one queue to [`pump`], so frames never interleave and
/// the reader never blocks on a write the server is not reading.
struct RawShared {
    out: mpsc::UnboundedSender<Outgoing>,
    mask: AtomicU64,
    close_sent: AtomicBool,
}

impl RawShared {
    fn key(&self) -> [u8; 4] {
        let x = self.mask.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed);
        (mix(x) as u32).to_be_bytes()
    }

    fn frame(&self, b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        support::append_masked_frame(self.key(), b0, payload, &mut out);
        out
    }

    /// Writes whole frames and waits until they are written.
    async fn write(&self, bytes: Vec<u8>) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.out
            .send((bytes, Some(done)))
            .map_err(|_| "the write half is closed")?;
        result.await.map_err(|_| "the write half is closed")?
    }

    /// From the reader: queues a control frame without waiting.
    fn control(&self, bytes: Vec<u8>) {
        let _ = self.out.send((bytes, None));
    }
}

/// Writes what a raw client queues, in order, until the queue closes or a write fails.
async fn pump(mut half: OwnedWriteHalf, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some((bytes, done)) = queue.recv().await {
        let result = half.write_all(&bytes).await.map_err(|e| e.to_string());
        let failed = result.is_err();
        if let Some(done) = done {
            let _ = done.send(result);
        }
        if failed {
            return;
        }
    }
}

type Pump = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `f` while driving `pump` (a raw client's writes).
async fn with_pump<F: std::future::Future>(pump: &mut Pump, f: F) -> F::Output {
    tokio::pin!(f);
    loop {
        tokio::select! {
            out = &mut f => return out,
            () = &mut *pump => *pump = Box::pin(std::future::pending()),
        }
    }
}

/// The client side of permessage-deflate.
struct ClientDeflate {
    compress: Compress,
    no_context_takeover: bool,
}

impl ClientDeflate {
    fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&data[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| format!("compress: {e}"))?;
            pos += (self.compress.total_in() - before) as usize;
            if pos == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.is_empty() {
            // Nothing new since the last sync flush (an empty message with context takeover):
            // RFC 7692 §7.2.3.6, an empty stored block, which is the single byte 0x00 once the
            // tail is removed.
            out.push(0x00);
        } else if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        } else {
            return Err("compressed message does not end with a sync flush".into());
        }
        if self.no_context_takeover {
            self.compress.reset();
        }
        Ok(out)
    }
}

fn inflate(d: &mut Decompress, data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut input = Vec::with_capacity(data.len() + TAIL.len());
    input.extend_from_slice(data);
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity((data.len() * 4).clamp(64, limit));
    let mut pos = 0;
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(format!("server message inflates past {limit} B"));
            }
            out.reserve(out.capacity());
        }
        let (in_before, out_before) = (d.total_in(), out.len());
        d.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
            .map_err(|e| format!("inflate: {e}"))?;
        pos += (d.total_in() - in_before) as usize;
        if pos == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if d.total_in() == in_before && out.len() == out_before && out.len() < out.capacity() {
            return Err("inflate makes no progress".into());
        }
    }
}

struct RawRx {
    read: OwnedReadHalf,
    buf: BytesMut,
    shared: Arc<RawShared>,
    inflate: Option<Decompress>,
    answer_pings: bool,
    reply_close: bool,
    /// A fragmented message being received: text, compressed, data so far.
    partial: Option<(bool, bool, BytesMut)>,
}

impl RawRx {
    /// One complete frame from the buffer, if there is one: first byte and payload.
    fn parse_frame(&mut self) -> Result<Option<(u8, Bytes)>, String> {
        let buf = &self.buf[..];
        if buf.len() < 2 {
            return Ok(None);
        }
        if buf[1] & 0x80 != 0 {
            return Err("masked frame from the server".into());
        }
        let (len, at) = match buf[1] & 0x7f {
            126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
            127 if buf.len() >= 10 => (
                u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if len > MAX_ENCODED_MSG {
            return Err(format!("frame of {len} B from the server"));
        }
        if buf.len() < at + len {
            return Ok(None);
        }
        let b0 = buf[0];
        self.buf.advance(at);
        Ok(Some((b0, self.buf.split_to(len).freeze())))
    }

    fn message(&mut self, text: bool, compressed: bool, data: Bytes) -> Result<Ev, String> {
        let data = if compressed {
            let d = self
                .inflate
                .as_mut()
                .ok_or("RSV1 without permessage-deflate")?;
            Bytes::from(inflate(d, &data, MAX_MSG)?)
        } else {
            data
        };
        Ok(Ev::Data { text, data })
    }

    fn next_frame(&mut self) -> Result<Option<Ev>, String> {
        while let Some((b0, payload)) = self.parse_frame()? {
            let fin = b0 & 0x80 != 0;
            let rsv1 = b0 & 0x40 != 0;
            if b0 & 0x30 != 0 {
                return Err("RSV2 or RSV3 set".into());
            }
            match b0 & 0x0f {
                op @ 0x8..=0xa if !fin || rsv1 || payload.len() > 125 => {
                    return Err(format!("bad control frame (opcode {op})"));
                }
                0x9 => {
                    if self.answer_pings {
                        self.shared.control(self.shared.frame(0x8a, &payload));
                    }
                    return Ok(Some(Ev::Ping));
                }
                0xa => return Ok(Some(Ev::Pong(payload))),
                0x8 => {
                    let code = match payload.len() {
                        0 => None,
                        1 => return Err("close frame with a 1-byte payload".into()),
                        _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                    };
                    if std::str::from_utf8(payload.get(2..).unwrap_or_default()).is_err() {
                        return Err("close reason is not UTF-8".into());
                    }
                    if self.reply_close && !self.shared.close_sent.swap(true, SeqCst) {
                        let reply = code.map(u16::to_be_bytes);
                        let reply = reply.as_ref().map_or(&[][..], |c| &c[..]);
                        self.shared.control(self.shared.frame(0x88, reply));
                    }
                    return Ok(Some(Ev::Close(code)));
                }
                op @ (0x1 | 0x2) => {
                    if self.partial.is_some() {
                        return Err("new message inside a fragmented one".into());
                    }
                    if fin {
                        return self.message(op == 1, rsv1, payload).map(Some);
                    }
                    self.partial = Some((op == 1, rsv1, BytesMut::from(&payload[..])));
                }
                0x0 => {
                    if rsv1 {
                        return Err("RSV1 on a continuation frame".into());
                    }
                    let Some((_, _, data)) = self.partial.as_mut() else {
                        return Err("continuation frame without a message".into());
                    };
                    data.extend_from_slice(&payload);
                    if fin {
                        let (text, compressed, data) = self.partial.take().expect("partial");
                        return self.message(text, compressed, data.freeze()).map(Some);
                    }
                }
                op => return Err(format!("reserved opcode {op}")),
            }
        }
        Ok(None)
    }

    async fn next(&mut self) -> Ev {
        loop {
            match self.next_frame() {
                Ok(Some(ev)) => return ev,
                Ok(None) => {}
                Err(e) => return Ev::Bad(e),
            }
            self.buf.reserve(64 << 10);
            match self.read.read_buf(&mut self.buf).await {
                Ok(0) => return Ev::Eof,
                Ok(_) => {}
                Err(e) => return Ev::Reset(e.to_string()),
            }
        }
    }
}

/// Writes an HTTP/1.1 upgrade request and reads the response head byte by byte (so nothing
/// after it is consumed). `Ok(Err(status))` for a refusal.
async fn http_upgrade(
    tcp: &mut TcpStream,
    addr: SocketAddr,
    target: &str,
    extra: &str,
) -> Result<Result<String, u16>, String> {
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write request: {e}"))?;
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err("response head over 8 KiB".into());
        }
        let mut byte = [0u8];
        match tcp.read(&mut byte).await {
            Ok(0) => return Err("connection closed during the handshake".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("read response: {e}")),
        }
    }
    let head = String::from_utf8(head).map_err(|_| "response head is not UTF-8")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    if status != 101 {
        return Ok(Err(status));
    }
    let lower = head.to_ascii_lowercase();
    if !lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=") {
        return Err(format!("wrong Sec-WebSocket-Accept in {head:?}"));
    }
    Ok(Ok(lower))
}

/// The agreed permessage-deflate parameters the client must follow: its context takeover and
/// window bits.
fn agreed_deflate(head: &str) -> Option<(bool, u8)> {
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions:"))?;
    let mut params = line.split(';').map(str::trim);
    if params.next()? != "permessage-deflate" {
        return None;
    }
    let (mut no_context, mut bits) = (false, 15);
    for p in params {
        if p == "client_no_context_takeover" {
            no_context = true;
        } else if let Some(v) = p.strip_prefix("client_max_window_bits=") {
            bits = v.trim_matches('"').parse().ok()?;
        }
    }
    Some((no_context, bits))
}

// ---------------------------------------------------------------------------------------------
// The three clients behind one interface
// ---------------------------------------------------------------------------------------------

type TungWs = tokio_tungstenite::WebSocketStream<TcpStream>;

/// What a reader sees.
#[derive(Debug)]
enum Ev {
    Data { text: bool, data: Bytes },
    Ping,
    Pong(Bytes),
    Close(Option<u16>),
    Eof,
    Reset(String),
    Bad(String),
}

enum Tx {
    Tung(futures_util::stream::SplitSink<TungWs, tungstenite::Message>),
    Raw {
        shared: Arc<RawShared>,
        deflate: Option<ClientDeflate>,
    },
    Tws(tower_ws::WriteHalf<TcpStream>),
}

enum Rx {
    Tung(futures_util::stream::SplitStream<TungWs>),
    /// Boxed: much larger than the others.
    Raw(Box<RawRx>),
    Tws(tower_ws::ReadHalf<TcpStream>),
}

impl Tx {
    async fn send_msg(
        &mut self,
        spec: &MsgSpec,
        payload: Vec<u8>,
        ping_inside: Option<Bytes>,
        rng: &mut Rng,
    ) -> Result<(), String> {
        match self {
            Self::Tung(sink) => {
                let data = Bytes::from(payload);
                if spec.frags <= 1 {
                    let msg = if spec.text {
                        let text = tungstenite::Utf8Bytes::try_from(data)
                            .map_err(|e| format!("payload: {e}"))?;
                        tungstenite::Message::Text(text)
                    } else {
                        tungstenite::Message::Binary(data)
                    };
                    return sink.send(msg).await.map_err(|e| format!("send: {e}"));
                }
                let pieces = cut(&data, spec.frags, rng);
                let last = pieces.len() - 1;
                for (i, piece) in pieces.into_iter().enumerate() {
                    let opcode = OpCode::Data(match (i, spec.text) {
                        (0, true) => Data::Text,
                        (0, false) => Data::Binary,
                        _ => Data::Continue,
                    });
                    let frame = Frame::message(piece, opcode, i == last);
                    sink.feed(tungstenite::Message::Frame(frame))
                        .await
                        .map_err(|e| format!("send fragment: {e}"))?;
                    if i == 0 {
                        if let Some(ping) = ping_inside.clone() {
                            sink.feed(tungstenite::Message::Ping(ping))
                                .await
                                .map_err(|e| format!("send ping: {e}"))?;
                        }
                    }
                }
                sink.flush().await.map_err(|e| format!("flush: {e}"))
            }
            Self::Raw { shared, deflate } => {
                let opcode = if spec.text { 0x1 } else { 0x2 };
                let (body, rsv1) = match deflate.as_mut() {
                    Some(d) if spec.compress => (Bytes::from(d.compress(&payload)?), 0x40),
                    _ => (Bytes::from(payload), 0),
                };
                let pieces = if spec.frags <= 1 {
                    vec![body.clone()]
                } else {
                    cut(&body, spec.frags, rng)
                };
                let mut out = Vec::with_capacity(body.len() + 16 * (pieces.len() + 1));
                let last = pieces.len() - 1;
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = if i == last { 0x80 } else { 0 };
                    let b0 = fin | if i == 0 { opcode | rsv1 } else { 0 };
                    support::append_masked_frame(shared.key(), b0, piece, &mut out);
                    if i == 0 {
                        if let Some(ping) = &ping_inside {
                            support::append_masked_frame(shared.key(), 0x89, ping, &mut out);
                        }
                    }
                }
                shared.write(out).await.map_err(|e| format!("write: {e}"))
            }
            Self::Tws(tx) => {
                let msg = if spec.text {
                    Message::text(String::from_utf8(payload).map_err(|e| e.to_string())?)
                } else {
                    Message::binary(payload)
                };
                tx.send(msg).await.map_err(|e| format!("send: {e}"))
            }
        }
    }

    async fn text(&mut self, text: &'static str) -> Result<(), String> {
        match self {
            Self::Tung(sink) => sink
                .send(tungstenite::Message::text(text))
                .await
                .map_err(|e| format!("send: {e}")),
            Self::Raw { shared, .. } => shared
                .write(shared.frame(0x81, text.as_bytes()))
                .await
                .map_err(|e| format!("write: {e}")),
            Self::Tws(tx) => tx
                .send(Message::text(text))
                .await
                .map_err(|e| format!("send: {e}")),
        }
    }

    async fn ping(&mut self, payload: Bytes) -> Result<(), String> {
        match self {
            Self::Tung(sink) => sink
                .send(tungstenite::Message::Ping(payload))
                .await
                .map_err(|e| format!("ping: {e}")),
            Self::Raw { shared, .. } => shared
                .write(shared.frame(0x89, &payload))
                .await
                .map_err(|e| format!("ping: {e}")),
            Self::Tws(tx) => tx
                .send(Message::Ping(payload))
                .await
                .map_err(|e| format!("ping: {e}")),
        }
    }

    async fn close(&mut self, code: u16) -> Result<(), String> {
        match self {
            Self::Tung(sink) => {
                let frame = tungstenite::protocol::CloseFrame {
                    code: code.into(),
                    reason: "bye".into(),
                };
                sink.send(tungstenite::Message::Close(Some(frame)))
                    .await
                    .map_err(|e| format!("close: {e}"))
            }
            Self::Raw { shared, .. } => {
                if shared.close_sent.swap(true, SeqCst) {
                    return Ok(());
                }
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(b"bye");
                shared
                    .write(shared.frame(0x88, &payload))
                    .await
                    .map_err(|e| format!("close: {e}"))
            }
            Self::Tws(tx) => tx
                .send(Message::Close(Some(CloseFrame::new(
                    CloseCode::from(code),
                    "bye",
                ))))
                .await
                .map_err(|e| format!("close: {e}")),
        }
    }

    /// Raw clients: a binary frame header announcing 10,000 bytes, and 3,000 of them.
    async fn partial_frame(&mut self) {
        if let Self::Raw { shared, .. } = self {
            let mut frame = shared.frame(0x82, &[0x55; 10_000]);
            frame.truncate(frame.len() - 7_000);
            let _ = shared.write(frame).await;
        }
    }

    /// Raw clients: one write of many pings.
    async fn raw(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        match self {
            Self::Raw { shared, .. } => shared.write(bytes).await,
            _ => Err("raw write on a library client".into()),
        }
    }

    fn key(&self) -> [u8; 4] {
        match self {
            Self::Raw { shared, .. } => shared.key(),
            _ => [0; 4],
        }
    }
}

impl Rx {
    async fn next(&mut self) -> Ev {
        match self {
            Self::Tung(stream) => match stream.next().await {
                None => Ev::Eof,
                Some(Ok(msg)) => match msg {
                    tungstenite::Message::Text(t) => Ev::Data {
                        text: true,
                        data: Bytes::from(t),
                    },
                    tungstenite::Message::Binary(data) => Ev::Data { text: false, data },
                    tungstenite::Message::Ping(_) => Ev::Ping,
                    tungstenite::Message::Pong(p) => Ev::Pong(p),
                    tungstenite::Message::Close(f) => Ev::Close(f.map(|f| u16::from(f.code))),
                    tungstenite::Message::Frame(_) => Ev::Bad("raw frame from tungstenite".into()),
                },
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => Ev::Eof,
                Some(Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))) => Ev::Eof,
                Some(Err(tungstenite::Error::Io(e))) => Ev::Reset(e.to_string()),
                Some(Err(e)) => Ev::Bad(format!("tungstenite: {e}")),
            },
            Self::Raw(raw) => raw.next().await,
            Self::Tws(stream) => match stream.next().await {
                None => Ev::Eof,
                Some(Ok(Message::Text(t))) => Ev::Data {
                    text: true,
                    data: t.into_bytes(),
                },
                Some(Ok(Message::Binary(data))) => Ev::Data { text: false, data },
                Some(Ok(Message::Ping(_))) => Ev::Ping,
                Some(Ok(Message::Pong(p))) => Ev::Pong(p),
                Some(Ok(Message::Close(f))) => Ev::Close(f.map(|f| f.code.as_u16())),
                Some(Err(e)) if e.kind() == ErrorKind::ConnectionReset => Ev::Eof,
                Some(Err(e)) if e.kind() == ErrorKind::Io => Ev::Reset(e.to_string()),
                Some(Err(e)) => Ev::Bad(format!("tower-ws client: {e}")),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One client connection
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    echoed: usize,
    ended: bool,
}

/// Shared by a connection's writer and reader.
struct ConnState {
    pings: AtomicU32,
    progress: watch::Sender<Progress>,
}

enum WriterEnd {
    Done,
    Dropped,
    Failed(String),
}

async fn run_client(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    id: usize,
    mode: Mode,
    permit: OwnedSemaphorePermit,
) {
    let _task = TaskGuard::new(&CLIENT_TASKS);
    let _permit = permit;
    let plan = Plan::new(ctx.seed, id, mode);
    let slot = &ctx.slots[id];
    slot.desc.store(
        u32::from_be_bytes([
            Client::ALL
                .iter()
                .position(|c| *c == plan.client)
                .unwrap_or(0) as u8,
            Route::ALL
                .iter()
                .position(|r| *r == plan.route)
                .unwrap_or(0) as u8,
            Scenario::ALL
                .iter()
                .position(|s| *s == plan.scenario)
                .unwrap_or(0) as u8,
            plan.ending.index() as u8,
        ]),
        Relaxed,
    );
    slot.started.store(true, SeqCst);
    add(&ctx.c.launched, 1);
    let [c, r, s, _] = slot.desc.load(Relaxed).to_be_bytes().map(usize::from);
    add(&ctx.c.by_client[c], 1);
    add(&ctx.c.by_route[r], 1);
    add(&ctx.c.by_scenario[s], 1);
    let end = match tokio::time::timeout(plan.budget(), connection(&ctx, addr, &plan, slot)).await {
        Ok(end) => end,
        Err(_) => End::Failed(format!(
            "stuck for {:?}: {}",
            plan.budget(),
            slot.describe(id)
        )),
    };
    ctx.record(&plan, &end);
    slot.done.store(true, SeqCst);
}

async fn connection(ctx: &Ctx, addr: SocketAddr, plan: &Plan, slot: &Slot) -> End {
    slot.writer.store(ST_CONNECTING, Relaxed);
    let mut tcp = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return End::Failed(format!("connect: {e}")),
        Err(_) => return End::Failed("connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    if plan.ending.rst() {
        // SO_LINGER 0: dropping the socket sends RST. Does not block with a zero timeout.
        #[allow(deprecated)]
        let _ = tcp.set_linger(Some(Duration::ZERO));
    }
    slot.writer.store(ST_HANDSHAKE, Relaxed);
    let target = format!("{}?id={}&cfg={}", plan.route.path(), plan.id, plan.cfg);
    let refused = |status: u16| {
        if status == 503 && ctx.shutting_down.load(SeqCst) {
            End::Refused503
        } else {
            End::Failed(format!("upgrade refused with {status}"))
        }
    };
    let mut pump_future = None;
    let handshake = async {
        Ok::<_, End>(match plan.client {
            Client::Tungstenite => {
                let url = format!("ws://{addr}{target}");
                match tokio_tungstenite::client_async(url, tcp).await {
                    Ok((ws, _)) => {
                        let (sink, stream) = ws.split();
                        (Tx::Tung(sink), Rx::Tung(stream))
                    }
                    Err(tungstenite::Error::Http(response)) => {
                        return Err(refused(response.status().as_u16()));
                    }
                    Err(e) => return Err(End::Failed(format!("tungstenite handshake: {e}"))),
                }
            }
            Client::Raw | Client::RawDeflate => {
                let offer = if plan.client == Client::RawDeflate {
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                } else {
                    ""
                };
                let head = match http_upgrade(&mut tcp, addr, &target, offer).await {
                    Ok(Ok(head)) => head,
                    Ok(Err(status)) => return Err(refused(status)),
                    Err(e) => return Err(End::Failed(e)),
                };
                let agreed = agreed_deflate(&head);
                if (plan.client == Client::RawDeflate) != agreed.is_some() {
                    return Err(End::Failed(format!(
                        "permessage-deflate {} but {}offered: {head:?}",
                        if agreed.is_some() {
                            "agreed"
                        } else {
                            "declined"
                        },
                        if agreed.is_some() { "not " } else { "" },
                    )));
                }
                if agreed.is_some() {
                    add(&ctx.c.deflate_agreed, 1);
                }
                let (read, write) = tcp.into_split();
                let (out, queue) = mpsc::unbounded_channel();
                pump_future = Some(Box::pin(pump(write, queue)) as Pump);
                let shared = Arc::new(RawShared {
                    out,
                    mask: AtomicU64::new(plan.frag_seed),
                    close_sent: AtomicBool::new(false),
                });
                let deflate = agreed.map(|(no_context_takeover, bits)| ClientDeflate {
                    compress: Compress::new_with_window_bits(
                        Compression::new(plan.level),
                        false,
                        bits,
                    ),
                    no_context_takeover,
                });
                let rx = RawRx {
                    read,
                    buf: BytesMut::new(),
                    shared: shared.clone(),
                    inflate: agreed.map(|_| Decompress::new(false)),
                    answer_pings: plan.scenario != Scenario::DeadPeer,
                    reply_close: plan.scenario != Scenario::CloseMeIgnored,
                    partial: None,
                };
                (Tx::Raw { shared, deflate }, Rx::Raw(Box::new(rx)))
            }
            Client::TowerWs => {
                match http_upgrade(&mut tcp, addr, &target, "").await {
                    Ok(Ok(_)) => {}
                    Ok(Err(status)) => return Err(refused(status)),
                    Err(e) => return Err(End::Failed(e)),
                }
                let ws = WebSocket::from_raw(tcp, Role::Client, &Config::default());
                let (tx, rx) = ws.split();
                (Tx::Tws(tx), Rx::Tws(rx))
            }
        })
    };
    let (mut tx, mut rx) = match tokio::time::timeout(Duration::from_secs(5), handshake).await {
        Ok(Ok(halves)) => halves,
        Ok(Err(end)) => return end,
        Err(_) => return End::Failed("handshake timed out".into()),
    };
    if plan.mode == Mode::Late {
        return End::Failed("upgrade accepted after the shutdown started (expected 503)".into());
    }
    add(&ctx.c.connected, 1);
    let open = ctx.c.open.fetch_add(1, Relaxed) + 1;
    ctx.c.peak_open.fetch_max(open, Relaxed);
    let mut pump = pump_future.unwrap_or_else(|| Box::pin(std::future::pending()));
    let end = with_pump(&mut pump, converse(ctx, plan, slot, &mut tx, &mut rx)).await;
    ctx.c.open.fetch_sub(1, Relaxed);
    end
}

async fn converse(ctx: &Ctx, plan: &Plan, slot: &Slot, tx: &mut Tx, rx: &mut Rx) -> End {
    let state = ConnState {
        pings: AtomicU32::new(0),
        progress: watch::Sender::new(Progress::default()),
    };
    let writer = write_side(ctx, plan, slot, &state, tx);
    let reader = async {
        let end = read_side(ctx, plan, slot, &state, rx).await;
        state.progress.send_modify(|p| p.ended = true);
        end
    };
    tokio::pin!(writer, reader);
    let written = tokio::select! {
        w = &mut writer => w,
        end = &mut reader => {
            // A close from the server ended the reader: the writer sees that and stops.
            return match tokio::time::timeout(Duration::from_secs(5), writer).await {
                Ok(w) => combine(w, end),
                Err(_) => End::Failed(format!("writer stuck 5 s after the reader ended ({end:?})")),
            };
        }
    };
    match written {
        WriterEnd::Dropped => End::ClientDrop {
            rst: plan.ending.rst(),
            mid_frame: matches!(plan.ending, Ending::DropMidFrame { .. }),
        },
        // The reader gets a moment to see why (a close frame from the server).
        WriterEnd::Failed(e) => match tokio::time::timeout(Duration::from_secs(3), reader).await {
            Ok(end) => combine(WriterEnd::Failed(e), end),
            Err(_) => End::Failed(format!("writer failed: {e}")),
        },
        WriterEnd::Done => combine(WriterEnd::Done, reader.await),
    }
}

/// A connection's ending from both sides: a clean close needs the writer to have succeeded.
fn combine(written: WriterEnd, end: End) -> End {
    match (written, end) {
        (WriterEnd::Failed(e), End::Clean(code)) => {
            End::Failed(format!("clean close {code} but the writer failed: {e}"))
        }
        (WriterEnd::Dropped, End::Clean(code)) => End::Failed(format!(
            "clean close {code} on a connection the client dropped"
        )),
        (_, end) => end,
    }
}

/// Sleeps unless the reader ends first; `true` if it did.
async fn sleep_or_end(progress: &mut watch::Receiver<Progress>, ms: u64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => false,
        _ = progress.wait_for(|p| p.ended) => true,
    }
}

async fn write_side(
    ctx: &Ctx,
    plan: &Plan,
    slot: &Slot,
    state: &ConnState,
    tx: &mut Tx,
) -> WriterEnd {
    let mut progress = state.progress.subscribe();
    let mut rng = Rng::new(plan.frag_seed);
    if plan.scenario == Scenario::DeadPeer {
        slot.writer.store(ST_WAIT_ECHOES, Relaxed);
        let _ = progress.wait_for(|p| p.ended).await;
        return WriterEnd::Done;
    }
    if plan.scenario == Scenario::PingFlood {
        slot.writer.store(ST_FLOODING, Relaxed);
        let until = Instant::now() + Duration::from_millis(plan.flood_ms);
        while Instant::now() < until && state.pings.load(SeqCst) < MAX_FLOOD_PINGS {
            let mut batch = Vec::with_capacity(32 * 110);
            for _ in 0..32 {
                let index = state.pings.fetch_add(1, SeqCst);
                support::append_masked_frame(
                    tx.key(),
                    0x89,
                    &ping_payload(index, true),
                    &mut batch,
                );
            }
            if progress.borrow().ended {
                return WriterEnd::Done;
            }
            if let Err(e) = tx.raw(batch).await {
                return WriterEnd::Failed(format!("ping flood: {e}"));
            }
            add(&ctx.c.flood_pings, 32);
        }
    }
    slot.writer.store(ST_SENDING, Relaxed);
    for (i, spec) in plan.msgs.iter().enumerate() {
        if let Ending::Drop { after, .. } = plan.ending {
            if i == after {
                return WriterEnd::Dropped;
            }
        }
        if spec.pause_ms > 0 && sleep_or_end(&mut progress, spec.pause_ms).await {
            return WriterEnd::Done;
        }
        if progress.borrow().ended {
            return WriterEnd::Done;
        }
        if spec.ping_before {
            let index = state.pings.fetch_add(1, SeqCst);
            add(&ctx.c.pings_sent, 1);
            if let Err(e) = tx.ping(ping_payload(index, false)).await {
                return WriterEnd::Failed(e);
            }
        }
        let ping_inside = spec.ping_inside.then(|| {
            add(&ctx.c.pings_sent, 1);
            ping_payload(state.pings.fetch_add(1, SeqCst), false)
        });
        add(&ctx.c.msgs_sent, 1);
        add(&ctx.c.bytes_sent, spec.len as u64);
        if spec.frags > 1 {
            add(&ctx.c.fragmented, 1);
        }
        if spec.compress {
            add(&ctx.c.compressed, 1);
        }
        if let Err(e) = tx
            .send_msg(spec, payload(spec), ping_inside, &mut rng)
            .await
        {
            return WriterEnd::Failed(format!("message #{i}: {e}"));
        }
        slot.sent.store(i as u32 + 1, Relaxed);
    }
    match plan.ending {
        Ending::Drop { .. } => return WriterEnd::Dropped,
        Ending::DropMidFrame { .. } => {
            tx.partial_frame().await;
            return WriterEnd::Dropped;
        }
        _ => {}
    }
    let wait_for_echoes =
        plan.ending != Ending::CloseEager && plan.scenario != Scenario::CloseMeIgnored;
    if wait_for_echoes {
        slot.writer.store(ST_WAIT_ECHOES, Relaxed);
        let n = plan.msgs.len();
        let ended = progress
            .wait_for(|p| p.ended || p.echoed >= n)
            .await
            .map_or(true, |p| p.ended);
        if ended {
            return WriterEnd::Done;
        }
    }
    if plan.hold_ms > 0 {
        slot.writer.store(ST_HOLDING, Relaxed);
        if sleep_or_end(&mut progress, plan.hold_ms).await {
            return WriterEnd::Done;
        }
    }
    slot.writer.store(ST_CLOSING, Relaxed);
    let result = match plan.ending {
        Ending::CloseMe => tx.text("close-me").await,
        _ => tx.close(1000).await,
    };
    slot.writer.store(ST_DONE, Relaxed);
    match result {
        Ok(()) => WriterEnd::Done,
        Err(e) => WriterEnd::Failed(e),
    }
}

async fn read_side(ctx: &Ctx, plan: &Plan, slot: &Slot, state: &ConnState, rx: &mut Rx) -> End {
    if plan.read_delay_ms > 0 {
        slot.reader.store(ST_NOT_READING, Relaxed);
        tokio::time::sleep(Duration::from_millis(plan.read_delay_ms)).await;
    }
    slot.reader.store(ST_READING, Relaxed);
    let mut echoed = 0;
    let mut last_pong = None;
    let mut close: Option<(Option<u16>, Instant)> = None;
    // After a close frame the server must close TCP: its close timer is 1 s; when the client
    // ignored the close, that timer ran out while the client was not reading.
    let eof_within = if plan.scenario == Scenario::CloseMeIgnored {
        Duration::from_millis(1500)
    } else {
        Duration::from_secs(3)
    };
    loop {
        let ev = match close {
            None => rx.next().await,
            Some((code, at)) => {
                match tokio::time::timeout_at((at + eof_within).into(), rx.next()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        return End::Failed(format!(
                            "the server kept TCP open {eof_within:?} after its close {code:?}"
                        ));
                    }
                }
            }
        };
        match ev {
            Ev::Data { text, data } => {
                if close.is_some() {
                    return End::Failed("a message after the close frame".into());
                }
                let Some(spec) = plan.msgs.get(echoed) else {
                    return End::Failed(format!(
                        "an echo nobody sent: {} B after all {echoed}",
                        data.len()
                    ));
                };
                if let Err(e) = check_echo(spec, echoed, text, &data) {
                    return End::Failed(e);
                }
                echoed += 1;
                add(&ctx.c.msgs_echoed, 1);
                add(&ctx.c.bytes_echoed, data.len() as u64);
                slot.echoed.store(echoed as u32, Relaxed);
                state.progress.send_modify(|p| p.echoed = echoed);
            }
            Ev::Ping | Ev::Pong(_) if close.is_some() => {
                return End::Failed(
                    "a ping or pong after the server's close frame (RFC 6455 §5.5.1: the close \
                     frame is the last one)"
                        .into(),
                );
            }
            Ev::Ping => add(&ctx.c.server_pings, 1),
            Ev::Pong(p) => {
                if let Err(e) = check_pong(&p, &mut last_pong, state.pings.load(SeqCst)) {
                    return End::Failed(e);
                }
                add(&ctx.c.pongs, 1);
            }
            Ev::Close(code) => {
                if close.is_some() {
                    return End::Failed("a second close frame".into());
                }
                ctx.record_close(code);
                slot.reader.store(ST_AWAIT_EOF, Relaxed);
                close = Some((code, Instant::now()));
            }
            Ev::Eof => {
                slot.reader.store(ST_DONE, Relaxed);
                return match close {
                    Some((code, _)) => classify_close(ctx, plan, code, echoed),
                    None => End::Failed(format!(
                        "the server closed TCP without a close frame after {echoed}/{} echoes",
                        plan.msgs.len()
                    )),
                };
            }
            Ev::Reset(e) => {
                slot.reader.store(ST_DONE, Relaxed);
                return match close {
                    Some((code, _)) => {
                        add(&ctx.c.resets_after_close, 1);
                        classify_close(ctx, plan, code, echoed)
                    }
                    None => End::Failed(format!(
                        "connection reset without a close frame after {echoed}/{} echoes: {e}",
                        plan.msgs.len()
                    )),
                };
            }
            Ev::Bad(e) => return End::Failed(e),
        }
    }
}

/// What a close code means for this plan; echoes have been checked one by one already.
fn classify_close(ctx: &Ctx, plan: &Plan, code: Option<u16>, echoed: usize) -> End {
    let all = echoed == plan.msgs.len();
    match code {
        Some(1001) if ctx.shutting_down.load(SeqCst) => End::Shutdown,
        Some(1001) => End::Failed("close 1001 while the server was not shutting down".into()),
        Some(1008) if plan.scenario == Scenario::DeadPeer => End::Keepalive,
        Some(1008) if plan.scenario == Scenario::PingFlood => End::FloodPolicy,
        Some(4000) if plan.scenario == Scenario::CloseMeIgnored && all => End::CloseUnanswered,
        Some(4000) if plan.ending == Ending::CloseMe && all => End::Clean(4000),
        Some(1000)
            if matches!(plan.ending, Ending::Close | Ending::CloseEager)
                && plan.scenario != Scenario::DeadPeer
                && all =>
        {
            End::Clean(1000)
        }
        _ => End::Failed(format!(
            "close {code:?} after {echoed}/{} echoes",
            plan.msgs.len()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

/// Launch times: `ids` spread evenly over `from..to` seconds, with jitter.
fn spread(ids: Range<usize>, from: f64, to: f64, mode: Mode, rng: &mut Rng) -> Vec<Launch> {
    let n = ids.len().max(1) as f64;
    let step = (to - from) / n;
    ids.enumerate()
        .map(|(k, id)| {
            let jitter = (rng.below(1000) as f64 / 1000.0) * step;
            Launch {
                at: Duration::from_secs_f64(from + k as f64 * step + jitter),
                id,
                mode,
            }
        })
        .collect()
}

/// A burst: `ids` 2 ms apart from `at` seconds.
fn burst(ids: Range<usize>, at: f64, mode: Mode) -> Vec<Launch> {
    ids.enumerate()
        .map(|(k, id)| Launch {
            at: Duration::from_secs_f64(at) + Duration::from_millis(2 * k as u64),
            id,
            mode,
        })
        .collect()
}

struct Launch {
    at: Duration,
    id: usize,
    mode: Mode,
}

async fn launch(
    ctx: &Arc<Ctx>,
    addr: SocketAddr,
    mut launches: Vec<Launch>,
) -> Vec<JoinHandle<()>> {
    launches.sort_by_key(|l| l.at);
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(launches.len());
    for l in launches {
        tokio::time::sleep_until(start + l.at).await;
        let permit = ctx
            .open_limit
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        handles.push(tokio::spawn(run_client(
            ctx.clone(),
            addr,
            l.id,
            l.mode,
            permit,
        )));
    }
    handles
}

/// Waits for client tasks; they bound themselves, so a long wait means a runtime problem.
async fn join_clients(ctx: &Ctx, handles: Vec<JoinHandle<()>>) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    for h in handles {
        match tokio::time::timeout_at(deadline, h).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.fail(format!("client task failed: {e}")),
            Err(_) => {
                return Err(format!(
                    "client tasks did not finish within their own budgets:\n{}",
                    ctx.stuck_report()
                ));
            }
        }
    }
    Ok(())
}

/// Waits until no server task is left (the accept loop too when `stopped`).
async fn server_idle(ctx: &Ctx, rt: &Runtime, expected_tasks: usize, what: &str) {
    let deadline = Instant::now() + IDLE_WAIT;
    loop {
        let conn = SERVER_CONN_TASKS.load(SeqCst);
        let ws = SERVER_WS_TASKS.load(SeqCst);
        let alive = rt.metrics().num_alive_tasks();
        if conn == 0 && ws == 0 && alive == expected_tasks {
            return;
        }
        if Instant::now() > deadline {
            ctx.fail(format!(
                "{what}: server tasks left {IDLE_WAIT:?} after the last client finished: \
                 {conn} connection tasks, {ws} socket tasks, {alive} alive in the runtime \
                 (expected {expected_tasks}):\n{}",
                ctx.stuck_report()
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Live heap readings once the process is quiet.
struct Idle {
    warm: usize,
    done: usize,
    tasks_baseline: usize,
}

async fn warm_round(ctx: &Arc<Ctx>, srv: &Runtime) -> Result<(), String> {
    let server = start_server(srv, ctx, true);
    let mut rng = Rng::new(ctx.seed ^ 1);
    let handles = launch(
        ctx,
        server.addr,
        spread(WARM1, 0.0, 1.0, Mode::Warm, &mut rng),
    )
    .await;
    join_clients(ctx, handles).await?;
    stop_server(server).await;
    server_idle(ctx, srv, 0, "warm-up 1").await;
    Ok(())
}

async fn main_round(ctx: &Arc<Ctx>, srv: &Runtime) -> Result<Idle, String> {
    let mut rng = Rng::new(ctx.seed ^ 2);
    let started = Instant::now();

    // Server A (the layer) and its warm-up; then the idle baseline.
    let server = start_server(srv, ctx, true);
    let handles = launch(
        ctx,
        server.addr,
        spread(WARM2, 0.0, 1.0, Mode::Warm, &mut rng),
    )
    .await;
    join_clients(ctx, handles).await?;
    server_idle(ctx, srv, 1, "warm-up 2").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tasks_baseline = srv.metrics().num_alive_tasks();
    let warm = live_heap();
    ctx.peak_heap.store(warm, SeqCst);
    ctx.log(format_args!(
        "[{:>5.1}s] warm-up done: idle heap {}, {tasks_baseline} server task(s)",
        started.elapsed().as_secs_f64(),
        mib(warm)
    ));

    // Phase 1: normal traffic, two bursts, graceful shutdown with hundreds open, late comers.
    let phase = Instant::now();
    let mut launches = spread(P1_NORMAL, 0.0, 23.0, Mode::Normal, &mut rng);
    launches.extend(burst(
        P1_BURST_A,
        8.0,
        Mode::Burst {
            hold_min: 2000,
            hold_max: 5000,
        },
    ));
    launches.extend(burst(
        P1_BURST_B,
        18.0,
        Mode::Burst {
            hold_min: 4000,
            hold_max: 12_000,
        },
    ));
    let mut handles = launch(ctx, server.addr, launches).await;
    tokio::time::sleep_until((phase + Duration::from_millis(24_500)).into()).await;
    let open_at_shutdown = server.shutdown.open_sockets();
    let clients_at_shutdown = ctx.c.open.load(SeqCst);
    ctx.shutting_down.store(true, SeqCst);
    let shutting = {
        let shutdown = server.shutdown.clone();
        tokio::spawn(async move { shutdown.shutdown(Duration::from_secs(5)).await })
    };
    while !server.shutdown.is_shutting_down() {
        tokio::task::yield_now().await;
    }
    handles.extend(launch(ctx, server.addr, burst(P1_LATE, 0.0, Mode::Late)).await);
    let still_open = match tokio::time::timeout(Duration::from_secs(8), shutting).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(format!("shutdown task failed: {e}")),
        Err(_) => {
            return Err(format!(
                "Shutdown::shutdown(5 s) did not return in 8 s:\n{}",
                ctx.stuck_report()
            ));
        }
    };
    if still_open != 0 {
        ctx.fail(format!(
            "phase 1: Shutdown::shutdown(5 s) left {still_open} of {open_at_shutdown} sockets open"
        ));
    }
    join_clients(ctx, handles).await?;
    stop_server(server).await;
    server_idle(ctx, srv, 0, "phase 1").await;
    ctx.log(format_args!(
        "[{:>5.1}s] phase 1 done in {:.1}s: shutdown with {open_at_shutdown} sockets \
         ({clients_at_shutdown} clients) open, {still_open} left after it",
        started.elapsed().as_secs_f64(),
        phase.elapsed().as_secs_f64()
    ));

    // Phase 2: server B (plain hyper, three deflate policies).
    ctx.shutting_down.store(false, SeqCst);
    let phase = Instant::now();
    let server = start_server(srv, ctx, false);
    let mut launches = spread(P2_NORMAL, 0.0, 22.0, Mode::Normal, &mut rng);
    launches.extend(burst(
        P2_BURST,
        10.0,
        Mode::Burst {
            hold_min: 2000,
            hold_max: 6000,
        },
    ));
    let handles = launch(ctx, server.addr, launches).await;
    join_clients(ctx, handles).await?;
    ctx.shutting_down.store(true, SeqCst);
    let left = server.shutdown.shutdown(Duration::from_secs(1)).await;
    if left != 0 {
        ctx.fail(format!(
            "phase 2: {left} sockets still registered after every client finished"
        ));
    }
    stop_server(server).await;
    server_idle(ctx, srv, 0, "phase 2").await;
    ctx.log(format_args!(
        "[{:>5.1}s] phase 2 done in {:.1}s",
        started.elapsed().as_secs_f64(),
        phase.elapsed().as_secs_f64()
    ));

    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Idle {
        warm,
        done: live_heap(),
        tasks_baseline,
    })
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn runtimes() -> (Runtime, Runtime) {
    let build = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("runtime")
    };
    (build("soak-server"), build("soak-client"))
}

/// The live heap once it stops moving (nothing else runs by then).
fn settled_heap() -> usize {
    let mut last = live_heap();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        let now = live_heap();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

fn signed_mib(delta: isize) -> String {
    format!("{:+.2} MiB", delta as f64 / f64::from(1 << 20))
}

#[test]
#[ignore = "soak: run with cargo test --release --test soak -- --ignored"]
fn soak() {
    let seed = soak_seed();
    println!("soak seed: {seed} (replay with SOAK_SEED={seed})");
    let started = Instant::now();
    let ctx = Arc::new(Ctx::new(seed));

    let sampler = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            while ctx.sampling.load(SeqCst) {
                ctx.peak_heap.fetch_max(live_heap(), SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            while started.elapsed() < WATCHDOG {
                if ctx.finished.load(SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "soak: WATCHDOG after {WATCHDOG:?} (seed {seed}); the runtimes are wedged.\n{}\n{}",
                ctx.log.lock().map(|l| l.clone()).unwrap_or_default(),
                ctx.stuck_report()
            );
            std::process::exit(101);
        });
    }

    // Round 1: warm up every lazily initialised global, then drop the runtimes (and with their
    // threads, the thread-local pools).
    let (srv, cli) = runtimes();
    let warm1 = cli.block_on(async {
        tokio::time::timeout(WARM_DEADLINE, warm_round(&ctx, &srv))
            .await
            .unwrap_or_else(|_| Err(format!("warm-up timed out:\n{}", ctx.stuck_report())))
    });
    srv.shutdown_timeout(Duration::from_secs(2));
    cli.shutdown_timeout(Duration::from_secs(2));
    let heap_before = settled_heap() - ctx.failure_bytes();
    ctx.log(format_args!(
        "[{:>5.1}s] round 1 done; heap without runtimes: {}",
        started.elapsed().as_secs_f64(),
        mib(heap_before)
    ));

    // Round 2: the soak itself.
    let (srv, cli) = runtimes();
    let round = warm1.and_then(|()| {
        cli.block_on(async {
            tokio::time::timeout(RUN_DEADLINE, main_round(&ctx, &srv))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the run passed its {RUN_DEADLINE:?} deadline; stuck:\n{}",
                        ctx.stuck_report()
                    ))
                })
        })
    });
    let server_tasks = srv.metrics().num_alive_tasks();
    let client_tasks = cli.metrics().num_alive_tasks();
    srv.shutdown_timeout(Duration::from_secs(2));
    cli.shutdown_timeout(Duration::from_secs(2));
    let heap_after = settled_heap() - ctx.failure_bytes();
    ctx.sampling.store(false, SeqCst);
    let _ = sampler.join();
    ctx.finished.store(true, SeqCst);
    let elapsed = started.elapsed();

    // The report.
    let c = &ctx.c;
    let n = |a: &AtomicU64| a.load(SeqCst);
    let mut out = String::new();
    let _ = writeln!(out, "{}", ctx.log.lock().unwrap());
    let _ = writeln!(
        out,
        "soak summary (seed {seed}, {:.1} s)",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "connections launched",
        n(&c.launched)
    );
    let _ = writeln!(out, "  {:<34} {:>12}", "  upgraded", n(&c.connected));
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "  permessage-deflate agreed",
        n(&c.deflate_agreed)
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "  peak open at once",
        n(&c.peak_open)
    );
    for (i, client) in Client::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:<34} {:>12}",
            format!("  client {client:?}"),
            n(&c.by_client[i])
        );
    }
    for (i, route) in Route::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:<34} {:>12}",
            format!("  route {}", route.path()),
            n(&c.by_route[i])
        );
    }
    for (i, s) in Scenario::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:<34} {:>12}",
            format!("  scenario {s:?}"),
            n(&c.by_scenario[i])
        );
    }
    let _ = writeln!(out, "  {:<34} {:>12}", "messages sent", n(&c.msgs_sent));
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "messages echoed and verified",
        n(&c.msgs_echoed)
    );
    let _ = writeln!(out, "  {:<34} {:>12}", "  fragmented", n(&c.fragmented));
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "  compressed by the client",
        n(&c.compressed)
    );
    let _ = writeln!(out, "  {:<34} {:>12}", "bytes sent", n(&c.bytes_sent));
    let _ = writeln!(out, "  {:<34} {:>12}", "bytes echoed", n(&c.bytes_echoed));
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "pings sent (+ flood)",
        format!("{} + {}", n(&c.pings_sent), n(&c.flood_pings))
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "pongs received and checked",
        n(&c.pongs)
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "keepalive pings from servers",
        n(&c.server_pings)
    );
    let _ = writeln!(out, "  closes received by clients:");
    for (i, code) in ["1000", "1001", "1008", "4000", "other", "no code"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(out, "  {:<34} {:>12}", format!("  {code}"), n(&c.closes[i]));
    }
    let _ = writeln!(out, "  connection endings:");
    for (i, name) in END_NAMES.iter().enumerate() {
        let _ = writeln!(out, "  {:<34} {:>12}", format!("  {name}"), n(&c.ends[i]));
    }
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "  drops: FIN / RST / mid-frame",
        format!(
            "{} / {} / {}",
            n(&c.drops_fin),
            n(&c.drops_rst),
            n(&c.drops_mid_frame)
        )
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "  resets after a close frame",
        n(&c.resets_after_close)
    );
    let _ = writeln!(out, "  server-side errors:");
    let mut errors: Vec<_> = ctx
        .server_errors
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (format!("{k:?}"), *v))
        .collect();
    errors.sort();
    for (kind, count) in errors {
        let _ = writeln!(out, "  {:<34} {:>12}", format!("  {kind}"), count);
    }
    let max_buffered = ctx.max_buffered.load(SeqCst);
    let buffered_bound = MAX_WRITE_BUFFER + MAX_ENCODED_MSG;
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "max server buffered_amount",
        format!(
            "{max_buffered} B (#{})",
            ctx.max_buffered_id.load(SeqCst) as isize
        )
    );
    let peak = ctx.peak_heap.load(SeqCst);
    let pool_bound = POOL_THREADS * (READ_POOL_PER_THREAD + CODEC_POOL_PER_THREAD) + RUNTIME_SLACK;
    let idle = round.as_ref().ok();
    if let Some(idle) = idle {
        let _ = writeln!(
            out,
            "  {:<34} {:>12}",
            "live heap, idle after warm-up",
            mib(idle.warm)
        );
        let _ = writeln!(out, "  {:<34} {:>12}", "live heap, peak", mib(peak));
        let _ = writeln!(
            out,
            "  {:<34} {:>12}",
            "live heap, idle after the run",
            format!(
                "{} ({})",
                mib(idle.done),
                signed_mib(idle.done as isize - idle.warm as isize)
            )
        );
    }
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "heap without runtimes: before",
        mib(heap_before)
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "heap without runtimes: after",
        format!(
            "{} ({})",
            mib(heap_after),
            signed_mib(heap_after as isize - heap_before as isize)
        )
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>12}",
        "duration",
        format!("{:.1} s", elapsed.as_secs_f64())
    );
    println!("{out}");

    // The verdict.
    let mut problems = Vec::new();
    if let Err(e) = &round {
        problems.push(e.clone());
    }
    let failures = ctx.failures.lock().unwrap().clone();
    let failure_count = ctx.failure_count.load(SeqCst);
    if failure_count > 0 {
        problems.push(format!(
            "{failure_count} failures (the first {}):\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    let ended: u64 = c.ends.iter().map(n).sum();
    if ended != n(&c.launched) {
        problems.push(format!(
            "{} connections launched but {ended} recorded an ending",
            n(&c.launched)
        ));
    }
    if max_buffered > buffered_bound {
        problems.push(format!(
            "a server socket buffered {max_buffered} B (connection #{}): more than the \
             high-water mark {MAX_WRITE_BUFFER} B plus one encoded message ({} B)",
            ctx.max_buffered_id.load(SeqCst),
            MAX_ENCODED_MSG
        ));
    }
    let left = (
        SERVER_CONN_TASKS.load(SeqCst),
        SERVER_WS_TASKS.load(SeqCst),
        CLIENT_TASKS.load(SeqCst),
    );
    if left != (0, 0, 0) || server_tasks != 0 || client_tasks != 0 {
        problems.push(format!(
            "tasks left: {} server connection, {} server socket, {} client tasks by their \
             guards; {server_tasks} server and {client_tasks} client runtime tasks alive",
            left.0, left.1, left.2
        ));
    }
    if let Some(idle) = idle {
        if idle.tasks_baseline != 1 {
            problems.push(format!(
                "the idle server had {} tasks, expected 1 (its accept loop)",
                idle.tasks_baseline
            ));
        }
        let grown = idle.done.saturating_sub(idle.warm);
        if grown > pool_bound {
            problems.push(format!(
                "idle live heap grew by {} over the run, more than the per-thread pools can \
                 hold ({POOL_THREADS} threads x ({} read buffers + {} codecs) + {} slack = {})",
                mib(grown),
                mib(READ_POOL_PER_THREAD),
                mib(CODEC_POOL_PER_THREAD),
                mib(RUNTIME_SLACK),
                mib(pool_bound)
            ));
        }
    }
    let leaked = heap_after.saturating_sub(heap_before);
    if leaked > LEAK_SLACK {
        problems.push(format!(
            "with every runtime (and so every thread-local pool) dropped, the live heap is {} \
             above its level before the run (allowed {}): memory leaked",
            mib(leaked),
            mib(LEAK_SLACK)
        ));
    }
    assert!(
        problems.is_empty(),
        "soak failed (seed {seed}, replay with SOAK_SEED={seed}):\n{}",
        problems.join("\n")
    );
}

/// Replays single connections of a soak run: `SOAK_SEED=<seed> SOAK_REPLAY=12,59 cargo test
/// --release --all-features --test soak -- --ignored --nocapture replay`. Each runs alone
/// against a fresh server of its phase's kind, and its ending is printed.
#[test]
#[ignore = "replays connections of a soak run: set SOAK_SEED and SOAK_REPLAY"]
fn replay() {
    let Ok(ids) = std::env::var("SOAK_REPLAY") else {
        return;
    };
    let seed = soak_seed();
    let ctx = Arc::new(Ctx::new(seed));
    let (srv, cli) = runtimes();
    cli.block_on(async {
        for id in ids
            .split(',')
            .filter_map(|s| s.trim().parse::<usize>().ok())
        {
            let (mode, layer) = replay_mode(id);
            let plan = Plan::new(seed, id, mode);
            println!("replaying {}", plan.describe());
            for (i, m) in plan.msgs.iter().enumerate() {
                println!("  msg #{i}: {m:?}");
            }
            let server = start_server(&srv, &ctx, layer);
            let permit = ctx
                .open_limit
                .clone()
                .acquire_owned()
                .await
                .expect("permit");
            let failures = ctx.failure_count.load(SeqCst);
            run_client(ctx.clone(), server.addr, id, mode, permit).await;
            let verdict = if ctx.failure_count.load(SeqCst) > failures {
                ctx.failures
                    .lock()
                    .unwrap()
                    .last()
                    .cloned()
                    .unwrap_or_default()
            } else {
                "ok".to_string()
            };
            println!("  -> {verdict}");
            stop_server(server).await;
        }
    });
    srv.shutdown_timeout(Duration::from_secs(2));
    cli.shutdown_timeout(Duration::from_secs(2));
}

/// The mode of connection `id` in a soak run, and whether its server is the layer.
fn replay_mode(id: usize) -> (Mode, bool) {
    match id {
        _ if WARM1.contains(&id) || WARM2.contains(&id) => (Mode::Warm, true),
        _ if P1_NORMAL.contains(&id) => (Mode::Normal, true),
        _ if P1_BURST_A.contains(&id) => (
            Mode::Burst {
                hold_min: 2000,
                hold_max: 5000,
            },
            true,
        ),
        _ if P1_BURST_B.contains(&id) => (
            Mode::Burst {
                hold_min: 4000,
                hold_max: 12_000,
            },
            true,
        ),
        _ if P1_LATE.contains(&id) => (Mode::Late, true),
        _ if P2_BURST.contains(&id) => (
            Mode::Burst {
                hold_min: 2000,
                hold_max: 6000,
            },
            false,
        ),
        _ => (Mode::Normal, false),
    }
}
