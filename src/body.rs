//! [`Body`]: the body of handshake responses (empty for 101, a short text for refusals).

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The body of the responses this crate builds: empty, or one chunk of bytes.
///
/// It implements [`http_body::Body`], so hyper sends it as is; convert it for frameworks with
/// their own body type (for axum: `axum::body::Body::new(body)`).
///
/// [`http_body::Body`]: https://docs.rs/http-body/1/http_body/trait.Body.html
///
/// # Examples
///
/// ```
/// use http_body::Body as _;
///
/// let body = tower_ws::Body::from("not allowed");
/// assert_eq!(body.size_hint().exact(), Some(11));
/// assert!(tower_ws::Body::empty().is_end_stream());
///
/// // Owned text and bytes convert too, as a refusal built with `format!` needs.
/// let body = tower_ws::Body::from(format!("{} is not allowed", "POST"));
/// assert_eq!(body.size_hint().exact(), Some(19));
/// assert_eq!(tower_ws::Body::from(vec![1u8, 2, 3]).size_hint().exact(), Some(3));
/// ```
#[derive(Default, Clone)]
pub struct Body(Option<Bytes>);

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Self(None)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self((!bytes.is_empty()).then_some(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<std::borrow::Cow<'static, str>> for Body {
    fn from(text: std::borrow::Cow<'static, str>) -> Self {
        match text {
            std::borrow::Cow::Borrowed(s) => Self::from(s),
            std::borrow::Cow::Owned(s) => Self::from(s),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("len", &self.0.as_ref().map_or(0, Bytes::len))
            .finish()
    }
}
