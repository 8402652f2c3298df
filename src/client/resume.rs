//! A subscription that outlives its connections: it keeps the position of the last message it
//! got and, when the connection drops, connects again (backing off) from that position.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{ClientBuilder, ClientError};
use crate::upgrade::UpgradedWebSocket;
use crate::{CloseFrame, Epoch, Message, Position};

/// Waits between attempts: from the first, doubling, to the second.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// A subscription to a server that speaks [`hub::Envelope`](crate::hub::Envelope)'s JSON
/// (feature `hub` on the server; this client needs `json`), which it follows across
/// disconnections: it remembers the position of the last message it got, and when the
/// connection ends (or cannot be made) it says so, waits (100 ms, doubling up to 5 s), and
/// connects again with `since=EPOCH:OFFSET` added to the URI's query. The server then sends
/// what was missed and goes on live, or answers that it could not (`recovered: false`: the
/// application should reload its state).
///
/// The server's side of the convention: the first frame is
/// `{"type":"subscribed","epoch":E,"offset":O,"recovered":B,"replayed":N}`
/// ([`Envelope::subscribed`](crate::hub::Envelope::subscribed)), then each message is
/// `{"type":"msg","epoch":E,"offset":O,"data":D}` ([`Envelope::text`](crate::hub::Envelope::text)),
/// as `examples/fanout --history N` and `examples/chat` serve it. A message at or before the
/// position already held (same epoch) is not handed out twice.
///
/// # Examples
///
/// ```no_run
/// use tower_ws::client::{Resuming, Update};
///
/// # async fn run() {
/// let mut feed = Resuming::new("ws://127.0.0.1:9002/sub");
/// loop {
///     match feed.next().await {
///         Update::Subscribed { recovered: false, .. } => println!("gap: reload the state"),
///         Update::Message { position, data } => println!("{position}: {data}"),
///         Update::Disconnected { reason, retry_in } => eprintln!("{reason}; again in {retry_in:?}"),
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct Resuming {
    uri: String,
    configure: Box<dyn Fn(ClientBuilder) -> ClientBuilder + Send + Sync>,
    since: Option<Position>,
    socket: Option<UpgradedWebSocket>,
    /// Failed attempts in a row (connecting, or connections that ended).
    failures: u32,
    /// No attempt before this.
    wait_until: Option<Instant>,
    /// The server's close frame, while the close handshake ends.
    closing: Option<CloseFrame>,
}

impl std::fmt::Debug for Resuming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resuming")
            .field("uri", &self.uri)
            .field("since", &self.since)
            .field("connected", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

/// What a [`Resuming`] subscription got.
#[derive(Debug)]
#[non_exhaustive]
pub enum Update {
    /// Connected and subscribed. `recovered: false` after a disconnection: the messages since
    /// the last one were not all kept, so the application should reload its state (the
    /// subscription goes on from `position`).
    Subscribed {
        /// The topic's newest position when the subscription began.
        position: Position,
        /// Whether every message after the position held follows.
        recovered: bool,
        /// How many messages the server replays before the live ones.
        replayed: u64,
    },
    /// A message and its position.
    Message {
        /// Its position in the topic.
        position: Position,
        /// The envelope's `data`: for [`Envelope::text`](crate::hub::Envelope::text), a string.
        data: Value,
    },
    /// A frame that is not an envelope (text that is not one, binary, ping and pong are
    /// answered by the socket itself and not shown).
    Other(Message),
    /// The connection ended or could not be made; the next call connects again after
    /// `retry_in`, from the last position.
    Disconnected {
        /// Why.
        reason: Disconnection,
        /// How long the next call waits before connecting.
        retry_in: Duration,
    },
}

/// Why a [`Resuming`] subscription lost its connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Disconnection {
    /// Connecting failed.
    Connect(ClientError),
    /// The connection failed (the network, a protocol error).
    Socket(crate::Error),
    /// The server closed the connection, with its close frame if it sent one.
    Closed(Option<CloseFrame>),
}

impl std::fmt::Display for Disconnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Socket(e) => write!(f, "the connection failed: {e}"),
            Self::Closed(Some(frame)) => write!(
                f,
                "the server closed the connection ({} {:?})",
                frame.code.as_u16(),
                frame.reason.as_str()
            ),
            Self::Closed(None) => f.write_str("the connection ended"),
        }
    }
}

impl std::error::Error for Disconnection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e),
            Self::Socket(e) => Some(e),
            Self::Closed(_) => None,
        }
    }
}

impl Resuming {
    /// A subscription to `uri` (a `ws://` or `wss://` URI), from now on. Nothing happens until
    /// the first [`next`](Self::next).
    ///
    /// # Examples
    ///
    /// ```
    /// let feed = tower_ws::client::Resuming::new("ws://127.0.0.1:9002/sub?topic=news");
    /// assert_eq!(feed.position(), None);
    /// ```
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.to_owned(),
            configure: Box::new(|builder| builder),
            since: None,
            socket: None,
            failures: 0,
            wait_until: None,
            closing: None,
        }
    }

    /// Starts from `position` (the last message the application has, from an earlier run).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::Position;
    /// use tower_ws::client::Resuming;
    ///
    /// let kept: Position = "0000000000000001:41".parse().unwrap();
    /// let feed = Resuming::new("ws://127.0.0.1:9002/sub").since(Some(kept));
    /// assert_eq!(feed.position(), Some(kept));
    /// ```
    #[must_use]
    pub fn since(mut self, position: Option<Position>) -> Self {
        self.since = position;
        self
    }

    /// Sets up each connection's [`ClientBuilder`] (headers, TLS, timeouts, compression).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_ws::client::Resuming;
    ///
    /// let feed = Resuming::new("ws://127.0.0.1:9002/sub")
    ///     .configure(|b| b.connect_timeout(Duration::from_secs(3)).header("authorization", "Bearer t"));
    /// # drop(feed);
    /// ```
    #[must_use]
    pub fn configure(
        mut self,
        configure: impl Fn(ClientBuilder) -> ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// The position of the last message handed out (or the one the subscription started from).
    pub fn position(&self) -> Option<Position> {
        self.since
    }

    /// The next update: a message, the answer to a (re)subscription, or a disconnection.
    /// Never ends by itself: after a disconnection, the next call connects again.
    pub async fn next(&mut self) -> Update {
        loop {
            let Some(ws) = &mut self.socket else {
                if let Some(at) = self.wait_until.take() {
                    tokio::time::sleep_until(at).await;
                }
                match self.connect().await {
                    Ok(ws) => self.socket = Some(ws),
                    Err(e) => return self.disconnected(Disconnection::Connect(e)),
                }
                continue;
            };
            let msg = match ws.recv().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return self.disconnected(Disconnection::Socket(e)),
                None => {
                    let frame = self.closing.take();
                    return self.disconnected(Disconnection::Closed(frame));
                }
            };
            let Message::Text(text) = &msg else {
                match msg {
                    // Answered by the socket itself.
                    Message::Ping(_) | Message::Pong(_) => continue,
                    // The handshake ends at the next read.
                    Message::Close(frame) => {
                        self.closing = frame;
                        continue;
                    }
                    other => return Update::Other(other),
                }
            };
            let Some(update) = parse(text) else {
                return Update::Other(msg);
            };
            match &update {
                Update::Subscribed {
                    position,
                    recovered,
                    ..
                } => {
                    self.failures = 0;
                    // Recovered: the messages after `since` follow and move it. If not (or
                    // nothing was held), the subscription goes on from here.
                    if self.since.is_none() || !recovered {
                        self.since = Some(*position);
                    }
                }
                Update::Message { position, .. } => {
                    if self
                        .since
                        .is_some_and(|s| s.epoch == position.epoch && position.offset <= s.offset)
                    {
                        continue; // had it already
                    }
                    self.since = Some(*position);
                }
                _ => {}
            }
            return update;
        }
    }

    async fn connect(&self) -> Result<UpgradedWebSocket, ClientError> {
        let uri = match self.since {
            Some(since) if self.uri.contains('?') => format!("{}&since={since}", self.uri),
            Some(since) => format!("{}?since={since}", self.uri),
            None => self.uri.clone(),
        };
        let builder = (self.configure)(ClientBuilder::new(&uri)?);
        Ok(builder.connect().await?.0)
    }

    /// Drops the connection and schedules the next attempt.
    fn disconnected(&mut self, reason: Disconnection) -> Update {
        self.socket = None;
        let retry_in = BACKOFF
            .0
            .saturating_mul(1 << self.failures.min(16))
            .min(BACKOFF.1);
        self.failures = self.failures.saturating_add(1);
        self.wait_until = Some(Instant::now() + retry_in);
        Update::Disconnected { reason, retry_in }
    }
}

/// An envelope, or `None` for any other text.
fn parse(text: &str) -> Option<Update> {
    let Value::Object(mut obj) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let position = Position {
        epoch: obj.get("epoch")?.as_str()?.parse::<Epoch>().ok()?,
        offset: obj.get("offset")?.as_u64()?,
    };
    match obj.get("type")?.as_str()? {
        "subscribed" => Some(Update::Subscribed {
            position,
            recovered: obj.get("recovered")?.as_bool()?,
            replayed: obj.get("replayed").and_then(Value::as_u64).unwrap_or(0),
        }),
        "msg" => Some(Update::Message {
            position,
            data: obj.remove("data")?,
        }),
        _ => None,
    }
}
