//! HTTP `CONNECT` proxies (RFC 9110 §9.3.6): given explicitly, or from `http_proxy`,
//! `https_proxy` and `no_proxy` as curl reads them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::Uri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ClientError;

/// The longest proxy response head read.
const MAX_HEAD: usize = 8 << 10;

/// Where the proxy is, and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proxy {
    pub(super) host: String,
    pub(super) port: u16,
    /// `user:password` from the proxy URI, sent as `Proxy-Authorization: Basic`.
    auth: Option<String>,
}

impl Proxy {
    /// A proxy from its URI (`http://[user:password@]host[:port]`, port 80 by default; a bare
    /// `host:port` is taken as `http://`).
    pub(super) fn parse(text: &str) -> Result<Self, ClientError> {
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let bad = |why: &str| ClientError::InvalidUri(format!("proxy {text:?}: {why}"));
        // `http::Uri` refuses user info, so take it off first.
        let (scheme, rest) = with_scheme
            .split_once("://")
            .ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" {
            return Err(bad("only http:// proxies are supported"));
        }
        let (auth, host_part) = match rest.rsplit_once('@') {
            Some((auth, host)) => (Some(percent_decode(auth)), host),
            None => (None, rest),
        };
        let uri: Uri = format!("http://{host_part}")
            .parse()
            .map_err(|_| bad("not a URI"))?;
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(80),
            auth,
        })
    }

    /// The proxy the environment names for a `tls` (or plain) connection to `host`, if any:
    /// `https_proxy` for wss, `http_proxy` for ws (lower case first, then upper case), unless
    /// `no_proxy` lists the host. Loopback hosts never go through an environment proxy.
    pub(super) fn from_env(
        tls: bool,
        host: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ClientError> {
        let names: [&str; 2] = if tls {
            ["https_proxy", "HTTPS_PROXY"]
        } else {
            ["http_proxy", "HTTP_PROXY"]
        };
        let Some(proxy) = names.iter().find_map(|n| var(n)).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let no_proxy = var("no_proxy")
            .or_else(|| var("NO_PROXY"))
            .unwrap_or_default();
        if is_loopback(host) || excluded(host, &no_proxy) {
            return Ok(None);
        }
        Self::parse(&proxy).map(Some)
    }

    /// Opens a tunnel to `host:port` through the proxy.
    pub(super) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, ClientError> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = &self.auth {
            req.push_str(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                BASE64.encode(auth)
            ));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await?;
        // Read the answer's head byte by byte: nothing after it may be consumed (the tunnel's
        // first bytes belong to the TLS or WebSocket handshake).
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return Err(ClientError::Proxy("response head too long".into()));
            }
            let byte = tcp
                .read_u8()
                .await
                .map_err(|e| ClientError::Proxy(format!("closed before answering CONNECT: {e}")))?;
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        let status_line = head.lines().next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(200..=299) => Ok(tcp),
            _ => Err(ClientError::Proxy(format!(
                "CONNECT {target} refused: {status_line}"
            ))),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `no_proxy` (comma-separated hosts or domains; `*` for all; a leading dot or `*.`
/// optional; ports ignored) covers `host`.
fn excluded(host: &str, no_proxy: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        // An IPv6 entry is bracketed when it has a port; a host entry may have one.
        let entry = match entry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
            None if entry.matches(':').count() == 1 => {
                entry.split(':').next().unwrap_or_default().to_owned()
            }
            None => entry,
        };
        !entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}")))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) if bytes[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn proxy_uris_parse_with_credentials_and_default_port() {
        let p = Proxy::parse("http://user:p%40ss@proxy.corp:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.auth.as_deref(), Some("user:p@ss"));
        let p = Proxy::parse("proxy.corp").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.auth), ("proxy.corp", 80, None));
        assert!(Proxy::parse("socks5://proxy:1080").is_err());
        assert!(Proxy::parse("http://").is_err());
    }

    #[test]
    fn the_environment_picks_the_proxy_by_scheme_and_honours_no_proxy() {
        let vars = [
            ("http_proxy", "http://plain:8080"),
            ("HTTPS_PROXY", "http://secure:8443"),
            ("no_proxy", "internal.corp, .example.org,10.0.0.1:99"),
        ];
        let pick = |tls, host| {
            Proxy::from_env(tls, host, env(&vars))
                .unwrap()
                .map(|p| p.host)
        };
        assert_eq!(pick(false, "ws.example.com").as_deref(), Some("plain"));
        assert_eq!(pick(true, "ws.example.com").as_deref(), Some("secure"));
        assert_eq!(pick(false, "internal.corp"), None);
        assert_eq!(pick(false, "a.b.internal.corp"), None);
        assert_eq!(pick(true, "example.org"), None);
        assert_eq!(pick(true, "api.example.org"), None);
        assert_eq!(pick(false, "10.0.0.1"), None);
        assert_eq!(pick(false, "notinternal.corp").as_deref(), Some("plain"));
        // Loopback never goes through an environment proxy.
        assert_eq!(pick(false, "127.0.0.1"), None);
        assert_eq!(pick(false, "localhost"), None);
        assert_eq!(
            Proxy::from_env(false, "h", env(&[("no_proxy", "*")])).unwrap(),
            None
        );
        let all = [("http_proxy", "http://p:1"), ("no_proxy", "*")];
        assert_eq!(Proxy::from_env(false, "h", env(&all)).unwrap(), None);
    }
}
