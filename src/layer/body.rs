//! [`ResponseBody`]: the inner service's body, or the layer's own.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::body::Body;

pin_project! {
    /// The body of a [`WebSocketService`](super::WebSocketService) response: the inner
    /// service's body, passed through frame by frame, or the layer's own (empty for `101`, a
    /// short text for a refusal).
    ///
    /// # Examples
    ///
    /// ```
    /// use http_body::Body as _;
    ///
    /// let body = tower_ws::layer::ResponseBody::<http_body_util::Full<bytes::Bytes>>::own(
    ///     tower_ws::Body::from("refused"),
    /// );
    /// assert_eq!(body.size_hint().exact(), Some(7));
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Own { body: Body },
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body of the layer's own.
    pub fn own(body: Body) -> Self {
        Self {
            kind: Kind::Own { body },
        }
    }
}

/// An empty body of the layer's own (what `tower_http::timeout` sends on a timeout).
impl<B> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::own(Body::empty())
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Own { body } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|e: Infallible| match e {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { body } => body.size_hint(),
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Own { .. } => "Own",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
