//! The front doors: serve any tower service over HTTP/1.1 or HTTP/2 on 127.0.0.1, a raw
//! HTTP/1.1 client, and an HTTP/2 WebSocket client (RFC 8441).

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_ws::{Config, Role, WebSocket};

use super::{STEP, within};

/// Serves `service` on 127.0.0.1 (any port): HTTP/1.1 with upgrades, or HTTP/2 with extended
/// CONNECT enabled. No `Date` header, so responses can be compared byte for byte.
pub async fn serve_service<S, B>(service: S, h2: bool) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            let io = TokioIo::new(tcp);
            if h2 {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                builder.enable_connect_protocol().auto_date_header(false);
                tokio::spawn(async move {
                    let _ = builder.serve_connection(io, service).await;
                });
            } else {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.auto_date_header(false);
                tokio::spawn(async move {
                    let _ = builder.serve_connection(io, service).with_upgrades().await;
                });
            }
        }
    });
    addr
}

/// Sends `request` (raw bytes) and reads until the server closes or `STEP` passes; returns all
/// bytes received.
pub async fn raw_exchange(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut tcp = within(TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut out)).await;
    out
}

/// The status and text (head and `Content-Length` body) of the response to a raw request; it
/// does not wait for the connection to close.
pub async fn raw_response(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut tcp = within(TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = text.split(' ').nth(1).and_then(|s| s.parse().ok());
                return (
                    status.unwrap_or_else(|| panic!("no status line in {text:?}")),
                    text,
                );
            }
        }
        let n = within(tcp.read(&mut chunk)).await.unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An HTTP/1.1 upgrade request with `extra` header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Opens a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) with hyper's client.
/// Returns the response status, its `Sec-WebSocket-Protocol`, and (for 200) the socket.
pub async fn connect_h2(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> (
    StatusCode,
    Option<String>,
    Option<WebSocket<TokioIo<hyper::upgrade::Upgraded>>>,
) {
    let io = TokioIo::new(within(TcpStream::connect(addr)).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(io)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) must arrive before the CONNECT.
    // A server sends SETTINGS first of all, so once any response to a plain request is in,
    // they are too: no sleeping and hoping.
    within(send.ready()).await.unwrap();
    let probe = Request::get("http://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let probed = within(send.send_request(probe)).await.unwrap();
    let _ = within(probed.into_body().collect()).await;
    within(send.ready()).await.unwrap();
    let mut req = Request::connect(format!("http://localhost{path}"))
        .version(http::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13");
    if let Some(p) = protocols {
        req = req.header("sec-websocket-protocol", p);
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    let mut response = within(send.send_request(req)).await.unwrap();
    let status = response.status();
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    if status != StatusCode::OK {
        let _ = within(response.into_body().collect()).await;
        return (status, protocol, None);
    }
    let upgraded = within(hyper::upgrade::on(&mut response)).await.unwrap();
    let ws = WebSocket::from_raw(TokioIo::new(upgraded), Role::Client, &Config::default());
    (status, protocol, Some(ws))
}
