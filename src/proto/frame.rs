//! Frame headers (RFC 6455 §5.2): parse and encode.

use crate::error::ErrorKind;

/// A frame's opcode; reserved opcodes are rejected when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_u8(op: u8) -> Result<Self, ErrorKind> {
        Ok(match op {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xa => Self::Pong,
            // RFC 6455 §5.2: 0x3-0x7 and 0xB-0xF are reserved; an endpoint MUST fail the
            // connection on an unknown opcode.
            _ => return Err(ErrorKind::ReservedOpcode),
        })
    }

    pub(crate) const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xa,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub(crate) const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) fin: bool,
    /// RSV1 (per-message compression under RFC 7692).
    pub(crate) rsv1: bool,
    /// RSV2 or RSV3: no extension we speak defines them.
    pub(crate) rsv23: bool,
    pub(crate) opcode: OpCode,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload_len: u64,
}

/// The longest header: 2 bytes, 8 of extended length, 4 of mask key.
pub(crate) const MAX_HEADER_LEN: usize = 14;

impl FrameHeader {
    /// The payload length as a `usize` (saturating where it does not fit: such a frame is over
    /// every limit anyway).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.payload_len).unwrap_or(usize::MAX)
    }

    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds less than a whole header (nothing is consumed: the
    /// caller keeps the bytes and calls again with more), or the header and its length in bytes.
    pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ErrorKind> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut len) = match b1 & 0x7f {
            126 => {
                let Some(ext) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4)
            }
            127 => {
                let Some(ext) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(ext);
                let n = u64::from_be_bytes(be);
                // RFC 6455 §5.2: with the 64-bit length, the most significant bit MUST be 0.
                if n >> 63 != 0 {
                    return Err(ErrorKind::FrameTooLarge);
                }
                (n, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            let Some(key) = buf.get(len..len + 4) else {
                return Ok(None);
            };
            len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv23: b0 & 0x30 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// Encodes the header with the shortest length form (RFC 6455 §5.2: "the minimal number of
    /// bytes MUST be used to encode the length").
    pub(crate) fn encode(&self) -> HeaderBytes {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[0] = u8::from(self.fin) << 7
            | u8::from(self.rsv1) << 6
            | if self.rsv23 { 0x30 } else { 0 }
            | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                bytes[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xffff => {
                bytes[1] = mask_bit | 126;
                bytes[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                bytes[1] = mask_bit | 127;
                bytes[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            bytes[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        HeaderBytes {
            bytes,
            len: len as u8,
        }
    }
}

/// An encoded header, on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderBytes {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv23: false,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn encodes_the_rfc_5_7_headers() {
        // RFC 6455 §5.7: unmasked "Hello", masked "Hello", 256 bytes and 64 KiB binary.
        let h = header(OpCode::Text, 5, None).encode();
        assert_eq!(h.as_slice(), [0x81, 0x05]);
        let h = header(OpCode::Text, 5, Some([0x37, 0xfa, 0x21, 0x3d])).encode();
        assert_eq!(h.as_slice(), [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        let h = header(OpCode::Binary, 256, None).encode();
        assert_eq!(h.as_slice(), [0x82, 0x7e, 0x01, 0x00]);
        let h = header(OpCode::Binary, 65536, None).encode();
        assert_eq!(
            h.as_slice(),
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        let h = header(OpCode::Ping, 5, None).encode();
        assert_eq!(h.as_slice(), [0x89, 0x05]);
    }

    #[test]
    fn parse_round_trips_encode_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x10000, u64::MAX >> 1] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(OpCode::Binary, len, mask);
                let bytes = h.encode();
                let (parsed, used) = FrameHeader::parse(bytes.as_slice()).unwrap().unwrap();
                assert_eq!(parsed, h);
                assert_eq!(used, bytes.as_slice().len());
            }
        }
    }

    #[test]
    fn parse_consumes_nothing_until_the_whole_header_is_there() {
        let h = header(OpCode::Binary, 70000, Some([1, 2, 3, 4])).encode();
        let bytes = h.as_slice();
        for cut in 0..bytes.len() {
            assert_eq!(FrameHeader::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(FrameHeader::parse(bytes).unwrap().is_some());
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0x80, 0, 0, 0, 0]),
                Err(ErrorKind::ReservedOpcode)
            );
        }
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_is_rejected() {
        let bytes = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(FrameHeader::parse(&bytes), Err(ErrorKind::FrameTooLarge));
    }

    #[test]
    fn reads_the_bits() {
        let (h, _) = FrameHeader::parse(&[0x41, 0x00]).unwrap().unwrap();
        assert!(!h.fin && h.rsv1 && !h.rsv23);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = FrameHeader::parse(&[0xa0 | 0x2, 0x00]).unwrap().unwrap();
        assert!(h.fin && h.rsv23);
    }
}
