//! The client against an independent server, the Python `websockets` package: plain, with
//! permessage-deflate (context takeover, and no context takeover with a limited window), over
//! TLS with a self-signed certificate given as a custom root, and through a CONNECT proxy.
//!
//! `.ci/run` installs the package and sets `TOWER_WS_REQUIRE_PYTHON=1`, which turns a missing
//! package into a failure; elsewhere the test is skipped with a loud notice.

mod support;

use std::process::Stdio;

use support::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tower_ws::Message;
use tower_ws::client::ClientBuilder;

fn python_websockets_available() -> bool {
    support::python_websockets("websockets.asyncio.server")
}

/// Starts the Python echo server in `mode` (with `args`); returns it (killed on drop) and its
/// port.
async fn python_server(mode: &str, args: &[&str]) -> (tokio::process::Child, u16) {
    let script = format!("{}/tests/python/echo_server.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(mode)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = within(lines.next_line()).await.unwrap().expect("a port");
    (child, port.trim().parse().unwrap())
}

/// Messages that compress, and some that do not, of several sizes.
fn messages() -> Vec<Message> {
    let mut out = Vec::new();
    for i in 0..30usize {
        out.push(Message::text(format!(
            "{{\"seq\":{i},\"event\":\"tick\",\"pad\":\"{}\"}}",
            "ab".repeat(i * 40)
        )));
        out.push(Message::binary(
            (0..i * 997)
                .map(|j| (j * 31 % 251) as u8)
                .collect::<Vec<u8>>(),
        ));
    }
    out.push(Message::text("é".repeat(100_000)));
    out
}

async fn round_trip(mode: &str, deflate: bool) -> String {
    let (_server, port) = python_server(mode, &[]).await;
    let mut builder = ClientBuilder::new(&format!("ws://127.0.0.1:{port}/")).unwrap();
    #[cfg(feature = "deflate")]
    if deflate {
        builder = builder.deflate(tower_ws::DeflateConfig::default().threshold(0));
    }
    #[cfg(not(feature = "deflate"))]
    let _ = deflate;
    let (mut ws, response) = within(builder.connect()).await.unwrap();
    for msg in messages() {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within(ws.recv()).await.unwrap().unwrap(), msg, "{mode}");
    }
    within(ws.close(tower_ws::CloseCode::NORMAL, ""))
        .await
        .unwrap();
    response
        .headers()
        .get("sec-websocket-extensions")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn round_trips_with_python_websockets() {
    if !python_websockets_available() {
        return;
    }
    assert_eq!(round_trip("none", false).await, "");
    #[cfg(feature = "deflate")]
    {
        assert_eq!(
            round_trip("none", true).await,
            "",
            "declined: no compression"
        );
        let agreed = round_trip("deflate", true).await;
        assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
        let agreed = round_trip("deflate-limits", true).await;
        assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
        assert!(agreed.contains("client_max_window_bits=10"), "{agreed}");
    }
}

#[cfg(all(feature = "rustls", feature = "deflate"))]
mod tls {
    use std::sync::Arc;

    use super::*;
    use tower_ws::client::{ClientError, rustls};

    /// A self-signed certificate for `localhost`, written as PEM files in a fresh directory;
    /// returns the directory and the certificate (to trust).
    fn self_signed() -> (
        std::path::PathBuf,
        rustls::pki_types::CertificateDer<'static>,
    ) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "tower-ws-tls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        (dir, cert.cert.der().clone())
    }

    fn trusting(cert: rustls::pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn wss_to_python_websockets_with_a_custom_root() {
        if !python_websockets_available() {
            return;
        }
        let (dir, cert) = self_signed();
        let paths = [dir.join("cert.pem"), dir.join("key.pem")];
        let args: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
        let (_server, port) = python_server("tls", &args).await;
        let url = format!("wss://localhost:{port}/");

        // Not trusted by the default roots: a TLS error, not a hang.
        let err = within(ClientBuilder::new(&url).unwrap().connect())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Tls(_)), "{err:?}");

        // Trusted through a configuration of our own, reused for two connections.
        let config = trusting(cert);
        for _ in 0..2 {
            let (mut ws, response) = within(
                ClientBuilder::new(&url)
                    .unwrap()
                    .tls_config(config.clone())
                    .deflate(tower_ws::DeflateConfig::default())
                    .connect(),
            )
            .await
            .unwrap();
            assert!(response.headers().contains_key("sec-websocket-extensions"));
            for msg in messages().into_iter().take(10) {
                ws.send(msg.clone()).await.unwrap();
                assert_eq!(within(ws.recv()).await.unwrap().unwrap(), msg);
            }
            within(ws.close(tower_ws::CloseCode::NORMAL, ""))
                .await
                .unwrap();
        }
        // wss:// through a CONNECT proxy: TLS runs inside the tunnel.
        let (proxy, tunnels) = connect_proxy(false).await;
        let (mut ws, _) = within(
            ClientBuilder::new(&url)
                .unwrap()
                .tls_config(config)
                .proxy(&format!("http://{proxy}"))
                .connect(),
        )
        .await
        .unwrap();
        ws.send(Message::text("tunnelled")).await.unwrap();
        assert_eq!(
            within(ws.recv()).await.unwrap().unwrap(),
            Message::text("tunnelled")
        );
        assert_eq!(tunnels.load(std::sync::atomic::Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A small HTTP CONNECT proxy on 127.0.0.1: tunnels to the requested target, or answers 403
/// when `refuse`; counts the tunnels it opened.
async fn connect_proxy(
    refuse: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = std::sync::Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let Ok(b) = client.read_u8().await else {
                        return;
                    };
                    head.push(b);
                }
                let head = String::from_utf8(head).unwrap();
                let target = head.split_whitespace().nth(1).unwrap().to_owned();
                assert!(head.starts_with("CONNECT "), "{head}");
                if refuse {
                    let _ = client
                        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, tunnels)
}

#[tokio::test]
async fn through_a_connect_proxy() {
    use std::sync::atomic::Ordering;
    if !python_websockets_available() {
        return;
    }
    let (_server, port) = python_server("deflate", &[]).await;
    let (proxy, tunnels) = connect_proxy(false).await;
    let (mut ws, _) = within(
        ClientBuilder::new(&format!("ws://127.0.0.1:{port}/"))
            .unwrap()
            .proxy(&format!("http://{proxy}"))
            .connect(),
    )
    .await
    .unwrap();
    for msg in messages().into_iter().take(10) {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within(ws.recv()).await.unwrap().unwrap(), msg);
    }
    within(ws.close(tower_ws::CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        1,
        "the connection went through the proxy"
    );

    let (refusing, _) = connect_proxy(true).await;
    let err = within(
        ClientBuilder::new(&format!("ws://127.0.0.1:{port}/"))
            .unwrap()
            .proxy(&format!("http://{refusing}"))
            .connect(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, tower_ws::client::ClientError::Proxy(ref why) if why.contains("403")),
        "{err:?}"
    );
}
