//! A tower-ws server against an independent client (tokio-tungstenite) over real TCP.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{serve, within};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as TCloseCode, Data, OpCode,
};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame as TCloseFrame, Frame};
use tower_ws::{CloseCode, Config, Message, UpgradedWebSocket};

async fn echo(mut ws: UpgradedWebSocket) {
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

fn echo_config() -> Config {
    Config::default()
        .max_message_size(Some(32 << 20))
        .max_frame_size(Some(32 << 20))
}

async fn client(
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, response) = within(tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/echo"),
        tcp,
        Some(config),
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

#[tokio::test]
async fn text_and_binary_messages_echo() {
    let addr = serve(echo_config(), echo).await;
    let mut ws = client(addr).await;
    ws.send(TMessage::text("héllo")).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        TMessage::text("héllo")
    );
    ws.send(TMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        TMessage::binary(vec![0u8, 1, 2, 255])
    );
    ws.send(TMessage::text("")).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        TMessage::text("")
    );
}

#[tokio::test]
async fn fragmented_messages_arrive_assembled() {
    let addr = serve(echo_config(), echo).await;
    let mut ws = client(addr).await;
    let parts = ["frag", "men", "ted ✓"];
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let fin = i == parts.len() - 1;
        ws.send(TMessage::Frame(Frame::message(
            part.as_bytes().to_vec(),
            opcode,
            fin,
        )))
        .await
        .unwrap();
        if i == 0 {
            // A ping between fragments is answered without disturbing the message.
            ws.send(TMessage::Ping(b"mid".to_vec().into()))
                .await
                .unwrap();
        }
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(within(ws.next()).await.unwrap().unwrap());
    }
    assert_eq!(
        got,
        [
            TMessage::Pong(b"mid".to_vec().into()),
            TMessage::text("fragmented ✓")
        ]
    );
}

#[tokio::test]
async fn a_16_mib_message_round_trips() {
    let addr = serve(echo_config(), echo).await;
    let mut ws = client(addr).await;
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    ws.send(TMessage::binary(big.clone())).await.unwrap();
    match within(ws.next()).await.unwrap().unwrap() {
        TMessage::Binary(echoed) => assert!(echoed[..] == big[..], "payload differs"),
        other => panic!("expected binary, got {other:?}"),
    }
}

#[tokio::test]
async fn pings_are_answered_when_the_application_never_writes() {
    // The application only reads.
    let addr = serve(echo_config(), |mut ws: UpgradedWebSocket| async move {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let mut ws = client(addr).await;
    ws.send(TMessage::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        TMessage::Pong(b"are you there".to_vec().into())
    );
}

#[tokio::test]
async fn client_close_is_echoed_and_the_app_sees_close_then_none() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let addr = serve(echo_config(), move |mut ws: UpgradedWebSocket| {
        let tx = tx.clone();
        async move {
            let mut seen = Vec::new();
            while let Some(item) = ws.next().await {
                seen.push(item.map_err(|e| e.kind()));
            }
            let _ = tx.lock().unwrap().take().unwrap().send(seen);
        }
    })
    .await;
    let mut ws = client(addr).await;
    ws.close(Some(TCloseFrame {
        code: TCloseCode::Away,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    match within(ws.next()).await {
        Some(Ok(TMessage::Close(Some(frame)))) => assert_eq!(frame.code, TCloseCode::Away),
        other => panic!("expected the close echo, got {other:?}"),
    }
    // The server closes TCP after the handshake.
    assert!(within(ws.next()).await.is_none());
    let seen = within(rx).await.unwrap();
    assert_eq!(
        seen,
        [Ok(Message::Close(Some(tower_ws::CloseFrame::new(
            CloseCode::AWAY,
            "bye"
        ))))]
    );
}

#[tokio::test]
async fn server_close_delivers_everything_sent_before_it() {
    let addr = serve(echo_config(), |mut ws: UpgradedWebSocket| async move {
        for i in 0..100 {
            ws.feed(Message::text(format!("message {i}")))
                .await
                .unwrap();
        }
        ws.close(CloseCode::NORMAL, "all sent").await.unwrap();
    })
    .await;
    let mut ws = client(addr).await;
    for i in 0..100 {
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap(),
            TMessage::text(format!("message {i}"))
        );
    }
    match within(ws.next()).await {
        Some(Ok(TMessage::Close(Some(frame)))) => {
            assert_eq!(frame.code, TCloseCode::Normal);
            assert_eq!(frame.reason, "all sent");
        }
        other => panic!("expected close, got {other:?}"),
    }
    // tungstenite replies to the close; the server's close() completes and closes TCP.
    assert!(within(ws.next()).await.is_none());
}

#[tokio::test]
async fn split_halves_work_from_two_tasks_and_still_answer_pings() {
    let addr = serve(echo_config(), |ws: UpgradedWebSocket| async move {
        let (mut tx, mut rx) = ws.split();
        let writer = tokio::spawn(async move {
            for i in 0..50 {
                tx.send(Message::text(format!("tick {i}"))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        while let Some(Ok(_)) = rx.next().await {}
        writer.await.unwrap();
    })
    .await;
    let mut ws = client(addr).await;
    let mut ticks = 0;
    let mut pongs = 0;
    for i in 0..10 {
        ws.send(TMessage::Ping(vec![i].into())).await.unwrap();
    }
    while ticks < 50 || pongs < 10 {
        match within(ws.next()).await.unwrap().unwrap() {
            TMessage::Text(t) => {
                assert_eq!(t.as_str(), format!("tick {ticks}"));
                ticks += 1;
            }
            TMessage::Pong(p) => {
                assert_eq!(p[..], [pongs]);
                pongs += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn keepalive_pings_keep_a_responsive_peer_connected() {
    let config = echo_config()
        .ping_interval(Some(Duration::from_millis(50)))
        .pong_timeout(Duration::from_millis(500));
    let addr = serve(config, echo).await;
    let mut ws = client(addr).await;
    // tungstenite answers pings while it reads; after several intervals the echo still works.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(TMessage::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(100), ws.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 2, "expected keepalive pings, saw {pings}");
    ws.send(TMessage::text("still here")).await.unwrap();
    loop {
        match within(ws.next()).await.unwrap().unwrap() {
            TMessage::Ping(_) => continue,
            msg => {
                assert_eq!(msg, TMessage::text("still here"));
                break;
            }
        }
    }
}
