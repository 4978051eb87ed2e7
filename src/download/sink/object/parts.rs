//! A chunk's upload part by part (`MultipartStore`), with a record beside its staging key of the parts committed so
//! far and the SHA-256 state after them: what a later attempt, in this process or another, resumes from.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use std::collections::VecDeque;

use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::{SharedStore, PART_SIZE};
use crate::download::sink::ObjectVersion;
use crate::download::{ResumableSha256, Sha256State};
use crate::store::io_error;

/// Parts uploading at once while the next one fills: memory stays near `(PARTS_IN_FLIGHT + 1) * PART_SIZE`.
pub(super) const PARTS_IN_FLIGHT: usize = 2;

/// What the record beside a staging key says: enough to go on with the upload and the hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Record {
    /// The staging key the parts belong to.
    pub(super) staging: String,
    pub(super) upload_id: String,
    /// The parts committed, in order: each [`PART_SIZE`] bytes.
    pub(super) parts: Vec<String>,
    /// The SHA-256 state after those parts.
    pub(super) sha256: Sha256State,
    /// The version of the object the bytes are from: the resumed requests are pinned to it.
    pub(super) version: ObjectVersion,
}

impl Record {
    /// Whether the record describes whole parts consistently.
    pub(super) fn is_consistent(&self) -> bool {
        self.sha256.bytes() == self.parts.len() as u64 * PART_SIZE as u64
    }
}

/// The key of the record beside a staging key.
pub(super) fn record_key(staging: &Path) -> Path {
    Path::from(format!("{staging}.json"))
}

/// A part being sent (a task of its own, so it goes on while the writer waits for bytes), and the hash state after
/// it (`None` after a last, short part).
type InFlight = JoinHandle<io::Result<(PartId, Option<Sha256State>)>>;

/// One attempt's upload, part by part.
pub(super) struct PartUpload {
    parts: Arc<dyn MultipartStore>,
    objects: SharedStore,
    staging: Path,
    upload_id: Option<String>,
    version: ObjectVersion,
    committed: Vec<PartId>,
    committed_state: Sha256State,
    /// The hash of every byte handed to a part so far.
    hasher: ResumableSha256,
    pending: Vec<Bytes>,
    pending_len: usize,
    in_flight: VecDeque<InFlight>,
}

impl Drop for PartUpload {
    fn drop(&mut self) {
        for part in &self.in_flight {
            part.abort();
        }
    }
}

impl fmt::Debug for PartUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartUpload")
            .field("staging", &self.staging.as_ref())
            .field("committed_parts", &self.committed.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl PartUpload {
    /// A new upload to `staging`; nothing is sent before the first full part.
    pub(super) fn new(parts: Arc<dyn MultipartStore>, objects: SharedStore, staging: Path) -> Self {
        let hasher = ResumableSha256::new();
        let committed_state = hasher.state().unwrap_or_else(|| unreachable!("an empty hash is at a block boundary"));
        Self {
            parts,
            objects,
            staging,
            upload_id: None,
            version: ObjectVersion::default(),
            committed: Vec::new(),
            committed_state,
            hasher,
            pending: Vec::new(),
            pending_len: 0,
            in_flight: VecDeque::new(),
        }
    }

    /// Goes on with the upload a record describes.
    pub(super) fn resumed(parts: Arc<dyn MultipartStore>, objects: SharedStore, record: Record) -> Self {
        let mut upload = Self::new(parts, objects, Path::from(record.staging.as_str()));
        upload.upload_id = Some(record.upload_id);
        upload.committed = record.parts.into_iter().map(|content_id| PartId { content_id }).collect();
        upload.committed_state = record.sha256;
        upload.hasher = ResumableSha256::from_state(record.sha256);
        upload.version = record.version;
        upload
    }

    pub(super) fn staging(&self) -> &Path {
        &self.staging
    }

    /// Bytes in committed parts, and the SHA-256 state after them.
    pub(super) fn committed(&self) -> Sha256State {
        self.committed_state
    }

    pub(super) fn set_version(&mut self, version: &ObjectVersion) {
        self.version = version.clone();
    }

    async fn upload_id(&mut self) -> io::Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let id = self.parts.create_multipart(&self.staging).await.map_err(io_error)?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Takes the next bytes; sends each full part, with at most [`PARTS_IN_FLIGHT`] in flight.
    pub(super) async fn write(&mut self, data: Bytes) -> io::Result<()> {
        // Parts that landed meanwhile are recorded now: the record lags the upload by the parts in flight at most.
        while self.in_flight.front().is_some_and(JoinHandle::is_finished) {
            self.settle_one().await?;
        }
        self.pending_len += data.len();
        self.pending.push(data);
        while self.pending_len >= PART_SIZE {
            let part = self.take(PART_SIZE);
            self.send(part).await?;
        }
        Ok(())
    }

    /// The first `size` pending bytes, split off.
    fn take(&mut self, size: usize) -> Vec<Bytes> {
        let mut part = Vec::new();
        let mut needed = size;
        while needed > 0 {
            let Some(first) = self.pending.first_mut() else { break };
            if first.len() <= needed {
                needed -= first.len();
                part.push(self.pending.remove(0));
            } else {
                part.push(first.split_to(needed));
                needed = 0;
            }
        }
        self.pending_len -= size - needed;
        part
    }

    async fn send(&mut self, part: Vec<Bytes>) -> io::Result<()> {
        let id = self.upload_id().await?;
        // Hashed in order, off the async threads; the state after a full part is at a block boundary.
        let mut hasher = std::mem::take(&mut self.hasher);
        let hashed = part.clone();
        hasher = tokio::task::spawn_blocking(move || {
            for bytes in &hashed {
                hasher.update(bytes);
            }
            hasher
        })
        .await
        .map_err(|e| io::Error::other(format!("hashing a part failed: {e}")))?;
        let state = hasher.state();
        self.hasher = hasher;
        let (parts, staging, index) =
            (self.parts.clone(), self.staging.clone(), self.committed.len() + self.in_flight.len());
        self.in_flight.push_back(tokio::spawn(async move {
            let payload: PutPayload = part.into_iter().collect();
            let part_id = parts.put_part(&staging, &id, index, payload).await.map_err(io_error)?;
            Ok((part_id, state))
        }));
        while self.in_flight.len() > PARTS_IN_FLIGHT {
            self.settle_one().await?;
        }
        Ok(())
    }

    /// Waits for the oldest part in flight and records it.
    async fn settle_one(&mut self) -> io::Result<()> {
        let Some(part) = self.in_flight.pop_front() else { return Ok(()) };
        let (part_id, state) = part.await.map_err(|e| io::Error::other(format!("uploading a part failed: {e}")))??;
        self.committed.push(part_id);
        // A last, short part has no state to resume from: only the commit follows it.
        if let Some(state) = state.filter(|s| s.bytes() == self.committed.len() as u64 * PART_SIZE as u64) {
            self.committed_state = state;
            self.save_record().await?;
        }
        Ok(())
    }

    async fn save_record(&mut self) -> io::Result<()> {
        let Some(upload_id) = self.upload_id.clone() else { return Ok(()) };
        let record = Record {
            staging: self.staging.to_string(),
            upload_id,
            parts: self.committed.iter().map(|p| p.content_id.clone()).collect(),
            sha256: self.committed_state,
            version: self.version.clone(),
        };
        let raw = serde_json::to_vec(&record).map_err(io::Error::other)?;
        self.objects.put(&record_key(&self.staging), PutPayload::from(raw)).await.map_err(io_error)?;
        Ok(())
    }

    /// Sends what is left and completes the upload to the staging key.
    pub(super) async fn finish(mut self) -> io::Result<()> {
        if self.pending_len > 0 || (self.committed.is_empty() && self.in_flight.is_empty()) {
            let rest = self.take(self.pending_len);
            self.send(rest).await?;
        }
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        let id = self.upload_id().await?;
        let parts = std::mem::take(&mut self.committed);
        self.parts.complete_multipart(&self.staging, &id, parts).await.map_err(io_error)?;
        Ok(())
    }

    /// Lets the parts in flight land and records them, so that a later attempt resumes after them.
    pub(super) async fn keep(mut self) -> io::Result<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    /// Gives the upload up: its record goes, its parts are aborted (or expire where a store cannot abort them).
    pub(super) async fn discard(self) -> io::Result<()> {
        delete_record(self.objects.as_ref(), &self.staging).await?;
        if let Some(id) = &self.upload_id {
            if let Err(error) = self.parts.abort_multipart(&self.staging, id).await {
                tracing::debug!(%error, "aborting an upload failed; its parts expire");
            }
        }
        Ok(())
    }
}

/// Deletes the record beside `staging` (absent is fine).
pub(super) async fn delete_record(objects: &dyn object_store::ObjectStore, staging: &Path) -> io::Result<()> {
    match objects.delete(&record_key(staging)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(io_error(error)),
    }
}
