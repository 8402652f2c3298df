//! Incremental UTF-8 validation: fails at the first invalid byte even when a code point is split
//! across reads or fragments, and turns a message whose every byte it checked into text without
//! checking or copying it again.
//!
//! The work is done by `simdutf8` (SIMD), in place: a piece is cut before a code point its end
//! leaves unfinished, the complete part is checked by the `basic` API, and the few bytes of the
//! unfinished code point by the `compat` API, which says whether they can still become valid.

use bytes::Bytes;
use bytestring::ByteString;
use simdutf8::compat::from_utf8;

use crate::message::Utf8Bytes;

/// Validates a text message fed in pieces of any size.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Validator {
    /// Bytes of an incomplete code point carried over from the previous piece.
    partial: [u8; 4],
    partial_len: u8,
    /// The length of the code point `partial` starts.
    needed: u8,
    /// Bytes of the message fed so far, all of them valid (or a valid prefix at the end).
    fed: usize,
    /// A piece was invalid: every later call fails too (errors are terminal), so no byte can
    /// be taken for checked after one was not.
    failed: bool,
}

/// The input was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next piece of the message. An incomplete code point at its end is remembered
    /// (and checked once complete), as long as it can still become valid.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.failed {
            return Err(InvalidUtf8);
        }
        let result = self.check(data);
        match result {
            Ok(()) => self.fed += data.len(),
            Err(InvalidUtf8) => self.failed = true,
        }
        result
    }

    fn check(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let take = (self.needed as usize - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            self.partial_len += take as u8;
            match from_utf8(&self.partial[..self.partial_len as usize]) {
                Ok(_) => {
                    self.partial_len = 0;
                    data = &data[take..];
                }
                // Still a valid prefix: `take` used all of `data`.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        let (complete, unfinished) = data.split_at(complete_prefix(data));
        simdutf8::basic::from_utf8(complete).map_err(|_| InvalidUtf8)?;
        if !unfinished.is_empty() {
            // At most three bytes: can they still become a code point?
            match from_utf8(unfinished) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => {
                    self.partial[..unfinished.len()].copy_from_slice(unfinished);
                    self.partial_len = unfinished.len() as u8;
                    self.needed = match unfinished[0] {
                        0xf0..=0xf4 => 4,
                        0xe0..=0xef => 3,
                        _ => 2,
                    };
                }
                _ => return Err(InvalidUtf8),
            }
        }
        Ok(())
    }

    /// How many bytes at the end of what was fed are a code point still unfinished (0 to 3).
    pub(crate) fn unfinished(&self) -> usize {
        self.partial_len as usize
    }

    /// Ends the message: an unfinished code point is an error.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0 && !self.failed;
        *self = Self {
            failed: !complete,
            ..Self::default()
        };
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Ends the message whose bytes, every one of them and in order, are `text` and were fed
    /// (checked in place as they arrived): `text` becomes [`Utf8Bytes`] as it is, with no
    /// second check and no copy.
    pub(crate) fn finish_text(&mut self, text: Bytes) -> Result<Utf8Bytes, InvalidUtf8> {
        let fed = self.fed;
        self.finish()?;
        if text.len() != fed {
            // Not what was fed: a bug in the caller, never taken on trust.
            debug_assert_eq!(text.len(), fed, "finish_text given bytes that were not fed");
            return Utf8Bytes::try_from(text).map_err(|_| InvalidUtf8);
        }
        // SAFETY: `text` is valid UTF-8. Every byte of it went through `feed` above, in order
        // (`fed` counts the bytes fed since the message began and equals its length; no feed
        // failed, or `finish` would have): `feed` checked each complete run of code points with
        // `simdutf8::basic::from_utf8` and each code point split between pieces with
        // `simdutf8::compat::from_utf8`, and `finish` just refused a code point left unfinished
        // at the end. The callers check bytes in place, in the buffer they then
        // hand over here, so the bytes checked are these bytes.
        #[allow(unsafe_code)]
        let text = unsafe { ByteString::from_bytes_unchecked(text) };
        debug_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
        Ok(Utf8Bytes::from_byte_string(text))
    }
}

/// The length of `data` without a code point its end leaves unfinished: a lead byte among the
/// last three whose sequence is longer than what follows it.
fn complete_prefix(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(3) {
        let b = data[len - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let width = match b {
            0xf0..=0xff => 4,
            0xe0..=0xef => 3,
            0xc0..=0xdf => 2,
            _ => 1,
        };
        return if width > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(data: &[u8], split: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let (a, b) = data.split_at(split);
        v.feed(a)?;
        v.feed(b)?;
        let text = v.finish_text(Bytes::copy_from_slice(data))?;
        assert_eq!(text.as_bytes(), data, "the text is what was fed");
        Ok(())
    }

    #[test]
    fn agrees_with_std_at_every_split() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "\u{10ffff}\u{10000}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"abc\xff",
            b"\xf0\x9f\x98",
            b"",
        ];
        for sample in samples {
            let expected = std::str::from_utf8(sample).is_ok();
            for split in 0..=sample.len() {
                assert_eq!(
                    validate_in_pieces(sample, split).is_ok(),
                    expected,
                    "{sample:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn byte_by_byte_fails_at_the_first_bad_byte() {
        // \xf4\x90 can never start a valid code point: the error comes at the \x90.
        let data = b"ok\xf4\x90\x80\x80";
        let mut v = Utf8Validator::default();
        for (i, b) in data.iter().enumerate() {
            let r = v.feed(std::slice::from_ref(b));
            assert_eq!(r.is_err(), i == 3, "byte {i}");
            if r.is_err() {
                break;
            }
        }
    }

    #[test]
    fn after_an_error_nothing_is_taken_for_checked() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"ok\xff").is_err());
        // Errors are terminal: valid pieces, a new message and the text all fail from here.
        assert!(v.feed(b"fine").is_err());
        assert!(v.finish().is_err());
        assert!(v.feed(b"fine").is_err());
        assert!(v.finish_text(Bytes::from_static(b"")).is_err());
    }

    #[test]
    fn unfinished_code_point_fails_at_the_end() {
        let mut v = Utf8Validator::default();
        v.feed(b"\xe2\x82").unwrap();
        assert!(v.finish().is_err());
        // A message that ended well resets the state for the next one.
        let mut v = Utf8Validator::default();
        v.feed(b"\xe2\x82").unwrap();
        v.feed(b"\xac").unwrap();
        assert_eq!(v.finish_text(Bytes::from("€")).as_deref(), Ok("€"));
        v.feed(b"fine").unwrap();
        assert_eq!(v.finish_text(Bytes::from("fine")).as_deref(), Ok("fine"));
    }

    #[test]
    fn random_pieces_agree_with_std_and_never_fail_early() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = ["a", "é", "€", "😀", "\u{10ffff}"];
        for _ in 0..2000 {
            let mut data = Vec::new();
            for _ in 0..(next() % 40) {
                match next() % 20 {
                    0 => data.push(next() as u8), // any byte, often invalid
                    _ => data.extend_from_slice(
                        alphabet[(next() % alphabet.len() as u64) as usize].as_bytes(),
                    ),
                }
            }
            let std_result = std::str::from_utf8(&data);
            let valid_up_to = std_result
                .as_ref()
                .map_or_else(|e| e.valid_up_to(), |_| data.len());
            let mut v = Utf8Validator::default();
            let mut at = 0;
            let mut failed = false;
            while at < data.len() {
                let end = (at + 1 + (next() % 9) as usize).min(data.len());
                if v.feed(&data[at..end]).is_err() {
                    assert!(
                        end > valid_up_to,
                        "{data:x?}: failed in {at}..{end}, valid to {valid_up_to}"
                    );
                    failed = true;
                    break;
                }
                at = end;
            }
            let text = (!failed)
                .then(|| v.finish_text(Bytes::from(data.clone())).ok())
                .flatten();
            assert_eq!(text.is_some(), std_result.is_ok(), "{data:x?}");
            if let Some(text) = text {
                assert_eq!(text.as_bytes(), data, "the text is what was fed");
            }
        }
    }
}
