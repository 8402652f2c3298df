//! Close frame payloads (RFC 6455 §5.5.1, §7.4).

use bytes::{Bytes, BytesMut};

use crate::error::ErrorKind;
use crate::message::{CloseCode, CloseFrame, Utf8Bytes};

/// Parses a received close payload.
pub(crate) fn parse(mut payload: Bytes) -> Result<Option<CloseFrame>, ErrorKind> {
    match payload.len() {
        0 => Ok(None),
        // RFC 6455 §5.5.1: if there is a body, its first two bytes MUST be a status code.
        1 => Err(ErrorKind::BadClosePayload),
        _ => {
            let code = CloseCode::from(u16::from_be_bytes([payload[0], payload[1]]));
            // RFC 6455 §7.4: 1005, 1006 and 1015 MUST NOT be sent; codes below 1000 and
            // unassigned ones in 1000-2999 are invalid.
            if !code.is_sendable() {
                return Err(ErrorKind::BadClosePayload);
            }
            let reason = payload.split_off(2);
            // RFC 6455 §5.5.1: the body after the code is UTF-8 encoded data.
            let reason = Utf8Bytes::try_from(reason).map_err(|_| ErrorKind::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Checks a close frame to send.
///
/// # Errors
///
/// [`ErrorKind::InvalidMessage`] for a code that may not be sent or a reason over 123 bytes.
pub(crate) fn check(frame: Option<&CloseFrame>) -> Result<(), ErrorKind> {
    match frame {
        // RFC 6455 §7.4: 1005, 1006 and 1015 MUST NOT be sent; §5.5: a control frame's
        // payload (two bytes of code, then the reason) is at most 125 bytes.
        Some(f) if !f.code.is_sendable() || f.reason.len() > 123 => Err(ErrorKind::InvalidMessage),
        _ => Ok(()),
    }
}

/// Encodes a close payload to send.
///
/// # Errors
///
/// [`ErrorKind::InvalidMessage`] for a code that may not be sent or a reason over 123 bytes.
pub(crate) fn encode(frame: Option<&CloseFrame>, out: &mut BytesMut) -> Result<(), ErrorKind> {
    check(frame)?;
    let Some(frame) = frame else {
        return Ok(());
    };
    out.extend_from_slice(&frame.code.as_u16().to_be_bytes());
    out.extend_from_slice(frame.reason.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_is_a_close_without_code() {
        assert_eq!(parse(Bytes::new()), Ok(None));
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        assert_eq!(
            parse(Bytes::from_static(&[3])),
            Err(ErrorKind::BadClosePayload)
        );
    }

    #[test]
    fn code_and_reason_are_read() {
        let frame = parse(Bytes::from_static(b"\x03\xe8bye")).unwrap().unwrap();
        assert_eq!(frame.code, CloseCode::NORMAL);
        assert_eq!(frame.reason, "bye");
    }

    #[test]
    fn codes_that_may_not_be_sent_are_rejected() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
        ] {
            let payload = Bytes::copy_from_slice(&code.to_be_bytes());
            assert_eq!(parse(payload), Err(ErrorKind::BadClosePayload), "{code}");
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 3999, 4000, 4999,
        ] {
            let payload = Bytes::copy_from_slice(&code.to_be_bytes());
            assert!(parse(payload).is_ok(), "{code}");
        }
    }

    #[test]
    fn invalid_utf8_reason_is_1007() {
        assert_eq!(
            parse(Bytes::from_static(b"\x03\xe8\xff")),
            Err(ErrorKind::InvalidUtf8)
        );
    }

    #[test]
    fn encode_refuses_reserved_codes_and_long_reasons() {
        let mut out = BytesMut::new();
        let bad = CloseFrame::new(CloseCode::NO_STATUS, "");
        assert_eq!(encode(Some(&bad), &mut out), Err(ErrorKind::InvalidMessage));
        let long = CloseFrame::new(CloseCode::NORMAL, "x".repeat(124));
        assert_eq!(
            encode(Some(&long), &mut out),
            Err(ErrorKind::InvalidMessage)
        );
        encode(Some(&CloseFrame::new(CloseCode::AWAY, "bye")), &mut out).unwrap();
        assert_eq!(&out[..], b"\x03\xe9bye");
    }
}
