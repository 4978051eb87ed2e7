//! A chunk's metadata document: fetched with the same resume and retry rules, bounded, checked to be JSON.

use bytes::{Bytes, BytesMut};
use http::{Request, Response, Uri};
use http_body::Body;
use tower::Service;

use super::error::{Detail, Error, ErrorKind, Location, Scope};
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
    /// Fetches a metadata document (with the same resume and retry rules), bounded, and parses it once: checked to
    /// be JSON, with the media format it names (`recordingInfo.format`), if any.
    pub(super) async fn fetch_metadata(&self, scope: &Scope, uri: Uri) -> Result<(Bytes, Option<String>), Error> {
        let limit = self.config.metadata_limit;
        let scope = scope.at(Location::Metadata);
        let invalid = |detail| Error::new(ErrorKind::Metadata, detail).in_scope(&scope).with_host_of(&uri);
        let mut fetch = self.fetch(scope.clone(), uri.clone());
        let mut document = BytesMut::new();
        while let Some(event) = fetch.next().await? {
            match event {
                Event::Pinned(_) => {}
                Event::Restart => document.clear(),
                Event::Data(bytes) => {
                    if document.len() + bytes.len() > limit {
                        return Err(invalid(Detail::MetadataTooLarge(limit)));
                    }
                    document.extend_from_slice(&bytes);
                }
            }
        }
        match serde_json::from_slice::<serde_json::Value>(&document) {
            Ok(parsed) => {
                let format = parsed.pointer("/recordingInfo/format").and_then(|f| f.as_str()).map(str::to_owned);
                Ok((document.freeze(), format))
            }
            Err(e) => Err(invalid(Detail::MetadataNotJson).with_source(e)),
        }
    }
}
