//! The axum door. `parity!` holds code written against axum 0.8.9's `axum::extract::ws`; it is
//! compiled and run twice, once with axum's own `use` lines and once with `tower_ws::axum`'s,
//! and nothing else changes. `beyond_axum` covers where tower-ws is stricter, HTTP/2, and
//! settings from a `WebSocketLayer` in front.

mod support;

macro_rules! parity {
    ($name:ident, $($use:item)*) => {
        mod $name {
            $($use)*

            use std::net::SocketAddr;

            use axum::Router;
            use axum::response::Response;
            use axum::routing::any;
            use futures_util::stream::FusedStream;
            use futures_util::{Sink, SinkExt, Stream, StreamExt};
            use tokio_tungstenite::tungstenite;

            use crate::support::{raw_response, within};

            async fn echo(ws: WebSocketUpgrade) -> Response {
                assert_eq!(ws.requested_protocols().count(), 2);
                let ws = ws
                    .protocols(["unknown", "echo"])
                    .read_buffer_size(8 * 1024)
                    .write_buffer_size(0)
                    .max_write_buffer_size(usize::MAX)
                    .max_message_size(1 << 20)
                    .max_frame_size(1 << 20)
                    .accept_unmasked_frames(false)
                    .on_failed_upgrade(|error: axum::Error| eprintln!("upgrade failed: {error}"));
                assert_eq!(ws.selected_protocol().unwrap(), "echo");
                ws.on_upgrade(handle_socket)
            }

            async fn handle_socket(mut socket: WebSocket) {
                assert_eq!(socket.protocol().unwrap(), "echo");
                while let Some(Ok(msg)) = socket.recv().await {
                    match msg {
                        Message::Text(text) if text == "bye" => {
                            let close = CloseFrame { code: close_code::NORMAL, reason: "bye to you".into() };
                            let _ = socket.send(Message::Close(Some(close))).await;
                        }
                        Message::Text(text) => {
                            let reply: Utf8Bytes = format!("echo: {}", text.as_str()).into();
                            if socket.send(Message::Text(reply)).await.is_err() {
                                return;
                            }
                        }
                        Message::Binary(data) => {
                            if socket.send(Message::Binary(data)).await.is_err() {
                                return;
                            }
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
                    }
                }
            }

            /// Code generic over the stream and sink bounds axum's `WebSocket` has.
            async fn pump<S>(mut socket: S)
            where
                S: Stream<Item = Result<Message, axum::Error>> + Sink<Message> + FusedStream + Unpin,
            {
                while let Some(Ok(msg)) = socket.next().await {
                    if matches!(msg, Message::Text(_)) && socket.send(msg).await.is_err() {
                        break;
                    }
                }
            }

            async fn split(ws: WebSocketUpgrade) -> Response {
                ws.on_upgrade(|socket| async move {
                    let (mut tx, mut rx) = socket.split();
                    while let Some(Ok(msg)) = rx.next().await {
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                })
            }

            /// What `close_first` saw: how long `SinkExt::close` took, and what arrived after.
            static CLOSE_REPORT: std::sync::Mutex<Option<(std::time::Duration, Vec<Message>)>> =
                std::sync::Mutex::new(None);

            async fn close_first(ws: WebSocketUpgrade) -> Response {
                ws.on_upgrade(|mut socket| async move {
                    let started = std::time::Instant::now();
                    socket.close().await.unwrap();
                    let took = started.elapsed();
                    let mut seen = Vec::new();
                    while let Some(Ok(msg)) = socket.next().await {
                        seen.push(msg);
                    }
                    *CLOSE_REPORT.lock().unwrap() = Some((took, seen));
                })
            }

            async fn spawn_app() -> SocketAddr {
                let app = Router::new()
                    .route("/close-first", any(close_first))
                    .route("/echo", any(echo))
                    .route("/pump", any(|ws: WebSocketUpgrade| async move { ws.on_upgrade(pump::<WebSocket>) }))
                    .route("/split", any(split));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                addr
            }

            #[tokio::test]
            async fn echo_route_served_by_axum_serve() {
                let addr = spawn_app().await;
                let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/echo")).unwrap();
                req.headers_mut().insert("sec-websocket-protocol", "other, echo".parse().unwrap());
                let (mut client, response) = within(tokio_tungstenite::connect_async(req)).await.unwrap();
                assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
                within(client.send(tungstenite::Message::text("hi"))).await.unwrap();
                let got = within(client.next()).await.unwrap().unwrap();
                assert_eq!(got.into_text().unwrap().as_str(), "echo: hi");
                within(client.send(tungstenite::Message::binary(vec![1u8, 2, 3]))).await.unwrap();
                let got = within(client.next()).await.unwrap().unwrap();
                assert_eq!(got.into_data().as_ref(), &[1u8, 2, 3]);
                within(client.send(tungstenite::Message::text("bye"))).await.unwrap();
                match within(client.next()).await.unwrap().unwrap() {
                    tungstenite::Message::Close(Some(frame)) => {
                        assert_eq!(u16::from(frame.code), 1000);
                        assert_eq!(frame.reason.as_str(), "bye to you");
                    }
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn generic_stream_sink_code_and_split_halves_work() {
                let addr = spawn_app().await;
                for path in ["/pump", "/split"] {
                    let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))).await.unwrap();
                    within(client.send(tungstenite::Message::text("round"))).await.unwrap();
                    let got = within(client.next()).await.unwrap().unwrap();
                    assert_eq!(got.into_text().unwrap().as_str(), "round", "{path}");
                }
            }

            #[tokio::test]
            async fn sink_close_sends_and_flushes_without_waiting_for_the_reply() {
                let addr = spawn_app().await;
                let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/close-first"))).await.unwrap();
                within(client.send(tungstenite::Message::text("late"))).await.unwrap();
                // Answer the server's close only after a while.
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                while let Some(Ok(_)) = within(client.next()).await {}
                let report = within(async {
                    loop {
                        if let Some(report) = CLOSE_REPORT.lock().unwrap().take() {
                            return report;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                })
                .await;
                let (took, seen) = report;
                assert!(took < std::time::Duration::from_secs(1), "close() took {took:?}");
                assert_eq!(seen.first(), Some(&Message::text("late")), "{seen:?}");
            }

            #[tokio::test]
            async fn rejections_have_axums_statuses() {
                let addr = spawn_app().await;
                let base = "Host: localhost\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
                let cases = [
                    (format!("POST /echo HTTP/1.1\r\n{base}Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n"), 405),
                    (format!("GET /echo HTTP/1.1\r\n{base}Connection: keep-alive\r\nUpgrade: websocket\r\n\r\n"), 400),
                    ("GET /echo HTTP/1.1\r\nHost: localhost\r\nSec-WebSocket-Version: 13\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".to_owned(), 400),
                ];
                for (request, status) in cases {
                    let (got, text) = raw_response(addr, &request).await;
                    assert_eq!(got, status, "{request:?} -> {text}");
                }
            }

            #[test]
            fn messages_and_rejections_have_axums_api() {
                let text = Message::text("héllo");
                assert_eq!(text.to_text().unwrap(), "héllo");
                assert_eq!(text.clone().into_text().unwrap(), "héllo");
                assert_eq!(text.into_data(), bytes::Bytes::from("héllo"));
                assert_eq!(Message::from(vec![1u8]), Message::Binary(bytes::Bytes::from_static(&[1])));
                assert_eq!(Vec::<u8>::from(Message::from("x")), b"x".to_vec());
                let payload = Utf8Bytes::from_static("foo123");
                assert_eq!(payload.len(), 6);
                assert_eq!(payload, "foo123".to_string());
                assert_eq!(payload, &"foo123".to_string());
                assert_eq!(payload.as_str(), "foo123");
                assert_eq!(payload.to_string(), "foo123");
                assert_eq!(bytes::Bytes::from(payload), bytes::Bytes::from_static(b"foo123"));
                let err: std::str::Utf8Error = Utf8Bytes::try_from(vec![0xff]).unwrap_err();
                assert_eq!(err.valid_up_to(), 0);
                assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
                assert_eq!(Utf8Bytes::from(String::from("s")), Utf8Bytes::from(&String::from("s")));
                let close = Message::Close(Some(CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from("gone") }));
                assert_eq!(close.to_text().unwrap(), "gone");
                let _: CloseCode = close_code::NORMAL;
                use axum::response::IntoResponse;
                let r = rejection::WebSocketUpgradeRejection::from(rejection::MethodNotGet::default());
                assert_eq!(r.status(), 405);
                assert_eq!(r.body_text(), "Request method must be `GET`");
                assert_eq!(rejection::WebSocketKeyHeaderMissing::default().into_response().status(), 400);
                assert_eq!(rejection::InvalidConnectionHeader::default().status(), 400);
                assert_eq!(rejection::MethodNotConnect::default().status(), 405);
                assert_eq!(rejection::InvalidProtocolPseudoheader::default().status(), 400);
                fn on_failed<F: OnFailedUpgrade>(_: F) {}
                fn default_is_on_failed(d: DefaultOnFailedUpgrade) {
                    on_failed(d);
                }
                let _ = default_is_on_failed;
                on_failed(|_: axum::Error| {});
            }
        }
    };
}

parity!(
    with_axum,
    use axum::extract::ws::{
        CloseCode, CloseFrame, DefaultOnFailedUpgrade, Message, OnFailedUpgrade, Utf8Bytes,
        WebSocket, WebSocketUpgrade, close_code, rejection,
    };
);

parity!(
    with_tower_ws,
    use tower_ws::axum::{
        CloseCode, CloseFrame, DefaultOnFailedUpgrade, Message, OnFailedUpgrade, Utf8Bytes,
        WebSocket, WebSocketUpgrade, close_code, rejection,
    };
);

mod beyond_axum {
    #[test]
    fn axum_utf8_bytes_is_the_crates_own_type() {
        fn core(text: tower_ws::Utf8Bytes) -> tower_ws::axum::Utf8Bytes {
            text
        }
        let text = core(tower_ws::Utf8Bytes::from_static("same"));
        assert_eq!(
            tower_ws::Message::text(text.clone()).as_text(),
            Some("same")
        );
        assert_eq!(
            tower_ws::axum::Message::Text(text).to_text().unwrap(),
            "same"
        );
    }

    use std::time::Duration;

    use axum::Router;
    use axum::response::Response;
    use axum::routing::any;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite;
    use tower_ws::axum::{Message, WebSocketUpgrade};
    use tower_ws::{Config, OriginPolicy, Shutdown, WebSocketLayer};

    use crate::support::{connect_h2, raw_response, serve_service, upgrade_request, within};

    async fn echo(ws: WebSocketUpgrade) -> Response {
        ws.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Text(_)) && socket.send(msg).await.is_err() {
                    break;
                }
            }
        })
    }

    fn app() -> Router {
        Router::new().route("/ws", any(echo))
    }

    #[tokio::test]
    async fn refusals_are_stricter_than_axum_and_say_why() {
        let addr = serve_service(app(), false).await;
        let cases: [(&str, String, u16, &[&str]); 5] = [
            (
                "version 8",
                upgrade_request("/ws", "").replace("Version: 13", "Version: 8"),
                426,
                &["sec-websocket-version: 13", "upgrade: websocket"],
            ),
            (
                "bad key",
                upgrade_request("/ws", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "not a key"),
                400,
                &["16-byte"],
            ),
            (
                "upgraded token",
                upgrade_request("/ws", "").replace("Connection: Upgrade", "Connection: upgraded"),
                400,
                &["Connection"],
            ),
            (
                "cross-site",
                upgrade_request("/ws", "Origin: https://evil.example\r\n"),
                403,
                &["Origin"],
            ),
            (
                "plain GET",
                "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
                426,
                &["upgrade: websocket"],
            ),
        ];
        for (name, request, status, needles) in cases {
            let (got, text) = raw_response(addr, &request).await;
            assert_eq!(got, status, "{name}: {text}");
            let lower = text.to_ascii_lowercase();
            for needle in needles {
                assert!(
                    lower.contains(&needle.to_ascii_lowercase()),
                    "{name}: {needle:?} not in {text}"
                );
            }
        }
        let (got, _) = raw_response(
            addr,
            &upgrade_request("/ws", "Origin: http://localhost\r\n"),
        )
        .await;
        assert_eq!(got, 101);
    }

    #[tokio::test]
    async fn settings_from_a_layer_in_front_apply_to_the_extractor() {
        let shutdown = Shutdown::new();
        let layer = WebSocketLayer::new()
            .config(
                Config::default()
                    .origin(OriginPolicy::Any)
                    .protocols(["v2"])
                    .max_message_size(Some(16)),
            )
            .shutdown(&shutdown);
        let addr = serve_service(app().layer(layer), false).await;
        // Origin policy from the layer: any origin.
        let (got, text) = raw_response(
            addr,
            &upgrade_request(
                "/ws",
                "Origin: https://elsewhere.example\r\nSec-WebSocket-Protocol: v1, v2\r\n",
            ),
        )
        .await;
        assert_eq!(got, 101, "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("sec-websocket-protocol: v2"),
            "{text}"
        );
        // Message limit from the layer: 1009.
        let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/ws")))
            .await
            .unwrap();
        within(client.send(tungstenite::Message::text("short")))
            .await
            .unwrap();
        assert_eq!(
            within(client.next())
                .await
                .unwrap()
                .unwrap()
                .into_text()
                .unwrap()
                .as_str(),
            "short"
        );
        within(client.send(tungstenite::Message::text("x".repeat(17))))
            .await
            .unwrap();
        match within(client.next()).await.unwrap().unwrap() {
            tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
            other => panic!("expected close 1009, got {other:?}"),
        }
        // Shutdown from the layer: open sockets get 1001, new ones 503.
        let (mut open, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/ws")))
            .await
            .unwrap();
        within(open.send(tungstenite::Message::text("hi")))
            .await
            .unwrap();
        within(open.next()).await.unwrap().unwrap();
        assert_eq!(shutdown.open_sockets(), 1);
        let open_after = within(shutdown.shutdown(Duration::from_secs(5)));
        let client_side = async {
            match within(open.next()).await.unwrap().unwrap() {
                tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
                other => panic!("expected close 1001, got {other:?}"),
            }
            while let Some(Ok(_)) = within(open.next()).await {}
        };
        let (left, ()) = tokio::join!(open_after, client_side);
        assert_eq!(left, 0);
        let (got, _) = raw_response(addr, &upgrade_request("/ws", "")).await;
        assert_eq!(got, 503);
    }

    /// A valid upgrade request, as a router or service sees it when no hyper server handed it
    /// over (so without hyper's upgrade handle).
    fn upgrade_without_server(version: http::Version) -> http::Request<axum::body::Body> {
        http::Request::get("/ws")
            .version(version)
            .header("host", "localhost")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn cannot_upgrade_gets_the_same_status_through_every_door() {
        use tower::{Layer, ServiceExt};
        use tower_ws::axum::rejection::WebSocketUpgradeRejection;

        for (version, status) in [(http::Version::HTTP_11, 500), (http::Version::HTTP_10, 400)] {
            // The axum extractor.
            let res = app()
                .oneshot(upgrade_without_server(version))
                .await
                .unwrap();
            assert_eq!(res.status(), status, "{version:?}");
            assert!(res.headers().get("upgrade").is_none());
            let router = Router::new().route(
                "/ws",
                any(
                    |ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| async move {
                        match ws {
                            Err(WebSocketUpgradeRejection::ConnectionNotUpgradable(r)) => {
                                r.status().as_u16().to_string()
                            }
                            other => format!("unexpected: {other:?}"),
                        }
                    },
                ),
            );
            let res = router
                .oneshot(upgrade_without_server(version))
                .await
                .unwrap();
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            assert_eq!(body, status.to_string(), "{version:?}");

            // `tower_ws::upgrade`.
            let mut req = upgrade_without_server(version);
            let refused = tower_ws::upgrade(&mut req, &Config::default()).unwrap_err();
            assert_eq!(refused.status(), status, "{version:?}");

            // `WebSocketLayer` with a handler of its own.
            let layer = WebSocketLayer::new()
                .on_upgrade(|_: tower_ws::UpgradedWebSocket, _: http::request::Parts| async {});
            let service = layer.layer(tower::service_fn(
                |_: http::Request<axum::body::Body>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(tower_ws::Body::empty()))
                },
            ));
            let res = service
                .oneshot(upgrade_without_server(version))
                .await
                .unwrap();
            assert_eq!(res.status(), status, "{version:?}");
        }
    }

    #[tokio::test]
    async fn extractor_upgrades_http2_extended_connect() {
        async fn proto(ws: WebSocketUpgrade) -> Response {
            ws.protocols(["p"]).on_upgrade(|mut socket| async move {
                let _ = socket
                    .send(Message::Text(format!("{:?}", socket.protocol()).into()))
                    .await;
                while let Some(Ok(_)) = socket.recv().await {}
            })
        }
        let addr = serve_service(Router::new().route("/ws", any(proto)), true).await;
        let (status, protocol, ws) = connect_h2(addr, "/ws", Some("p")).await;
        assert_eq!(status, 200);
        assert_eq!(protocol.as_deref(), Some("p"));
        let mut ws = ws.unwrap();
        let hello = within(ws.recv()).await.unwrap().unwrap();
        assert_eq!(hello.as_text(), Some("Some(\"p\")"));
        within(ws.close(tower_ws::CloseCode::NORMAL, ""))
            .await
            .unwrap();
    }
}
