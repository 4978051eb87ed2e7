//! [`HttpClient`]: what the crate asks of an HTTP client, named once.

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Empty;
use tower::Service;

use crate::BoxError;

/// An HTTP client the crate can send requests through: a [`tower::Service`] over `http` requests with bodies of
/// type `B` (the crate's requests carry none: [`Empty`]), whose responses have bodies that yield [`Bytes`], and
/// that can be cloned and shared across the tasks of a download.
///
/// hyper-util's legacy `Client`, and any tower stack around it (timeouts, concurrency limits, the signing layers),
/// is one. The trait is implemented for every service that qualifies and **sealed**: it cannot be implemented by
/// hand, so that its requirements can grow with the crate without breaking anyone; write `S: HttpClient` where
/// you would spell out the bounds.
///
/// ```
/// use acs_recording::HttpClient;
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
///
/// fn takes(_: impl HttpClient) {}
/// takes(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
/// ```
pub trait HttpClient<B = Empty<Bytes>>:
    sealed::Sealed<B>
    + Service<Request<B>, Response = Response<Self::ResponseBody>, Error: Into<BoxError>, Future: Send>
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

mod sealed {
    use super::*;

    /// Unnameable outside the crate: nothing but the blanket implementation makes an [`HttpClient`].
    pub trait Sealed<B> {}

    impl<S, B, RB> Sealed<B> for S
    where
        S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
    }
}

/// The body of the downloader's requests: they carry none, so the default value is sent.
pub(crate) trait RequestBody: Default + Send + 'static {}

impl<B: Default + Send + 'static> RequestBody for B {}
