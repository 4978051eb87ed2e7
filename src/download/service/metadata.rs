//! A chunk's metadata document: fetched with the same resume and retry rules, bounded, and parsed once into
//! [`RecordingMetadata`], which checks it to be JSON at the same time.

use bytes::{Bytes, BytesMut};
use http::Uri;

use super::ChunkDownloader;
use crate::client::{HttpClient, RequestBody};
use crate::download::error::{Detail, Error, ErrorKind, Location, Scope};
use crate::download::fetch::Event;
use crate::download::sink::Sink;
use crate::recording::RecordingMetadata;

/// A fetched metadata document: the bytes as sent (for the sink) and their one parse.
pub(super) struct MetadataDocument {
    pub(super) bytes: Bytes,
    /// `None` when the document is JSON of a shape this version cannot type (a field of another JSON type): the
    /// bytes are still stored, nothing is lost.
    pub(super) parsed: Option<RecordingMetadata>,
}

// Every method here is crate-private: the bounds name crate-private traits, which no public signature shows.
#[allow(private_bounds)]
impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: RequestBody,
    K: Sink,
{
    /// Fetches a metadata document (with the same resume and retry rules), bounded, and parses it once into
    /// [`RecordingMetadata`], which checks it to be JSON too.
    pub(super) async fn fetch_metadata(&self, scope: &Scope, uri: Uri) -> Result<MetadataDocument, Error> {
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
        let not_json = |e: serde_json::Error| invalid(Detail::MetadataNotJson).with_source(e);
        match serde_json::from_slice::<RecordingMetadata>(&document) {
            Ok(parsed) => Ok(MetadataDocument { bytes: document.freeze(), parsed: Some(parsed) }),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                // Valid so far, but a field has another JSON type than this version expects. Only on this rare path
                // is the rest of the document read again, to check that it is JSON at all.
                serde_json::from_slice::<serde::de::IgnoredAny>(&document).map_err(not_json)?;
                tracing::warn!(error = %e, "metadata of {scope}: the document does not fit the known schema; stored as sent");
                Ok(MetadataDocument { bytes: document.freeze(), parsed: None })
            }
            Err(e) => Err(not_json(e)),
        }
    }
}
