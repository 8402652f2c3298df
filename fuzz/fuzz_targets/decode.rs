//! The frame decoder, as a server (masked input) or a client (unmasked input), with or without
//! permessage-deflate, fed the input in chunks of arbitrary sizes.
//!
//! Input: four header bytes, then the byte stream from the peer.
//!
//! - byte 0, flags: bit 0 client role (else server), bit 1 inflater on, bit 2 server accepts
//!   unmasked frames, bit 3 the peer's compressor resets between messages (no context
//!   takeover);
//! - byte 1: the peer's window bits, `8 + (b & 7)`;
//! - byte 2: chunking seed (0: the whole stream at once);
//! - byte 3: limits, bits 0-1 pick `max_frame_size`, bits 2-3 `max_message_size`.
//!
//! Invariants: no panic; every message respects the limits (data up to `max_message_size`,
//! control frames up to 125 bytes); text and close reasons are valid UTF-8; a received close
//! code is one that may be sent; and decoding the stream in chunks gives exactly the messages
//! and the error that decoding it at once gives.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tower_ws::__fuzz::{Agreed, FrameDecoder, Inflater};
use tower_ws::{ErrorKind, Message, Role};

const FRAME_LIMITS: [usize; 4] = [125, 1000, 1 << 16, 1 << 24];
const MESSAGE_LIMITS: [usize; 4] = [200, 4096, 1 << 20, 1 << 25];

#[derive(Clone, Copy)]
struct Setup {
    role: Role,
    inflate: Option<Agreed>,
    accept_unmasked: bool,
    max_frame_size: usize,
    max_message_size: usize,
}

impl Setup {
    fn decoder(&self) -> FrameDecoder {
        let mut d = FrameDecoder::new(
            self.role,
            self.max_frame_size,
            self.max_message_size,
            self.accept_unmasked,
        );
        if let Some(agreed) = &self.inflate {
            // The decoder inflates what the peer sends: the server's settings for a client.
            d.set_inflater(Inflater::new(agreed, self.role == Role::Client));
        }
        d
    }

    fn check(&self, msg: &Message) {
        match msg {
            Message::Text(text) => {
                assert!(
                    std::str::from_utf8(text.as_bytes()).is_ok(),
                    "text is not UTF-8"
                );
                assert!(
                    text.len() <= self.max_message_size,
                    "text over max_message_size"
                );
            }
            Message::Binary(data) => {
                assert!(
                    data.len() <= self.max_message_size,
                    "binary over max_message_size"
                );
            }
            Message::Ping(data) | Message::Pong(data) => {
                assert!(data.len() <= 125, "control frame over 125 bytes");
            }
            Message::Close(None) => {}
            Message::Close(Some(frame)) => {
                assert!(
                    frame.code.is_sendable(),
                    "close code {} accepted",
                    frame.code
                );
                assert!(std::str::from_utf8(frame.reason.as_bytes()).is_ok());
                assert!(
                    2 + frame.reason.len() <= 125,
                    "close payload over 125 bytes"
                );
            }
        }
    }

    /// Decodes `stream` fed in the given chunk sizes: the messages, and the error if one came.
    fn run(&self, stream: &[u8], chunks: &mut dyn Iterator<Item = usize>) -> Outcome {
        let mut decoder = self.decoder();
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let n = chunks.next().unwrap_or(rest.len()).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(msg)) => {
                        self.check(&msg);
                        messages.push(msg);
                    }
                    Ok(None) => {
                        assert!(decoder.wanted(buf.len()) >= 1);
                        break;
                    }
                    Err(e) => return (messages, Some(e)),
                }
            }
        }
        (messages, None)
    }
}

type Outcome = (Vec<Message>, Option<ErrorKind>);

/// Chunk sizes from a small xorshift generator: mostly tiny, sometimes large.
fn chunk_sizes(seed: u8) -> impl Iterator<Item = usize> {
    let mut x = u32::from(seed) | 0x9e37_7900;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        Some(match x % 8 {
            0..=3 => 1 + (x >> 8) as usize % 4,
            4..=6 => 1 + (x >> 8) as usize % 64,
            _ => 1 + (x >> 8) as usize % 4096,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let [flags, bits, seed, limits, ref stream @ ..] = *data else {
        return;
    };
    let setup = Setup {
        role: if flags & 1 != 0 {
            Role::Client
        } else {
            Role::Server
        },
        inflate: (flags & 2 != 0).then(|| {
            let bits = 8 + (bits & 7);
            let no_takeover = flags & 8 != 0;
            Agreed {
                server_no_context_takeover: no_takeover,
                client_no_context_takeover: no_takeover,
                server_max_window_bits: bits.max(9),
                client_max_window_bits: bits,
                level: 1,
                threshold: 0,
            }
        }),
        accept_unmasked: flags & 4 != 0,
        max_frame_size: FRAME_LIMITS[usize::from(limits & 3)],
        max_message_size: MESSAGE_LIMITS[usize::from((limits >> 2) & 3)],
    };
    let whole = setup.run(stream, &mut std::iter::empty());
    if seed != 0 {
        let chunked = setup.run(stream, &mut chunk_sizes(seed));
        assert_eq!(
            whole, chunked,
            "chunked decoding disagrees with whole decoding"
        );
    }
});
