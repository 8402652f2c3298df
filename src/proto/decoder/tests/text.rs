//! Text through every path the decoder has: one frame, fragments, compressed (in one frame
//! and in fragments), streamed. Valid and invalid samples, cut into fragments at every offset
//! and fed in pieces split at every offset: valid text comes out as it was sent (the payload's
//! own bytes, checked once), invalid text fails with `InvalidUtf8` at the first byte that
//! cannot be UTF-8, and every streamed text chunk is whole code points.

use super::*;

/// Valid samples (every width of code point, one at each end) and invalid ones (the bad byte
/// first, in the middle, last; overlong, surrogate, past U+10FFFF; a code point cut at the end).
const SAMPLES: &[&[u8]] = &[
    "a€😀éz".as_bytes(),
    "κόσμε".as_bytes(),
    "😀".as_bytes(),
    b"plain ascii",
    b"",
    b"\xffabc",
    b"ab\xc3\xa9\xe2\x82x\xac",
    b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80",
    b"ok\xf4\x90\x80\x80",
    b"\xc0\xafok",
    b"abc\xe2\x82",
    b"\xf0\x9f\x98",
];

/// The index of the first byte at which `payload` can no longer be UTF-8, if one is; a
/// payload that is a valid prefix but not valid fails at its end instead.
fn first_bad_byte(payload: &[u8]) -> Option<usize> {
    (0..payload.len())
        .find(|&k| std::str::from_utf8(&payload[..=k]).is_err_and(|e| e.error_len().is_some()))
}

/// The payload as masked frames, cut before each offset in `cuts` (text, continuations, the
/// last one final), and where each payload byte is in the input.
fn fragments(payload: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    let mut input = Vec::new();
    let mut at = Vec::new();
    for (i, w) in bounds.windows(2).enumerate() {
        let fin = if i + 2 == bounds.len() { 0x80 } else { 0 };
        let opcode = if i == 0 { 0x01 } else { 0x00 };
        let piece = &payload[w[0]..w[1]];
        let start = input.len() + 6; // a masked header of a payload under 126 bytes
        input.extend(frame(fin | opcode, piece));
        at.extend((0..piece.len()).map(|j| start + j));
    }
    (input, at)
}

/// Every way to cut the payload into one, two or three fragments.
fn every_cut(len: usize) -> Vec<Vec<usize>> {
    let mut all = vec![vec![]];
    for i in 0..=len {
        all.push(vec![i]);
        for j in i..=len {
            all.push(vec![i, j]);
        }
    }
    all
}

/// Feeds `input` one byte at a time; the index of the byte that made the decoder fail.
fn fails_at(input: &[u8], stream: bool) -> Option<usize> {
    let mut d = server();
    if stream {
        d.stream_next();
    }
    let mut buf = BytesMut::new();
    for (i, b) in input.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        loop {
            let step = if stream {
                d.decode_streaming(&mut buf).map(|m| m.is_some())
            } else {
                d.decode(&mut buf).map(|m| m.is_some())
            };
            match step {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    assert_eq!(e, ErrorKind::InvalidUtf8);
                    return Some(i);
                }
            }
        }
    }
    None
}

/// The streamed chunks of the message, each checked to be whole code points, joined.
fn streamed(seen: &[Seen]) -> Vec<u8> {
    let mut text = Vec::new();
    for s in seen {
        let Seen::Chunk(_, data, _) = s else {
            panic!("not a chunk: {s:?}")
        };
        assert!(std::str::from_utf8(data).is_ok(), "chunk {data:x?}");
        text.extend_from_slice(data);
    }
    text
}

#[test]
fn text_in_fragments_cut_anywhere_is_the_text_or_fails_at_its_first_bad_byte() {
    for payload in SAMPLES {
        let valid = std::str::from_utf8(payload).ok();
        let expected = match valid {
            Some(text) => Ok(vec![Message::text(text)]),
            None => Err(ErrorKind::InvalidUtf8),
        };
        for cuts in every_cut(payload.len()) {
            let (input, at) = fragments(payload, &cuts);
            let case = format!("{payload:x?} cut at {cuts:?}");
            // One frame or many, fed in two pieces split anywhere: the same outcome.
            assert_eq!(decode_all_splits(&input), expected, "{case}");
            // At the first bad byte, not later; a code point cut at the end fails at the end.
            let fail = valid
                .is_none()
                .then(|| first_bad_byte(payload).map_or(input.len() - 1, |k| at[k]));
            assert_eq!(fails_at(&input, false), fail, "{case}");
            assert_eq!(fails_at(&input, true), fail, "{case}, streamed");
            // Streamed: every chunk is whole code points, and together they are the text.
            for step in [1, 2, input.len()] {
                let mut d = server();
                d.stream_next();
                match (stream_split(&mut d, &input, step), valid) {
                    (Ok(seen), Some(text)) => {
                        assert_eq!(streamed(&seen), text.as_bytes(), "{case}, step {step}");
                    }
                    (Err(e), None) => assert_eq!(e, ErrorKind::InvalidUtf8, "{case}"),
                    (other, _) => panic!("{case}, step {step}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn text_comes_out_as_the_payload_bytes_themselves() {
    // The payload is checked in place and handed out: the text is a slice of the buffer
    // it arrived in, not a copy.
    let mut d = Decoder::new(Role::Server, LIMITS, true);
    let mut buf = BytesMut::from(&b"\x81\x06h\xc3\xa9llo"[..]);
    let start = buf.as_ptr() as usize + 2;
    let Ok(Some(Message::Text(text))) = d.decode(&mut buf) else {
        panic!("no text")
    };
    assert_eq!(text, "héllo");
    assert_eq!(text.as_ptr() as usize, start);
}

#[cfg(feature = "deflate")]
mod compressed {
    use super::*;
    use crate::deflate::{Agreed, Deflater};

    fn agreed() -> Agreed {
        Agreed {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            threshold: 0,
        }
    }

    fn decoder(stream: bool) -> Decoder {
        let mut d = server();
        d.set_inflater(Inflater::new(&agreed(), false));
        if stream {
            d.stream_next();
        }
        d
    }

    /// The compressed payload in fragments cut before each offset in `cuts`, RSV1 on the first.
    fn compressed_fragments(compressed: &[u8], cuts: &[usize]) -> Vec<u8> {
        let (input, _) = fragments(compressed, cuts);
        let mut input = input;
        input[0] |= 0x40;
        input
    }

    #[test]
    fn compressed_text_cut_anywhere_is_the_text_or_fails() {
        for payload in SAMPLES {
            let valid = std::str::from_utf8(payload).ok();
            // The client side of the connection compresses (it is the peer of a server).
            let compressed = Deflater::new(&agreed(), false).compress(payload);
            for cuts in every_cut(compressed.len()) {
                let input = compressed_fragments(&compressed, &cuts);
                let case = format!("{payload:x?} compressed, cut at {cuts:?}");
                for split in [0, input.len() / 2, input.len()] {
                    let mut d = decoder(false);
                    let mut buf = BytesMut::new();
                    let mut out = Vec::new();
                    let mut result = Ok(());
                    'feed: for part in [&input[..split], &input[split..]] {
                        buf.extend_from_slice(part);
                        loop {
                            match d.decode(&mut buf) {
                                Ok(Some(m)) => out.push(m),
                                Ok(None) => break,
                                Err(e) => {
                                    // Errors are terminal.
                                    result = Err(e);
                                    break 'feed;
                                }
                            }
                        }
                    }
                    match valid {
                        Some(text) => {
                            assert_eq!(result, Ok(()), "{case}");
                            assert_eq!(out, [Message::text(text)], "{case}");
                        }
                        None => assert_eq!(result, Err(ErrorKind::InvalidUtf8), "{case}"),
                    }
                }
                for step in [1, input.len()] {
                    let mut d = decoder(true);
                    match (stream_split(&mut d, &input, step), valid) {
                        (Ok(seen), Some(text)) => {
                            assert_eq!(streamed(&seen), text.as_bytes(), "{case}, step {step}");
                        }
                        (Err(e), None) => assert_eq!(e, ErrorKind::InvalidUtf8, "{case}"),
                        (other, _) => panic!("{case}, step {step}: {other:?}"),
                    }
                }
            }
        }
    }
}
