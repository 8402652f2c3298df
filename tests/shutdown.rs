//! Graceful shutdown: 1001 to every open socket, nothing queued lost, 503 for newcomers, and a
//! deadline for peers that never answer.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use support::{raw_response, serve_service, upgrade_request, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode};
use tower::{Layer, service_fn};
use tower_ws::{Config, Message, Shutdown, UpgradedWebSocket, WebSocketLayer};

async fn app(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from("app")))
}

const SOCKETS: usize = 3;
const QUEUED: usize = 5;

#[tokio::test]
async fn shutdown_sends_1001_to_every_open_socket_and_loses_no_queued_message() {
    let shutdown = Shutdown::new();
    let go = Arc::new(Notify::new());
    let (queued_tx, mut queued_rx) = mpsc::unbounded_channel::<()>();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Option<Message>>();
    let layer = {
        let go = go.clone();
        WebSocketLayer::new().shutdown(&shutdown).on_upgrade(
            move |mut ws: UpgradedWebSocket, _parts| {
                let (go, queued_tx, ended_tx) = (go.clone(), queued_tx.clone(), ended_tx.clone());
                async move {
                    let notified = go.notified();
                    for i in 0..QUEUED {
                        // Queued, not flushed: the close must come after these.
                        ws.feed(Message::text(format!("m{i}"))).await.unwrap();
                    }
                    queued_tx.send(()).unwrap();
                    notified.await;
                    let mut last = None;
                    while let Some(Ok(msg)) = ws.recv().await {
                        last = Some(msg);
                    }
                    ended_tx.send(last).unwrap();
                }
            },
        )
    };
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let mut clients = Vec::new();
    for _ in 0..SOCKETS {
        let (client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/")))
            .await
            .unwrap();
        clients.push(client);
    }
    for _ in 0..SOCKETS {
        within(queued_rx.recv()).await.unwrap();
    }
    assert_eq!(shutdown.open_sockets(), SOCKETS);

    let waiting = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.shutdown(Duration::from_secs(5)).await }
    });
    while !shutdown.is_shutting_down() {
        tokio::task::yield_now().await;
    }
    // Newcomers are refused while the others close.
    let (status, _) = raw_response(addr, &upgrade_request("/", "")).await;
    assert_eq!(status, 503);
    go.notify_waiters();

    for client in &mut clients {
        for i in 0..QUEUED {
            let msg = within(client.next()).await.unwrap().unwrap();
            assert_eq!(msg, tungstenite::Message::text(format!("m{i}")));
        }
        expect_going_away(client).await;
    }
    for _ in 0..SOCKETS {
        // Each server socket finished the close handshake: its stream ended with the peer's close.
        let last = within(ended_rx.recv()).await.unwrap();
        assert!(matches!(last, Some(Message::Close(_))), "{last:?}");
    }
    assert_eq!(
        within(waiting).await.unwrap(),
        0,
        "every socket finished in time"
    );
    assert_eq!(shutdown.open_sockets(), 0);
}

#[tokio::test]
async fn shutdown_gives_up_on_a_peer_that_never_answers_after_the_close_timeout() {
    let shutdown = Shutdown::new();
    let layer = WebSocketLayer::new()
        .config(Config::default().close_timeout(Duration::from_millis(300)))
        .shutdown(&shutdown)
        .on_upgrade(|mut ws: UpgradedWebSocket, _parts| async move {
            while let Some(Ok(_)) = ws.recv().await {}
        });
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    // A client that completes the handshake and then never reads or answers.
    let mut tcp = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    tcp.write_all(upgrade_request("/", "").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = within(tcp.read(&mut head)).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 101"));
    while shutdown.open_sockets() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let open = within(shutdown.shutdown(Duration::from_secs(5))).await;
    assert_eq!(open, 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(tcp);
}

#[tokio::test]
async fn shutdown_wakes_sockets_that_have_waited_for_their_peer_many_times() {
    let shutdown = Shutdown::new();
    let layer = WebSocketLayer::new().shutdown(&shutdown).on_upgrade(
        |mut ws: UpgradedWebSocket, _parts| async move {
            while let Some(Ok(msg)) = ws.recv().await {
                if msg.is_text() && ws.send(msg).await.is_err() {
                    break;
                }
            }
        },
    );
    let addr = serve_service(layer.layer(service_fn(app)), false).await;
    let mut clients = Vec::new();
    for _ in 0..SOCKETS {
        let (mut client, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/")))
            .await
            .unwrap();
        // One at a time: the server socket waits for its peer (and watches the signal) between
        // messages, again and again.
        for i in 0..QUEUED {
            let msg = tungstenite::Message::text(format!("m{i}"));
            within(client.send(msg.clone())).await.unwrap();
            assert_eq!(within(client.next()).await.unwrap().unwrap(), msg);
        }
        clients.push(client);
    }
    // Every socket is now waiting for its peer; the shutdown must wake each one.
    let waiting = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.shutdown(Duration::from_secs(5)).await }
    });
    for client in &mut clients {
        expect_going_away(client).await;
    }
    assert_eq!(within(waiting).await.unwrap(), 0);
}

/// The client's next message is a close with 1001; tungstenite answers it, then the server
/// closes the connection.
async fn expect_going_away<S>(client: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match within(client.next()).await.unwrap().unwrap() {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(within(client.next()).await.is_none_or(|r| r.is_err()));
}
