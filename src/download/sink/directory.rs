//! The directory sink: `<dir>/<call id>/<index>-<document id>.<ext>`, written through a temporary name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::{sanitize_name, ChunkTarget, Existing, ObjectVersion, Sink, SinkWriter, Stored};

/// Bytes gathered before one blocking write; two batches at most are alive (one being written, one filling).
const BATCH: usize = 1 << 20;

/// Writes each chunk to `<dir>/<call id>/<index>-<document id>.<ext>` and its metadata to
/// `<dir>/<call id>/<index>-<document id>.json`.
///
/// 1. Names are [sanitised](super::sanitize_name): only `[A-Za-z0-9._-]`, no `..`, no leading dot.
/// 2. Media is written to `.<name>.partial` in the same folder, with the object's version beside it in
///    `.<name>.partial.json`; on commit the file is fsynced, renamed to its final name, and the folder fsynced.
///    A partial file never carries the final name.
/// 3. A final file means the chunk is complete: a rerun skips it (its SHA-256 is recomputed for the manifest). A
///    partial file with its version is resumed from its length; one without is discarded.
/// 4. Writes run on the blocking pool in batches of 1 MiB, one batch in flight while the next fills: memory stays
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
}

fn base_name(target: &ChunkTarget<'_>) -> String {
    format!("{}-{}", target.index, sanitize_name(target.document_id))
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
        let folder = self.folder(target);
        let media = self.media_path(target);
        let partial = self.partial_path(target);
        let durable = self.durable;
        blocking(move || {
            fs::create_dir_all(&folder)?;
            if media.is_file() {
                let (bytes, sha256) = hash_file(&media)?;
                return Ok(Existing::Complete(Stored::new(media.display().to_string(), bytes, sha256)));
            }
            let state = state_path(&partial);
            let version = fs::read(&state).ok().and_then(|raw| serde_json::from_slice::<ObjectVersion>(&raw).ok());
            let existing = fs::metadata(&partial).ok().filter(|m| m.is_file()).map(|m| m.len());
            match (existing, version) {
                (Some(offset), Some(version)) if offset > 0 && version.is_pinnable() => {
                    let mut file = OpenOptions::new().read(true).write(true).open(&partial)?;
                    file.seek(SeekFrom::End(0))?;
                    let writer = DirectoryWriter::new(file, partial, media, folder, durable);
                    Ok(Existing::Partial { writer, offset, version })
                }
                _ => {
                    let _ = fs::remove_file(&state);
                    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&partial)?;
                    Ok(Existing::Absent(DirectoryWriter::new(file, partial, media, folder, durable)))
                }
            }
        })
        .await
    }

    async fn put_metadata(&self, target: &ChunkTarget<'_>, document: Bytes) -> io::Result<Option<String>> {
        let folder = self.folder(target);
        let path = self.metadata_path(target);
        let temporary = folder.join(format!(".{}.json.partial", base_name(target)));
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

fn hash_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
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

/// The file and the (written) batch, handed back by a blocking write so both are reused.
type FileAndBatch = (File, Vec<Bytes>);

/// Writes one chunk for the [`DirectorySink`].
#[derive(Debug)]
pub struct DirectoryWriter {
    /// `None` while a batch is being written on the blocking pool.
    file: Option<File>,
    in_flight: Option<JoinHandle<io::Result<FileAndBatch>>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    partial: PathBuf,
    media: PathBuf,
    folder: PathBuf,
    durable: bool,
}

impl DirectoryWriter {
    fn new(file: File, partial: PathBuf, media: PathBuf, folder: PathBuf, durable: bool) -> Self {
        Self { file: Some(file), in_flight: None, batch: Vec::new(), batch_len: 0, partial, media, folder, durable }
    }

    /// Waits for the batch in flight and takes the file back.
    async fn settle(&mut self) -> io::Result<&mut File> {
        if let Some(handle) = self.in_flight.take() {
            let (file, mut spare) =
                handle.await.map_err(|e| io::Error::other(format!("blocking write failed: {e}")))??;
            spare.clear();
            if self.batch.is_empty() {
                self.batch = spare; // reuse the allocation
            }
            self.file = Some(file);
        }
        self.file.as_mut().ok_or_else(|| io::Error::other("a previous write failed"))
    }

    /// Sends the current batch to the blocking pool, after the previous one finished.
    async fn flush_batch(&mut self) -> io::Result<()> {
        self.settle().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut file = self.file.take().ok_or_else(|| io::Error::other("a previous write failed"))?;
        let batch = mem::take(&mut self.batch);
        self.batch_len = 0;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            for bytes in &batch {
                file.write_all(bytes)?;
            }
            Ok((file, batch))
        }));
        Ok(())
    }
}

impl SinkWriter for DirectoryWriter {
    async fn begin(&mut self, version: &ObjectVersion) -> io::Result<()> {
        let state = state_path(&self.partial);
        let raw = serde_json::to_vec(version).map_err(io::Error::other)?;
        blocking(move || fs::write(state, raw)).await
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
        let _ = tokio::fs::remove_file(state_path(&self.partial)).await;
        Ok(())
    }

    async fn replay(&mut self, each: &mut (dyn FnMut(&[u8]) + Send)) -> io::Result<()> {
        self.flush_batch().await?;
        self.settle().await?;
        let mut file = tokio::fs::File::open(&self.partial).await?;
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
        self.flush_batch().await?;
        self.settle().await?;
        Ok(())
    }

    async fn commit(mut self, bytes: u64, _sha256: [u8; 32]) -> io::Result<String> {
        self.flush_batch().await?;
        self.settle().await?;
        let file = self.file.take().ok_or_else(|| io::Error::other("a previous write failed"))?;
        let (partial, media, folder) = (self.partial.clone(), self.media.clone(), self.folder.clone());
        let durable = self.durable;
        blocking(move || {
            if durable {
                file.sync_all()?;
            }
            let written = file.metadata()?.len();
            if written != bytes {
                return Err(io::Error::other(format!(
                    "`{}` holds {written} bytes, expected {bytes}",
                    partial.display()
                )));
            }
            drop(file);
            fs::rename(&partial, &media)?;
            if durable {
                sync_folder(&folder)?;
            }
            let _ = fs::remove_file(state_path(&partial));
            Ok(media.display().to_string())
        })
        .await
    }
}
