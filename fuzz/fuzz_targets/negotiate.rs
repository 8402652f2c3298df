//! permessage-deflate negotiation (`deflate::negotiate`) on arbitrary `Sec-WebSocket-Extensions`
//! fields and an arbitrary `DeflateConfig`, out-of-range public fields included (window bits
//! and level 0-255).
//!
//! The fields are either raw strings or well-formed offer lists built from the input; for the
//! latter the target knows which offer RFC 7692 makes acceptable and checks the choice.
//!
//! Invariants: no panic; the agreed windows are in range (server 9-15, client 8-15), never
//! above what the client offered, and the client's is 15 when it did not offer
//! `client_max_window_bits` (RFC 7692 §7.1.2.2), in which case the response does not name it;
//! the response header says exactly what was agreed; with an in-range policy the result is the
//! one RFC 7692 §5 and §7.1 give; and compressors and decompressors built from the agreement
//! round-trip a message both ways.

#![no_main]

use arbitrary::Arbitrary;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tower_ws::__fuzz::{Agreed, Deflater, Inflater, negotiate};
use tower_ws::DeflateConfig;

#[derive(Arbitrary, Debug)]
struct Policy {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    level: u8,
    threshold: u16,
}

#[derive(Arbitrary, Debug)]
enum Field {
    Raw(String),
    Offers(Vec<Offer>),
}

#[derive(Arbitrary, Debug)]
struct Offer {
    deflate: bool,
    upper: bool,
    other_name: Vec<u8>,
    params: Vec<Param>,
    spaces: u8,
}

#[derive(Arbitrary, Debug)]
enum ParamName {
    ServerNoContextTakeover,
    ClientNoContextTakeover,
    ServerMaxWindowBits,
    ClientMaxWindowBits,
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Bits {
        n: u8,
        leading_zero: bool,
        quoted: bool,
    },
    Token(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Param {
    name: ParamName,
    value: Option<Value>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    policy: Policy,
    fields: Vec<Field>,
}

/// A token of lowercase letters, digits, `-` and `_`; never empty.
fn token(raw: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s: String = raw
        .iter()
        .take(12)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    if s.is_empty() {
        s.push('x');
    }
    s
}

/// What one offer asks for, when RFC 7692 makes it acceptable.
#[derive(Debug, Clone, Copy)]
struct Wants {
    server_nct: bool,
    client_nct: bool,
    server_bits: Option<u8>,
    /// `Some(None)`: `client_max_window_bits` without a value.
    client_bits: Option<Option<u8>>,
}

/// RFC 7692 §7.1.2: 8-15, decimal, no leading zeros (after unquoting).
fn bits_value(v: &Value) -> Option<u8> {
    let text = v.text();
    if text.starts_with('0') || text.len() > 2 {
        return None;
    }
    text.parse().ok().filter(|b| (8..=15).contains(b))
}

impl Value {
    /// The value as sent, before quoting.
    fn text(&self) -> String {
        match self {
            Value::Bits {
                n, leading_zero, ..
            } => format!("{}{}", if *leading_zero { "0" } else { "" }, n % 20),
            Value::Token(raw) => token(raw),
        }
    }
}

impl Offer {
    fn render(&self, out: &mut String) {
        let sp = |i: u32| {
            if self.spaces >> (i % 8) & 1 != 0 {
                " "
            } else {
                ""
            }
        };
        let name = match (self.deflate, self.upper) {
            (true, false) => "permessage-deflate".to_owned(),
            (true, true) => "PerMessage-Deflate".to_owned(),
            (false, _) => token(&self.other_name),
        };
        out.push_str(&name);
        for (i, p) in self.params.iter().enumerate() {
            out.push_str(sp(i as u32));
            out.push(';');
            out.push_str(sp(i as u32 + 1));
            out.push_str(&match &p.name {
                ParamName::ServerNoContextTakeover => "server_no_context_takeover".to_owned(),
                ParamName::ClientNoContextTakeover => "client_no_context_takeover".to_owned(),
                ParamName::ServerMaxWindowBits => "server_max_window_bits".to_owned(),
                ParamName::ClientMaxWindowBits => "client_max_window_bits".to_owned(),
                ParamName::Other(raw) => token(raw),
            });
            if let Some(v) = &p.value {
                out.push('=');
                let text = v.text();
                match v {
                    Value::Bits { quoted: true, .. } => out.push_str(&format!("\"{text}\"")),
                    _ => out.push_str(&text),
                }
            }
        }
    }

    /// What the offer asks for, or `None` if a server must decline it (RFC 7692 §5: unknown or
    /// repeated parameters, invalid values), or this server does (a 256-byte window, which
    /// zlib cannot compress with).
    fn wants(&self) -> Option<Wants> {
        if !self.deflate {
            return None;
        }
        let mut w = Wants {
            server_nct: false,
            client_nct: false,
            server_bits: None,
            client_bits: None,
        };
        for p in &self.params {
            match (&p.name, &p.value) {
                (ParamName::ServerNoContextTakeover, None) if !w.server_nct => w.server_nct = true,
                (ParamName::ClientNoContextTakeover, None) if !w.client_nct => w.client_nct = true,
                (ParamName::ServerMaxWindowBits, Some(v)) if w.server_bits.is_none() => {
                    w.server_bits = Some(bits_value(v)?);
                }
                (ParamName::ClientMaxWindowBits, v) if w.client_bits.is_none() => {
                    w.client_bits = Some(match v {
                        Some(v) => Some(bits_value(v)?),
                        None => None,
                    });
                }
                _ => return None,
            }
        }
        if w.server_bits == Some(8) {
            return None;
        }
        Some(w)
    }
}

/// The parameters of a response value, checked for syntax.
struct Response {
    server_nct: bool,
    client_nct: bool,
    server_bits: Option<u8>,
    client_bits: Option<u8>,
}

fn parse_response(v: &HeaderValue) -> Response {
    let text = v.to_str().expect("response is not ASCII");
    let mut parts = text.split(';').map(str::trim);
    assert_eq!(
        parts.next(),
        Some("permessage-deflate"),
        "response {text:?}"
    );
    let mut r = Response {
        server_nct: false,
        client_nct: false,
        server_bits: None,
        client_bits: None,
    };
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (part, None),
        };
        let bits = || -> u8 {
            let v = value.expect("window bits without a value");
            let b: u8 = v.parse().expect("window bits not a number");
            assert!(
                (8..=15).contains(&b),
                "window bits {b} in response {text:?}"
            );
            assert!(!v.starts_with('0'));
            b
        };
        match name {
            "server_no_context_takeover" if !r.server_nct && value.is_none() => {
                r.server_nct = true;
            }
            "client_no_context_takeover" if !r.client_nct && value.is_none() => {
                r.client_nct = true;
            }
            "server_max_window_bits" if r.server_bits.is_none() => r.server_bits = Some(bits()),
            "client_max_window_bits" if r.client_bits.is_none() => r.client_bits = Some(bits()),
            _ => panic!("bad parameter {part:?} in response {text:?}"),
        }
    }
    r
}

/// Compressors built from the agreement round-trip messages both ways.
fn round_trip(agreed: &Agreed) {
    let message = b"Hello, hello, hello! A message that compresses: hello, hello, hello.";
    for server_sends in [true, false] {
        let mut deflater = Deflater::new(agreed, server_sends);
        let mut inflater = Inflater::new(agreed, server_sends);
        for _ in 0..2 {
            let compressed = deflater.compress(message);
            let mut out = Vec::new();
            inflater
                .inflate(&compressed, true, &mut out, 1 << 16)
                .expect("agreed settings do not round-trip");
            assert_eq!(out, message);
        }
    }
}

fn policy(p: &Policy) -> DeflateConfig {
    let mut policy = DeflateConfig::default();
    policy.server_no_context_takeover = p.server_no_context_takeover;
    policy.client_no_context_takeover = p.client_no_context_takeover;
    policy.server_max_window_bits = p.server_max_window_bits;
    policy.client_max_window_bits = p.client_max_window_bits;
    policy.level = u32::from(p.level);
    policy.threshold = usize::from(p.threshold);
    policy
}

fuzz_target!(|data: &[u8]| {
    // Byte 0 picks the format: 0 for text (readable seeds), anything else for `Input`.
    let Some((&format, data)) = data.split_first() else {
        return;
    };
    if format == 0 {
        // Six policy bytes (flags, server bits, client bits, level, threshold, unused), then
        // header fields, one per line.
        let [
            flags,
            server_bits,
            client_bits,
            level,
            threshold,
            _,
            ref text @ ..,
        ] = *data
        else {
            return;
        };
        let policy = policy(&Policy {
            server_no_context_takeover: flags & 1 != 0,
            client_no_context_takeover: flags & 2 != 0,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            level,
            threshold: u16::from(threshold),
        });
        let mut fields = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            match HeaderValue::from_bytes(line) {
                Ok(v) => fields.push(v),
                Err(_) => return,
            }
        }
        check(&policy, &fields, None);
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
        return;
    };
    let policy = policy(&input.policy);

    let mut structured = true;
    let mut offers: Vec<&Offer> = Vec::new();
    let mut fields = Vec::new();
    for field in &input.fields {
        let text = match field {
            Field::Raw(s) => {
                structured = false;
                s.clone()
            }
            Field::Offers(list) => {
                let mut s = String::new();
                for (i, offer) in list.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    offer.render(&mut s);
                    offers.push(offer);
                }
                if list.is_empty() {
                    // Not an extension list: the grammar needs one element.
                    structured = false;
                }
                s
            }
        };
        match HeaderValue::try_from(text) {
            Ok(v) => fields.push(v),
            Err(_) => return,
        }
    }

    check(&policy, &fields, structured.then_some(&offers[..]));
});

/// Negotiates; `offers` are the offers `fields` hold when they were built from them.
fn check(policy: &DeflateConfig, fields: &[HeaderValue], offers: Option<&[&Offer]>) {
    let structured = offers.is_some();
    let result = negotiate(fields, policy);
    let expected = offers.unwrap_or_default().iter().find_map(|o| o.wants());
    if structured && !fields.is_empty() {
        assert!(
            result.is_ok(),
            "well-formed offers {fields:?} refused as a syntax error"
        );
    }
    let Ok(Some((agreed, response))) = result else {
        if structured && !fields.is_empty() {
            assert!(
                expected.is_none(),
                "acceptable offer {expected:?} declined: {fields:?}"
            );
        }
        return;
    };
    let in_range = (9..=15).contains(&policy.server_max_window_bits)
        && (8..=15).contains(&policy.client_max_window_bits)
        && policy.level <= 9;

    assert!(
        (9..=15).contains(&agreed.server_max_window_bits),
        "agreed server_max_window_bits {} (policy {policy:?})",
        agreed.server_max_window_bits
    );
    assert!(
        (8..=15).contains(&agreed.client_max_window_bits),
        "agreed client_max_window_bits {} (policy {policy:?})",
        agreed.client_max_window_bits
    );
    let r = parse_response(&response);
    assert_eq!(r.server_nct, agreed.server_no_context_takeover);
    assert_eq!(r.client_nct, agreed.client_no_context_takeover);
    assert_eq!(r.server_bits.unwrap_or(15), agreed.server_max_window_bits);
    assert_eq!(r.client_bits.unwrap_or(15), agreed.client_max_window_bits);

    if structured {
        let w = expected.expect("agreed to an offer that must be declined");
        assert!(agreed.server_no_context_takeover >= w.server_nct);
        assert!(agreed.client_no_context_takeover >= w.client_nct);
        if let Some(bits) = w.server_bits {
            assert!(
                agreed.server_max_window_bits <= bits,
                "server window above the offer"
            );
        }
        match w.client_bits {
            None => {
                assert_eq!(
                    agreed.client_max_window_bits, 15,
                    "limited a client that cannot be"
                );
                assert!(
                    r.client_bits.is_none(),
                    "client_max_window_bits not offered"
                );
            }
            Some(Some(bits)) => assert!(agreed.client_max_window_bits <= bits),
            Some(None) => {}
        }
        if in_range {
            let want = Agreed {
                server_no_context_takeover: w.server_nct || policy.server_no_context_takeover,
                client_no_context_takeover: w.client_nct || policy.client_no_context_takeover,
                server_max_window_bits: w
                    .server_bits
                    .unwrap_or(15)
                    .min(policy.server_max_window_bits),
                client_max_window_bits: match w.client_bits {
                    Some(offered) => offered.unwrap_or(15).min(policy.client_max_window_bits),
                    None => 15,
                },
                level: policy.level,
                threshold: policy.threshold,
            };
            assert_eq!(agreed, want, "offers {fields:?}");
        }
    }
    round_trip(&agreed);
}
