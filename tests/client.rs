//! The client against this crate's server, against raw servers that answer wrongly, and
//! connected to tower services in memory.

mod support;

use std::time::Duration;

use support::{serve, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower_ws::client::{ClientBuilder, ClientError, connect};
use tower_ws::{CloseCode, Config, ErrorKind, Message, UpgradedWebSocket};

async fn echo(mut ws: UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.recv().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_client_talks_to_the_server_and_closes_cleanly() {
    let addr = serve(Config::default(), echo).await;
    let (mut ws, response) = within(connect(&format!("ws://{addr}/echo"))).await.unwrap();
    assert_eq!(response.status(), 101);
    for msg in [
        Message::text("hello"),
        Message::binary(vec![0u8; 70_000]),
        Message::text("é".repeat(1000)),
    ] {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within(ws.recv()).await.unwrap().unwrap(), msg);
    }
    within(ws.close(CloseCode::NORMAL, "bye")).await.unwrap();
}

#[tokio::test]
async fn the_server_picks_one_of_the_offered_subprotocols() {
    let addr = serve(Config::default().protocols(["chat", "superchat"]), echo).await;
    let (ws, response) = within(
        ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .protocols(["v9", "superchat"])
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol().unwrap(), "superchat");
    assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn deflate_is_negotiated_and_used_both_ways() {
    let config = Config::default().deflate(Some(tower_ws::DeflateConfig::default().threshold(0)));
    let addr = serve(config, echo).await;
    let (mut ws, response) = within(
        ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .deflate(tower_ws::DeflateConfig::default().threshold(0))
            .connect(),
    )
    .await
    .unwrap();
    let agreed = response.headers()["sec-websocket-extensions"]
        .to_str()
        .unwrap();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    for i in 0..20 {
        let msg = Message::text(format!(
            "{{\"tick\":{i},\"pad\":\"{}\"}}",
            "x".repeat(i * 50)
        ));
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within(ws.recv()).await.unwrap().unwrap(), msg);
    }
}

/// A TCP server that reads one request head and answers with `answer(key)`, then `after`.
async fn raw_server(answer: fn(&str) -> String, after: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap_or_default()
            .trim()
            .to_owned();
        tcp.write_all(answer(&key).as_bytes()).await.unwrap();
        tcp.write_all(after).await.unwrap();
        // Hold the connection until the client is done with it.
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    addr
}

/// A server that accepts one connection and never says anything (it holds it for 30 s).
async fn silent_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    });
    addr
}

fn switching(key: &str, extra: &str) -> String {
    let accept = tower_ws::handshake::accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn a_refusal_keeps_the_status_head_and_body() {
    let addr = raw_server(
        |_| {
            "HTTP/1.1 403 Forbidden\r\nx-reason: token\r\ncontent-length: 12\r\n\r\nno token, no"
                .into()
        },
        b"",
    )
    .await;
    let err = within(connect(&format!("ws://{addr}/"))).await.unwrap_err();
    let ClientError::Refused {
        status,
        response,
        body,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(status, 403);
    assert_eq!(response.headers()["x-reason"], "token");
    assert_eq!(&body[..], b"no token, no");
}

#[tokio::test]
async fn a_wrong_accept_key_is_refused() {
    let addr = raw_server(|_| switching("dGhlIHNhbXBsZSBub25jZQ==", ""), b"").await;
    let err = within(connect(&format!("ws://{addr}/"))).await.unwrap_err();
    assert!(matches!(err, ClientError::BadAccept(_)), "{err:?}");
}

#[tokio::test]
async fn an_unoffered_subprotocol_or_extension_is_refused() {
    let addr = raw_server(
        |key| switching(key, "Sec-WebSocket-Protocol: other\r\n"),
        b"",
    )
    .await;
    let err = within(
        ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .protocols(["mine"])
            .connect(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::ProtocolNotOffered(ref p) if p == "other"),
        "{err:?}"
    );

    let addr = raw_server(
        |key| switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
        b"",
    )
    .await;
    let err = within(connect(&format!("ws://{addr}/"))).await.unwrap_err();
    assert!(matches!(err, ClientError::BadExtension(_)), "{err:?}");
}

#[tokio::test]
async fn a_server_that_masks_its_frames_fails_the_connection() {
    // A masked text frame "hi" (RFC 6455 §5.1: a client closes on a masked frame).
    const MASKED: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let addr = raw_server(|key| switching(key, ""), MASKED).await;
    let (mut ws, _) = within(connect(&format!("ws://{addr}/"))).await.unwrap();
    let err = within(ws.recv()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadMasking);
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let addr = silent_server().await;
    assert_times_out(ClientBuilder::new(&format!("ws://{addr}/")).unwrap()).await;
}

/// `builder`, given 200 ms to connect to a peer that never answers, fails with `Timeout`.
async fn assert_times_out(builder: ClientBuilder) {
    let err = within(
        builder
            .connect_timeout(Duration::from_millis(200))
            .connect(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
}

#[tokio::test]
async fn bad_requests_are_refused_before_connecting() {
    for (builder, what) in [
        (
            ClientBuilder::new("ws://127.0.0.1:1/")
                .unwrap()
                .header("Sec-WebSocket-Key", "x"),
            "owned header",
        ),
        (
            ClientBuilder::new("ws://127.0.0.1:1/")
                .unwrap()
                .protocols(["a b"]),
            "bad subprotocol",
        ),
    ] {
        let err = within(builder.connect_on(tokio::io::duplex(64).0))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidRequest(_)),
            "{what}: {err:?}"
        );
    }
    // Without TLS support, wss:// is refused up front (with it, this dials and is refused).
    #[cfg(not(feature = "rustls"))]
    {
        let err = within(connect("wss://127.0.0.1:1/")).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidUri(_)), "{err:?}");
    }
    assert!(matches!(
        connect("ftp://h/").await.unwrap_err(),
        ClientError::InvalidUri(_)
    ));
}

#[cfg(feature = "server")]
mod in_memory {
    use super::*;
    use tower::Layer;
    use tower_ws::WebSocketLayer;
    use tower_ws::client::connect_service;

    fn plain() -> impl tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<tower_ws::Body>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(tower_ws::Body::from("plain")))
        })
    }

    #[tokio::test]
    async fn a_layered_service_is_tested_without_a_port() {
        let service = WebSocketLayer::new()
            .path("/ws")
            .on_upgrade(|ws: UpgradedWebSocket, _parts| echo(ws))
            .layer(plain());
        for http2 in [false, true] {
            let (mut ws, response) = within(
                ClientBuilder::new("ws://localhost/ws")
                    .unwrap()
                    .http2(http2)
                    .connect_service(service.clone()),
            )
            .await
            .unwrap();
            // HTTP/2 (RFC 8441) answers 200 on the CONNECT stream, HTTP/1.1 101.
            assert_eq!(response.status(), if http2 { 200 } else { 101 });
            ws.send(Message::text("in memory")).await.unwrap();
            assert_eq!(
                within(ws.recv()).await.unwrap().unwrap(),
                Message::text("in memory")
            );
            ws.send(Message::binary(vec![7u8; 200_000])).await.unwrap();
            assert_eq!(within(ws.recv()).await.unwrap().unwrap().len(), 200_000);
        }
        // Another path is not the layer's: the plain service answers, and the client says so.
        let err = within(connect_service(service, "ws://localhost/other"))
            .await
            .unwrap_err();
        let ClientError::Refused { status, body, .. } = err else {
            panic!("{err:?}");
        };
        assert_eq!((status.as_u16(), &body[..]), (200, &b"plain"[..]));
    }

    #[cfg(feature = "axum")]
    #[tokio::test]
    async fn an_axum_router_is_tested_without_a_port() {
        use axum::routing::any;
        use tower_ws::axum::WebSocketUpgrade;

        let app = axum::Router::new().route(
            "/ws",
            any(|ws: WebSocketUpgrade| async {
                ws.protocols(["v1"]).on_upgrade(|mut socket| async move {
                    let _ = socket
                        .send(tower_ws::axum::Message::Text("hello from axum".into()))
                        .await;
                })
            }),
        );
        for http2 in [false, true] {
            let (mut ws, _) = within(
                ClientBuilder::new("ws://localhost/ws")
                    .unwrap()
                    .protocols(["v1"])
                    .http2(http2)
                    .connect_service(app.clone()),
            )
            .await
            .unwrap();
            assert_eq!(ws.protocol().unwrap(), "v1");
            assert_eq!(
                within(ws.recv()).await.unwrap().unwrap(),
                Message::text("hello from axum")
            );
        }
        for http2 in [false, true] {
            let err = within(
                ClientBuilder::new("ws://localhost/nope")
                    .unwrap()
                    .http2(http2)
                    .connect_service(app.clone()),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, ClientError::Refused { status, .. } if status == 404),
                "{err:?}"
            );
        }
    }
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn a_tls_handshake_that_never_completes_times_out() {
    // Accepts TCP, then never answers the ClientHello.
    let addr = silent_server().await;
    assert_times_out(ClientBuilder::new(&format!("wss://localhost:{}/", addr.port())).unwrap())
        .await;
}

#[tokio::test]
async fn a_proxy_that_never_answers_times_out() {
    let proxy = silent_server().await;
    assert_times_out(
        ClientBuilder::new("ws://192.0.2.1/")
            .unwrap()
            .proxy(&format!("http://{proxy}")),
    )
    .await;
}

#[tokio::test]
async fn an_oversize_frame_from_the_server_fails_with_1009() {
    // A binary frame header announcing 2^40 bytes: refused before anything is allocated.
    const HUGE: &[u8] = &[0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0];
    let addr = raw_server(|key| switching(key, ""), HUGE).await;
    let (mut ws, _) = within(
        ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .config(Config::default().max_frame_size(Some(1 << 20)))
            .connect(),
    )
    .await
    .unwrap();
    let err = within(ws.recv()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge);
    assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
}

/// `wss://` with ALPN: HTTP/2 (RFC 8441) when asked for and the server offers it, HTTP/1.1
/// otherwise, against this crate's layer served by hyper's auto builder over rustls.
#[cfg(all(feature = "rustls", feature = "server"))]
mod tls_alpn {
    use std::sync::Arc;

    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use tower::Layer;
    use tower_ws::WebSocketLayer;
    use tower_ws::client::rustls;

    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A TLS server for `localhost` offering h2 and http/1.1; returns its address and a client
    /// configuration that trusts it.
    async fn tls_server() -> (
        std::net::SocketAddr,
        Arc<rustls::ClientConfig>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let service = WebSocketLayer::new()
            .on_upgrade(|ws: UpgradedWebSocket, _parts| echo(ws))
            .layer(tower::service_fn(
                |_req: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(tower_ws::Body::empty()))
                },
            ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let service = service.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http2().enable_connect_protocol();
                    let _ = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(tls),
                            TowerToHyperService::new(service),
                        )
                        .await;
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (addr, Arc::new(client), accepted)
    }

    #[tokio::test]
    async fn wss_uses_http2_when_asked_and_offered() {
        let (addr, config, _) = tls_server().await;
        let url = format!("wss://localhost:{}/", addr.port());
        for (http2, status) in [(false, 101), (true, 200)] {
            let (mut ws, response) = within(
                ClientBuilder::new(&url)
                    .unwrap()
                    .tls_config(config.clone())
                    .http2(http2)
                    .connect(),
            )
            .await
            .unwrap();
            assert_eq!(response.status(), status, "http2: {http2}");
            ws.send(Message::text("over tls")).await.unwrap();
            assert_eq!(
                within(ws.recv()).await.unwrap().unwrap(),
                Message::text("over tls")
            );
            within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
        }
    }

    #[tokio::test]
    async fn several_sockets_share_one_http2_connection() {
        use std::sync::atomic::Ordering;
        let (addr, config, accepted) = tls_server().await;
        let connection = within(
            ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
                .unwrap()
                .tls_config(config)
                .connect_http2(),
        )
        .await
        .unwrap();
        let mut sockets = Vec::new();
        for i in 0..3 {
            let (ws, response) = within(connection.open(&format!("/feed/{i}")))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            sockets.push(ws);
        }
        // Interleaved use: each stream is its own socket.
        for (i, ws) in sockets.iter_mut().enumerate() {
            ws.send(Message::text(format!("socket {i}"))).await.unwrap();
        }
        for (i, ws) in sockets.iter_mut().enumerate().rev() {
            assert_eq!(
                within(ws.recv()).await.unwrap().unwrap(),
                Message::text(format!("socket {i}"))
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one TCP connection for all"
        );
        for ws in &mut sockets {
            within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
        }
    }
}
