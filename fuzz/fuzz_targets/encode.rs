//! The frame encoder, round-tripped through the decoder of the other end.
//!
//! Input (`arbitrary`): the encoding end (a client masks with keys from the input, a server
//! does not), whether permessage-deflate was agreed (with or without context takeover), and a
//! list of messages (some compressed, some sent as fragments, some invalid: control payloads
//! over 125 bytes, close codes that may not be sent, reasons over 123 bytes).
//!
//! Invariants: no panic; an invalid message is refused with `InvalidMessage` and queues
//! nothing; the peer's decoder gets back exactly the valid messages, in order, with no
//! protocol error (masking, reserved bits, lengths and fragmentation are all as RFC 6455 and
//! RFC 7692 ask). The sequence ends at the first close that is sent.

#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tower_ws::__fuzz::{Agreed, Deflater, FrameDecoder, FrameEncoder, Inflater};
use tower_ws::{CloseCode, CloseFrame, ErrorKind, Message, Role};

#[derive(Arbitrary, Debug)]
enum Op {
    Text {
        text: String,
        compress: bool,
    },
    Binary {
        data: Vec<u8>,
        compress: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    /// A data message cut into fragments (never compressed).
    Fragments {
        text: bool,
        parts: Vec<Vec<u8>>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    client: bool,
    keys: Vec<[u8; 4]>,
    deflate: bool,
    no_takeover: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let agreed = Agreed {
        server_no_context_takeover: input.no_takeover,
        client_no_context_takeover: input.no_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        level: 1,
        threshold: 16,
    };
    let server = !input.client;
    let mut encoder = FrameEncoder::new(input.client.then_some(input.keys));
    let peer = if server { Role::Client } else { Role::Server };
    let mut decoder = FrameDecoder::new(peer, 1 << 24, 1 << 24, false);
    if input.deflate {
        encoder.set_deflater(Deflater::new(&agreed, server));
        decoder.set_inflater(Inflater::new(&agreed, server));
    }
    let mut expected = Vec::new();
    for op in input.ops {
        let before = encoder.len();
        let (msg, compress) = match op {
            Op::Fragments { text, parts } => {
                let whole: Vec<u8> = parts.concat();
                if text && std::str::from_utf8(&whole).is_err() {
                    continue;
                }
                let count = parts.len().max(1);
                let parts = if parts.is_empty() {
                    vec![Vec::new()]
                } else {
                    parts
                };
                for (i, part) in parts.into_iter().enumerate() {
                    encoder.fragment(i == 0, text, i + 1 == count, &Bytes::from(part));
                }
                expected.push(if text {
                    Message::text(String::from_utf8(whole).expect("checked"))
                } else {
                    Message::binary(whole)
                });
                continue;
            }
            Op::Text { text, compress } => (Message::text(text), compress),
            Op::Binary { data, compress } => (Message::binary(data), compress),
            Op::Ping(data) => (Message::Ping(Bytes::from(data)), false),
            Op::Pong(data) => (Message::Pong(Bytes::from(data)), false),
            Op::Close(frame) => (
                Message::Close(
                    frame.map(|(code, reason)| CloseFrame::new(CloseCode::from(code), reason)),
                ),
                false,
            ),
        };
        let valid = match &msg {
            Message::Ping(d) | Message::Pong(d) => d.len() <= 125,
            Message::Close(Some(f)) => f.code.is_sendable() && f.reason.len() <= 123,
            _ => true,
        };
        let close = matches!(msg, Message::Close(_));
        match encoder.encode(msg.clone(), compress) {
            Ok(compressed) => {
                assert!(valid, "an invalid message was encoded: {msg:?}");
                assert!(!compressed || input.deflate && compress);
                expected.push(msg);
            }
            Err(e) => {
                assert!(!valid, "a valid message was refused: {msg:?}");
                assert_eq!(e, ErrorKind::InvalidMessage);
                assert_eq!(encoder.len(), before, "a refused message queued bytes");
            }
        }
        if close && valid {
            break;
        }
    }
    let mut buf = BytesMut::from(&encoder.bytes()[..]);
    for msg in expected {
        assert_eq!(decoder.decode(&mut buf), Ok(Some(msg)));
    }
    assert!(buf.is_empty(), "bytes left over");
});
