//! `WebSocketLayer`: pass-through, rejections, upgrades over HTTP/1.1 and HTTP/2, tower-http.

mod support;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use support::{connect_h2, raw_exchange, raw_response, serve_service, upgrade_request, within};
use tokio_tungstenite::tungstenite;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_ws::handshake::HandshakeErrorKind;
use tower_ws::{
    Body, Config, HandshakeError, Message, OriginPolicy, Shutdown, UpgradedWebSocket,
    WebSocketLayer,
};

/// An app that describes the request it got, in headers and a body with every byte value.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut text = format!("{} {} {:?}\n", parts.method, parts.uri, parts.version);
    for (name, value) in &parts.headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let mut out = text.into_bytes();
    out.extend_from_slice(&body);
    out.extend(0u8..=255);
    Ok(Response::builder()
        .status(StatusCode::IM_A_TEAPOT)
        .header("x-app", "yes")
        .header("set-cookie", "a=1")
        .header("set-cookie", "b=2")
        .body(Full::from(out))
        .unwrap())
}

async fn echo(mut ws: UpgradedWebSocket, _parts: http::request::Parts) {
    while let Some(Ok(msg)) = ws.recv().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

fn echo_layer() -> WebSocketLayer<
    fn(UpgradedWebSocket, http::request::Parts) -> futures_util::future::BoxFuture<'static, ()>,
> {
    WebSocketLayer::new().on_upgrade(|ws, parts| Box::pin(echo(ws, parts)))
}

#[tokio::test]
async fn layer_passes_non_upgrade_traffic_through_byte_for_byte() {
    let plain = serve_service(service_fn(app), false).await;
    let layered = serve_service(echo_layer().layer(service_fn(app)), false).await;
    let requests = [
        "GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\x00\x01\x7e\x7fz".to_owned(),
        // Asks for an upgrade, but not to WebSocket: not ours.
        "GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n\r\n".to_owned(),
        // A WebSocket header on a POST is not an upgrade request.
        "POST /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n".to_owned(),
        "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
    ];
    for request in &requests {
        let expected = raw_exchange(plain, request).await;
        let got = raw_exchange(layered, request).await;
        assert!(
            expected.starts_with(b"HTTP/1.1 418"),
            "{}",
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(got, expected, "request {request:?}");
    }
}

#[tokio::test]
async fn layer_rejects_each_bad_handshake_with_its_status() {
    let layer =
        echo_layer().config(Config::default().origin(OriginPolicy::allow(["http://good.example"])));
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let cases: [(&str, String, u16, &[&str]); 6] = [
        (
            "version 8",
            upgrade_request("/", "").replace("Version: 13", "Version: 8"),
            426,
            &["sec-websocket-version: 13", "upgrade: websocket"],
        ),
        (
            "no version",
            upgrade_request("/", "").replace("Sec-WebSocket-Version: 13\r\n", ""),
            426,
            &["sec-websocket-version: 13"],
        ),
        (
            "no key",
            upgrade_request("/", "").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
            &["Sec-WebSocket-Key"],
        ),
        (
            "short key",
            upgrade_request("/", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            400,
            &["16-byte"],
        ),
        (
            "two keys",
            upgrade_request("/", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
            400,
            &["16-byte"],
        ),
        (
            "foreign origin",
            upgrade_request("/", "Origin: http://evil.example\r\n"),
            403,
            &["Origin"],
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
    // The allowed origin gets through.
    let (got, text) = raw_response(
        addr,
        &upgrade_request("/", "Origin: http://good.example\r\n"),
    )
    .await;
    assert_eq!(got, 101, "{text}");
}

#[tokio::test]
async fn layer_rejection_is_pluggable() {
    let layer = echo_layer().on_rejection(|e: HandshakeError| {
        let mut res = Response::new(Body::from("custom"));
        *res.status_mut() = if e.kind() == HandshakeErrorKind::UnsupportedVersion {
            StatusCode::IM_A_TEAPOT
        } else {
            StatusCode::BAD_GATEWAY
        };
        res
    });
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let (status, text) = raw_response(
        addr,
        &upgrade_request("/", "").replace("Version: 13", "Version: 7"),
    )
    .await;
    assert_eq!(status, 418);
    assert!(text.ends_with("custom"), "{text}");
}

#[tokio::test]
async fn layer_refuses_upgrades_it_cannot_carry_out_with_500() {
    // Called directly (no hyper connection), the request has no upgrade handle.
    let service = echo_layer().layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("app")))
    }));
    let req = Request::get("/")
        .header("host", "h")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(String::new())
        .unwrap();
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 500);
}

#[tokio::test]
async fn layer_upgrades_http1_and_hands_the_handler_protocol_and_path() {
    let layer = WebSocketLayer::new()
        .config(Config::default().protocols(["chat.v2", "chat.v1"]))
        .on_upgrade(
            |mut ws: UpgradedWebSocket, parts: http::request::Parts| async move {
                let protocol = ws.protocol().map(|p| p.to_str().unwrap().to_owned());
                let hello = format!("{} {:?}", parts.uri.path(), protocol);
                let _ = ws.send(Message::text(hello)).await;
                echo(ws, parts).await;
            },
        );
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/room/7"))
            .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "chat.v1, chat.v2".parse().unwrap(),
    );
    let (mut client, response) = within(tokio_tungstenite::connect_async(req)).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
    let hello = within(client.next()).await.unwrap().unwrap();
    assert_eq!(
        hello.into_text().unwrap().as_str(),
        "/room/7 Some(\"chat.v2\")"
    );
    within(client.send(tungstenite::Message::text("ping?")))
        .await
        .unwrap();
    let back = within(client.next()).await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "ping?");
}

#[tokio::test]
async fn layer_upgrades_http2_extended_connect() {
    let layer = WebSocketLayer::new()
        .config(Config::default().protocols(["echo"]))
        .on_upgrade(|ws: UpgradedWebSocket, parts: http::request::Parts| echo(ws, parts));
    let addr = serve_service(layer.layer(service_fn(app)), true).await;
    let (status, protocol, ws) = connect_h2(addr, "/ws", Some("other, echo")).await;
    assert_eq!(status, 200);
    assert_eq!(protocol.as_deref(), Some("echo"));
    let mut ws = ws.unwrap();
    within(ws.send(Message::text("over h2"))).await.unwrap();
    let back = within(ws.recv()).await.unwrap().unwrap();
    assert_eq!(back.as_text(), Some("over h2"));
    within(ws.close(tower_ws::CloseCode::NORMAL, ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn layer_composes_with_tower_http_trace_and_timeout() {
    let service = ServiceBuilder::new()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(300),
        ))
        .layer(echo_layer())
        .service_fn(app);
    let addr = serve_service(service, false).await;
    let (status, _) = raw_response(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 418);
    let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/")))
        .await
        .unwrap();
    // The timeout bounds the response, not the WebSocket that follows it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    within(client.send(tungstenite::Message::text("still here")))
        .await
        .unwrap();
    let back = within(client.next()).await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "still here");
}

#[tokio::test]
async fn layer_survives_a_panicking_handler() {
    let layer = WebSocketLayer::new().on_upgrade(
        |mut ws: UpgradedWebSocket, parts: http::request::Parts| async move {
            if parts.uri.path() == "/panic" {
                let _ = ws.recv().await;
                panic!("handler panics on purpose");
            }
            echo(ws, parts).await;
        },
    );
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let (mut good, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/ok")))
        .await
        .unwrap();
    let (mut bad, _) = within(tokio_tungstenite::connect_async(format!(
        "ws://{addr}/panic"
    )))
    .await
    .unwrap();
    within(bad.send(tungstenite::Message::text("boom")))
        .await
        .unwrap();
    // The panicking connection ends...
    let end = within(bad.next()).await;
    assert!(
        !matches!(end, Some(Ok(tungstenite::Message::Text(_)))),
        "{end:?}"
    );
    // ...the other socket and the server go on.
    within(good.send(tungstenite::Message::text("fine")))
        .await
        .unwrap();
    let back = within(good.next()).await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "fine");
    let (status, _) = raw_response(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 418);
}

#[tokio::test]
async fn layer_refuses_upgrades_with_503_while_shutting_down() {
    let shutdown = Shutdown::new();
    let addr = serve_service(
        echo_layer().shutdown(&shutdown).layer(service_fn(app)),
        false,
    )
    .await;
    assert_eq!(within(shutdown.shutdown(Duration::from_secs(1))).await, 0);
    let (status, text) = raw_response(addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 503, "{text}");
    // Plain HTTP still reaches the app.
    let (status, _) = raw_response(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 418);
}

/// A layer with `.path("/ws")` takes sockets there only; an upgrade request for any other path
/// reaches the app, whose own answer (here its teapot) the client gets.
#[tokio::test]
async fn layer_with_a_path_leaves_other_paths_to_the_app() {
    let layer = echo_layer().path("/ws");
    let addr = serve_service(layer.layer(service_fn(app)), false).await;

    let (status, body) = raw_response(addr, &upgrade_request("/anything", "")).await;
    assert_eq!(status, 418, "the app answers other paths: {body}");
    assert!(body.contains("GET /anything"), "{body}");

    let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/ws")))
        .await
        .unwrap();
    within(client.send(tungstenite::Message::text("hi")))
        .await
        .unwrap();
    let back = within(client.next()).await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "hi");
}

/// `.when` selects on the request head; `.guard` answers with its own response before any 101,
/// and what it puts in the extensions reaches the handler.
#[tokio::test]
async fn layer_guard_refuses_with_its_response_and_hands_the_handler_its_extensions() {
    #[derive(Clone)]
    struct User(&'static str);
    let layer = WebSocketLayer::new()
        .when(|parts: &http::request::Parts| parts.uri.path().starts_with("/live/"))
        .guard(|parts: &mut http::request::Parts| {
            if parts
                .headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer t")
            {
                parts.extensions.insert(User("ann"));
                return Ok(());
            }
            Err(tower_ws::layer::Refusal::new(
                StatusCode::UNAUTHORIZED,
                format!("no token for {}", parts.uri),
            ))
        })
        .on_upgrade(
            |mut ws: UpgradedWebSocket, parts: http::request::Parts| async move {
                let user = parts.extensions.get::<User>().map_or("nobody", |u| u.0);
                let _ = ws.send(Message::text(format!("hello {user}"))).await;
            },
        );
    let addr = serve_service(layer.layer(service_fn(app)), false).await;

    let (status, body) = raw_response(addr, &upgrade_request("/live/1", "")).await;
    assert_eq!(status, 401);
    assert!(body.ends_with("\r\n\r\nno token for /live/1"), "{body}");
    // Not selected: the guard never runs, the app answers.
    let (status, _) = raw_response(addr, &upgrade_request("/other", "")).await;
    assert_eq!(status, 418);

    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/live/1"))
            .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer t".parse().unwrap());
    let (mut client, _) = within(tokio_tungstenite::connect_async(req)).await.unwrap();
    let hello = within(client.next()).await.unwrap().unwrap();
    assert_eq!(hello.into_text().unwrap().as_str(), "hello ann");
}
