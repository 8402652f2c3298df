//! Incremental UTF-8 validation: fails at the first invalid byte even when a code point is split
//! across reads or fragments.
//!
//! The work is done by `simdutf8` (SIMD): a piece is cut before a code point its end leaves
//! unfinished, the complete part is checked by the `basic` API, whose `&str` is appended to the
//! message's text, and the few bytes of the unfinished code point by the `compat` API, which says
//! whether they can still become valid.

use simdutf8::compat::from_utf8;

/// Validates a text message fed in pieces of any size.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Validator {
    /// Bytes of an incomplete code point carried over from the previous piece.
    partial: [u8; 4],
    partial_len: u8,
    /// The length of the code point `partial` starts.
    needed: u8,
}

/// Where [`Utf8Validator::feed`] puts the text it checked.
pub(crate) trait TextSink {
    fn push_str(&mut self, text: &str);
}

impl TextSink for String {
    #[inline]
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
}

/// Checks only: the text is not kept.
pub(crate) struct Discard;

impl TextSink for Discard {
    #[inline]
    fn push_str(&mut self, _: &str) {}
}

/// The input was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next piece and appends its text to `out`. An incomplete code point at its
    /// end is remembered (and appended once complete), as long as it can still become valid.
    ///
    /// One pass: the check yields the `&str` that is copied, so text needs no second check to
    /// become a `String` (or an O(1) `Utf8Bytes`).
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut impl TextSink,
    ) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let take = (self.needed as usize - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            self.partial_len += take as u8;
            match from_utf8(&self.partial[..self.partial_len as usize]) {
                Ok(text) => {
                    out.push_str(text);
                    self.partial_len = 0;
                    data = &data[take..];
                }
                // Still a valid prefix: `take` used all of `data`.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        let (complete, unfinished) = data.split_at(complete_prefix(data));
        out.push_str(simdutf8::basic::from_utf8(complete).map_err(|_| InvalidUtf8)?);
        if unfinished.is_empty() {
            return Ok(());
        }
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
                Ok(())
            }
            _ => Err(InvalidUtf8),
        }
    }

    /// Ends the message: an unfinished code point is an error.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
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
        let mut text = String::new();
        let (a, b) = data.split_at(split);
        v.feed(a, &mut text)?;
        v.feed(b, &mut text)?;
        v.finish()?;
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
            let r = v.feed(std::slice::from_ref(b), &mut String::new());
            assert_eq!(r.is_err(), i == 3, "byte {i}");
            if r.is_err() {
                break;
            }
        }
    }

    #[test]
    fn unfinished_code_point_fails_at_the_end() {
        let mut v = Utf8Validator::default();
        v.feed(b"\xe2\x82", &mut String::new()).unwrap();
        assert!(v.finish().is_err());
        // finish() resets the state for the next message.
        v.feed(b"fine", &mut String::new()).unwrap();
        assert!(v.finish().is_ok());
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
            let mut text = String::new();
            let mut at = 0;
            let mut failed = false;
            while at < data.len() {
                let end = (at + 1 + (next() % 9) as usize).min(data.len());
                if v.feed(&data[at..end], &mut text).is_err() {
                    assert!(
                        end > valid_up_to,
                        "{data:x?}: failed in {at}..{end}, valid to {valid_up_to}"
                    );
                    failed = true;
                    break;
                }
                at = end;
            }
            let ok = !failed && v.finish().is_ok();
            assert_eq!(ok, std_result.is_ok(), "{data:x?}");
            if ok {
                assert_eq!(text.as_bytes(), data, "the text is what was fed");
            }
        }
    }
}
