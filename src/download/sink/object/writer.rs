//! One chunk's multipart upload to its staging key, and the create-only copy that makes it final.

use std::fmt;
use std::io;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{CopyMode, CopyOptions, ObjectStoreExt, WriteMultipart};

use super::{manifest_bytes, SharedStore, PART_SIZE};
use crate::download::sink::{ObjectVersion, SinkWriter};
use crate::store::{io_error, put_create, unique_token};

/// Parts uploading at once while the next one fills: memory stays near `(PARTS_IN_FLIGHT + 1) * PART_SIZE`.
const PARTS_IN_FLIGHT: usize = 2;

/// The keys one chunk is written under.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) folder: Path,
    /// `.<index>-<document id>.<ext>`: the staging key adds `.<token>.partial`.
    pub(super) staging_stem: String,
    pub(super) media: Path,
    pub(super) manifest: Path,
}

/// Writes one chunk for the [`ObjectStoreSink`](super::ObjectStoreSink): a multipart upload to a staging key of its
/// own. Dropped without a commit, it aborts the upload.
pub struct ObjectStoreWriter {
    store: SharedStore,
    keys: Keys,
    staging: Path,
    upload: Option<WriteMultipart>,
    written: u64,
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
    pub(super) fn new(store: SharedStore, keys: Keys) -> Self {
        let staging = staging_key(&keys);
        Self { store, keys, staging, upload: None, written: 0 }
    }

    /// The staging key of the current attempt.
    pub fn staging_key(&self) -> &Path {
        &self.staging
    }

    /// The upload, started on first use: nothing is written to the store before the first byte or commit.
    async fn upload(&mut self) -> io::Result<&mut WriteMultipart> {
        if self.upload.is_none() {
            let upload = self.store.put_multipart(&self.staging).await.map_err(io_error)?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE));
        }
        self.upload.as_mut().ok_or_else(|| io::Error::other("the upload could not start"))
    }

    /// Aborts the current upload, if any.
    async fn abort(&mut self) -> io::Result<()> {
        if let Some(upload) = self.upload.take() {
            upload.abort().await.map_err(io_error)?;
        }
        Ok(())
    }
}

fn staging_key(keys: &Keys) -> Path {
    keys.folder.clone().join(format!("{}.{}.partial", keys.staging_stem, unique_token()))
}

impl SinkWriter for ObjectStoreWriter {
    async fn begin(&mut self, _version: &ObjectVersion) -> io::Result<()> {
        // Nothing to keep: a lost upload restarts from byte 0, so the version is not stored.
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.written += data.len() as u64;
        let upload = self.upload().await?;
        upload.put(data);
        upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(io_error)
    }

    async fn restart(&mut self) -> io::Result<()> {
        self.abort().await?;
        self.staging = staging_key(&self.keys);
        self.written = 0;
        Ok(())
    }

    async fn abandon(mut self) -> io::Result<()> {
        // Nothing resumes from a staging upload, so nothing is kept.
        self.abort().await
    }

    async fn commit(mut self, bytes: u64, sha256: [u8; 32]) -> io::Result<String> {
        if self.written != bytes {
            return Err(io::Error::other(format!(
                "`{}` received {} bytes, expected {bytes}",
                self.staging, self.written
            )));
        }
        self.upload().await?;
        let upload = self.upload.take().ok_or_else(|| io::Error::other("the upload could not start"))?;
        upload.finish().await.map_err(io_error)?;
        let store = self.store.clone();
        // The manifest lands before the final key does, so that every final object has one to be checked by.
        put_create(store.as_ref(), &self.keys.manifest, manifest_bytes(bytes, &sha256)?).await?;
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
        Ok(self.keys.media.to_string())
    }
}

impl Drop for ObjectStoreWriter {
    fn drop(&mut self) {
        // A download that was cancelled (shutdown, a lost lease) leaves no upload open behind it.
        if let Some(upload) = self.upload.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = upload.abort().await;
                });
            }
        }
    }
}
