//! A chunk's upload part by part (`MultipartStore`), with a record beside its staging key of the parts committed so
//! far and the SHA-256 state after them: what a later attempt, in this process or another, resumes from.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
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

/// The hash of the parts so far, computed part after part on the blocking pool while the parts upload.
type HashTail = JoinHandle<io::Result<ResumableSha256>>;

fn failed(what: &'static str) -> impl Fn(tokio::task::JoinError) -> io::Error {
    move |error| io::Error::other(format!("{what} failed: {error}"))
}

/// One attempt's upload, part by part.
pub(super) struct PartUpload {
    parts: Arc<dyn MultipartStore>,
    objects: SharedStore,
    staging: Path,
    upload_id: Option<String>,
    version: ObjectVersion,
    committed: Vec<PartId>,
    committed_state: Sha256State,
    /// Where the hash starts (before the first part this attempt sends).
    hash_start: Option<ResumableSha256>,
    /// The hash after the last part sent, being computed.
    hash_tail: Option<HashTail>,
    pending: VecDeque<Bytes>,
    pending_len: usize,
    in_flight: VecDeque<InFlight>,
    /// The records to write, newest last, and the task writing them in order (off the write path).
    records: Option<(mpsc::UnboundedSender<Bytes>, JoinHandle<io::Result<()>>)>,
}

impl Drop for PartUpload {
    fn drop(&mut self) {
        for part in &self.in_flight {
            part.abort();
        }
        if let Some(tail) = &self.hash_tail {
            tail.abort();
        }
        // Cancelled (a lost lease, a shutdown): no record of this upload may land after it. An older record
        // still describes parts that were committed, so a resume from it stays correct.
        if let Some((_, writer)) = &self.records {
            writer.abort();
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
        Self::starting_at(parts, objects, staging, ResumableSha256::new())
    }

    fn starting_at(parts: Arc<dyn MultipartStore>, objects: SharedStore, staging: Path, hash: ResumableSha256) -> Self {
        let committed_state = hash.state().unwrap_or_else(|| unreachable!("parts end at block boundaries"));
        Self {
            parts,
            objects,
            staging,
            upload_id: None,
            version: ObjectVersion::default(),
            committed: Vec::new(),
            committed_state,
            hash_start: Some(hash),
            hash_tail: None,
            pending: VecDeque::new(),
            pending_len: 0,
            in_flight: VecDeque::new(),
            records: None,
        }
    }

    /// Goes on with the upload a record describes.
    pub(super) fn resumed(parts: Arc<dyn MultipartStore>, objects: SharedStore, record: Record) -> Self {
        let staging = Path::from(record.staging.as_str());
        let mut upload = Self::starting_at(parts, objects, staging, ResumableSha256::from_state(record.sha256));
        upload.upload_id = Some(record.upload_id);
        upload.committed = record.parts.into_iter().map(|content_id| PartId { content_id }).collect();
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
        self.pending.push_back(data);
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
            let Some(first) = self.pending.front_mut() else { break };
            if first.len() <= needed {
                needed -= first.len();
                part.extend(self.pending.pop_front());
            } else {
                part.push(first.split_to(needed));
                needed = 0;
            }
        }
        self.pending_len -= size - needed;
        part
    }

    /// Sends a part while its hash is computed (after the previous part's, on the blocking pool).
    async fn send(&mut self, part: Vec<Bytes>) -> io::Result<()> {
        let id = self.upload_id().await?;
        let (previous, start) = (self.hash_tail.take(), self.hash_start.take());
        let (state_sender, state) = oneshot::channel();
        let hashed = part.clone();
        self.hash_tail = Some(tokio::spawn(async move {
            let mut hash = match previous {
                Some(previous) => previous.await.map_err(failed("hashing a part"))??,
                None => start.unwrap_or_default(),
            };
            let hash = tokio::task::spawn_blocking(move || {
                for bytes in &hashed {
                    hash.update(bytes);
                }
                hash
            })
            .await
            .map_err(failed("hashing a part"))?;
            let _ = state_sender.send(hash.state());
            Ok(hash)
        }));
        let (parts, staging, index) =
            (self.parts.clone(), self.staging.clone(), self.committed.len() + self.in_flight.len());
        self.in_flight.push_back(tokio::spawn(async move {
            let payload: PutPayload = part.into_iter().collect();
            let part_id = parts.put_part(&staging, &id, index, payload).await.map_err(io_error)?;
            let state = state.await.map_err(|_| io::Error::other("hashing a part failed"))?;
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
        let (part_id, state) = part.await.map_err(failed("uploading a part"))??;
        self.committed.push(part_id);
        // A last, short part has no state to resume from: only the commit follows it.
        if let Some(state) = state.filter(|s| s.bytes() == self.committed.len() as u64 * PART_SIZE as u64) {
            self.committed_state = state;
            self.save_record()?;
        }
        Ok(())
    }

    /// Queues the record of what is committed now for the task that writes records.
    fn save_record(&mut self) -> io::Result<()> {
        let Some(upload_id) = self.upload_id.clone() else { return Ok(()) };
        let record = Record {
            staging: self.staging.to_string(),
            upload_id,
            parts: self.committed.iter().map(|p| p.content_id.clone()).collect(),
            sha256: self.committed_state,
            version: self.version.clone(),
        };
        let raw = Bytes::from(serde_json::to_vec(&record).map_err(io::Error::other)?);
        let (objects, key) = (self.objects.clone(), record_key(&self.staging));
        let (sender, _) = self.records.get_or_insert_with(|| {
            let (sender, mut queued) = mpsc::unbounded_channel::<Bytes>();
            let writer = tokio::spawn(async move {
                while let Some(mut latest) = queued.recv().await {
                    // Only the newest record matters: each one covers the parts of those before it.
                    while let Ok(newer) = queued.try_recv() {
                        latest = newer;
                    }
                    objects.put(&key, PutPayload::from(latest)).await.map_err(io_error)?;
                }
                Ok(())
            });
            (sender, writer)
        });
        // A writer that stopped has its error read by `flush_records`.
        let _ = sender.send(raw);
        Ok(())
    }

    /// Waits until the newest record is written.
    async fn flush_records(&mut self) -> io::Result<()> {
        match self.records.take() {
            Some((sender, writer)) => {
                drop(sender);
                writer.await.map_err(failed("writing the upload's record"))?
            }
            None => Ok(()),
        }
    }

    /// Lets the parts in flight land and their records be written.
    async fn settle_all(&mut self) -> io::Result<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        self.flush_records().await
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
        if let Err(error) = self.flush_records().await {
            // The record only serves a resume; the upload itself is complete.
            tracing::warn!(%error, "the upload's record could not be written");
        }
        let id = self.upload_id().await?;
        let parts = std::mem::take(&mut self.committed);
        self.parts.complete_multipart(&self.staging, &id, parts).await.map_err(io_error)?;
        Ok(())
    }

    /// Lets the parts in flight land and records them, so that a later attempt resumes after them.
    pub(super) async fn keep(mut self) -> io::Result<()> {
        self.settle_all().await
    }

    /// Gives the upload up: its record goes, its parts are aborted (or expire where a store cannot abort them).
    pub(super) async fn discard(mut self) -> io::Result<()> {
        for part in &self.in_flight {
            part.abort();
        }
        self.in_flight.clear();
        let _ = self.flush_records().await;
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
