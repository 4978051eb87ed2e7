//! Which part of the emulator answers an authenticated request: Call Automation's recording operations
//! (`/calling/...`, on the endpoint only) or the storage.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;

use super::calling::Calling;
use super::namespace::NamespaceTopic;
use super::storage::StorageService;
use super::StorageBody;

/// The emulator's routes as a `tower::Service` over authenticated requests.
#[derive(Clone, Debug)]
pub(crate) struct Routes {
    pub(crate) storage: StorageService,
    /// `None` on the storage listener, which serves no recording operations.
    pub(crate) calling: Option<Calling>,
    /// The Event Grid namespace topic: on the endpoint only.
    pub(crate) namespace: Option<NamespaceTopic>,
}

impl Routes {
    /// The recording operations, when this listener serves them and the path is theirs.
    pub(crate) fn calling_for(&self, path: &str) -> Option<&Calling> {
        self.calling.as_ref().filter(|_| Calling::serves(path))
    }

    /// The namespace topic, when this listener serves it and the path is its.
    pub(crate) fn namespace_for(&self, path: &str) -> Option<&NamespaceTopic> {
        self.namespace.as_ref().filter(|_| NamespaceTopic::serves(path))
    }
}

impl tower::Service<Request<Full<Bytes>>> for Routes {
    type Response = Response<StorageBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<StorageBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        match self.calling_for(request.uri().path()).cloned() {
            Some(calling) => Box::pin(async move { Ok(calling.handle(request).await) }),
            None => self.storage.call(request),
        }
    }
}
