//! Constants for [`CloseCode`](super::CloseCode)s (`u16`), as `axum::extract::ws::close_code`.
//!
//! # Examples
//!
//! ```
//! assert_eq!(tower_ws::axum::close_code::AWAY, 1001);
//! ```

/// The purpose of the connection was fulfilled.
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (server shutdown, page navigated away).
pub const AWAY: u16 = 1001;
/// A protocol error.
pub const PROTOCOL: u16 = 1002;
/// A type of data the endpoint cannot accept.
pub const UNSUPPORTED: u16 = 1003;
/// No status code was included in the close frame.
pub const STATUS: u16 = 1005;
/// An abnormal closure.
pub const ABNORMAL: u16 = 1006;
/// Data inconsistent with the message type (non-UTF-8 text).
pub const INVALID: u16 = 1007;
/// A message violated the endpoint's policy.
pub const POLICY: u16 = 1008;
/// A message too big to process.
pub const SIZE: u16 = 1009;
/// The client expected an extension the server did not negotiate.
pub const EXTENSION: u16 = 1010;
/// The server met an unexpected condition.
pub const ERROR: u16 = 1011;
/// The server is restarting.
pub const RESTART: u16 = 1012;
/// The server is overloaded; try again later.
pub const AGAIN: u16 = 1013;
