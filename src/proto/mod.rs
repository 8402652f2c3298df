//! The RFC 6455 protocol engine: pure functions and state over bytes, no IO.
//!
//! [`Decoder`] turns bytes into messages (parsing, unmasking, UTF-8 validation, fragment assembly,
//! control frame and close rules, size limits); [`Encoder`] turns messages into frames in the
//! write queue (compression, header, masking); [`State`] is the close handshake and the end of
//! the connection, one enum that decides replies and what is still allowed.
//! Nothing here imports tokio or hyper, so it is tested with byte vectors and fuzzed directly.

pub(crate) mod close;
pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod frame;
pub(crate) mod mask;
pub(crate) mod state;
pub(crate) mod utf8;

pub(crate) use decoder::{Decoded, Decoder, Limits};
pub(crate) use encoder::{Encoder, MaskSource};
pub(crate) use frame::{FrameHeader, OpCode};
pub(crate) use mask::apply_mask;
pub(crate) use state::State;

/// Which end of the connection this is: it decides who masks frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The accepting end: receives masked frames, sends unmasked ones.
    Server,
    /// The connecting end: sends masked frames, receives unmasked ones.
    Client,
}
