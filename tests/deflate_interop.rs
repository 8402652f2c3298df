//! permessage-deflate against an independent implementation, the Python `websockets` package,
//! in every context takeover mode and with windows below 15 bits, and streamed messages
//! (compressed as one stream across fragments) both ways.
//!
//! `.ci/run` installs the package and sets `TOWER_WS_REQUIRE_PYTHON=1`, which turns a missing
//! package into a failure; elsewhere the test is skipped with a loud notice.

#![cfg(feature = "deflate")]

mod support;

use futures_util::StreamExt;
use support::serve;
use tower_ws::{Config, DeflateConfig, UpgradedWebSocket};

async fn echo(mut ws: UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

fn python_websockets_available() -> bool {
    support::python_websockets("websockets.asyncio.client")
}

async fn run_peer(addr: std::net::SocketAddr, params: &[&str]) -> String {
    run_script("deflate_peer.py", addr, params).await
}

async fn run_script(name: &str, addr: std::net::SocketAddr, params: &[&str]) -> String {
    let script = format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let url = format!("ws://{addr}/");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script).arg(&url).args(params).kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("python peer timed out")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python peer {name} failed with {params:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn round_trips_with_python_websockets_in_every_mode() {
    if !python_websockets_available() {
        return;
    }
    let server = |policy: DeflateConfig| serve(Config::default().deflate(Some(policy)), echo);

    // Context takeover both ways, full windows.
    let addr = server(DeflateConfig::default()).await;
    assert_eq!(run_peer(addr, &[]).await.trim(), "permessage-deflate");

    // No context takeover either way, asked for by the client.
    let agreed = run_peer(
        addr,
        &["server_no_context_takeover", "client_no_context_takeover"],
    )
    .await;
    assert!(
        agreed.contains("server_no_context_takeover")
            && agreed.contains("client_no_context_takeover"),
        "{agreed}"
    );

    // Windows below 15 bits, asked for by the client, with context takeover.
    let agreed = run_peer(
        addr,
        &["server_max_window_bits=10", "client_max_window_bits=9"],
    )
    .await;
    assert!(
        agreed.contains("server_max_window_bits=10") && agreed.contains("client_max_window_bits=9"),
        "{agreed}"
    );

    // The server's own policy: small windows and no context takeover on its side only.
    let addr = server(
        DeflateConfig::default()
            .server_max_window_bits(9)
            .client_max_window_bits(11)
            .server_no_context_takeover(true),
    )
    .await;
    let agreed = run_peer(addr, &[]).await;
    assert!(
        agreed.contains("server_no_context_takeover")
            && agreed.contains("server_max_window_bits=9")
            && agreed.contains("client_max_window_bits=11"),
        "{agreed}"
    );

    // Client context takeover off by the server's request, client keeps server's on.
    let addr = server(
        DeflateConfig::default()
            .client_no_context_takeover(true)
            .level(9),
    )
    .await;
    let agreed = run_peer(addr, &["server_max_window_bits=12"]).await;
    assert!(
        agreed.contains("client_no_context_takeover")
            && agreed.contains("server_max_window_bits=12"),
        "{agreed}"
    );
}

/// Echoes each message fragment by fragment as it arrives (`tower_ws::streaming`).
async fn streaming_echo(ws: UpgradedWebSocket) {
    use tower_ws::streaming::Incoming;
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(incoming)) = rx.recv_streaming().await {
        let Incoming::Data(mut message) = incoming else {
            continue;
        };
        let mut echo = tx.send_streaming(message.kind()).fragment_size(1 << 20);
        while let Some(Ok(chunk)) = message.next_chunk().await {
            if echo.send_chunk(chunk).await.is_err() {
                return;
            }
        }
        if echo.finish().await.is_err() {
            return;
        }
    }
}

/// A message sent by Python in 1 MiB fragments, compressed as one DEFLATE stream, is inflated
/// piece by piece and echoed as fragments compressed as one stream, past every message limit.
#[tokio::test]
async fn streamed_messages_round_trip_with_python_websockets() {
    if !python_websockets_available() {
        return;
    }
    let config = Config::default()
        .max_message_size(Some(1 << 20))
        .deflate(Some(DeflateConfig::default()));
    let addr = serve(config, streaming_echo).await;
    for params in [&["32", "deflate"][..], &["8", "deflate", "text"], &["8"]] {
        let out = run_script("stream_peer.py", addr, params).await;
        assert!(out.starts_with(&format!("ok {} MiB", params[0])), "{out}");
    }
}
