//! The permessage-deflate codec (`deflate::Inflater`, `deflate::Deflater`).
//!
//! - `Frames`: arbitrary frames (payload and FIN from the input) inflated with arbitrary
//!   settings and an arbitrary limit. Invariants: no panic; a successful call never passes the
//!   limit, and no call, failed ones included, allocates more than one byte over it
//!   (`capacity <= limit + 1`: the byte that detects the overflow).
//! - `RoundTrip`: arbitrary messages compressed by a `Deflater`, cut into frames at arbitrary
//!   points and inflated, over several messages, context takeover on or off, with the idle
//!   state released between messages at arbitrary times. Invariants: each message comes back
//!   byte for byte with the limit set to exactly its length; one byte less is
//!   `MessageTooLarge`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_ws::__fuzz::{Agreed, Deflater, Inflater};
use tower_ws::ErrorKind;

#[derive(Arbitrary, Debug)]
struct Frame {
    fin: bool,
    release_after: bool,
    data: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum Data {
    Raw(Vec<u8>),
    /// `chunk` repeated: compresses well, and grows large from a short input.
    Repeat {
        chunk: Vec<u8>,
        times: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Msg {
    data: Data,
    /// Frame sizes to cut the compressed message into (the rest goes in the last frame).
    cuts: Vec<u16>,
    release_sender: bool,
    release_receiver: bool,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Frames {
        bits: u8,
        no_takeover: bool,
        from_server: bool,
        limit: u32,
        frames: Vec<Frame>,
    },
    RoundTrip {
        bits: u8,
        no_takeover: bool,
        level: u8,
        server: bool,
        messages: Vec<Msg>,
    },
}

fn agreed(bits: u8, no_takeover: bool, level: u8) -> Agreed {
    let bits = 8 + bits % 8;
    Agreed {
        server_no_context_takeover: no_takeover,
        client_no_context_takeover: no_takeover,
        // Negotiation never lets the server compress with 8 bits.
        server_max_window_bits: bits.max(9),
        client_max_window_bits: bits,
        level: u32::from(level % 10),
        threshold: 0,
    }
}

/// A successful call stays within the limit; any call, failed ones included, allocates at most
/// one byte more (the byte that detects the overflow).
fn check_limit(out: &[u8], capacity: usize, limit: usize, ok: bool) {
    if ok {
        assert!(
            out.len() <= limit,
            "inflated {} bytes, limit {limit}",
            out.len()
        );
    }
    assert!(
        capacity <= limit.saturating_add(1),
        "allocated {capacity} bytes for a limit of {limit}"
    );
}

/// `Input::Frames` from a plain format, for readable seeds: `[bits, flags, limit (u16 LE)]`
/// then frames, each one header byte (0x80 FIN, 0x40 release after it, low 6 bits the
/// length) and its bytes. Flags: 1 no context takeover, 2 from the server.
fn plain(data: &[u8]) -> Option<Input> {
    let [bits, flags, lo, hi, ref rest @ ..] = *data else {
        return None;
    };
    let mut frames = Vec::new();
    let mut rest = rest;
    while let Some((&h, tail)) = rest.split_first() {
        let n = usize::from(h & 0x3f).min(tail.len());
        frames.push(Frame {
            fin: h & 0x80 != 0,
            release_after: h & 0x40 != 0,
            data: tail[..n].to_vec(),
        });
        rest = &tail[n..];
    }
    Some(Input::Frames {
        bits,
        no_takeover: flags & 1 != 0,
        from_server: flags & 2 != 0,
        limit: u32::from(u16::from_le_bytes([lo, hi])),
        frames,
    })
}

fuzz_target!(|data: &[u8]| {
    // Byte 0 picks the format: 0 for the plain one, anything else for `Input`.
    let Some((&format, data)) = data.split_first() else {
        return;
    };
    let input = if format == 0 {
        plain(data)
    } else {
        Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)).ok()
    };
    if let Some(input) = input {
        run(input);
    }
});

fn run(input: Input) {
    match input {
        Input::Frames {
            bits,
            no_takeover,
            from_server,
            limit,
            frames,
        } => {
            let limit = (limit % (1 << 20)) as usize;
            let mut inflater = Inflater::new(&agreed(bits, no_takeover, 1), from_server);
            let mut out = Vec::new();
            for frame in &frames {
                let result = inflater.inflate(&frame.data, frame.fin, &mut out, limit);
                check_limit(&out, out.capacity(), limit, result.is_ok());
                match result {
                    Ok(()) => {}
                    Err(ErrorKind::MessageTooLarge | ErrorKind::BadCompression) => return,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
                if frame.fin {
                    out = Vec::new();
                    if frame.release_after {
                        inflater.release();
                    }
                }
            }
        }
        Input::RoundTrip {
            bits,
            no_takeover,
            level,
            server,
            messages,
        } => {
            let agreed = agreed(bits, no_takeover, level);
            let mut deflater = Deflater::new(&agreed, server);
            let mut inflater = Inflater::new(&agreed, server);
            let mut first = true;
            for msg in messages.iter().take(8) {
                let data = match &msg.data {
                    Data::Raw(raw) => raw.clone(),
                    Data::Repeat { chunk, times } => {
                        chunk.repeat(usize::from(*times).min((64 << 10) / chunk.len().max(1)))
                    }
                };
                let compressed = deflater.compress(&data);
                assert!(
                    !compressed.is_empty(),
                    "a compressed message is at least one byte"
                );

                // Without history to depend on, one byte under the limit must fail, and stop there.
                if (no_takeover || first) && !data.is_empty() {
                    let mut probe = Inflater::new(&agreed, server);
                    let mut out = Vec::new();
                    let r = probe.inflate(&compressed, true, &mut out, data.len() - 1);
                    check_limit(&out, out.capacity(), data.len() - 1, r.is_ok());
                    assert_eq!(r, Err(ErrorKind::MessageTooLarge), "{} bytes", data.len());
                }
                first = false;

                let mut frames = Vec::new();
                let mut rest = &compressed[..];
                for &cut in &msg.cuts {
                    let n = usize::from(cut).min(rest.len());
                    frames.push(&rest[..n]);
                    rest = &rest[n..];
                }
                frames.push(rest);
                let mut out = Vec::new();
                for (i, frame) in frames.iter().enumerate() {
                    let fin = i + 1 == frames.len();
                    let r = inflater.inflate(frame, fin, &mut out, data.len());
                    check_limit(&out, out.capacity(), data.len(), r.is_ok());
                    assert_eq!(r, Ok(()), "frame {i} of {}", frames.len());
                }
                assert!(
                    out == data,
                    "round trip changed a {}-byte message",
                    data.len()
                );
                if msg.release_sender {
                    deflater.release();
                }
                if msg.release_receiver {
                    inflater.release();
                }
            }
        }
    }
}
