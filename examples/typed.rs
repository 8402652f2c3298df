//! Typed JSON messages: a calculator whose requests and replies are serde types.
//!
//! ```text
//! cargo run --example typed --features json -- --addr 127.0.0.1:3000
//! websocat ws://127.0.0.1:3000/
//! {"Add":{"a":2,"b":40}}        -> {"result":42}
//! {"Divide":{"a":1,"b":0}}      -> {"error":"division by zero"}
//! hello                          -> {"error":"not a request: expected value at line 1 column 1"}
//! ```
//!
//! A message that does not parse gets an error reply; the connection goes on.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tower_ws::typed::Typed;
use tower_ws::{Config, OriginPolicy, UpgradedWebSocket};

#[derive(Debug, Deserialize)]
enum Request {
    Add { a: i64, b: i64 },
    Divide { a: i64, b: i64 },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Result(i64),
    Error(String),
}

async fn calculator(ws: UpgradedWebSocket) {
    let mut ws = Typed::<_, Request, Reply>::new(ws);
    while let Some(request) = ws.next().await {
        let reply = match request {
            Ok(Request::Add { a, b }) => Reply::Result(a.saturating_add(b)),
            Ok(Request::Divide { a, b }) => match a.checked_div(b) {
                Some(q) => Reply::Result(q),
                None => Reply::Error("division by zero".into()),
            },
            // A message that does not parse: say so and read on.
            Err(e) if e.is_decode() => {
                // serde's reason; `e.text()` has the message as received.
                let why = e.json_error().map(ToString::to_string).unwrap_or_default();
                Reply::Error(format!("not a request: {why}"))
            }
            Err(_) => return,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => "127.0.0.1:3000".parse().expect("default address"),
        [flag, value] if flag == "--addr" => value.parse().unwrap_or_else(|e| {
            eprintln!("bad --addr {value:?}: {e}");
            std::process::exit(2)
        }),
        _ => {
            eprintln!("usage: typed [--addr HOST:PORT]");
            std::process::exit(2)
        }
    };
    let config = Config::default().origin(OriginPolicy::Any);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let config = config.clone();
        let service = service_fn(move |mut req| {
            let result = tower_ws::upgrade(&mut req, &config);
            async move {
                Ok::<_, hyper::Error>(match result {
                    Ok((response, ws)) => {
                        tokio::spawn(async move {
                            if let Ok(ws) = ws.await {
                                calculator(ws).await;
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
                // Slowloris: drop a client that trickles its request headers.
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades(),
        );
    }
}
