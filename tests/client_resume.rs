//! The client's resuming subscription against a server with a topic history: the connection
//! drops mid-stream, the client comes back from its last position, and ends with every message
//! once, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower_ws::client::{Disconnection, Resuming, Update};
use tower_ws::hub::{Envelope, History, Hub};
use tower_ws::{Position, UpgradedWebSocket};

const TOTAL: u64 = 60;

/// A server like `examples/fanout --history`: `/sub?since=EPOCH:OFFSET` subscribes from the
/// position; its first connection is dropped (no close frame) after `drop_after`.
async fn server(hub: Hub, drop_after: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let serving = tower_ws::serve(
        listener,
        move |mut ws: UpgradedWebSocket, parts: http::request::Parts| {
            let hub = hub.clone();
            let nth = connections.fetch_add(1, Ordering::Relaxed);
            let since = parts
                .uri
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|p| p.strip_prefix("since="))
                .map(|v| v.parse::<Position>().expect("a position"));
            async move {
                let me = hub.attach(&mut ws);
                me.subscribe_since_with("feed", since, |s| Envelope::subscribed(None, s));
                if nth == 0 {
                    // The first connection is cut off mid-stream, without a close.
                    let _ = tokio::time::timeout(drop_after, async {
                        while let Some(Ok(_)) = ws.recv().await {}
                    })
                    .await;
                    return;
                }
                while let Some(Ok(_)) = ws.recv().await {}
            }
        },
    );
    tokio::spawn(std::future::IntoFuture::into_future(serving));
    addr
}

#[tokio::test]
async fn a_resuming_subscription_gets_every_message_once_across_a_dropped_connection() {
    let hub = Hub::builder()
        .history("", History::new(1000, Duration::from_secs(60)))
        .build();
    let addr = server(hub.clone(), Duration::from_millis(40)).await;
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            // Until the client subscribed (the topic's log exists), then one every 2 ms.
            while hub.position("feed").is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for i in 1..=TOTAL {
                hub.publish_with("feed", |at| Envelope::text(None, at, &i.to_string()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut feed = Resuming::new(&format!("ws://{addr}/sub"));
    let (mut subscribed, mut disconnected, mut got) = (Vec::new(), 0, Vec::new());
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.last().map(|(_, d): &(u64, String)| d.as_str()) != Some(&TOTAL.to_string()) {
            match feed.next().await {
                Update::Subscribed { recovered, .. } => subscribed.push(recovered),
                Update::Message { position, data } => {
                    got.push((position.offset, data.as_str().unwrap().to_owned()));
                }
                Update::Disconnected { reason, retry_in } => {
                    assert!(
                        matches!(
                            reason,
                            Disconnection::Closed(None) | Disconnection::Socket(_)
                        ),
                        "{reason}"
                    );
                    assert_eq!(retry_in, Duration::from_millis(100), "the first wait");
                    disconnected += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the subscription did not get every message in time");
    publisher.await.unwrap();

    assert_eq!(disconnected, 1);
    assert_eq!(subscribed, [true, true], "subscribed, then resumed");
    let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (1..=TOTAL).collect::<Vec<_>>(),
        "each once, in order"
    );
    for (offset, data) in &got {
        assert_eq!(data, &offset.to_string());
    }
    assert_eq!(feed.position().map(|p| p.offset), Some(TOTAL));
}

#[tokio::test]
async fn a_position_the_server_no_longer_has_is_reported_not_recovered() {
    let hub = Hub::builder()
        .history("", History::new(3, Duration::from_secs(60)))
        .build();
    for i in 0..10 {
        hub.publish("feed", format!("{i}"));
    }
    let addr = server(hub.clone(), Duration::from_secs(60)).await;
    let old = Position {
        offset: 2,
        ..hub.position("feed").unwrap()
    };
    let mut feed = Resuming::new(&format!("ws://{addr}/sub")).since(Some(old));
    match tokio::time::timeout(Duration::from_secs(10), feed.next()).await {
        Ok(Update::Subscribed {
            recovered: false,
            position,
            replayed: 0,
        }) => {
            assert_eq!(position.offset, 10);
            assert_eq!(
                feed.position(),
                Some(position),
                "goes on from the topic's position"
            );
        }
        other => panic!("expected a subscription that did not recover, got {other:?}"),
    }
}
