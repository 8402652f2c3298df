//! permessage-deflate against an independent implementation, the Python `websockets` package,
//! in every context takeover mode and with windows below 15 bits.
//!
//! `.ci/run` installs the package and sets `TOWER_WS_REQUIRE_PYTHON=1`, which turns a missing
//! package into a failure; elsewhere the test is skipped with a loud notice.

#![cfg(feature = "deflate")]

mod support;

use std::process::Command;

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
    let ok = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("TOWER_WS_REQUIRE_PYTHON").is_none(),
            "the Python `websockets` package is required (pip install websockets)"
        );
        eprintln!(
            "\n*** SKIPPED: deflate interop needs Python 3 with `websockets` (pip install websockets) ***\n"
        );
    }
    ok
}

async fn run_peer(addr: std::net::SocketAddr, params: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/deflate_peer.py");
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
        "python peer failed with {params:?}: {stdout}{}",
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
