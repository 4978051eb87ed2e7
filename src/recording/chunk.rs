//! [`RecordingChunk`]: one stored piece of a recording, as `recordingStorageInfo.recordingChunks[]` lists it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::values::ChunkEndReason;

/// One stored piece of a recording. ACS cuts a recording into chunks of at most about 1.5 GB; a longer one
/// arrives as several, each with its `index`.
///
/// `Debug` shows the locations without their query, which may carry a signature.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingChunk {
    document_id: String,
    index: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_reason: Option<ChunkEndReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete_location: Option<String>,
}

impl RecordingChunk {
    /// A chunk with only its document id and index, as in the 2021 payload.
    pub fn new(document_id: impl Into<String>, index: i64) -> Self {
        Self {
            document_id: document_id.into(),
            index,
            end_reason: None,
            content_location: None,
            metadata_location: None,
            delete_location: None,
        }
    }

    /// Sets why the chunk ended.
    pub fn with_end_reason(mut self, reason: ChunkEndReason) -> Self {
        self.end_reason = Some(reason);
        self
    }

    /// Sets the media URL (`contentLocation`).
    pub fn with_content_location(mut self, url: impl Into<String>) -> Self {
        self.content_location = Some(url.into());
        self
    }

    /// Sets the metadata document URL (`metadataLocation`).
    pub fn with_metadata_location(mut self, url: impl Into<String>) -> Self {
        self.metadata_location = Some(url.into());
        self
    }

    /// Sets the URL that deletes the chunk (`deleteLocation`).
    pub fn with_delete_location(mut self, url: impl Into<String>) -> Self {
        self.delete_location = Some(url.into());
        self
    }

    /// Sets the media, metadata and delete URLs.
    pub fn with_locations(
        mut self,
        content: impl Into<String>,
        metadata: impl Into<String>,
        delete: impl Into<String>,
    ) -> Self {
        self.content_location = Some(content.into());
        self.metadata_location = Some(metadata.into());
        self.delete_location = Some(delete.into());
        self
    }

    /// The storage document id (an opaque string: never use it in a path unsanitised).
    pub fn document_id(&self) -> &str {
        &self.document_id
    }

    /// The chunk's position in the whole recording (`int64` on the wire).
    pub fn index(&self) -> i64 {
        self.index
    }

    /// Why the chunk ended, when sent.
    pub fn end_reason(&self) -> Option<&ChunkEndReason> {
        self.end_reason.as_ref()
    }

    /// The media URL; absent in the 2021 payload, where it is built from the endpoint and the document id.
    pub fn content_location(&self) -> Option<&str> {
        self.content_location.as_deref()
    }

    /// The metadata document URL, when sent.
    pub fn metadata_location(&self) -> Option<&str> {
        self.metadata_location.as_deref()
    }

    /// The URL that deletes the chunk's storage, when sent. It may be on another host: never derive it.
    pub fn delete_location(&self) -> Option<&str> {
        self.delete_location.as_deref()
    }
}

impl fmt::Debug for RecordingChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |url: &Option<String>| url.as_deref().map(crate::redact::redact_url);
        f.debug_struct("RecordingChunk")
            .field("document_id", &self.document_id)
            .field("index", &self.index)
            .field("end_reason", &self.end_reason)
            .field("content_location", &shown(&self.content_location))
            .field("metadata_location", &shown(&self.metadata_location))
            .field("delete_location", &shown(&self.delete_location))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageInfo {
    recording_chunks: Vec<RecordingChunk>,
}

pub(super) fn chunks_in_index_order<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<RecordingChunk>, D::Error> {
    let mut chunks = StorageInfo::deserialize(deserializer)?.recording_chunks;
    // Chunks are handed out in `index` order, the order of the recording; the service usually sends them sorted,
    // and a stable sort of a sorted list is one linear pass.
    chunks.sort_by_key(|chunk| chunk.index);
    Ok(chunks)
}

pub(super) fn storage_info<S: Serializer>(chunks: &[RecordingChunk], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct StorageInfoRef<'a> {
        recording_chunks: &'a [RecordingChunk],
    }
    StorageInfoRef { recording_chunks: chunks }.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_debug_never_shows_the_query_of_its_locations() {
        let chunk = RecordingChunk::new("d", 0).with_locations(
            "https://a.blob.core.windows.net/c/d?sv=1&sig=SECRET",
            "https://a.blob.core.windows.net/c/d.json?sig=SECRET",
            "https://a.blob.core.windows.net/c/d?sig=SECRET",
        );
        let shown = format!("{:?}", crate::recording::Recording::new("call").chunk(chunk));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains(r#"content_location: Some("https://a.blob.core.windows.net/c/d?…")"#), "{shown}");
    }
}
