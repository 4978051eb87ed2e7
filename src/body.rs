//! The response body of the server-side layers: the inner service's, or the layer's own answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

/// The body of a response from a server-side layer ([`EventGridWebhook`](crate::eventgrid::EventGridWebhook),
/// [`HmacVerify`](crate::signing::HmacVerify)): the inner service's body, or the layer's own JSON answer (a
/// handshake or a problem).
#[pin_project]
#[derive(Debug)]
pub struct ResponseBody<B> {
    #[pin]
    kind: Kind<B>,
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<B> {
    Inner(#[pin] B),
    Full(Option<Bytes>),
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self { kind: Kind::Inner(body) }
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full(Some(bytes).filter(|bytes| !bytes.is_empty())) }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner(body) => body.poll_frame(cx),
            KindProj::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner(body) => body.is_end_stream(),
            Kind::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner(body) => body.size_hint(),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64)),
        }
    }
}
