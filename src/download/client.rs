//! What the downloader asks of its HTTP client, written once: a [`tower::Service`] over `http` requests whose
//! response bodies yield [`Bytes`], shareable across the tasks of a download.
//!
//! Both traits are crate-private shorthands with blanket impls: every type meeting the spelled-out bounds meets
//! them. Public items keep the spelled-out bounds, so that their documentation names only public traits.

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::BoxError;

/// A client the downloader can send its requests through (`B` is the request body type).
pub(crate) trait HttpClient<B>:
    Service<Request<B>, Response = Response<Self::ResponseBody>, Error: Into<BoxError>, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
    /// The body of the client's responses.
    type ResponseBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B, RB> HttpClient<B> for S
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type ResponseBody = RB;
}

/// The body of the downloader's requests: they carry none, so the default value is sent.
pub(crate) trait RequestBody: Default + Send + 'static {}

impl<B: Default + Send + 'static> RequestBody for B {}
