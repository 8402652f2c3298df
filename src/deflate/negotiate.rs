//! Parsing `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and choosing a permessage-deflate offer
//! (RFC 7692 §5, §7.1).

use http::HeaderValue;

use super::DeflateConfig;

/// The parameters both sides agreed to. Public only through `__fuzz`, for the fuzz targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The window the server compresses with.
    pub server_max_window_bits: u8,
    /// The window the client compresses with (at most).
    pub client_max_window_bits: u8,
    /// The compression level.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
}

impl Agreed {
    /// The window bits and `no_context_takeover` that apply to what the server (`true`) or the
    /// client (`false`) sends.
    pub(crate) const fn sender(&self, server: bool) -> (u8, bool) {
        if server {
            (self.server_max_window_bits, self.server_no_context_takeover)
        } else {
            (self.client_max_window_bits, self.client_no_context_takeover)
        }
    }
}

/// The header is not a valid extension list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError;

type Param<'a> = (&'a str, Option<String>);

/// Picks the first acceptable permessage-deflate offer among the `Sec-WebSocket-Extensions`
/// fields; `Ok(None)` when there is none (the connection goes on without compression).
///
/// # Errors
///
/// The fields do not follow the extension-list grammar (the handshake then fails with 400).
pub(crate) fn negotiate<'a>(
    fields: impl Iterator<Item = &'a HeaderValue>,
    policy: &DeflateConfig,
) -> Result<Option<(Agreed, HeaderValue)>, SyntaxError> {
    let mut chosen = None;
    for field in fields {
        let text = field.to_str().map_err(|_| SyntaxError)?;
        for (name, params) in parse_list(text)? {
            if chosen.is_none() && name.eq_ignore_ascii_case("permessage-deflate") {
                chosen = accept(&params, policy).map(|agreed| {
                    // RFC 7692 §7.1.2.1: an offer with server_max_window_bits is accepted by
                    // answering with it, whatever its value.
                    let offered_server_bits = params
                        .iter()
                        .any(|(name, _)| name.eq_ignore_ascii_case("server_max_window_bits"));
                    (agreed, offered_server_bits)
                });
            }
        }
    }
    Ok(chosen.map(|(agreed, offered_server_bits)| {
        let response = response(&agreed, offered_server_bits);
        (agreed, response)
    }))
}

/// RFC 7692 §5: decline an offer with unknown or repeated parameters or invalid values.
fn accept(params: &[Param<'_>], policy: &DeflateConfig) -> Option<Agreed> {
    // The policy's public fields can be set past the setters' clamps: clamp them here, where
    // they turn into zlib parameters (zlib asserts on a window of 16 or a level of 10).
    let policy_server_bits = policy.server_max_window_bits.clamp(9, 15);
    let policy_client_bits = policy.client_max_window_bits.clamp(8, 15);
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<Option<u8>> = None;
    for (name, value) in params {
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !server_nct => server_nct = true,
            ("client_no_context_takeover", None) if !client_nct => client_nct = true,
            ("server_max_window_bits", Some(v)) if server_bits.is_none() => {
                server_bits = Some(window_bits(v)?);
            }
            ("client_max_window_bits", v) if client_bits.is_none() => {
                client_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                });
            }
            _ => return None,
        }
    }
    let server_max_window_bits = match server_bits {
        // zlib cannot compress with a 256-byte window (it silently uses 512), so a client
        // that insists on 8 would get data it cannot inflate: decline instead.
        Some(8) => return None,
        Some(bits) => bits.min(policy_server_bits),
        None => policy_server_bits,
    };
    // RFC 7692 §7.1.2.2: without `client_max_window_bits` in the offer the server must not
    // limit the client's window.
    let client_max_window_bits = match client_bits {
        Some(offered) => offered.unwrap_or(15).min(policy_client_bits),
        None => 15,
    };
    Some(Agreed {
        server_no_context_takeover: server_nct || policy.server_no_context_takeover,
        client_no_context_takeover: client_nct || policy.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        level: policy.level.min(9),
        threshold: policy.threshold,
    })
}

/// RFC 7692 §7.1.2: 8-15, decimal, no leading zeros.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 {
        return None;
    }
    value.parse().ok().filter(|b| (8..=15).contains(b))
}

fn response(a: &Agreed, offered_server_bits: bool) -> HeaderValue {
    let mut out = String::from("permessage-deflate");
    if a.server_no_context_takeover {
        out.push_str("; server_no_context_takeover");
    }
    if a.client_no_context_takeover {
        out.push_str("; client_no_context_takeover");
    }
    if a.server_max_window_bits < 15 || offered_server_bits {
        out.push_str(&format!(
            "; server_max_window_bits={}",
            a.server_max_window_bits
        ));
    }
    if a.client_max_window_bits < 15 {
        out.push_str(&format!(
            "; client_max_window_bits={}",
            a.client_max_window_bits
        ));
    }
    HeaderValue::try_from(out).expect("ASCII header value")
}

/// The client's offer (RFC 7692 §7.1): permessage-deflate with `client_max_window_bits` (so the
/// server may limit our window), and whatever of the policy's limits differ from the defaults.
#[cfg(feature = "client")]
pub(crate) fn offer(policy: &DeflateConfig) -> HeaderValue {
    let mut out = String::from("permessage-deflate");
    if policy.server_no_context_takeover {
        out.push_str("; server_no_context_takeover");
    }
    if policy.client_no_context_takeover {
        out.push_str("; client_no_context_takeover");
    }
    let server_bits = policy.server_max_window_bits.clamp(9, 15);
    if server_bits < 15 {
        out.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    let client_bits = policy.client_max_window_bits.clamp(9, 15);
    if client_bits < 15 {
        out.push_str(&format!("; client_max_window_bits={client_bits}"));
    } else {
        out.push_str("; client_max_window_bits");
    }
    HeaderValue::try_from(out).expect("ASCII header value")
}

/// Why a server's `Sec-WebSocket-Extensions` response cannot be accepted (RFC 7692 §5, §7).
#[cfg(feature = "client")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResponseError {
    /// An extension that was not offered (or offered once and answered twice).
    NotOffered(String),
    /// permessage-deflate with a parameter that is unknown, repeated, out of range, or not
    /// allowed by the offer.
    BadParameters(String),
}

/// Checks the server's extension response against our `offer` (from `policy`; `None` if we
/// offered nothing); returns what was agreed.
#[cfg(feature = "client")]
pub(crate) fn accept_response<'a>(
    fields: impl Iterator<Item = &'a HeaderValue>,
    policy: Option<&DeflateConfig>,
) -> Result<Option<Agreed>, ResponseError> {
    let mut agreed = None;
    for field in fields {
        let text = field
            .to_str()
            .map_err(|_| ResponseError::BadParameters("not ASCII".into()))?;
        let list = parse_list(text)
            .map_err(|_| ResponseError::BadParameters(format!("unparsable: {text:?}")))?;
        for (name, params) in list {
            let Some(policy) = policy
                .filter(|_| name.eq_ignore_ascii_case("permessage-deflate") && agreed.is_none())
            else {
                return Err(ResponseError::NotOffered(name.to_owned()));
            };
            agreed = Some(
                response_params(&params, policy)
                    .ok_or_else(|| ResponseError::BadParameters(text.to_owned()))?,
            );
        }
    }
    Ok(agreed)
}

/// RFC 7692 §7.1: each parameter at most once, window bits 8-15 and within what was offered;
/// `client_max_window_bits` with a value.
#[cfg(feature = "client")]
fn response_params(params: &[Param<'_>], policy: &DeflateConfig) -> Option<Agreed> {
    let offered_server_bits = policy.server_max_window_bits.clamp(9, 15);
    let offered_client_bits = policy.client_max_window_bits.clamp(9, 15);
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits = None;
    let mut client_bits = None;
    for (name, value) in params {
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !server_nct => server_nct = true,
            ("client_no_context_takeover", None) if !client_nct => client_nct = true,
            // RFC 7692 §7.1.2.1: the server may announce a smaller window even unasked
            // (Python's `websockets` does); never a larger one than we asked for.
            ("server_max_window_bits", Some(v)) if server_bits.is_none() => {
                server_bits = Some(window_bits(v).filter(|b| *b <= offered_server_bits)?);
            }
            ("client_max_window_bits", Some(v)) if client_bits.is_none() => {
                client_bits = Some(window_bits(v).filter(|b| *b <= offered_client_bits)?);
            }
            _ => return None,
        }
    }
    // We asked the server for server_no_context_takeover: it must agree.
    if policy.server_no_context_takeover && !server_nct {
        return None;
    }
    let client_max_window_bits = client_bits.unwrap_or(offered_client_bits);
    Some(Agreed {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct || policy.client_no_context_takeover,
        server_max_window_bits: server_bits.unwrap_or(15),
        client_max_window_bits,
        level: policy.level.min(9),
        // zlib cannot compress with a 256-byte window: a server that limits us to 8 bits gets
        // every message uncompressed (allowed: RSV1 is per message).
        threshold: if client_max_window_bits < 9 {
            usize::MAX
        } else {
            policy.threshold
        },
    })
}

/// `extension-list = 1#extension; extension = token *( ";" param ); param = token ["=" (token |
/// quoted-string)]`, with optional whitespace around separators.
fn parse_list(text: &str) -> Result<Vec<(&str, Vec<Param<'_>>)>, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.eat(b',') {
            continue; // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
        }
        if p.done() {
            break;
        }
        let name = p.token()?;
        let mut params = Vec::new();
        loop {
            p.ws();
            if !p.eat(b';') {
                break;
            }
            p.ws();
            let param = p.token()?;
            p.ws();
            let value = if p.eat(b'=') {
                p.ws();
                Some(if p.peek() == Some(b'"') {
                    p.quoted()?
                } else {
                    p.token()?.to_owned()
                })
            } else {
                None
            };
            params.push((param, value));
        }
        out.push((name, params));
        p.ws();
        if !p.done() && !p.eat(b',') {
            return Err(SyntaxError);
        }
    }
    // An empty field (or only commas) offers nothing: no compression, not a bad request.
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        if self.i == start {
            return Err(SyntaxError);
        }
        Ok(&self.text[start..self.i])
    }

    /// RFC 6455 §9.1: a quoted value must still be a token once unescaped.
    fn quoted(&mut self) -> Result<String, SyntaxError> {
        self.i += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(SyntaxError),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or(SyntaxError)?;
                    value.push(char::from(c));
                    self.i += 1;
                }
                Some(c) => {
                    value.push(char::from(c));
                    self.i += 1;
                }
            }
        }
        if value.is_empty() || !value.bytes().all(is_tchar) {
            return Err(SyntaxError);
        }
        Ok(value)
    }
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        fields: &[&'static str],
        policy: &DeflateConfig,
    ) -> Result<Option<(Agreed, String)>, SyntaxError> {
        let values: Vec<HeaderValue> = fields.iter().map(|f| HeaderValue::from_static(f)).collect();
        negotiate(values.iter(), policy)
            .map(|o| o.map(|(a, h)| (a, h.to_str().unwrap().to_owned())))
    }

    fn answer(fields: &[&'static str]) -> Option<String> {
        run(fields, &DeflateConfig::default())
            .unwrap()
            .map(|(_, h)| h)
    }

    #[test]
    fn plain_offer_is_accepted_with_defaults() {
        assert_eq!(
            answer(&["permessage-deflate"]).as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn the_browser_offer_is_accepted() {
        let (agreed, h) = run(
            &["permessage-deflate; client_max_window_bits"],
            &DeflateConfig::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(h, "permessage-deflate");
        assert_eq!(agreed.client_max_window_bits, 15);
    }

    #[test]
    fn parameters_are_echoed_as_agreed() {
        let h = answer(&[
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
        ]);
        assert_eq!(
            h.as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"
            )
        );
    }

    #[test]
    fn quoted_values_are_unquoted() {
        let h = answer(&["permessage-deflate; server_max_window_bits=\"12\""]);
        assert_eq!(
            h.as_deref(),
            Some("permessage-deflate; server_max_window_bits=12")
        );
    }

    #[test]
    fn the_first_acceptable_of_several_offers_wins() {
        let h = answer(&[
            "permessage-deflate; unknown_param, permessage-deflate; server_max_window_bits=16",
            "x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
        ]);
        assert_eq!(
            h.as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
    }

    #[test]
    fn invalid_offers_are_declined() {
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "permessage-deflate; server_max_window_bits=8",
        ] {
            let values = [HeaderValue::from_static(offer)];
            assert_eq!(
                negotiate(values.iter(), &DeflateConfig::default()),
                Ok(None),
                "{offer}"
            );
        }
    }

    #[test]
    fn bad_syntax_is_an_error() {
        for field in [
            "permessage-deflate;",
            "permessage-deflate; a=\"\"",
            "permessage-deflate x",
            ";",
            "a=\"unterminated",
            "permessage-deflate; a=\"b c\"",
        ] {
            let values = [HeaderValue::from_static(field)];
            assert_eq!(
                negotiate(values.iter(), &DeflateConfig::default()),
                Err(SyntaxError),
                "{field}"
            );
        }
    }

    #[test]
    fn server_policy_limits_windows_and_context() {
        let policy = DeflateConfig::default()
            .server_max_window_bits(11)
            .client_max_window_bits(10)
            .client_no_context_takeover(true);
        let (agreed, h) = run(&["permessage-deflate; client_max_window_bits"], &policy)
            .unwrap()
            .unwrap();
        assert_eq!(agreed.server_max_window_bits, 11);
        assert_eq!(agreed.client_max_window_bits, 10);
        assert_eq!(
            h,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10"
        );
        // Without client_max_window_bits in the offer, the client's window is not limited.
        let (agreed, h) = run(&["permessage-deflate"], &policy).unwrap().unwrap();
        assert_eq!(agreed.client_max_window_bits, 15);
        assert!(!h.contains("client_max_window_bits"));
    }

    #[test]
    fn an_empty_field_is_no_offer() {
        // Regression: an empty header was refused with 400 instead of meaning "no offer".
        for field in ["", " ", ",", " , ,"] {
            let values = [HeaderValue::from_static(field)];
            assert_eq!(
                negotiate(values.iter(), &DeflateConfig::default()),
                Ok(None),
                "{field:?}"
            );
        }
    }

    #[test]
    fn out_of_range_policy_fields_are_clamped() {
        // Regression: the public fields skipped the setters' clamps, and a window of 16 or a
        // level of 10 reached zlib's asserts.
        let mut policy = DeflateConfig {
            server_max_window_bits: 16,
            client_max_window_bits: 0,
            level: 200,
            ..DeflateConfig::default()
        };
        let (agreed, _) = run(&["permessage-deflate; client_max_window_bits"], &policy)
            .unwrap()
            .unwrap();
        assert_eq!(agreed.server_max_window_bits, 15);
        assert_eq!(agreed.client_max_window_bits, 8);
        assert_eq!(agreed.level, 9);
        policy.server_max_window_bits = 3;
        let (agreed, _) = run(&["permessage-deflate"], &policy).unwrap().unwrap();
        assert_eq!(agreed.server_max_window_bits, 9);
        // And zlib takes them.
        let mut deflater = crate::deflate::Deflater::new(&agreed, true);
        assert!(!deflater.compress(b"hello hello hello").is_empty());
    }

    #[test]
    fn an_offered_server_window_is_answered_even_at_15() {
        // RFC 7692 §7.1.2.1: the server accepts server_max_window_bits by including it.
        assert_eq!(
            answer(&["permessage-deflate; server_max_window_bits=15"]),
            Some("permessage-deflate; server_max_window_bits=15".to_owned())
        );
    }
}
