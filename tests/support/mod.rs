//! Test support, one module for every test binary: a hyper server on 127.0.0.1 that hands each
//! WebSocket to a handler, the front doors (any tower service over HTTP/1.1 or HTTP/2, raw HTTP,
//! an RFC 8441 client; see [`doors`]), a raw client that speaks frames byte by byte, and the one
//! client-frame builder ([`masked_frame`], [`append_masked_frame`]).

#![allow(dead_code, unreachable_pub)]

pub mod doors;

#[allow(unused_imports)]
pub use doors::{connect_h2, raw_exchange, raw_response, serve_service, upgrade_request};

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_ws::{Config, UpgradedWebSocket};

/// Every network step in the tests is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

/// Fails the test if `fut` takes longer than [`STEP`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

/// Whether Python 3 can import `module` of the `websockets` package, the independent peer of
/// the interop tests. `.ci/run` installs it and sets `TOWER_WS_REQUIRE_PYTHON=1`, which turns
/// a missing package into a failure; elsewhere the test is skipped with a loud notice.
pub fn python_websockets(module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("TOWER_WS_REQUIRE_PYTHON").is_none(),
            "the Python `websockets` package is required (pip install websockets)"
        );
        eprintln!(
            "\n*** SKIPPED: this interop test needs Python 3 with `websockets` (pip install websockets) ***\n"
        );
    }
    ok
}

/// Serves WebSocket upgrades on 127.0.0.1 (any port); each socket goes to `handler`.
pub async fn serve<H, F>(config: Config, handler: H) -> SocketAddr
where
    H: Fn(UpgradedWebSocket) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let config = config.clone();
            let handler = handler.clone();
            let service = service_fn(move |mut req| {
                let result = tower_ws::upgrade(&mut req, &config);
                let handler = handler.clone();
                async move {
                    Ok::<_, hyper::Error>(match result {
                        Ok((response, ws)) => {
                            tokio::spawn(async move {
                                if let Ok(ws) = ws.await {
                                    handler(ws).await;
                                }
                            });
                            response
                        }
                        Err(refused) => refused.into_response(),
                    })
                }
            });
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    addr
}

/// A client that writes raw bytes and reads raw frames.
pub struct RawClient {
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

/// A frame as read by [`RawClient`].
#[derive(Debug, PartialEq, Eq)]
pub struct RawFrame {
    pub b0: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    pub fn opcode(&self) -> u8 {
        self.b0 & 0x0f
    }

    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode() == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawClient {
    /// Sends a handshake request with `extra` header lines; returns the client and the whole
    /// response head.
    pub async fn request(addr: SocketAddr, extra: &str) -> (Self, String) {
        let mut tcp = within(TcpStream::connect(addr)).await.unwrap();
        let req = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n",);
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut client = Self {
            tcp,
            buf: Vec::new(),
        };
        let head = within(client.read_head()).await;
        (client, head)
    }

    /// Connects and completes a valid handshake.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (client, head) = Self::request(
            addr,
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client
    }

    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = self.tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed during the handshake");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads exactly `len` bytes (a response body).
    pub async fn read_exact(&mut self, len: usize) -> Vec<u8> {
        within(async {
            while self.buf.len() < len {
                let mut chunk = [0u8; 4096];
                let n = self.tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed early");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        self.buf.drain(..len).collect()
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// Writes one masked frame with first byte `b0`.
    pub async fn send_frame(&mut self, b0: u8, payload: &[u8]) {
        self.send_raw(&masked_frame(b0, payload)).await;
    }

    /// Reads the next frame; `None` on EOF.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        within(async {
            loop {
                if let Some((frame, used)) = parse_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some(frame);
                }
                let mut chunk = vec![0u8; 64 * 1024];
                match self.tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
    }

    /// Reads frames until a close frame; returns its code (`Some(None)` for an empty close),
    /// then checks that the server closes the connection.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            let frame = self
                .read_frame()
                .await
                .expect("connection ended before a close frame");
            if frame.opcode() == 8 {
                assert!(!frame.masked, "server frames are never masked");
                assert!(
                    self.read_frame().await.is_none(),
                    "server should close TCP after close"
                );
                return frame.close_code();
            }
        }
    }
}

/// A masked client frame (a fixed key).
pub fn masked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    append_masked_frame([0x12, 0x34, 0x56, 0x78], b0, payload, &mut out);
    out
}

/// Appends a client frame masked with `key`: first byte `b0` (FIN, RSV, opcode), the length in
/// its shortest form.
pub fn append_masked_frame(key: [u8; 4], b0: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(b0);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

fn parse_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let key = if masked {
        let k: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(k)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(k) = key {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= k[i % 4]);
    }
    Some((
        RawFrame {
            b0: buf[0],
            masked,
            payload,
        },
        at + len,
    ))
}
