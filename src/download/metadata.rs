//! A chunk's metadata document: fetched with the same resume and retry rules, bounded, checked to be JSON.

use bytes::{Bytes, BytesMut};
use http::{Request, Response, Uri};
use http_body::Body;
use tower::Service;

use super::error::{Error, ErrorKind};
use super::fetch::Event;
use super::service::ChunkDownloader;
use super::sink::Sink;
use crate::BoxError;

impl<S, B, RB, K> ChunkDownloader<S, K, B>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Default + Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
    K: Sink,
{
    /// Fetches a metadata document (with the same resume and retry rules), bounded and checked to be JSON.
    pub(super) async fn fetch_metadata(&self, label: &str, uri: Uri) -> Result<Bytes, Error> {
        let limit = self.config.metadata_limit;
        let mut fetch = self.fetch(format!("{label} metadata"), uri);
        let mut document = BytesMut::new();
        while let Some(event) = fetch.next().await? {
            match event {
                Event::Pinned(_) => {}
                Event::Restart => document.clear(),
                Event::Data(bytes) => {
                    if document.len() + bytes.len() > limit {
                        return Err(Error::new(
                            ErrorKind::Metadata,
                            format!("{label} metadata: document is larger than {limit} bytes"),
                        ));
                    }
                    document.extend_from_slice(&bytes);
                }
            }
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&document) {
            return Err(
                Error::new(ErrorKind::Metadata, format!("{label} metadata: document is not JSON: {e}")).with_source(e)
            );
        }
        Ok(document.freeze())
    }
}
