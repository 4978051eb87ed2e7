//! The directory sink: `<dir>/<call id>/<index>-<document id>.<ext>`, written through a temporary name.

mod partial;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::record::ChunkRecord;
use super::{
    another_chunk, chunk_base_name as base_name, recording_manifest_name, sanitize_name, ChunkTarget, Existing,
    ObjectVersion, PositionalWriter, Sink, SinkWriter, Stored,
};
use crate::recording::{ChannelAssignment, RecordingMetadata};
use crate::Sha256Digest;
use partial::{write_state, DirectoryParts, PartialState};

/// Bytes gathered before one blocking write; two batches at most are alive (one being written, one filling).
const BATCH: usize = 1 << 20;

/// Batches queued for the writing thread before the download waits for it.
const WRITE_QUEUE: usize = 8;

/// Bytes of one stream written between two durable checkpoints: what a crash costs at most, against one fsync.
const CHECKPOINT: usize = 64 << 20;

/// Writes each chunk to `<dir>/<call id>/<index>-<document id>.<ext>` and its metadata to
/// `<dir>/<call id>/<index>-<document id>.json`.
///
/// 1. Names are [sanitised](crate::download::sink::sanitize_name): only `[A-Za-z0-9._-]`, no `..`, no leading dot. A document id
///    that sanitising changed gets a short hash of itself appended (`<index>-<sanitised>-<16 hex>`), so that two
///    ids never share a file; ids that need no sanitising keep their plain name. A final file whose manifest names
///    another document id is never taken for this chunk nor overwritten: opening it fails.
/// 2. Media is written to `.<name>.partial` in the same folder, with the object's version beside it in
///    `.<name>.partial.json`; on commit the file is fsynced, its size and SHA-256 are written (fsynced) to the
///    hidden manifest `.<name>.json`, the file is renamed to its final name, and the folder fsynced. A partial
///    file never carries the final name.
/// 3. A final file whose size matches its manifest means the chunk is complete: a rerun skips it, with the SHA-256
///    recorded at commit. A final file of another size (or with an unreadable manifest) is downloaded again through
///    the partial file and replaced; one from before manifests existed is trusted and rehashed. A partial file with
///    its version is resumed from its length when its record was made during the current boot (Linux's boot id):
///    a killed process leaves what it wrote in the page cache, intact. Otherwise (another boot, or no boot id) it
///    is resumed from the bytes its record says were made durable (fsynced every 64 MiB and whenever the writing
///    stops): after a power loss the bytes past that point may be zeros or garbage, so they are cut off and
///    fetched again. One without a version is discarded.
/// 4. A writer holds an exclusive advisory lock on its partial file (`File::try_lock`) until it commits, abandons
///    or is dropped; the OS releases it when the process dies. Opening a chunk whose partial file is locked answers
///    an [`io::ErrorKind::WouldBlock`] error naming the file, and never truncates it. On platforms without file
///    locks the sink works unlocked.
/// 5. Writes run on the blocking pool in batches of 1 MiB, one batch in flight while the next fills: memory stays
///    constant and the runtime's threads never wait on the disk.
#[derive(Debug, Clone)]
pub struct DirectorySink {
    root: PathBuf,
    durable: bool,
}

impl DirectorySink {
    /// A sink under `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), durable: true }
    }

    /// Whether commits fsync the file and its folder (default `true`). Turning it off keeps the temporary name and
    /// rename, so a partial file still never carries the final name, but a power loss may leave a final file with
    /// missing bytes: only for file systems whose durability is handled elsewhere, or to measure the network path.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The final path of a chunk's media.
    pub fn media_path(&self, target: &ChunkTarget<'_>) -> PathBuf {
        self.folder(target).join(format!("{}.{}", base_name(target), target.extension))
    }

    /// The final path of a chunk's metadata document.
    pub fn metadata_path(&self, target: &ChunkTarget<'_>) -> PathBuf {
        self.folder(target).join(format!("{}.json", base_name(target)))
    }

    /// The temporary path a chunk's media is written to before its commit.
    pub fn partial_path(&self, target: &ChunkTarget<'_>) -> PathBuf {
        self.folder(target).join(format!(".{}.{}.partial", base_name(target), target.extension))
    }

    fn folder(&self, target: &ChunkTarget<'_>) -> PathBuf {
        self.root.join(sanitize_name(target.call_id))
    }

    /// The path of a recording's manifest, in its call's folder: `<call id>/recording-<recording>.json`.
    pub fn recording_manifest_path(&self, call_id: &str, recording: &str) -> PathBuf {
        self.root.join(sanitize_name(call_id)).join(recording_manifest_name(recording))
    }

    /// The hidden manifest of a committed chunk, beside its media: its size, SHA-256, document id and, for an
    /// unmixed recording, the channel → participant map (`{"bytes":…,"sha256":"…","documentId":"…",
    /// "channels":[{"channel":0,"participantId":"8:acs:…"}]}`).
    pub fn manifest_path(&self, target: &ChunkTarget<'_>) -> PathBuf {
        self.folder(target).join(format!(".{}.{}.json", base_name(target), target.extension))
    }
}

/// The size and SHA-256 of a final file that can be trusted, or `None` when it is to be downloaded again; an error
/// when its manifest names another chunk.
fn trusted(media: &Path, manifest: &Path, document_id: &str) -> io::Result<Option<(u64, Sha256Digest)>> {
    let size = fs::metadata(media)?.len();
    let raw = match fs::read(manifest) {
        Ok(raw) => raw,
        // Committed before manifests existed: nothing to compare with, so trusted as before and rehashed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return hash_file(media).map(Some),
        Err(e) => return Err(e),
    };
    let (committed, owner) = ChunkRecord::read(&raw);
    if let Some(stored) = owner.as_deref() {
        if stored != document_id {
            return Err(another_chunk(&media.display().to_string(), stored, document_id));
        }
    }
    let sha256 = committed.filter(|c| c.bytes == size).map(|c| c.sha256);
    if sha256.is_none() {
        tracing::warn!(file = %media.display(), size, "final file does not match its manifest: downloading it again");
    }
    Ok(sha256.map(|sha256| (size, sha256)))
}

/// Takes the writer's exclusive lock on its partial file. An advisory lock held through the open file, rather than
/// a lock file, because the OS releases it when the process dies: a crash never leaves a chunk locked.
fn lock(file: &File, path: &Path) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("`{}` is locked: another download is writing this chunk", path.display()),
        )),
        // Where the platform has no file locks, work as before rather than not at all.
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn state_path(partial: &Path) -> PathBuf {
    let mut name = partial.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}

impl Sink for DirectorySink {
    type Writer = DirectoryWriter;

    async fn open(&self, target: &ChunkTarget<'_>) -> io::Result<Existing<DirectoryWriter>> {
        let paths = Paths {
            folder: self.folder(target),
            media: self.media_path(target),
            partial: self.partial_path(target),
            manifest: self.manifest_path(target),
            document_id: target.document_id.to_owned(),
        };
        let durable = self.durable;
        blocking(move || {
            fs::create_dir_all(&paths.folder)?;
            if paths.media.is_file() {
                if let Some((bytes, sha256)) = trusted(&paths.media, &paths.manifest, &paths.document_id)? {
                    return Ok(Existing::Complete(Stored::new(paths.media.display().to_string(), bytes, sha256)));
                }
            }
            // Opened without truncation and locked before anything is decided: the file may be another writer's.
            let mut file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&paths.partial)?;
            lock(&file, &paths.partial)?;
            let state = state_path(&paths.partial);
            let saved = fs::read(&state).ok().and_then(|raw| serde_json::from_slice::<PartialState>(&raw).ok());
            let length = file.metadata()?.len();
            let offset = saved.as_ref().map_or(0, |saved| saved.resume_offset(length));
            match saved {
                Some(saved) if (offset > 0 || !saved.extents.is_empty()) && saved.version.is_pinnable() => {
                    if saved.extents.is_empty() && length > offset {
                        file.set_len(offset)?;
                    }
                    file.seek(SeekFrom::Start(offset))?;
                    let mut writer = DirectoryWriter::new(file, paths, durable);
                    writer.version = Some(saved.version.clone());
                    writer.extents = saved.extents;
                    Ok(Existing::Partial { writer, offset, version: saved.version })
                }
                _ => {
                    let _ = fs::remove_file(&state);
                    if length > 0 {
                        // Only when there is something to drop: on ext4 a truncation to zero also makes the last
                        // close flush every delayed block (`auto_da_alloc`), which would cost a commit its time.
                        file.set_len(0)?;
                    }
                    Ok(Existing::Absent(DirectoryWriter::new(file, paths, durable)))
                }
            }
        })
        .await
    }

    async fn put_metadata(&self, target: &ChunkTarget<'_>, document: Bytes) -> io::Result<Option<String>> {
        let temporary = self.folder(target).join(format!(".{}.json.partial", base_name(target)));
        self.replace(self.metadata_path(target), temporary, document).await
    }

    async fn put_recording_manifest(
        &self,
        call_id: &str,
        recording: &str,
        document: Bytes,
    ) -> io::Result<Option<String>> {
        let path = self.recording_manifest_path(call_id, recording);
        let temporary = path.with_file_name(format!(".{}.partial", recording_manifest_name(recording)));
        self.replace(path, temporary, document).await
    }
}

impl DirectorySink {
    /// Writes `document` to `temporary`, then renames it over `path`: a reader sees the old file or the new one.
    async fn replace(&self, path: PathBuf, temporary: PathBuf, document: Bytes) -> io::Result<Option<String>> {
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let durable = self.durable;
        blocking(move || {
            fs::create_dir_all(&folder)?;
            let mut file = File::create(&temporary)?;
            file.write_all(&document)?;
            if durable {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&temporary, &path)?;
            if durable {
                sync_folder(&folder)?;
            }
            Ok(Some(path.display().to_string()))
        })
        .await
    }
}

fn hash_file(path: &Path) -> io::Result<(u64, Sha256Digest)> {
    let mut file = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((bytes, sha.finalize().into()));
        }
        sha.update(&buffer[..n]);
        bytes += n as u64;
    }
}

fn sync_folder(folder: &Path) -> io::Result<()> {
    // Makes the rename itself durable. Not every platform can open a folder; that is not an error there.
    match File::open(folder) {
        Ok(dir) => dir.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// The queue of batches to the writing thread, and that thread, which gives the file back once the queue closes.
type WritePipe = (mpsc::Sender<Vec<Bytes>>, JoinHandle<io::Result<File>>);

/// A record of how far one stream's partial file is durable, beside it.
#[derive(Debug)]
struct Checkpoint {
    state: PathBuf,
    version: ObjectVersion,
    durable: bool,
}

impl Checkpoint {
    /// Makes every byte written to `file` durable, then records their count: the record never claims a byte that a
    /// power loss could take back. Blocking.
    fn record(&self, file: &File) -> io::Result<()> {
        if self.durable {
            file.sync_data()?;
        }
        let written = file.metadata()?.len();
        let state = PartialState::stream(self.version.clone(), Some(written));
        write_state(&self.state, &state, self.durable)
    }
}

/// Where one chunk's files go.
#[derive(Debug, Clone)]
struct Paths {
    folder: PathBuf,
    media: PathBuf,
    partial: PathBuf,
    manifest: PathBuf,
    /// The chunk's document id, unsanitised, recorded in its manifest.
    document_id: String,
}

/// Writes one chunk for the [`DirectorySink`], holding the lock on its partial file.
#[derive(Debug)]
pub struct DirectoryWriter {
    /// `None` while the writing thread holds it (and so the lock).
    file: Option<File>,
    /// The queue to the thread that writes the batches in order, and that thread, which gives the file back.
    pipe: Option<WritePipe>,
    batch: Vec<Bytes>,
    batch_len: usize,
    paths: Paths,
    durable: bool,
    /// The version being written, once known (for the state file of a parallel download).
    version: Option<ObjectVersion>,
    /// The ranges an earlier parallel download completed.
    extents: Vec<(u64, u64)>,
    /// The positional writer handed out, closed before a restart so that no part writes into the new version.
    parts: Option<Arc<DirectoryParts>>,
    /// The channel map to record in the manifest at commit.
    channels: Vec<ChannelAssignment>,
}

impl DirectoryWriter {
    fn new(file: File, paths: Paths, durable: bool) -> Self {
        Self {
            file: Some(file),
            pipe: None,
            batch: Vec::new(),
            batch_len: 0,
            paths,
            durable,
            version: None,
            extents: Vec::new(),
            parts: None,
            channels: Vec::new(),
        }
    }

    /// Closes the positional writer, if any: returns once no part write is under way.
    async fn close_parts(&mut self) -> io::Result<()> {
        if let Some(parts) = self.parts.take() {
            blocking(move || {
                parts.close();
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// What a durable checkpoint of one stream records, when there is a version to record it for (a parallel
    /// download records its ranges instead).
    fn checkpoint(&self) -> Option<Checkpoint> {
        let version = self.version.clone().filter(|_| self.extents.is_empty() && self.parts.is_none())?;
        Some(Checkpoint { state: state_path(&self.paths.partial), version, durable: self.durable })
    }

    /// Waits until every queued batch is written and takes the file back.
    async fn settle(&mut self) -> io::Result<&mut File> {
        if let Some((sender, handle)) = self.pipe.take() {
            drop(sender);
            let file = handle.await.map_err(|e| io::Error::other(format!("blocking write failed: {e}")))??;
            self.file = Some(file);
        }
        self.file.as_mut().ok_or_else(|| io::Error::other("a previous write failed"))
    }

    /// Queues the current batch for the writing thread (started with the first batch); waits only when the thread
    /// is [`WRITE_QUEUE`] batches behind, so that the socket keeps being read while the disk absorbs a burst.
    async fn flush_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = mem::replace(&mut self.batch, Vec::with_capacity(16));
        self.batch_len = 0;
        if self.pipe.is_none() {
            let mut file = self.file.take().ok_or_else(|| io::Error::other("a previous write failed"))?;
            let (sender, mut receiver) = mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
            let checkpoint = self.checkpoint();
            let handle = tokio::task::spawn_blocking(move || {
                let mut unrecorded = 0usize;
                while let Some(batch) = receiver.blocking_recv() {
                    for bytes in &batch {
                        file.write_all(bytes)?;
                        unrecorded += bytes.len();
                    }
                    if unrecorded >= CHECKPOINT {
                        if let Some(checkpoint) = &checkpoint {
                            checkpoint.record(&file)?;
                        }
                        unrecorded = 0;
                    }
                }
                // The queue closed: the writer settles (commit, abandon) or went away with its task (a cancelled
                // download), which a later run resumes from what this records.
                if let Some(checkpoint) = checkpoint.filter(|_| unrecorded > 0) {
                    checkpoint.record(&file)?;
                }
                Ok(file)
            });
            self.pipe = Some((sender, handle));
        }
        let sent = match &self.pipe {
            Some((sender, _)) => sender.send(batch).await.is_ok(),
            None => false,
        };
        if !sent {
            // The thread stopped at a failed write: its error is the answer.
            self.settle().await?;
            return Err(io::Error::other("a previous write failed"));
        }
        Ok(())
    }
}

impl SinkWriter for DirectoryWriter {
    fn describe(&mut self, metadata: &RecordingMetadata) {
        self.channels = metadata.channels();
    }

    async fn begin(&mut self, version: &ObjectVersion) -> io::Result<()> {
        let path = state_path(&self.paths.partial);
        self.version = Some(version.clone());
        // Nothing of this version is durable yet: a power loss before the first checkpoint starts it over, a killed
        // process on the same boot resumes from the file's length.
        let state = PartialState::stream(version.clone(), None);
        let durable = self.durable;
        blocking(move || write_state(&path, &state, durable)).await
    }

    fn positional(&mut self) -> Option<Arc<dyn PositionalWriter>> {
        let version = self.version.clone()?;
        let file = self.file.as_ref()?.try_clone().ok()?;
        let state = PartialState { version, extents: self.extents.clone(), ..PartialState::default() };
        let parts = Arc::new(DirectoryParts::new(file, state_path(&self.paths.partial), state, self.durable));
        self.parts = Some(parts.clone());
        Some(parts)
    }

    fn stored_extents(&self) -> Vec<(u64, u64)> {
        self.extents.clone()
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len >= BATCH {
            self.flush_batch().await?;
        }
        Ok(())
    }

    async fn restart(&mut self) -> io::Result<()> {
        self.close_parts().await?;
        self.batch.clear();
        self.batch_len = 0;
        self.settle().await?;
        let mut file = self.file.take().ok_or_else(|| io::Error::other("a previous write failed"))?;
        let file = blocking(move || {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        self.extents.clear();
        self.version = None;
        let _ = tokio::fs::remove_file(state_path(&self.paths.partial)).await;
        Ok(())
    }

    async fn replay(&mut self, each: &mut (dyn FnMut(&[u8]) + Send)) -> io::Result<()> {
        self.flush_batch().await?;
        self.settle().await?;
        let mut file = tokio::fs::File::open(&self.paths.partial).await?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut file, &mut buffer).await?;
            if n == 0 {
                return Ok(());
            }
            each(&buffer[..n]);
        }
    }

    async fn abandon(mut self) -> io::Result<()> {
        self.close_parts().await?;
        self.flush_batch().await?;
        self.settle().await?;
        // What a later run resumes from: every byte written, once made durable (the writing thread recorded it
        // when it had bytes to write; this covers a writer that never started one).
        if let (Some(checkpoint), Some(file)) = (self.checkpoint(), self.file.take()) {
            blocking(move || checkpoint.record(&file)).await?;
        }
        Ok(())
    }

    async fn commit(mut self, bytes: u64, sha256: Sha256Digest) -> io::Result<String> {
        self.close_parts().await?;
        self.flush_batch().await?;
        self.settle().await?;
        let file = self.file.take().ok_or_else(|| io::Error::other("a previous write failed"))?;
        let paths = self.paths.clone();
        let durable = self.durable;
        let channels = mem::take(&mut self.channels);
        blocking(move || {
            if durable {
                file.sync_all()?;
            }
            let written = file.metadata()?.len();
            if written != bytes {
                return Err(io::Error::other(format!(
                    "`{}` holds {written} bytes, expected {bytes}",
                    paths.partial.display()
                )));
            }
            // The manifest lands before the final name does, so that every final file has one to be checked by.
            let raw = ChunkRecord::new(bytes, sha256, &paths.document_id, channels).to_bytes()?;
            let mut temporary_name = paths.manifest.as_os_str().to_owned();
            temporary_name.push(".partial");
            let temporary = PathBuf::from(temporary_name);
            let mut manifest = File::create(&temporary)?;
            manifest.write_all(&raw)?;
            if durable {
                manifest.sync_all()?;
            }
            drop(manifest);
            fs::rename(&temporary, &paths.manifest)?;
            // Renamed while still open, so the lock is held until the file has its final name.
            fs::rename(&paths.partial, &paths.media)?;
            if durable {
                sync_folder(&paths.folder)?;
            }
            drop(file);
            let _ = fs::remove_file(state_path(&paths.partial));
            Ok(paths.media.display().to_string())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
