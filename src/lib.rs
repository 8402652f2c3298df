//! WebSockets for hyper 1, tower and axum, with RFC 6455 implemented in this crate.
//!
//! - [`upgrade`] validates an upgrade request (method, version, key, `Origin`, subprotocols),
//!   builds the `101` response and resolves to a [`WebSocket`] through hyper's upgrade.
//! - [`WebSocket`] is a `Stream` of [`Message`]s and a `Sink` for them. It answers pings, echoes
//!   close frames and fails the connection with the right close code on any violation by itself.
//! - [`handshake`] is the pure handshake logic on `http` types, usable with any server.
//! - [`WebSocketLayer`] is tower middleware: one `.layer(...)` gives an existing hyper or tower
//!   service WebSockets, and everything else passes through untouched.
//! - `axum` (feature `axum`) is a drop-in replacement for `axum::extract::ws`.
//! - `typed` (feature `json`) carries serde types as JSON messages.
//! - `client` (feature `client`) opens WebSockets: to servers, or to a tower service in memory.
//! - `hub` (feature `hub`) sends one message to many sockets: topics, users, many nodes.
//! - `rpc` (feature `rpc`) serves the same routes over HTTP and over a WebSocket.
//! - [`Shutdown`] closes every open socket with 1001 and refuses new ones with 503.
//!
//! All three doors ([`upgrade`], [`WebSocketLayer`], the axum extractor) also accept HTTP/2
//! WebSockets (RFC 8441 extended `CONNECT`; serve with hyper's
//! `http2::Builder::enable_connect_protocol()`).
//!
//! | Feature   | Default | Adds |
//! |-----------|---------|------|
//! | `deflate` | yes     | permessage-deflate (RFC 7692): `Config::deflate`, `DeflateConfig` |
//! | `server`  | yes     | `tower_ws::serve`: the accept loop on hyper (HTTP/1.1), given a handler |
//! | `axum`    |         | `tower_ws::axum`: `WebSocketUpgrade`, `WebSocket`, `Message`, ... as in axum 0.8 |
//! | `json`    |         | `tower_ws::typed`: `Typed`, a `Stream` + `Sink` of serde types |
//! | `client`  |         | `tower_ws::client`: dial `ws://` servers; with `server`, test any tower service in memory |
//! | `rustls`  |         | `wss://` for the client (rustls, webpki roots); `native-roots`: the system's roots |
//! | `hub`     |         | `tower_ws::hub`: topics, a registry by key, prepared messages, slow-subscriber policy |
//! | `rpc`     |         | `tower_ws::rpc`: requests in JSON envelopes over a socket into any tower `Service` |
//! | `redis`   |         | `hub::backplane::RedisBackplane`: one hub over many nodes through Redis pub/sub |
//!
//! # Examples
//!
//! An echo server: [`serve`] runs the accept loop on hyper and hands each socket to the handler.
//!
//! ```no_run
//! use tower_ws::{Config, UpgradedWebSocket};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! tower_ws::serve(listener, |mut ws: UpgradedWebSocket, _parts| async move {
//!     while let Some(Ok(msg)) = ws.recv().await {
//!         if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
//!             break;
//!         }
//!     }
//! })
//! .config(Config::default())
//! .await
//! # }
//! ```
//!
//! The same on your own hyper loop, with [`upgrade`] inside any service:
//!
//! ```no_run
//! use hyper::server::conn::http1;
//! use hyper::service::service_fn;
//! use hyper_util::rt::TokioIo;
//! use tower_ws::Config;
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let service = service_fn(|mut req| async move {
//!         let (response, ws) = match tower_ws::upgrade(&mut req, &Config::default()) {
//!             Ok(ok) => ok,
//!             Err(refused) => return Ok::<_, hyper::Error>(refused.into_response()),
//!         };
//!         tokio::spawn(async move {
//!             let Ok(mut ws) = ws.await else { return };
//!             while let Some(Ok(msg)) = ws.recv().await {
//!                 if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!         Ok(response)
//!     });
//!     // A header timeout (it needs a timer), or a client trickling its headers holds the
//!     // connection forever (slowloris).
//!     let conn = http1::Builder::new()
//!         .timer(hyper_util::rt::TokioTimer::new())
//!         .header_read_timeout(std::time::Duration::from_secs(10))
//!         .serve_connection(TokioIo::new(tcp), service);
//!     tokio::spawn(conn.with_upgrades());
//! }
//! # }
//! ```
//!
//! # Limits and defaults
//!
//! Every limit is on by default (see [`Config`]): frames up to 16 MiB, messages up to 64 MiB,
//! a 1 MiB write high-water mark, a 10 s close timeout, and same-origin `Origin` checks.
//! Bad input never panics: a malformed handshake gets an HTTP status and a body naming the
//! problem, a malformed frame the matching close code.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod config;
#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub mod deflate;
mod error;
pub mod handshake;
#[cfg(feature = "hub")]
#[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
pub mod hub;
mod message;
mod position;
mod proto;
#[cfg(feature = "rpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "rpc")))]
pub mod rpc;
#[cfg(feature = "server")]
mod serve;
mod socket;
mod upgrade;
mod write_buf;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod layer;
mod shutdown;
mod signal;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod typed;

pub use body::Body;
pub use config::Config;
#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub use deflate::DeflateConfig;
pub use error::{Error, ErrorKind};
pub use handshake::{HandshakeError, OriginPolicy};
pub use message::{CloseCode, CloseFrame, Message, Utf8Bytes};
pub use position::{Epoch, ParsePositionError, Position};
pub use proto::Role;
pub use socket::WebSocket;
pub use socket::split::{ReadHalf, WriteHalf};
pub use socket::streaming;
pub use upgrade::{UpgradeFuture, UpgradedWebSocket, is_upgrade_request, upgrade};

/// The subprotocols a request offers; see [`handshake::requested_protocols`].
pub use handshake::requested_protocols;
pub use layer::WebSocketLayer;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use serve::{Serve, serve};
pub use shutdown::Shutdown;

/// Entry points for the benchmarks (`benches/`); not part of the API. The fuzz targets use
/// [`__fuzz`].
#[doc(hidden)]
pub mod __bench {
    use bytes::{Bytes, BytesMut};

    use crate::proto::{Decoder, FrameHeader, Limits, OpCode, Role};

    /// Masks `buf` the way the connection does.
    pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
        crate::proto::apply_mask(buf, key);
    }

    /// Byte-at-a-time masking, the baseline for the chunked version.
    pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
    }

    /// `count` masked client frames of `size` bytes (ASCII text or binary).
    pub fn masked_frames(size: usize, count: usize, text: bool) -> Vec<u8> {
        masked_frames_with(size, count, text, |j| b'a' + (j % 26) as u8)
    }

    /// `count` masked text frames of about `size` bytes, one in 16 characters a two-byte `é`.
    pub fn masked_mixed_text(size: usize, count: usize) -> Vec<u8> {
        masked_mixed(size, count, true)
    }

    /// The bytes of [`masked_mixed_text`], sent as text or as binary frames.
    pub fn masked_mixed(size: usize, count: usize, text: bool) -> Vec<u8> {
        masked_frames_with(size, count, text, mixed_byte)
    }

    /// The payload of [`masked_mixed_text`]'s frames, unmasked.
    pub fn mixed_text(size: usize) -> Vec<u8> {
        (0..size - size % 17).map(mixed_byte).collect()
    }

    fn mixed_byte(j: usize) -> u8 {
        match j % 17 {
            15 => 0xc3,
            16 => 0xa9,
            k => b'a' + k as u8,
        }
    }

    fn masked_frames_with(
        size: usize,
        count: usize,
        text: bool,
        byte: impl Fn(usize) -> u8,
    ) -> Vec<u8> {
        let size = size - size % 17;
        let mut out = Vec::new();
        for i in 0..count {
            let key = [i as u8, 0x5a, 0xa5, 0x3c];
            let header = FrameHeader {
                fin: true,
                rsv1: false,
                rsv23: false,
                opcode: if text { OpCode::Text } else { OpCode::Binary },
                mask: Some(key),
                payload_len: size as u64,
            };
            out.extend_from_slice(header.encode().as_slice());
            let start = out.len();
            out.extend((0..size).map(&byte));
            crate::proto::apply_mask(&mut out[start..], key);
        }
        out
    }

    /// Decodes every message in `input` as a server; returns how many there were, or `None`
    /// on a protocol error.
    pub fn decode_all(input: &[u8]) -> Option<usize> {
        decode_chunks(input, input.len().max(1))
    }

    /// Decodes `input` fed `chunk` bytes at a time; returns the message count, or `None` on a
    /// protocol error. Never panics, whatever the input.
    pub fn decode_chunks(input: &[u8], chunk: usize) -> Option<usize> {
        let limits = Limits {
            max_frame_size: 1 << 24,
            max_message_size: 1 << 25,
        };
        let mut decoder = Decoder::new(Role::Server, limits, false);
        let mut buf = BytesMut::new();
        let mut n = 0;
        for part in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(part);
            while let Some(msg) = decoder.decode(&mut buf).ok()? {
                n += 1;
                let _: Bytes = msg.into_data();
            }
        }
        Some(n)
    }

    /// One message to many sockets, the two ways: encoded (and compressed) by each socket, or
    /// prepared once and its shared frame put into each socket's write buffer (the hub's way;
    /// the real hub is measured through its drain in `benches/hub.rs`).
    #[cfg(feature = "hub")]
    pub struct Fanout {
        bufs: Vec<crate::write_buf::WriteBuf>,
        encoders: Vec<crate::proto::Encoder<crate::proto::encoder::FixedKeys>>,
        #[cfg(feature = "deflate")]
        params: Option<(u32, u8)>,
    }

    #[cfg(feature = "hub")]
    impl std::fmt::Debug for Fanout {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Fanout")
                .field("sockets", &self.bufs.len())
                .finish()
        }
    }

    #[cfg(feature = "hub")]
    impl Fanout {
        /// `sockets` server sockets; with `deflate`, each compresses as negotiated by default
        /// (context takeover, window 15, level of `DeflateConfig::default()`).
        pub fn new(sockets: usize, deflate: bool) -> Self {
            #[cfg(not(feature = "deflate"))]
            let _ = deflate;
            #[cfg(feature = "deflate")]
            let agreed = crate::deflate::Agreed {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
                level: crate::DeflateConfig::default().level,
                threshold: 0,
            };
            Self {
                bufs: (0..sockets).map(|_| Default::default()).collect(),
                encoders: (0..sockets)
                    .map(|_| {
                        #[allow(unused_mut)]
                        let mut e = crate::proto::Encoder::new(None);
                        #[cfg(feature = "deflate")]
                        if deflate {
                            e.set_deflater(crate::deflate::Deflater::new(&agreed, true));
                        }
                        e
                    })
                    .collect(),
                #[cfg(feature = "deflate")]
                params: deflate.then_some((agreed.level, 15)),
            }
        }

        /// The bytes one server socket writes for `msg`: its shared frame, or (with `deflate`)
        /// its frame compressed without context at the hub's level, window 15.
        pub fn frame_len(msg: &crate::hub::PreparedMessage, deflate: bool) -> usize {
            #[cfg(feature = "deflate")]
            if deflate {
                let level = crate::hub::Hub::deflate_config().level;
                return msg.compressed_frame(level, 15).len();
            }
            let _ = deflate;
            msg.frame().len()
        }

        /// Each socket encodes `text` (and compresses it, with its own context).
        pub fn per_socket(&mut self, text: &crate::Utf8Bytes) {
            for (e, buf) in self.encoders.iter_mut().zip(&mut self.bufs) {
                e.message(crate::Message::Text(text.clone()), true, buf)
                    .unwrap();
                buf.advance(buf.len());
            }
        }

        /// `text` prepared once (compressed once, without context), and its frame put into
        /// every socket's write buffer.
        pub fn prepared(&mut self, text: &crate::Utf8Bytes) {
            let msg = crate::hub::PreparedMessage::text(text.clone());
            for buf in &mut self.bufs {
                #[cfg(feature = "deflate")]
                if let Some((level, bits)) = self.params {
                    buf.push_payload(msg.compressed_frame(level, bits));
                    buf.advance(buf.len());
                    continue;
                }
                buf.push_payload(msg.frame());
                buf.advance(buf.len());
            }
        }
    }
}

#[path = "fuzzing.rs"]
pub mod __fuzz;

/// The README's examples, compiled as doctests.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "json",
    feature = "hub",
    feature = "redis",
    feature = "client",
    feature = "rpc"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
