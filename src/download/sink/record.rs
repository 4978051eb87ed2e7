//! The record both sinks write beside a committed chunk: its size, SHA-256, document id and, for an unmixed
//! recording, the channel → participant map. A sink trusts a final chunk only when its record matches it.

use std::io;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::recording::ChannelAssignment;
use crate::Sha256Digest;

/// What a commit records about a final chunk (`{"bytes":…,"sha256":"…","documentId":"…","channels":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRecord {
    pub(crate) bytes: u64,
    pub(crate) sha256: Sha256Digest,
    /// The chunk's document id, unsanitised; absent in records written before it was recorded.
    #[serde(default, rename = "documentId", skip_serializing_if = "Option::is_none")]
    pub(crate) document_id: Option<String>,
    /// The channel → participant map of an unmixed recording, from the chunk's metadata document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) channels: Vec<ChannelAssignment>,
}

/// The document id alone, for a record whose other fields do not read.
#[derive(Deserialize)]
struct Owner {
    #[serde(default, rename = "documentId")]
    document_id: Option<String>,
}

impl ChunkRecord {
    /// The record of `bytes` bytes with this SHA-256, of chunk `document_id`, with the channels its metadata
    /// assigns ([`RecordingMetadata::channels`](crate::recording::RecordingMetadata::channels); empty when the sink was not given the metadata).
    pub(crate) fn new(bytes: u64, sha256: Sha256Digest, document_id: &str, channels: Vec<ChannelAssignment>) -> Self {
        Self { bytes, sha256, document_id: Some(document_id.to_owned()), channels }
    }

    /// The record as JSON.
    pub(crate) fn to_bytes(&self) -> io::Result<Bytes> {
        serde_json::to_vec(self).map(Bytes::from).map_err(io::Error::other)
    }

    /// Reads a record: the record when it is one, and the document id it names even when the rest does not read
    /// (a record that names another chunk must be refused however it is damaged).
    pub(crate) fn read(raw: &[u8]) -> (Option<Self>, Option<String>) {
        match serde_json::from_slice::<Self>(raw) {
            Ok(record) => {
                let owner = record.document_id.clone();
                (Some(record), owner)
            }
            Err(_) => (None, serde_json::from_slice::<Owner>(raw).ok().and_then(|owner| owner.document_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_byte_for_byte() {
        let raw = br#"{"bytes":3,"sha256":"0707070707070707070707070707070707070707070707070707070707070707","documentId":"d","channels":[{"channel":0,"participantId":"8:acs:a"}]}"#;
        let (record, owner) = ChunkRecord::read(raw);
        let record = record.unwrap();
        assert_eq!((record.bytes, record.sha256, owner.as_deref()), (3, Sha256Digest::new([7; 32]), Some("d")));
        assert_eq!(record.to_bytes().unwrap(), &raw[..]);
    }

    #[test]
    fn a_damaged_record_still_names_its_chunk() {
        let (record, owner) = ChunkRecord::read(br#"{"bytes":3,"sha256":"xyz","documentId":"other"}"#);
        assert_eq!((record, owner.as_deref()), (None, Some("other")));
        assert_eq!(ChunkRecord::read(b"not json"), (None, None));
    }
}
