//! A plain hyper service that gains WebSockets through one `.layer(...)`: everything but
//! WebSocket upgrades still reaches the service, unchanged.
//!
//! ```text
//! cargo run --example hyper_layer -- --addr 127.0.0.1:3000
//! curl http://127.0.0.1:3000/          # the service, as before
//! websocat ws://127.0.0.1:3000/anything  # an echo WebSocket, from the layer
//! ```
//!
//! HTTP/1.1 and HTTP/2 (RFC 8441 extended CONNECT) are both served, through hyper-util's
//! automatic connection builder.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_ws::{Message, UpgradedWebSocket, WebSocketLayer};

/// The existing application: knows nothing about WebSockets.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from(format!(
        "hello from {}\n",
        req.uri().path()
    ))))
}

/// What the layer runs for each WebSocket.
async fn echo(mut ws: UpgradedWebSocket, parts: http::request::Parts) {
    let hello = format!("echoing on {}", parts.uri.path());
    if ws.send(Message::text(hello)).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.recv().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => "127.0.0.1:3000".parse().expect("default address"),
        [flag, value] if flag == "--addr" => value.parse().unwrap_or_else(|e| {
            eprintln!("bad --addr {value:?}: {e}");
            std::process::exit(2)
        }),
        _ => {
            eprintln!("usage: hyper_layer [--addr HOST:PORT]");
            std::process::exit(2)
        }
    };

    let service = ServiceBuilder::new()
        .layer(WebSocketLayer::new().on_upgrade(echo))
        .service_fn(app);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            // Slowloris: drop a client that trickles its request headers.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
        });
    }
}
