//! The response future of [`ChunkDownloader`](super::ChunkDownloader) as a service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::Error;
use super::RecordingManifest;

/// The future of [`ChunkDownloader::call`](tower::Service::call): a whole recording.
///
/// It is boxed once per recording (a download makes many requests; one allocation does not show).
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<RecordingManifest, Error>> + Send>>,
}

impl ResponseFuture {
    pub(crate) fn new(inner: Pin<Box<dyn Future<Output = Result<RecordingManifest, Error>> + Send>>) -> Self {
        Self { inner }
    }
}

impl Future for ResponseFuture {
    type Output = Result<RecordingManifest, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
