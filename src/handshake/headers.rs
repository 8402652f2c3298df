//! Header helpers: comma-separated token lists (RFC 9110 §5.6.1), read across repeated fields.

use http::HeaderMap;
use http::header::HeaderName;

/// Every token of every `name` field, trimmed, empty ones skipped.
pub(crate) fn tokens<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// Whether the `name` fields list `token` (ASCII case-insensitive).
pub(crate) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::CONNECTION;

    #[test]
    fn finds_tokens_in_lists_and_repeated_fields() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&h, &CONNECTION, "upgrade"));
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        h.append(CONNECTION, HeaderValue::from_static("\tUPGRADE ,"));
        assert!(has_token(&h, &CONNECTION, "upgrade"));
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("upgraded, keep-alive"));
        assert!(!has_token(&h, &CONNECTION, "upgrade"));
    }
}
