//! Positional writes into the directory sink's partial file, and the record of the ranges they completed.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::download::sink::{ObjectVersion, PositionalWriter, ReadFuture, WriteFuture};

/// What `.<name>.partial.json` holds: the version being downloaded and, for a parallel download, the byte ranges
/// already complete, or, for one stream, how many bytes from byte 0 were made durable. Files written before ranges
/// existed hold the version alone and read the same.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct PartialState {
    #[serde(flatten)]
    pub(super) version: ObjectVersion,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) extents: Vec<(u64, u64)>,
    /// One stream's bytes from byte 0 that were fsynced (when the sink is durable) before this record was written.
    /// After a power loss the file may be longer, its tail zeros or garbage: a resume on another boot goes on from
    /// here, never from the file's length. Absent (nothing recorded yet, or a record from before it existed) means 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) durable: Option<u64>,
    /// The kernel's boot id when this record was written (Linux; absent elsewhere and in older records). While it is
    /// unchanged the machine has not restarted, so bytes written past `durable` are still in the page cache, correct,
    /// even if the process that wrote them was killed.
    #[serde(default, rename = "bootId", skip_serializing_if = "Option::is_none")]
    pub(super) boot_id: Option<String>,
}

impl PartialState {
    /// One stream's record of `version`, `durable` bytes of it fsynced, made during this boot.
    pub(super) fn stream(version: ObjectVersion, durable: Option<u64>) -> Self {
        Self { version, extents: Vec::new(), durable, boot_id: boot_id().map(str::to_owned) }
    }

    /// Where a resume of the partial file, `length` bytes long, goes on from: after a parallel download, the end of
    /// the ranges complete from byte 0; after one stream, the whole length when the record was made during this
    /// boot (a killed process loses nothing it wrote), otherwise only the bytes it says were fsynced (past them a
    /// power loss may have left zeros or garbage of the right length).
    pub(super) fn resume_offset(&self, length: u64) -> u64 {
        if !self.extents.is_empty() {
            return self.prefix();
        }
        match (self.boot_id.as_deref(), boot_id()) {
            (Some(recorded), Some(current)) if recorded == current => length,
            _ => self.durable.unwrap_or(0).min(length),
        }
    }

    /// The bytes complete from byte 0 on.
    pub(super) fn prefix(&self) -> u64 {
        let mut extents = self.extents.clone();
        extents.sort_unstable();
        let mut end = 0;
        for (start, stop) in extents {
            if start > end {
                break;
            }
            end = end.max(stop);
        }
        end
    }
}

/// The kernel's id of the current boot, read once: a new one after every restart, power loss included. Linux only;
/// elsewhere the file does not exist and no record is ever of "this boot".
fn boot_id() -> Option<&'static str> {
    static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            Some(id.trim().to_owned()).filter(|id| !id.is_empty())
        })
        .as_deref()
}

/// Writes the state file through a temporary name, so that a crash leaves the old state or the new one.
pub(super) fn write_state(path: &std::path::Path, state: &PartialState, durable: bool) -> io::Result<()> {
    let raw = serde_json::to_vec(state).map_err(io::Error::other)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        let mut file = File::create(&temporary)?;
        io::Write::write_all(&mut file, &raw)?;
        if durable {
            file.sync_all()?;
        }
    }
    fs::rename(&temporary, path)
}

/// The directory sink's [`PositionalWriter`]: `pwrite`s into the partial file on the blocking pool; each completed
/// range is fsynced (when durable) before it is recorded in the state file.
#[derive(Debug)]
pub(super) struct DirectoryParts {
    file: Arc<File>,
    state_path: PathBuf,
    /// Held while a completed range is recorded, so that the state file is written by one part at a time.
    state: Arc<Mutex<PartialState>>,
    durable: bool,
    /// `true` once the writer restarted or went away: no write may land after that. Writes hold the read side
    /// while they write, so taking the write side waits for the last of them.
    closed: Arc<RwLock<bool>>,
}

impl DirectoryParts {
    pub(super) fn new(file: File, state_path: PathBuf, state: PartialState, durable: bool) -> Self {
        let closed = Arc::new(RwLock::new(false));
        Self { file: Arc::new(file), state_path, state: Arc::new(Mutex::new(state)), durable, closed }
    }

    /// Stops every write: returns once no write is under way and none will start. Blocking.
    pub(super) fn close(&self) {
        *self.closed.write().unwrap_or_else(|p| p.into_inner()) = true;
    }
}

fn closed_error() -> io::Error {
    io::Error::other("the chunk's writer was closed")
}

#[cfg(unix)]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write the whole buffer"));
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer"));
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "positional reads are not supported here"))
}

#[cfg(not(any(unix, windows)))]
fn write_all_at(_: &File, _: &[u8], _: u64) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "positional writes are not supported here"))
}

async fn blocking(f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(f).await.map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}

impl PositionalWriter for DirectoryParts {
    fn write_at(&self, offset: u64, data: Vec<Bytes>) -> WriteFuture<'_> {
        let file = self.file.clone();
        let closed = self.closed.clone();
        Box::pin(blocking(move || {
            // A part aborted when its chunk restarts may still be here: it must not write into the new version.
            let closed = closed.read().unwrap_or_else(|p| p.into_inner());
            if *closed {
                return Err(closed_error());
            }
            let mut at = offset;
            for bytes in &data {
                write_all_at(&file, bytes, at)?;
                at += bytes.len() as u64;
            }
            Ok(())
        }))
    }

    fn complete(&self, start: u64, end: u64) -> WriteFuture<'_> {
        let (file, state, closed) = (self.file.clone(), self.state.clone(), self.closed.clone());
        let (path, durable) = (self.state_path.clone(), self.durable);
        Box::pin(blocking(move || {
            let closed = closed.read().unwrap_or_else(|p| p.into_inner());
            if *closed {
                return Err(closed_error());
            }
            // The bytes are on disk before the record says so: a crash never skips a range it lost.
            if durable {
                file.sync_data()?;
            }
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.extents.push((start, end));
            write_state(&path, &state, durable)
        }))
    }

    fn readable(&self) -> bool {
        cfg!(any(unix, windows))
    }

    fn read_at(&self, offset: u64, len: usize) -> ReadFuture<'_> {
        let (file, closed) = (self.file.clone(), self.closed.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let closed = closed.read().unwrap_or_else(|p| p.into_inner());
                if *closed {
                    return Err(closed_error());
                }
                let mut buf = vec![0; len];
                read_exact_at(&file, &mut buf, offset)?;
                Ok(Bytes::from(buf))
            })
            .await
            .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_the_contiguous_run_from_byte_zero() {
        let state = |extents: &[(u64, u64)]| PartialState { extents: extents.to_vec(), ..PartialState::default() };
        assert_eq!(state(&[]).prefix(), 0);
        assert_eq!(state(&[(10, 20)]).prefix(), 0);
        assert_eq!(state(&[(0, 10), (20, 30)]).prefix(), 10);
        assert_eq!(state(&[(10, 20), (0, 10), (20, 30)]).prefix(), 30);
        assert_eq!(state(&[(0, 15), (10, 20)]).prefix(), 20);
    }

    #[test]
    fn a_state_without_extents_reads_as_the_version_alone() {
        let version = ObjectVersion::new(Some("\"e\"".into()), None, Some(5));
        let raw = serde_json::to_vec(&version).unwrap();
        let state: PartialState = serde_json::from_slice(&raw).unwrap();
        assert_eq!((state.version, state.extents.len()), (version, 0));
    }
}
