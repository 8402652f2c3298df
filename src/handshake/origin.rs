//! Which `Origin` headers a server accepts: the defense against cross-site WebSocket hijacking.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

type CheckFn = dyn Fn(Option<&HeaderValue>, &HeaderMap) -> bool + Send + Sync;

/// The server's `Origin` policy. Requests it refuses get `403 Forbidden`.
///
/// Browsers send `Origin` with every WebSocket handshake and let any page open a WebSocket to any
/// server, with the user's cookies. Checking `Origin` is what keeps another site's page from
/// using a logged-in user's session.
///
/// # Examples
///
/// ```
/// use tower_ws::OriginPolicy;
///
/// // The default: no Origin (not a browser) or an Origin whose host is the Host header.
/// let same = OriginPolicy::SameOrigin;
/// // Only these exact origins (scheme, host and port; case-insensitive).
/// let listed = OriginPolicy::allow(["https://app.example.com", "http://localhost:3000"]);
/// // Anything: for public APIs without cookie-based auth.
/// let any = OriginPolicy::Any;
/// // Your own rule.
/// let custom = OriginPolicy::custom(|origin, _headers| {
///     origin.is_some_and(|o| o.as_bytes().ends_with(b".example.com"))
/// });
/// # let _ = (same, listed, any, custom);
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Accept requests without `Origin`, and those whose `Origin` host (and port) equals the
    /// `Host` header (or the request URI's authority, for HTTP/2). The default.
    #[default]
    SameOrigin,
    /// Accept every request.
    Any,
    /// Accept requests without `Origin` and those whose `Origin` is in the list.
    AllowList(Arc<[String]>),
    /// Accept what the function accepts; it sees the `Origin` header (if any) and all headers.
    Custom(Arc<CheckFn>),
}

impl OriginPolicy {
    /// Accept only these origins (plus requests without `Origin`).
    pub fn allow<I>(origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::AllowList(origins.into_iter().map(Into::into).collect())
    }

    /// Accept what `check` accepts.
    pub fn custom<F>(check: F) -> Self
    where
        F: Fn(Option<&HeaderValue>, &HeaderMap) -> bool + Send + Sync + 'static,
    {
        Self::Custom(Arc::new(check))
    }

    /// Whether a request with this `Origin` and this host (`Host` or URI authority) passes.
    pub(crate) fn allows(
        &self,
        origin: Option<&HeaderValue>,
        host: Option<&str>,
        headers: &HeaderMap,
    ) -> bool {
        match self {
            Self::Any => true,
            Self::Custom(check) => check(origin, headers),
            Self::SameOrigin => {
                let Some(origin) = origin else { return true };
                let (Ok(origin), Some(host)) = (origin.to_str(), host) else {
                    return false;
                };
                origin_host(origin).is_some_and(|h| h.eq_ignore_ascii_case(host))
            }
            Self::AllowList(list) => {
                let Some(origin) = origin else { return true };
                let Ok(origin) = origin.to_str() else {
                    return false;
                };
                list.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }
        }
    }
}

/// The `host[:port]` of a serialized origin (`scheme://host[:port]`); `None` for `null` and
/// anything else that is not an origin.
fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty() || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some(rest)
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameOrigin => f.write_str("SameOrigin"),
            Self::Any => f.write_str("Any"),
            Self::AllowList(list) => f.debug_tuple("AllowList").field(list).finish(),
            Self::Custom(_) => f.debug_tuple("Custom").finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(policy: &OriginPolicy, origin: Option<&'static str>, host: &str) -> bool {
        policy.allows(
            origin.map(HeaderValue::from_static).as_ref(),
            Some(host),
            &HeaderMap::new(),
        )
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let p = OriginPolicy::SameOrigin;
        assert!(allows(&p, None, "example.com"));
        assert!(allows(&p, Some("https://Example.com"), "example.com"));
        assert!(allows(&p, Some("http://localhost:8080"), "localhost:8080"));
        assert!(!allows(&p, Some("http://localhost:3000"), "localhost:8080"));
        assert!(!allows(&p, Some("https://evil.example"), "example.com"));
        assert!(!allows(&p, Some("null"), "example.com"));
        assert!(!allows(
            &p,
            Some("https://example.com.evil.example"),
            "example.com"
        ));
    }

    #[test]
    fn allow_list_matches_whole_origins() {
        let p = OriginPolicy::allow(["https://app.example.com"]);
        assert!(allows(
            &p,
            Some("https://app.example.com"),
            "api.example.com"
        ));
        assert!(!allows(
            &p,
            Some("http://app.example.com"),
            "api.example.com"
        ));
        assert!(allows(&p, None, "api.example.com"));
    }
}
