//! Positions and history: a subscriber that comes back with the position of the last message it
//! got receives what it missed, then live messages, each once and in order; a position the
//! history cannot serve says so (`recovered: false`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{RawClient, serve, within};
use tower_ws::hub::{Envelope, History, Hub, PreparedMessage};
use tower_ws::{Config, Message, Position, Role, UpgradedWebSocket, WebSocket};

fn history_hub(messages: usize, max_age: Duration) -> Hub {
    Hub::builder()
        .history("", History::new(messages, max_age))
        .build()
}

/// A socket attached to `hub` (server side) and the client end reading it, in memory.
fn pair(
    hub: &Hub,
) -> (
    tower_ws::hub::Member,
    WebSocket<tokio::io::DuplexStream>,
    WebSocket<tokio::io::DuplexStream>,
) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut server = WebSocket::from_raw(a, Role::Server, &Config::default());
    let client = WebSocket::from_raw(b, Role::Client, &Config::default());
    let member = hub.attach(&mut server);
    (member, server, client)
}

async fn next_text(client: &mut WebSocket<tokio::io::DuplexStream>) -> String {
    match within(client.recv()).await {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_position_in_the_history_is_resumed_and_others_are_not() {
    let hub = history_hub(5, Duration::from_secs(60));
    let mut positions = Vec::new();
    for i in 1..=20 {
        let published = hub.publish_with("t", |_| PreparedMessage::text(format!("m{i}")));
        positions.push(published.position);
    }
    assert_eq!(positions[19].offset, 20);
    let epoch = positions[0].epoch;

    // Has everything up to 15: 16..=20 are in the history (the newest 5).
    let (me, _server, mut client) = pair(&hub);
    let s = me.subscribe_since("t", Some(positions[14])).unwrap();
    assert!(s.recovered);
    assert_eq!((s.replayed, s.position.offset), (5, 20));
    for i in 16..=20 {
        assert_eq!(next_text(&mut client).await, format!("m{i}"));
    }

    // Older than the history, another epoch, ahead of the topic: not recovered, live only.
    let other = Position {
        epoch: "0123456789abcdef".parse().unwrap(),
        offset: 20,
    };
    let ahead = Position { epoch, offset: 21 };
    for since in [positions[2], other, ahead] {
        let (me, _server, _client) = pair(&hub);
        let s = me.subscribe_since("t", Some(since)).unwrap();
        assert!(!s.recovered, "{since}");
        assert_eq!((s.replayed, s.position.offset), (0, 20), "{since}");
    }

    // Up to date: nothing to replay, recovered.
    let (me, _server, _client) = pair(&hub);
    let s = me.subscribe_since("t", Some(positions[19])).unwrap();
    assert!(s.recovered);
    assert_eq!(s.replayed, 0);
}

#[tokio::test]
async fn the_first_message_goes_out_before_the_replay_and_the_live_messages() {
    let hub = history_hub(100, Duration::from_secs(60));
    let first = hub
        .publish_with("t", |at| Envelope::text(None, at, "one"))
        .position;
    hub.publish_with("t", |at| Envelope::text(None, at, "two"));
    let (me, _server, mut client) = pair(&hub);
    let s = me
        .subscribe_since_with("t", Some(first), |s| Envelope::subscribed(None, s))
        .unwrap();
    hub.publish_with("t", |at| Envelope::text(None, at, "three"));
    let answer = next_text(&mut client).await;
    assert!(answer.starts_with(r#"{"type":"subscribed""#), "{answer}");
    assert!(
        answer.contains(r#""offset":2,"recovered":true,"replayed":1"#),
        "{answer}"
    );
    assert_eq!(s.position.offset, 2);
    assert!(
        next_text(&mut client)
            .await
            .ends_with(r#""offset":2,"data":"two"}"#)
    );
    assert!(
        next_text(&mut client)
            .await
            .ends_with(r#""offset":3,"data":"three"}"#)
    );
}

#[tokio::test]
async fn a_topic_with_history_keeps_what_was_published_before_anyone_subscribed() {
    let hub = history_hub(10, Duration::from_secs(60));
    assert_eq!(hub.publish("t", "early"), 0);
    let at = hub
        .position("t")
        .expect("the topic is kept for its history");
    assert_eq!(at.offset, 1);
    let (me, _server, mut client) = pair(&hub);
    let s = me
        .subscribe_since("t", Some(Position { offset: 0, ..at }))
        .unwrap();
    assert!(s.recovered);
    assert_eq!(s.replayed, 1);
    assert_eq!(next_text(&mut client).await, "early");

    // Without a history, nothing is kept for no one, and a topic left by its last
    // subscriber is forgotten (its next log is a new epoch).
    let plain = Hub::new();
    assert_eq!(plain.publish("t", "lost"), 0);
    assert_eq!(plain.position("t"), None);
    let (me, server, _client) = pair(&plain);
    me.subscribe("t");
    let epoch = plain.position("t").unwrap().epoch;
    drop(server);
    assert_eq!(plain.position("t"), None);
    let (me, _server, _client) = pair(&plain);
    me.subscribe("t");
    assert_ne!(plain.position("t").unwrap().epoch, epoch);
}

#[tokio::test]
async fn the_history_lets_go_of_messages_past_its_age() {
    let hub = history_hub(100, Duration::from_millis(50));
    let first = hub.publish_with("t", |_| "old".into()).position;
    hub.publish("t", "old too");
    tokio::time::sleep(Duration::from_millis(120)).await;
    hub.publish("t", "new");
    let (me, _server, _client) = pair(&hub);
    let s = me.subscribe_since("t", Some(first)).unwrap();
    assert!(!s.recovered, "messages past the age are not replayed");
    let (me, _server, mut client) = pair(&hub);
    let s = me
        .subscribe_since("t", Some(Position { offset: 2, ..first }))
        .unwrap();
    assert!(s.recovered);
    assert_eq!(s.replayed, 1);
    assert_eq!(next_text(&mut client).await, "new");
}

/// The data and offset of a `{"type":"msg",...}` envelope.
fn parse_msg(json: &str) -> (u64, String) {
    let offset = json
        .split("\"offset\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {json}"));
    let data = json
        .split("\"data\":\"")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("no data in {json}"));
    (offset, data.to_owned())
}

/// Reads text frames from `client` until one carries `last`; returns (offset, data) of each
/// message and the subscription answer.
async fn read_until(client: &mut RawClient, last: &str) -> (String, Vec<(u64, String)>) {
    let mut answer = String::new();
    let mut got = Vec::new();
    loop {
        let frame = within(client.read_frame()).await.expect("connection ended");
        let json = String::from_utf8(frame.payload).unwrap();
        if json.starts_with(r#"{"type":"subscribed""#) {
            answer = json;
            continue;
        }
        let (offset, data) = parse_msg(&json);
        let done = data == last;
        got.push((offset, data));
        if done {
            return (answer, got);
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_drops_mid_stream_and_resumes_gets_every_message_once_in_order() {
    const TOTAL: u32 = 60;
    let hub = history_hub(1000, Duration::from_secs(60));
    // The position the next connection resumes from (set by the test before it connects).
    let since: Arc<Mutex<Option<Position>>> = Arc::default();
    let addr = {
        let hub = hub.clone();
        let since = since.clone();
        serve(Config::default(), move |mut ws: UpgradedWebSocket| {
            let hub = hub.clone();
            let since = *since.lock().unwrap();
            async move {
                let me = hub.attach(&mut ws);
                me.subscribe_since_with("feed", since, |s| Envelope::subscribed(None, s));
                while let Some(Ok(_)) = ws.recv().await {}
            }
        })
        .await
    };
    // Publishes one message every 2 ms, numbered 1..=TOTAL.
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in 1..=TOTAL {
                hub.publish_with("feed", |at| Envelope::text(None, at, &i.to_string()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut first = RawClient::connect(addr).await;
    let frame = within(first.read_frame()).await.unwrap();
    let answer = String::from_utf8(frame.payload).unwrap();
    assert!(answer.contains(r#""recovered":true"#), "{answer}");
    let start: u64 = answer
        .split("\"offset\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    // Read about a third of the stream, then drop the connection without a close.
    let mut got = Vec::new();
    while got.len() < 15 {
        let frame = within(first.read_frame()).await.unwrap();
        got.push(parse_msg(&String::from_utf8(frame.payload).unwrap()));
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let epoch = hub.position("feed").unwrap().epoch;
    let last = got.last().unwrap().0;
    *since.lock().unwrap() = Some(Position {
        epoch,
        offset: last,
    });
    let mut second = RawClient::connect(addr).await;
    let (answer, more) = read_until(&mut second, &TOTAL.to_string()).await;
    assert!(answer.contains(r#""recovered":true"#), "{answer}");
    got.extend(more);
    within(publisher).await.unwrap();

    let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
    let expected: Vec<u64> = (start + 1..=u64::from(TOTAL)).collect();
    assert_eq!(
        offsets, expected,
        "every message once, in order, offsets contiguous"
    );
    for (offset, data) in &got {
        assert_eq!(data, &offset.to_string());
    }
}
