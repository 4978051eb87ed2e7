//! One chunk's multipart upload to its staging key, and the create-only copy that makes it final.
//!
//! Stores that take parts one by one (`MultipartStore`) get a [`PartUpload`], which a later attempt can resume;
//! others (local files) get object_store's `WriteMultipart`, which restarts.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{CopyMode, CopyOptions, ObjectStoreExt, WriteMultipart};

use super::multipart::{delete_record, PartUpload, Record, PARTS_IN_FLIGHT};
use super::{SharedStore, PART_SIZE};
use crate::download::sink::record::ChunkRecord;
use crate::download::sink::{ObjectVersion, SinkWriter};
use crate::download::Sha256State;
use crate::recording::{ChannelAssignment, RecordingMetadata};
use crate::store::{io_error, put_create, unique_token};
use crate::Sha256Digest;

/// The keys one chunk is written under.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) folder: Path,
    /// `.<index>-<document id>.<ext>`: the staging key adds `.<token>.partial`.
    pub(super) staging_stem: String,
    pub(super) media: Path,
    pub(super) manifest: Path,
    /// The chunk's document id, unsanitised, recorded in its manifest.
    pub(super) document_id: String,
}

/// Writes one chunk for the [`ObjectStoreSink`](super::ObjectStoreSink): a multipart upload to a staging key of its
/// own. Dropped without a commit, it aborts the upload.
pub struct ObjectStoreWriter {
    store: SharedStore,
    parts: Option<Arc<dyn MultipartStore>>,
    keys: Keys,
    staging: Path,
    upload: Upload,
    written: u64,
    /// What a resumed upload had committed, for the downloader to go on hashing from.
    resumed_from: Option<Sha256State>,
    /// The channel → participant map of the chunk's metadata, for its record.
    channels: Vec<ChannelAssignment>,
}

/// The upload of the current attempt.
enum Upload {
    /// Nothing sent yet.
    None,
    /// object_store's own multipart writer (stores without part-by-part uploads).
    Streaming(WriteMultipart),
    /// Part by part, resumable (boxed: it holds the hash state and the parts in flight).
    Parts(Box<PartUpload>),
}

impl fmt::Debug for ObjectStoreWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreWriter")
            .field("staging", &self.staging.as_ref())
            .field("media", &self.keys.media.as_ref())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreWriter {
    pub(super) fn new(store: SharedStore, parts: Option<Arc<dyn MultipartStore>>, keys: Keys) -> Self {
        let staging = staging_key(&keys);
        Self { store, parts, keys, staging, upload: Upload::None, written: 0, resumed_from: None, channels: Vec::new() }
    }

    /// Goes on with the upload a record describes; its committed bytes are already written.
    pub(super) fn resumed(store: SharedStore, parts: Arc<dyn MultipartStore>, keys: Keys, record: Record) -> Self {
        let upload = PartUpload::resumed(parts.clone(), store.clone(), record);
        let committed = upload.committed();
        let staging = upload.staging().clone();
        Self {
            store,
            parts: Some(parts),
            keys,
            staging,
            upload: Upload::Parts(Box::new(upload)),
            written: committed.bytes(),
            resumed_from: Some(committed),
            channels: Vec::new(),
        }
    }

    /// The staging key of the current attempt.
    pub fn staging_key(&self) -> &Path {
        &self.staging
    }

    /// The upload, started on first use: nothing is written to the store before the first byte or commit.
    async fn start(&mut self) -> io::Result<()> {
        if matches!(self.upload, Upload::None) {
            self.upload = match &self.parts {
                Some(parts) => {
                    Upload::Parts(Box::new(PartUpload::new(parts.clone(), self.store.clone(), self.staging.clone())))
                }
                None => {
                    let upload = self.store.put_multipart(&self.staging).await.map_err(io_error)?;
                    Upload::Streaming(WriteMultipart::new_with_chunk_size(upload, PART_SIZE))
                }
            };
        }
        Ok(())
    }

    /// Aborts the current upload, if any, and forgets what it committed.
    async fn abort(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.upload, Upload::None) {
            Upload::None => Ok(()),
            Upload::Streaming(upload) => upload.abort().await.map_err(io_error),
            Upload::Parts(upload) => upload.discard().await,
        }
    }
}

fn staging_key(keys: &Keys) -> Path {
    keys.folder.clone().join(format!("{}.{}.partial", keys.staging_stem, unique_token()))
}

impl SinkWriter for ObjectStoreWriter {
    async fn begin(&mut self, version: &ObjectVersion) -> io::Result<()> {
        // Kept in the part-by-part upload's record, which resumed requests are pinned with.
        self.start().await?;
        if let Upload::Parts(upload) = &mut self.upload {
            upload.set_version(version);
        }
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.written += data.len() as u64;
        self.start().await?;
        match &mut self.upload {
            Upload::Streaming(upload) => {
                upload.put(data);
                upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(io_error)
            }
            Upload::Parts(upload) => upload.write(data).await,
            Upload::None => Err(io::Error::other("the upload could not start")),
        }
    }

    async fn restart(&mut self) -> io::Result<()> {
        self.abort().await?;
        self.staging = staging_key(&self.keys);
        self.written = 0;
        self.resumed_from = None;
        Ok(())
    }

    fn describe(&mut self, metadata: &RecordingMetadata) {
        self.channels = metadata.channels();
    }

    fn stored_digest(&self) -> Option<Sha256State> {
        self.resumed_from
    }

    async fn abandon(mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.upload, Upload::None) {
            // The committed parts and their record stay for the next attempt.
            Upload::Parts(upload) => upload.keep().await,
            Upload::Streaming(upload) => upload.abort().await.map_err(io_error),
            Upload::None => Ok(()),
        }
    }

    async fn commit(mut self, bytes: u64, sha256: Sha256Digest) -> io::Result<String> {
        if self.written != bytes {
            return Err(io::Error::other(format!(
                "`{}` received {} bytes, expected {bytes}",
                self.staging, self.written
            )));
        }
        self.start().await?;
        match std::mem::replace(&mut self.upload, Upload::None) {
            Upload::Streaming(upload) => {
                upload.finish().await.map_err(io_error)?;
            }
            Upload::Parts(upload) => upload.finish().await?,
            Upload::None => return Err(io::Error::other("the upload could not start")),
        }
        let store = self.store.clone();
        // The manifest lands before the final key does, so that every final object has one to be checked by.
        let channels = std::mem::take(&mut self.channels);
        let record = ChunkRecord::new(bytes, sha256, &self.keys.document_id, channels);
        put_create(store.as_ref(), &self.keys.manifest, record.to_bytes()?).await?;
        let create_only = CopyOptions::new().with_mode(CopyMode::Create);
        match store.copy_opts(&self.staging, &self.keys.media, create_only).await {
            Ok(()) => {}
            // Another replica committed the same chunk first: its object is the same verified bytes.
            Err(error) if crate::store::lost_condition(&error) => {
                tracing::info!(key = %self.keys.media, "the chunk was already committed by another writer");
            }
            Err(error) => return Err(io_error(error)),
        }
        match store.delete(&self.staging).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => tracing::warn!(%error, key = %self.staging, "the staging object stays until it is swept"),
        }
        if self.parts.is_some() {
            if let Err(error) = delete_record(store.as_ref(), &self.staging).await {
                tracing::warn!(%error, key = %self.staging, "the upload's record stays until it is swept");
            }
        }
        Ok(self.keys.media.to_string())
    }
}

impl Drop for ObjectStoreWriter {
    fn drop(&mut self) {
        // A download that was cancelled (shutdown, a lost lease) leaves no streaming upload open behind it. Parts
        // committed part by part stay with their record: the next attempt resumes after them.
        if let Upload::Streaming(upload) = std::mem::replace(&mut self.upload, Upload::None) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = upload.abort().await;
                });
            }
        }
    }
}
