//! The envelope: JSON text messages carrying HTTP requests and responses (see the module
//! docs of [`rpc`](super) for the spec). Pure: text in, `http` types out, and back.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde_json::{Map, Value};

/// A request that could not be taken: the error envelope to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The request's id, when it had a usable one (0 otherwise).
    pub(crate) id: u64,
    pub(crate) code: StatusCode,
    pub(crate) message: String,
}

impl Refusal {
    fn new(id: u64, code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }
}

/// Parses a request envelope into its id and an `http::Request` (no extensions yet); `max_body`
/// bounds the body.
pub(crate) fn parse(text: &str, max_body: usize) -> Result<(u64, Request<Bytes>), Refusal> {
    let bad = |id, why: String| Refusal::new(id, StatusCode::BAD_REQUEST, why);
    let value: Value = serde_json::from_str(text).map_err(|e| bad(0, format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad(0, "an envelope is a JSON object".into()));
    };
    let id = match obj.get("id") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id) if id > 0 => id,
            _ => return Err(bad(0, "`id` must be a positive integer".into())),
        },
        _ => return Err(bad(0, "`id` is missing".into())),
    };
    let method = match obj.get("method") {
        Some(Value::String(m)) => Method::from_bytes(m.as_bytes())
            .ok()
            .filter(|m| !m.as_str().is_empty())
            .ok_or_else(|| bad(id, format!("`method` {m:?} is not an HTTP method")))?,
        _ => return Err(bad(id, "`method` must be a string".into())),
    };
    let target = match obj.get("target") {
        Some(Value::String(t)) if t.starts_with('/') => t
            .parse::<Uri>()
            .ok()
            .filter(|u| u.scheme().is_none() && u.authority().is_none())
            .ok_or_else(|| bad(id, format!("`target` {t:?} is not a path")))?,
        _ => return Err(bad(id, "`target` must be a path starting with `/`".into())),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(b)) => Bytes::copy_from_slice(b.as_bytes()),
        // A JSON value is taken as the body, serialized.
        Some(other) => Bytes::from(other.to_string()),
    };
    if body.len() > max_body {
        return Err(Refusal::new(
            id,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {max_body} bytes"),
        ));
    }
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = target;
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let value = value
                    .as_str()
                    .ok_or_else(|| bad(id, format!("header {name:?} must be a string")))?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(id, format!("{name:?} is not a header name")))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| bad(id, format!("header {name} has an invalid value")))?;
                req.headers_mut().append(name, value);
            }
        }
        Some(_) => return Err(bad(id, "`headers` must be an object".into())),
    }
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "method" | "target" | "body" | "headers"))
    {
        return Err(bad(id, format!("unknown field {unknown:?}")));
    }
    Ok((id, req))
}

/// The reply envelope: the id, the status code and reason, the body as text (invalid UTF-8
/// replaced), and the headers when asked for.
pub(crate) fn reply(id: u64, code: StatusCode, headers: Option<&HeaderMap>, body: &[u8]) -> String {
    let mut obj = Map::new();
    obj.insert("id".into(), id.into());
    obj.insert("code".into(), code.as_u16().into());
    obj.insert(
        "message".into(),
        code.canonical_reason().unwrap_or_default().into(),
    );
    obj.insert(
        "body".into(),
        String::from_utf8_lossy(body).into_owned().into(),
    );
    if let Some(headers) = headers {
        let mut map = BTreeMap::new();
        for (name, value) in headers {
            if let Ok(v) = value.to_str() {
                map.insert(name.as_str().to_owned(), Value::from(v));
            }
        }
        obj.insert("headers".into(), Value::Object(map.into_iter().collect()));
    }
    Value::Object(obj).to_string()
}

/// An error envelope (a request that was not run, or failed).
pub(crate) fn error(refusal: &Refusal) -> String {
    let mut obj = Map::new();
    obj.insert("id".into(), refusal.id.into());
    obj.insert("code".into(), refusal.code.as_u16().into());
    obj.insert("message".into(), refusal.message.clone().into());
    obj.insert("body".into(), "".into());
    Value::Object(obj).to_string()
}

/// A push envelope: id 0, `message` the topic, `body` the payload.
pub(crate) fn push(topic: &str, body: &str, at: crate::Position) -> String {
    let mut obj = Map::new();
    obj.insert("id".into(), 0.into());
    obj.insert("code".into(), 200.into());
    obj.insert("message".into(), topic.into());
    obj.insert("body".into(), body.into());
    obj.insert("epoch".into(), at.epoch.to_string().into());
    obj.insert("offset".into(), at.offset.into());
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_envelope_becomes_a_request() {
        let (id, req) = parse(
            r#"{"id": 1512459721269, "method": "POST", "target": "/api/todos?x=1",
                "body": "{\"title\":\"a\"}", "headers": {"content-type": "application/json"}}"#,
            1024,
        )
        .unwrap();
        assert_eq!(id, 1_512_459_721_269);
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/api/todos?x=1");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(&req.body()[..], br#"{"title":"a"}"#);
    }

    #[test]
    fn bad_envelopes_are_refused_with_the_id_when_there_is_one() {
        let refused = |text: &str| parse(text, 8).unwrap_err();
        assert_eq!(refused("not json").id, 0);
        assert_eq!(refused("[1]").code, StatusCode::BAD_REQUEST);
        assert_eq!(
            refused(r#"{"id": -1, "method": "GET", "target": "/"}"#).id,
            0
        );
        let r = refused(r#"{"id": 7, "method": "G E T", "target": "/"}"#);
        assert_eq!((r.id, r.code), (7, StatusCode::BAD_REQUEST));
        let r = refused(r#"{"id": 7, "method": "GET", "target": "http://evil/"}"#);
        assert_eq!((r.id, r.code), (7, StatusCode::BAD_REQUEST));
        let r = refused(r#"{"id": 7, "method": "GET", "target": "relative"}"#);
        assert_eq!(r.id, 7);
        let r = refused(r#"{"id": 7, "method": "POST", "target": "/", "body": "123456789"}"#);
        assert_eq!((r.id, r.code), (7, StatusCode::PAYLOAD_TOO_LARGE));
        let r = refused(r#"{"id": 7, "method": "GET", "target": "/", "extra": 1}"#);
        assert_eq!(r.id, 7);
    }

    #[test]
    fn replies_and_pushes_are_json() {
        let text = reply(9, StatusCode::NOT_FOUND, None, b"nope");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 9);
        assert_eq!(v["code"], 404);
        assert_eq!(v["message"], "Not Found");
        assert_eq!(v["body"], "nope");
        let at: crate::Position = "00000000000000ab:7".parse().unwrap();
        let v: Value = serde_json::from_str(&push("todos", "changed", at)).unwrap();
        assert_eq!(
            (v["id"].as_u64(), v["message"].as_str()),
            (Some(0), Some("todos"))
        );
        assert_eq!(
            (v["epoch"].as_str(), v["offset"].as_u64()),
            (Some("00000000000000ab"), Some(7))
        );
    }
}
