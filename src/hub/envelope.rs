//! A wire format that carries positions: each message as a JSON text frame with its topic,
//! epoch and offset, rendered once per message (with [`Hub::publish_with`](super::Hub::publish_with)),
//! and the answer to a subscription.
//!
//! The crate imposes no protocol; this one is enough for a client to resume: it keeps the
//! position of the last message it got and sends it back when it reconnects.

use std::fmt::Write as _;

use super::PreparedMessage;
use super::position::Subscribed;
use crate::Position;

/// Renders hub messages and subscription answers as JSON text frames:
///
/// - a message: `{"type":"msg","topic":T,"epoch":E,"offset":O,"data":D}`, where `data` is the
///   published text as a JSON string (or, with [`Envelope::json`], a JSON value as it is);
/// - a subscription: `{"type":"subscribed","topic":T,"epoch":E,"offset":O,"recovered":B,"replayed":N}`,
///   where `offset` is the topic's newest position when the subscription began.
///
/// `topic` is left out when `None`; `epoch` is a string of 16 hexadecimal digits (see
/// [`Epoch`](crate::Epoch)), `offset` a number.
///
/// # Examples
///
/// ```
/// use tower_ws::hub::{Envelope, Hub};
///
/// let hub = Hub::new();
/// let published = hub.publish_with("news", |at| Envelope::text(Some("news"), at, "hi \"all\""));
/// let frame = Envelope::text(Some("news"), published.position, "hi \"all\"");
/// let json = std::str::from_utf8(&frame).unwrap();
/// assert!(json.starts_with(r#"{"type":"msg","topic":"news","epoch":""#));
/// assert!(json.ends_with(r#","offset":1,"data":"hi \"all\""}"#));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Envelope;

impl Envelope {
    /// A message whose data is `text` (escaped as a JSON string).
    pub fn text(topic: Option<&str>, at: Position, text: &str) -> PreparedMessage {
        let mut out = head("msg", topic, at, text.len() + 24);
        out.push_str(",\"data\":");
        push_string(&mut out, text);
        out.push('}');
        PreparedMessage::text(out)
    }

    /// A message whose data is `json`, a JSON value the caller vouches for (put in as it is,
    /// not checked).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::Position;
    /// use tower_ws::hub::Envelope;
    ///
    /// let at: Position = "0000000000000001:7".parse().unwrap();
    /// let frame = Envelope::json(None, at, r#"{"px":101.5}"#);
    /// assert_eq!(
    ///     std::str::from_utf8(&frame).unwrap(),
    ///     r#"{"type":"msg","epoch":"0000000000000001","offset":7,"data":{"px":101.5}}"#
    /// );
    /// ```
    pub fn json(topic: Option<&str>, at: Position, json: &str) -> PreparedMessage {
        let mut out = head("msg", topic, at, json.len() + 16);
        out.push_str(",\"data\":");
        out.push_str(json);
        out.push('}');
        PreparedMessage::text(out)
    }

    /// The answer to a subscription (what [`Member::subscribe_since_with`](super::Member::subscribe_since_with)
    /// sends first).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_ws::hub::{Envelope, Hub};
    /// use tower_ws::{Config, Role, WebSocket};
    ///
    /// let hub = Hub::new();
    /// let (io, _peer) = tokio::io::duplex(1 << 16);
    /// let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
    /// let me = hub.attach(&mut ws);
    /// me.subscribe_since_with("news", None, |s| Envelope::subscribed(Some("news"), s));
    /// ```
    pub fn subscribed(topic: Option<&str>, subscribed: &Subscribed) -> PreparedMessage {
        let mut out = head("subscribed", topic, subscribed.position, 0);
        let _ = write!(
            out,
            ",\"recovered\":{},\"replayed\":{}}}",
            subscribed.recovered, subscribed.replayed
        );
        PreparedMessage::text(out)
    }
}

/// `{"type":KIND,"topic":T,"epoch":E,"offset":O` with room for `more`.
fn head(kind: &str, topic: Option<&str>, at: Position, more: usize) -> String {
    let mut out = String::with_capacity(64 + topic.map_or(0, str::len) + more);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(topic) = topic {
        out.push_str(",\"topic\":");
        push_string(&mut out, topic);
    }
    let _ = write!(out, ",\"epoch\":\"{}\",\"offset\":{}", at.epoch, at.offset);
    out
}

/// Appends `s` as a JSON string (RFC 8259 §7).
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Epoch;

    fn at(offset: u64) -> Position {
        Position {
            epoch: Epoch(0xab),
            offset,
        }
    }

    #[test]
    fn text_is_escaped_as_a_json_string() {
        let frame = Envelope::text(Some("t\"1"), at(3), "a\"b\\c\nd\u{1}é");
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "{\"type\":\"msg\",\"topic\":\"t\\\"1\",\"epoch\":\"00000000000000ab\",\"offset\":3,\
             \"data\":\"a\\\"b\\\\c\\nd\\u0001é\"}"
        );
    }

    #[test]
    fn a_subscription_answer_carries_the_position_and_the_outcome() {
        let s = Subscribed {
            position: at(9),
            recovered: false,
            replayed: 0,
        };
        assert_eq!(
            std::str::from_utf8(&Envelope::subscribed(None, &s)).unwrap(),
            r#"{"type":"subscribed","epoch":"00000000000000ab","offset":9,"recovered":false,"replayed":0}"#
        );
    }
}
