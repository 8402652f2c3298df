//! permessage-deflate (RFC 7692): negotiation and per-message compression.
//!
//! Turn it on with [`Config::deflate`](crate::Config::deflate); the handshake then accepts the
//! first acceptable `permessage-deflate` offer and both directions compress messages above a
//! size threshold.
//!
//! # Examples
//!
//! ```
//! use tower_ws::{Config, DeflateConfig};
//!
//! // Context takeover off both ways: no compression state is held between messages, so an
//! // idle connection costs no more than without compression.
//! let config = Config::default().deflate(Some(
//!     DeflateConfig::default()
//!         .server_no_context_takeover(true)
//!         .client_no_context_takeover(true),
//! ));
//! # let _ = config;
//! ```

mod codec;
pub(crate) mod negotiate;

#[cfg(feature = "hub")]
pub(crate) use codec::compress_alone;
pub(crate) use codec::{Deflater, Inflater};
pub(crate) use negotiate::{Agreed, negotiate};
#[cfg(feature = "client")]
pub(crate) use negotiate::{accept_response, offer};

/// The server's permessage-deflate policy.
///
/// # Examples
///
/// ```
/// let policy = tower_ws::DeflateConfig::default()
///     .server_max_window_bits(12)
///     .level(6)
///     .threshold(256);
/// assert_eq!(policy.server_max_window_bits, 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Reset the server's compression context after every message (`server_no_context_takeover`
    /// is then always in the response). Costs compression ratio on similar messages; saves the
    /// compressor's memory between messages. Default: `false` (the client can still ask for it).
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its context after every message (`client_no_context_takeover`
    /// in the response), so no decompressor is held between messages. Default: `false` (used
    /// when the client offers it).
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server compresses with, 9-15 (2^n bytes); a client's smaller
    /// `server_max_window_bits` is honoured, and offers asking for 8 are declined because zlib
    /// cannot compress with a 256-byte window. Smaller windows use less memory per connection.
    /// Default: 15.
    pub server_max_window_bits: u8,
    /// The largest window the client may compress with, 8-15, sent when the client's offer
    /// allows it (`client_max_window_bits`). Smaller values shrink the server's decompressor.
    /// Default: 15.
    pub client_max_window_bits: u8,
    /// Compression level 0-9: 1 is fastest, 9 smallest. Default: 1.
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed. Default: 64.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            threshold: 64,
        }
    }
}

impl DeflateConfig {
    /// Sets [`server_no_context_takeover`](DeflateConfig#structfield.server_no_context_takeover).
    #[must_use]
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets [`client_no_context_takeover`](DeflateConfig#structfield.client_no_context_takeover).
    #[must_use]
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets [`server_max_window_bits`](DeflateConfig#structfield.server_max_window_bits),
    /// clamped to 9-15.
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(9, 15);
        self
    }

    /// Sets [`client_max_window_bits`](DeflateConfig#structfield.client_max_window_bits),
    /// clamped to 8-15.
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Sets [`level`](DeflateConfig#structfield.level), clamped to 0-9.
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`threshold`](DeflateConfig#structfield.threshold).
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }
}
