//! The fan-out hub over real connections: topics, all-but-sender, the registry, broadcast,
//! each overflow policy with a subscriber that stops reading, prepared messages with
//! permessage-deflate, and two hubs joined by the in-process backplane.

mod support;

use std::sync::{Arc, Mutex};

use support::{RawClient, RawFrame, serve, within};
use tokio::sync::mpsc;
use tower_ws::hub::backplane::LocalBackplane;
use tower_ws::hub::{Hub, Member, Overflow};
use tower_ws::{CloseCode, Config, UpgradedWebSocket};

/// What a test's server does with each socket: attach it, then the test's `join` step
/// (subscribe, register), then report the member and read until the socket ends.
type Join = Arc<dyn Fn(&Member) + Send + Sync>;

/// Serves sockets attached to `hub`; each one's member comes out of the returned channel
/// once `join` ran for it, and its id out of `left` when its socket ended.
async fn hub_server(
    hub: &Hub,
    config: Config,
    join: Join,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Member>,
    mpsc::UnboundedReceiver<u64>,
) {
    let (joined_tx, joined) = mpsc::unbounded_channel();
    let (left_tx, left) = mpsc::unbounded_channel();
    let hub = hub.clone();
    let addr = serve(config, move |mut ws: UpgradedWebSocket| {
        let hub = hub.clone();
        let join = join.clone();
        let joined_tx = joined_tx.clone();
        let left_tx = left_tx.clone();
        async move {
            let me = hub.attach(&mut ws);
            join(&me);
            let _ = joined_tx.send(me.clone());
            while let Some(Ok(_)) = ws.recv().await {}
            drop(ws);
            let _ = left_tx.send(me.id());
        }
    })
    .await;
    (addr, joined, left)
}

fn subscribe_to(topic: &'static str) -> Join {
    Arc::new(move |me: &Member| {
        me.subscribe(topic);
    })
}

/// Connects a client and waits until the server attached (and joined) it.
async fn join(
    addr: std::net::SocketAddr,
    joined: &mut mpsc::UnboundedReceiver<Member>,
) -> (RawClient, Member) {
    let client = RawClient::connect(addr).await;
    let member = within(joined.recv()).await.expect("server gone");
    (client, member)
}

async fn text(client: &mut RawClient) -> String {
    let frame = client.read_frame().await.expect("connection ended");
    assert_eq!(frame.opcode(), 1, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

#[tokio::test]
async fn a_publish_reaches_every_subscriber_of_the_topic_and_only_them() {
    let hub = Hub::new();
    let (addr, mut joined, _) = hub_server(&hub, Config::default(), subscribe_to("news")).await;
    let (mut a, _) = join(addr, &mut joined).await;
    let (mut b, _) = join(addr, &mut joined).await;
    assert_eq!(hub.subscribers("news"), 2);

    assert_eq!(hub.publish("news", "one"), 2);
    assert_eq!(hub.publish("sports", "not for them"), 0);
    assert_eq!(hub.publish("news", vec![1u8, 2, 3]), 2);
    for client in [&mut a, &mut b] {
        assert_eq!(text(client).await, "one");
        let frame = client.read_frame().await.unwrap();
        assert_eq!((frame.opcode(), frame.payload), (2, vec![1, 2, 3]));
    }
    let stats = hub.stats();
    assert_eq!((stats.published, stats.queued, stats.dropped), (3, 4, 0));
}

#[tokio::test]
async fn a_member_publishes_to_all_but_itself() {
    let hub = Hub::new();
    let (addr, mut joined, _) = hub_server(&hub, Config::default(), subscribe_to("room")).await;
    let (mut a, me_a) = join(addr, &mut joined).await;
    let (mut b, _) = join(addr, &mut joined).await;

    assert_eq!(me_a.publish("room", "from a"), 1);
    assert_eq!(text(&mut b).await, "from a");
    hub.publish("room", "marker");
    // a's next message is the marker: its own publish never came back.
    assert_eq!(text(&mut a).await, "marker");
    assert_eq!(text(&mut b).await, "marker");

    // broadcast: everyone attached, whatever their topics; a member's skips itself.
    me_a.broadcast("all but a");
    hub.broadcast("all");
    assert_eq!(text(&mut b).await, "all but a");
    assert_eq!(text(&mut b).await, "all");
    assert_eq!(text(&mut a).await, "all");
}

#[tokio::test]
async fn the_registry_sends_to_every_socket_of_a_key_and_forgets_ended_sockets() {
    let hub = Hub::new();
    let next = Arc::new(Mutex::new(vec!["bob", "alice", "alice"]));
    let register: Join = Arc::new(move |me: &Member| {
        let key = next.lock().unwrap().pop().unwrap();
        assert!(me.register(key));
    });
    let (addr, mut joined, mut left) = hub_server(&hub, Config::default(), register).await;
    let (mut alice_phone, _) = join(addr, &mut joined).await;
    let (mut alice_laptop, laptop) = join(addr, &mut joined).await;
    let (mut bob, bob_member) = join(addr, &mut joined).await;
    assert_eq!(laptop.key().as_deref(), Some("alice"));
    assert_eq!(hub.connections("alice"), 2);
    let mut keys = hub.keys();
    keys.sort();
    assert_eq!(keys, ["alice", "bob"]);

    assert_eq!(hub.send_to("alice", "hi alice"), 2);
    assert_eq!(text(&mut alice_phone).await, "hi alice");
    assert_eq!(text(&mut alice_laptop).await, "hi alice");
    hub.send_to("bob", "hi bob");
    assert_eq!(text(&mut bob).await, "hi bob");

    // The laptop closes: its entry goes with its socket.
    alice_laptop.send_frame(0x88, &1000u16.to_be_bytes()).await;
    assert_eq!(alice_laptop.expect_close().await, Some(1000));
    assert_eq!(within(left.recv()).await, Some(laptop.id()));
    assert_eq!(hub.connections("alice"), 1);
    assert!(!laptop.is_attached());
    assert!(
        !laptop.subscribe("anything"),
        "an ended member joins nothing"
    );
    assert_eq!(hub.len(), 2);

    // Registering again moves the socket to the new key.
    assert!(bob_member.register("robert"));
    assert_eq!(hub.connections("bob"), 0);
    assert_eq!(hub.send_to("robert", "renamed"), 1);
    assert_eq!(text(&mut bob).await, "renamed");
}

/// Message `seq` of a burst: 16 KiB, numbered in its first four bytes.
fn numbered(seq: u32) -> Vec<u8> {
    let mut payload = vec![0u8; 16 << 10];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    payload
}

fn seq_of(frame: &RawFrame) -> u32 {
    assert_eq!(frame.opcode(), 2, "{frame:?}");
    u32::from_be_bytes(frame.payload[..4].try_into().unwrap())
}

const BURSTS: u32 = 500;
const PER_BURST: u32 = 4;
const TOTAL: u32 = BURSTS * PER_BURST;

/// A fast subscriber and one that never reads, under `overflow` with queues of 8 messages:
/// 2,000 messages of 16 KiB (32 MiB, far more than the socket and kernel buffers hold) go out in
/// bursts of 4, each taken by the fast subscriber before the next. Returns the hub, the slow
/// client and member, and the fast client.
async fn slow_subscriber(overflow: Overflow) -> (Hub, RawClient, Member, RawClient) {
    let (hub, slow, member, fast, _) = slow_subscriber_with(overflow, Config::default()).await;
    (hub, slow, member, fast)
}

/// [`slow_subscriber`] with the socket settings `config` starts from; also the channel of the
/// ids of sockets whose handler ended.
async fn slow_subscriber_with(
    overflow: Overflow,
    config: Config,
) -> (
    Hub,
    RawClient,
    Member,
    RawClient,
    mpsc::UnboundedReceiver<u64>,
) {
    let hub = Hub::builder()
        .queue_limits(8, 1 << 20)
        .overflow(overflow)
        .build();
    let config = config
        .write_buffer_size(64 << 10)
        .max_write_buffer_size(256 << 10);
    let (addr, mut joined, left) = hub_server(&hub, config, subscribe_to("feed")).await;
    let (slow, slow_member) = join(addr, &mut joined).await;
    let (mut fast, _) = join(addr, &mut joined).await;

    // The fast subscriber reads in its own task and reports each message it got.
    let (got_tx, mut got) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        for expected in 0..TOTAL {
            let frame = fast.read_frame().await.expect("fast subscriber cut off");
            assert_eq!(
                seq_of(&frame),
                expected,
                "the fast subscriber lost or reordered"
            );
            got_tx.send(expected).unwrap();
        }
        fast
    });
    for burst in 0..BURSTS {
        for i in 0..PER_BURST {
            // Never waits, whatever the slow subscriber does.
            hub.publish("feed", numbered(burst * PER_BURST + i));
        }
        let last = burst * PER_BURST + PER_BURST - 1;
        while within(got.recv()).await.expect("fast reader ended") < last {}
        assert!(slow_member.stats().queued <= 8, "a queue over its bound");
    }
    let fast = within(reader).await.unwrap();
    let stats = slow_member.stats();
    assert!(
        stats.dropped > 0,
        "the slow subscriber lost nothing? {stats:?}"
    );
    (hub, slow, slow_member, fast, left)
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_messages_for_a_slow_subscriber() {
    let (hub, mut slow, member, _fast) = slow_subscriber(Overflow::DropOldest).await;
    let stats = member.stats();
    assert_eq!(hub.stats().dropped, stats.dropped);
    assert_eq!(hub.stats().closed_as_slow, 0);
    // It reads at last: increasing numbers with a gap, ending with the newest.
    let mut last = None;
    let mut received = 0;
    while last != Some(TOTAL - 1) {
        let seq = seq_of(&slow.read_frame().await.expect("ended"));
        assert!(
            last.is_none_or(|l| seq > l),
            "out of order: {seq} after {last:?}"
        );
        last = Some(seq);
        received += 1;
    }
    assert_eq!(u64::from(TOTAL - received), member.stats().dropped);
}

#[tokio::test]
async fn close_policy_closes_a_slow_subscriber_with_its_code() {
    let (hub, mut slow, member, mut fast) =
        slow_subscriber(Overflow::Close(CloseCode::TRY_AGAIN_LATER)).await;
    assert!(member.stats().closed_as_slow);
    assert_eq!(hub.stats().closed_as_slow, 1);
    // What was written before goes first, then the close frame with 1013; the server closes
    // the connection once the client answers it.
    let close = loop {
        let frame = slow
            .read_frame()
            .await
            .expect("ended before the close frame");
        if frame.opcode() == 8 {
            break frame;
        }
        seq_of(&frame);
    };
    assert_eq!(close.close_code(), Some(1013));
    slow.send_frame(0x88, &1013u16.to_be_bytes()).await;
    assert!(slow.read_frame().await.is_none());
    assert!(!member.is_attached());
    assert_eq!(hub.subscribers("feed"), 1);
    assert_eq!(hub.publish("feed", "still flowing"), 1);
    assert_eq!(text(&mut fast).await, "still flowing");
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_cut_off_within_the_close_timeout() {
    let close_timeout = std::time::Duration::from_secs(1);
    let config = Config::default().close_timeout(close_timeout);
    let (hub, slow, member, mut fast, mut left) =
        slow_subscriber_with(Overflow::Close(CloseCode::TRY_AGAIN_LATER), config).await;
    assert!(member.stats().closed_as_slow);
    // The client never reads, so the close frame cannot reach it; the timer ends the
    // connection: the handler's receive loop ends and the hub forgets the subscriber.
    let ended = tokio::time::timeout(
        close_timeout + std::time::Duration::from_secs(1),
        left.recv(),
    )
    .await
    .expect("the slow subscriber's socket outlived close_timeout + 1 s");
    assert_eq!(ended, Some(member.id()));
    assert!(!member.is_attached());
    assert_eq!(hub.len(), 1);
    assert_eq!(hub.subscribers("feed"), 1);
    assert_eq!(hub.publish("feed", "still flowing"), 1);
    assert_eq!(text(&mut fast).await, "still flowing");
    drop(slow);
}

/// Serves sockets attached to `hub` whose handlers, once `join` ran, never touch their socket
/// again: they await `release` (at most a minute) holding it, as a handler that waits on
/// something else entirely would.
async fn idle_hub_server(
    hub: &Hub,
    config: Config,
    join: Join,
    release: Arc<tokio::sync::Notify>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Member>) {
    let (joined_tx, joined) = mpsc::unbounded_channel();
    let hub = hub.clone();
    let addr = serve(config, move |mut ws: UpgradedWebSocket| {
        let hub = hub.clone();
        let join = join.clone();
        let joined_tx = joined_tx.clone();
        let release = release.clone();
        async move {
            let me = hub.attach(&mut ws);
            join(&me);
            let _ = joined_tx.send(me);
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(60), release.notified()).await;
            drop(ws);
        }
    })
    .await;
    (addr, joined)
}

#[tokio::test]
async fn a_handler_that_never_polls_its_socket_still_receives_every_publish() {
    let hub = Hub::new();
    let release = Arc::new(tokio::sync::Notify::new());
    let (addr, mut joined) = idle_hub_server(
        &hub,
        Config::default(),
        subscribe_to("feed"),
        release.clone(),
    )
    .await;
    let (mut a, _) = join(addr, &mut joined).await;
    let (mut b, _) = join(addr, &mut joined).await;
    const N: u32 = 500;
    let readers: Vec<_> = [a, b]
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                for expected in 0..N {
                    let frame = client.read_frame().await.expect("connection ended");
                    assert_eq!(seq_of(&frame), expected, "lost or reordered");
                }
                client
            })
        })
        .collect();
    for seq in 0..N {
        assert_eq!(hub.publish("feed", numbered(seq)), 2);
        if seq % 50 == 49 {
            // Bursts, and pauses between them: each burst must go out on its own.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let mut clients = Vec::new();
    for reader in readers {
        clients.push(within(reader).await.expect("a reader failed"));
    }
    (b, a) = (clients.pop().unwrap(), clients.pop().unwrap());
    // One more, after a quiet moment: the drain is woken again.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    hub.publish("feed", "late");
    assert_eq!(text(&mut a).await, "late");
    assert_eq!(text(&mut b).await, "late");
    release.notify_waiters();
}

#[tokio::test]
async fn a_publish_from_a_plain_thread_reaches_subscribers_whose_handlers_read() {
    // No runtime on the publishing thread, and no drain started yet: the subscribers' own
    // tasks are woken, and each socket writes its queue as its handler polls it.
    let hub = Hub::new();
    let (addr, mut joined, _left) = hub_server(&hub, Config::default(), subscribe_to("feed")).await;
    let (mut client, _) = join(addr, &mut joined).await;
    let publisher = hub.clone();
    let published = std::thread::spawn(move || {
        (0..3)
            .map(|i| publisher.publish("feed", format!("from a thread {i}")))
            .sum::<usize>()
    })
    .join()
    .unwrap();
    assert_eq!(published, 3);
    for i in 0..3 {
        assert_eq!(text(&mut client).await, format!("from a thread {i}"));
    }
}

#[tokio::test]
async fn what_one_publisher_sends_to_topics_a_key_and_everyone_arrives_in_its_order() {
    // One subscriber reads four logs (two topics, its key, everyone): they are merged in the
    // order of the publishes.
    let hub = Hub::new();
    let four_logs: Join = Arc::new(|me: &Member| {
        me.subscribe("a");
        me.subscribe("b");
        me.register("user");
    });
    let (addr, mut joined, _left) = hub_server(&hub, Config::default(), four_logs).await;
    let (mut client, _) = join(addr, &mut joined).await;
    const N: u32 = 400;
    let reader = tokio::spawn(async move {
        for expected in 0..N {
            let frame = client.read_frame().await.expect("ended");
            assert_eq!(seq_of(&frame), expected, "out of order");
        }
    });
    for seq in 0..N {
        let msg = numbered(seq);
        let reached = match seq % 4 {
            0 => hub.publish("a", msg),
            1 => hub.publish("b", msg),
            2 => hub.send_to("user", msg),
            _ => hub.broadcast(msg),
        };
        assert_eq!(reached, 1);
        if seq % 32 == 31 {
            tokio::task::yield_now().await;
        }
    }
    within(reader).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_across_logs_holds_while_drains_run_on_other_threads() {
    // As above, with the publisher on its own thread and the drains on two workers, each
    // reading the logs while the publisher appends to them.
    let hub = Hub::builder().drains(2).build();
    let two_topics: Join = Arc::new(|me: &Member| {
        me.subscribe("a");
        me.subscribe("b");
    });
    let (addr, mut joined, _left) = hub_server(&hub, Config::default(), two_topics).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(join(addr, &mut joined).await.0);
    }
    const N: u32 = 2_000;
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                for expected in 0..N {
                    let frame = client.read_frame().await.expect("ended");
                    assert_eq!(frame.opcode(), 2);
                    let seq = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                    assert_eq!(seq, expected, "out of order");
                }
            })
        })
        .collect();
    let publisher = hub.clone();
    tokio::task::spawn_blocking(move || {
        for seq in 0..N {
            let topic = if seq % 3 == 0 { "a" } else { "b" };
            assert_eq!(publisher.publish(topic, seq.to_be_bytes().to_vec()), 4);
        }
    })
    .await
    .unwrap();
    for reader in readers {
        within(reader).await.unwrap();
    }
}

#[tokio::test]
async fn the_drain_writes_into_an_http2_stream_too() {
    use tower::Layer;
    use tower_ws::WebSocketLayer;

    // RFC 8441: the socket is a stream of an HTTP/2 connection, whose own task writes what
    // the drain hands it. The handler never polls its socket.
    let hub = Hub::new();
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let layer = {
        let hub = hub.clone();
        let release = release.clone();
        WebSocketLayer::new().on_upgrade(move |mut ws: UpgradedWebSocket, _parts| {
            let hub = hub.clone();
            let joined_tx = joined_tx.clone();
            let release = release.clone();
            async move {
                let me = hub.attach(&mut ws);
                me.subscribe("feed");
                let _ = joined_tx.send(me);
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(60), release.notified())
                        .await;
                drop(ws);
            }
        })
    };
    let not_found = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .status(404)
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
    });
    let addr = support::serve_service(layer.layer(not_found), true).await;
    let (status, _, ws) = support::connect_h2(addr, "/feed", None).await;
    assert_eq!(status, 200);
    let mut ws = ws.expect("upgraded");
    within(joined.recv()).await.expect("attached");
    for seq in 0..200u32 {
        assert_eq!(hub.publish("feed", numbered(seq)), 1);
    }
    for expected in 0..200u32 {
        let msg = within(ws.recv()).await.expect("ended").expect("error");
        let data = msg.into_data();
        assert_eq!(
            u32::from_be_bytes(data[..4].try_into().unwrap()),
            expected,
            "lost or reordered"
        );
    }
    release.notify_waiters();
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_cut_off_even_if_its_handler_never_polls() {
    let close_timeout = std::time::Duration::from_secs(1);
    let hub = Hub::builder()
        .queue_limits(8, 1 << 20)
        .overflow(Overflow::Close(CloseCode::TRY_AGAIN_LATER))
        .build();
    let config = Config::default()
        .close_timeout(close_timeout)
        .write_buffer_size(64 << 10)
        .max_write_buffer_size(256 << 10);
    let release = Arc::new(tokio::sync::Notify::new());
    let (addr, mut joined) =
        idle_hub_server(&hub, config, subscribe_to("feed"), release.clone()).await;
    let (slow, member) = join(addr, &mut joined).await;
    // 16 KiB messages until the subscriber, which never reads, is found too slow: the
    // kernel's buffers and the socket's write queue take a few MiB first.
    let mut sent = 0u32;
    while !member.stats().closed_as_slow {
        assert!(sent < 20_000, "never found slow: {:?}", member.stats());
        hub.publish("feed", numbered(sent));
        sent += 1;
        if sent % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let found = tokio::time::Instant::now();
    // Nobody polls the socket: the drain must end it when the close deadline passes.
    while member.is_attached() {
        assert!(
            found.elapsed() < close_timeout + std::time::Duration::from_secs(1),
            "the slow subscriber outlived close_timeout + 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(hub.len(), 0);
    assert_eq!(hub.subscribers("feed"), 0);
    release.notify_waiters();
    drop(slow);
}

#[tokio::test]
async fn a_publish_goes_out_before_what_the_application_sends_after_it() {
    use futures_util::StreamExt;
    use tower_ws::{Message, Role, WebSocket};

    let hub = Hub::new();
    let (server, client) = tokio::io::duplex(1 << 16);
    let mut ws = WebSocket::from_raw(server, Role::Server, &Config::default());
    let mut peer = WebSocket::from_raw(client, Role::Client, &Config::default());
    hub.attach(&mut ws).subscribe("news");
    for round in 0..3 {
        // Published first, sent second: received in that order, as a whole message and as
        // one sent in pieces alike.
        hub.publish("news", format!("published {round}"));
        if round == 2 {
            let mut writer = ws
                .send_streaming(tower_ws::streaming::MessageKind::Text)
                .fragment_size(5);
            writer.send_chunk("sent ".into()).await.unwrap();
            writer.send_chunk(format!("{round}").into()).await.unwrap();
            writer.finish().await.unwrap();
        } else {
            ws.send(Message::text(format!("sent {round}")))
                .await
                .unwrap();
        }
        for expected in [format!("published {round}"), format!("sent {round}")] {
            let got = within(peer.next()).await.unwrap().unwrap();
            assert_eq!(got.as_text(), Some(expected.as_str()), "round {round}");
        }
    }
}

#[tokio::test]
async fn what_was_published_goes_out_before_the_applications_close() {
    use futures_util::StreamExt;
    use tower_ws::{Message, Role, WebSocket};

    // One thread: the drain cannot run between the publish and the close, so the socket's
    // own close must take what waits for it first.
    let hub = Hub::new();
    let (server, client) = tokio::io::duplex(1 << 16);
    let mut ws = WebSocket::from_raw(server, Role::Server, &Config::default());
    let mut peer = WebSocket::from_raw(client, Role::Client, &Config::default());
    hub.attach(&mut ws).subscribe("news");
    hub.publish("news", "last words");
    // Queued at once, before anything else runs (`close` would do the same in its first poll).
    let bye = Message::Close(Some(tower_ws::CloseFrame::new(CloseCode::NORMAL, "bye")));
    futures_util::Sink::start_send(std::pin::Pin::new(&mut ws), bye).unwrap();
    let closing = tokio::spawn(async move { ws.close(CloseCode::NORMAL, "").await });
    let got = within(peer.next()).await.unwrap().unwrap();
    assert_eq!(got.as_text(), Some("last words"));
    let close = within(peer.next()).await.unwrap().unwrap();
    assert!(
        matches!(close, Message::Close(Some(ref f)) if f.reason == "bye"),
        "{close:?}"
    );
    assert!(within(peer.next()).await.is_none());
    within(closing).await.unwrap().unwrap();
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn prepared_messages_are_correct_with_and_without_context_takeover() {
    use flate2::{Decompress, FlushDecompress};
    use tower_ws::hub::PreparedMessage;

    let hub = Hub::new();
    let config = Config::default().deflate(Some(tower_ws::DeflateConfig::default().threshold(0)));
    let (addr, mut joined, _) = hub_server(&hub, config, subscribe_to("events")).await;
    let handshake = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let mut clients = Vec::new();
    for offer in [
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate",
    ] {
        let (client, head) = RawClient::request(
            addr,
            &format!("{handshake}Sec-WebSocket-Extensions: {offer}\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(
            head.contains("server_no_context_takeover"),
            offer.contains("server_no_context_takeover"),
            "{head}"
        );
        within(joined.recv()).await.unwrap();
        // Each client inflates with one decompressor for the whole connection (context kept).
        clients.push((client, Decompress::new(false)));
    }
    let messages: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"event":"tick","seq":{i},"payload":"{}"}}"#,
                "abc".repeat(50)
            )
        })
        .collect();
    for m in &messages {
        hub.publish("events", PreparedMessage::text(m.clone()));
    }
    for (client, inflater) in &mut clients {
        for m in &messages {
            let frame = client.read_frame().await.unwrap();
            assert_eq!(frame.b0, 0xc1, "text, FIN, RSV1 (compressed)");
            let mut input = frame.payload.clone();
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(64 << 10);
            inflater
                .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), *m);
        }
    }
}

#[tokio::test]
async fn two_hubs_on_one_backplane_deliver_each_publish_once_on_both() {
    let bus = LocalBackplane::new();
    let node_a = Hub::builder().backplane(bus.node()).build();
    let node_b = Hub::builder().backplane(bus.node()).build();
    let (addr_a, mut joined_a, _) = hub_server(&node_a, Config::default(), subscribe_to("t")).await;
    let (addr_b, mut joined_b, _) = hub_server(&node_b, Config::default(), subscribe_to("t")).await;
    let (mut on_a, member_a) = join(addr_a, &mut joined_a).await;
    let (mut on_b, _) = join(addr_b, &mut joined_b).await;

    for i in 0..50 {
        node_a.publish("t", format!("a{i}"));
        node_b.publish("t", format!("b{i}"));
    }
    // A member's all-but-self publish crosses nodes too.
    member_a.publish("t", "from member a");
    node_a.publish("t", "end");
    for (client, mine) in [(&mut on_a, false), (&mut on_b, true)] {
        let (mut a, mut b) = (0, 0);
        loop {
            let msg = text(client).await;
            if msg == "end" {
                break;
            }
            if msg == "from member a" {
                assert!(mine, "a member's publish came back to it");
            } else if let Some(i) = msg.strip_prefix('a') {
                assert_eq!(i.parse::<u32>().unwrap(), a, "per-publisher order");
                a += 1;
            } else {
                let i = msg.strip_prefix('b').unwrap();
                assert_eq!(i.parse::<u32>().unwrap(), b, "per-publisher order");
                b += 1;
            }
        }
        // Exactly once: "end" came after every other publish was delivered.
        while b < 50 {
            assert_eq!(text(client).await, format!("b{b}"));
            b += 1;
        }
        assert_eq!(a, 50);
    }
    assert_eq!(node_b.stats().received_from_nodes, 52);
    // The sender node never took its own messages back from the bus.
    assert_eq!(node_a.stats().received_from_nodes, 50);
}

#[tokio::test]
async fn a_topic_with_100_000_subscribers_publishes_and_shrinks() {
    use tower_ws::{Role, WebSocket};

    const N: usize = 100_000;
    let hub = Hub::new();
    let msg = tower_ws::hub::PreparedMessage::text("to everyone");
    let mut sockets = Vec::with_capacity(N);
    let mut peers = Vec::with_capacity(N);
    for _ in 0..N {
        let (io, peer) = tokio::io::duplex(256);
        let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
        assert!(hub.attach(&mut ws).subscribe("big"));
        sockets.push(ws);
        peers.push(peer);
    }
    assert_eq!(hub.subscribers("big"), N);
    // One encoding, N queued references.
    assert_eq!(hub.publish("big", &msg), N);
    assert_eq!(hub.stats().queued, N as u64);
    // Every other socket goes: each leaves in O(1), the rest still get what is published.
    let mut i = 0;
    sockets.retain(|_| {
        i += 1;
        i % 2 == 0
    });
    assert_eq!(hub.subscribers("big"), N / 2);
    assert_eq!(hub.publish("big", &msg), N / 2);
    drop(sockets);
    assert_eq!(hub.subscribers("big"), 0);
    assert!(hub.topics().is_empty(), "an empty topic is forgotten");
    assert!(hub.is_empty());
}

#[tokio::test]
async fn a_node_that_goes_away_leaves_the_others_unaffected() {
    let bus = LocalBackplane::new();
    let node_a = Hub::builder().backplane(bus.node()).build();
    let node_b = Hub::builder().backplane(bus.node()).build();
    let node_c = Hub::builder().backplane(bus.node()).build();
    let (addr_b, mut joined_b, _) = hub_server(&node_b, Config::default(), subscribe_to("t")).await;
    let (mut on_b, _) = join(addr_b, &mut joined_b).await;
    node_a.publish("t", "before");
    // Node A dies (its hub and its place on the bus are gone) between two publishes.
    drop(node_a);
    node_c.publish("t", "after");
    node_b.publish("t", "local");
    assert_eq!(text(&mut on_b).await, "before");
    assert_eq!(text(&mut on_b).await, "after");
    assert_eq!(text(&mut on_b).await, "local");
    assert_eq!(node_b.stats().received_from_nodes, 2);
}

#[tokio::test]
async fn published_messages_wait_for_the_end_of_a_message_sent_in_pieces() {
    use tower_ws::streaming::MessageKind;

    let hub = Hub::new();
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let go_rx = Arc::new(tokio::sync::Mutex::new(Some(go_rx)));
    let handler_hub = hub.clone();
    let addr = serve(Config::default(), move |mut ws: UpgradedWebSocket| {
        let hub = handler_hub.clone();
        let joined_tx = joined_tx.clone();
        let go_rx = go_rx.clone();
        async move {
            hub.attach(&mut ws).subscribe("t");
            let mut writer = ws.send_streaming(MessageKind::Text).fragment_size(4);
            writer.send_chunk("abcd".into()).await.unwrap();
            // The first fragment is out: the test publishes now.
            joined_tx.send(()).unwrap();
            let go = go_rx.lock().await.take().unwrap();
            go.await.unwrap();
            writer.send_chunk("efgh".into()).await.unwrap();
            writer.finish().await.unwrap();
            while let Some(Ok(_)) = ws.recv().await {}
        }
    })
    .await;
    let mut client = RawClient::connect(addr).await;
    within(joined.recv()).await.unwrap();
    assert_eq!(hub.publish("t", "published"), 1);
    go_tx.send(()).unwrap();
    // The fragments stay together (text, continuation, ..., the last with FIN); the published
    // message comes after the last.
    let mut text = Vec::new();
    loop {
        let frame = client.read_frame().await.unwrap();
        let first = text.is_empty();
        assert_eq!(
            frame.opcode(),
            if first { 1 } else { 0 },
            "a data frame inside a fragmented message: {frame:?}"
        );
        text.extend_from_slice(&frame.payload);
        if frame.b0 & 0x80 != 0 {
            break;
        }
    }
    assert_eq!(text, b"abcdefgh");
    let after = client.read_frame().await.unwrap();
    assert_eq!((after.b0, after.payload), (0x81, b"published".to_vec()));
}
