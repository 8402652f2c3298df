//! Positions in a stream of messages (a hub topic's): an epoch and an offset. See
//! [`hub`](crate::hub) (feature `hub`) for the streams that have them, and the client's
//! resuming subscription (features `client` and `json`) for a reader that keeps them.

use std::fmt;
use std::str::FromStr;

/// The identity of a topic's history: it changes whenever the history behind the offsets was
/// lost, so positions of two epochs are not comparable.
///
/// Shown (and parsed) as 16 hexadecimal digits, a string in JSON (a number that large loses
/// precision in JavaScript).
///
/// # Examples
///
/// ```
/// use tower_ws::Epoch;
///
/// let epoch: Epoch = "00000000000000ff".parse().unwrap();
/// assert_eq!(epoch.to_string(), "00000000000000ff");
/// assert!("not hex".parse::<Epoch>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(pub(crate) u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A string that is not an [`Epoch`] or a [`Position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePositionError(&'static str);

impl fmt::Display for ParsePositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParsePositionError {}

impl FromStr for Epoch {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 {
            return Err(ParsePositionError("an epoch is 1 to 16 hexadecimal digits"));
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParsePositionError("an epoch is 1 to 16 hexadecimal digits"))
    }
}

/// Where a message is in its topic: the topic's epoch, and its offset in that epoch (1 for the
/// first message; rising by one per message).
///
/// As a subscriber's state, "I have everything up to `offset` of `epoch`" (offset 0: nothing
/// yet). Shown and parsed as `EPOCH:OFFSET`.
///
/// # Examples
///
/// ```
/// use tower_ws::Position;
///
/// let at: Position = "00000000000000ff:42".parse().unwrap();
/// assert_eq!(at.offset, 42);
/// assert_eq!(at.to_string(), "00000000000000ff:42");
/// assert!("ff".parse::<Position>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The topic's epoch.
    pub epoch: Epoch,
    /// The message's offset in the epoch.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.offset)
    }
}

impl FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, offset) = s
            .split_once(':')
            .ok_or(ParsePositionError("a position is EPOCH:OFFSET"))?;
        Ok(Self {
            epoch: epoch.parse()?,
            offset: offset
                .parse()
                .map_err(|_| ParsePositionError("an offset is a decimal number"))?,
        })
    }
}
