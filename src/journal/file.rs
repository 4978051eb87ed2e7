//! The journal in a local folder: one JSON file per job.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Job, JobId, Journal};

/// A [`Journal`] in a folder: `<folder>/jobs/<job id>.json`, one file per job.
///
/// Records are written to a temporary name, fsynced, then hard-linked (create-only) or renamed (update) into
/// place, and the folder is fsynced, so a crash leaves every record either old or new, never half written. The
/// folder is locked while the journal is open ([`File::try_lock`], released by the OS when the process dies), so
/// that two recorders never work on the same jobs; [`FileJournal::open_read_only`] reads without the lock.
#[derive(Debug, Clone)]
pub struct FileJournal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    jobs: PathBuf,
    durable: bool,
    /// Held for the journal's lifetime; `None` when read only.
    _lock: Option<File>,
    read_only: bool,
    nonce: AtomicU64,
}

const LOCK_FILE: &str = "lock";

impl FileJournal {
    /// Opens (creating it if needed) the journal in `folder`, and locks it for this process.
    pub fn open(folder: impl Into<PathBuf>) -> io::Result<Self> {
        let root = folder.into();
        let jobs = root.join("jobs");
        fs::create_dir_all(&jobs)?;
        let lock = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(root.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("the journal in `{}` is in use by another process", root.display()),
                ))
            }
            Err(fs::TryLockError::Error(error)) => return Err(error),
        }
        Ok(Self::build(root, jobs, Some(lock)))
    }

    /// Opens an existing journal to read it while another process may hold it (for a status view). Writes fail.
    pub fn open_read_only(folder: impl Into<PathBuf>) -> io::Result<Self> {
        let root = folder.into();
        let jobs = root.join("jobs");
        if !jobs.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no journal in `{}`", root.display())));
        }
        Ok(Self::build(root, jobs, None))
    }

    fn build(root: PathBuf, jobs: PathBuf, lock: Option<File>) -> Self {
        let read_only = lock.is_none();
        let seed = std::process::id() as u64;
        Self {
            inner: Arc::new(Inner {
                root,
                jobs,
                durable: true,
                _lock: lock,
                read_only,
                nonce: AtomicU64::new(seed << 32),
            }),
        }
    }

    /// Whether writes fsync the record and the folder (default `true`). Off only where durability comes from
    /// elsewhere or does not matter (benchmarks of the network path).
    pub fn durable(self, durable: bool) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.durable = durable;
                Self { inner: Arc::new(inner) }
            }
            Err(inner) => Self { inner },
        }
    }

    /// The journal's folder.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn path_of(&self, id: &JobId) -> PathBuf {
        self.inner.jobs.join(format!("{id}.json"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| io::Error::other(format!("journal task failed: {e}")))?
    }
}

impl Inner {
    fn writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the journal was opened read only"));
        }
        Ok(())
    }

    fn temporary(&self, id: &JobId) -> PathBuf {
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        self.jobs.join(format!(".{id}.{n:016x}.tmp"))
    }

    /// Writes `bytes` to a fresh temporary file, fsynced.
    fn write_temporary(&self, id: &JobId, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.temporary(id);
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
            file.write_all(bytes)?;
            if self.durable {
                file.sync_all()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(path),
            Err(error) => {
                let _ = fs::remove_file(&path);
                Err(error)
            }
        }
    }

    fn sync_folder(&self) -> io::Result<()> {
        if self.durable {
            File::open(&self.jobs)?.sync_all()?;
        }
        Ok(())
    }
}

fn encode(job: &Job) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(job).map_err(io::Error::other)
}

fn decode(path: &Path, bytes: &[u8]) -> io::Result<Job> {
    serde_json::from_slice(bytes).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("journal record `{}` is unreadable: {error}", path.display()),
        )
    })
}

impl Journal for FileJournal {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        let records = jobs.iter().map(|job| Ok((job.id.clone(), encode(job)?))).collect::<io::Result<Vec<_>>>()?;
        let paths: Vec<PathBuf> = records.iter().map(|(id, _)| self.path_of(id)).collect();
        self.blocking(move |inner| {
            inner.writable()?;
            let mut written = Vec::with_capacity(records.len());
            for ((id, bytes), path) in records.iter().zip(&paths) {
                if path.exists() {
                    written.push(false);
                    continue;
                }
                let temporary = inner.write_temporary(id, bytes)?;
                // A hard link is create-only: two deliveries of one event racing each other write it once.
                let linked = fs::hard_link(&temporary, path);
                let _ = fs::remove_file(&temporary);
                match linked {
                    Ok(()) => written.push(true),
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => written.push(false),
                    Err(error) => return Err(error),
                }
            }
            // Also when every record existed: one may have been linked by an earlier insert that failed or was
            // abandoned before its folder fsync, and the caller is about to answer 200 on the strength of it.
            if !written.is_empty() {
                inner.sync_folder()?;
            }
            Ok(written)
        })
        .await
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        let bytes = encode(job)?;
        let (id, path) = (job.id.clone(), self.path_of(&job.id));
        self.blocking(move |inner| {
            inner.writable()?;
            let temporary = inner.write_temporary(&id, &bytes)?;
            if let Err(error) = fs::rename(&temporary, &path) {
                let _ = fs::remove_file(&temporary);
                return Err(error);
            }
            inner.sync_folder()
        })
        .await
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        let path = self.path_of(id);
        self.blocking(move |_| match fs::read(&path) {
            Ok(bytes) => decode(&path, &bytes).map(Some),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
        .await
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        self.blocking(|inner| {
            let mut jobs = Vec::new();
            for entry in fs::read_dir(&inner.jobs)? {
                let path = entry?.path();
                let is_record = path.extension().is_some_and(|ext| ext == "json")
                    && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.'));
                if !is_record {
                    continue;
                }
                match fs::read(&path) {
                    Ok(bytes) => match decode(&path, &bytes) {
                        Ok(job) => jobs.push(job),
                        // One bad record (damaged, or written by a newer version) must not stop the others.
                        Err(error) => super::unreadable(&error),
                    },
                    // Removed between the listing and the read (pruned): not a job any more.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(error),
                }
            }
            jobs.sort_by(|a: &Job, b: &Job| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
            Ok(jobs)
        })
        .await
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        let path = self.path_of(id);
        self.blocking(move |inner| {
            inner.writable()?;
            match fs::remove_file(&path) {
                Ok(()) => inner.sync_folder(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(error),
            }
        })
        .await
    }

    async fn check_writable(&self) -> io::Result<()> {
        // The same steps as an insert (a fsynced file, a hard link, a folder fsync), so that readiness fails where
        // an insert would: a file system without hard links, or a folder that cannot be synced.
        self.blocking(|inner| {
            inner.writable()?;
            let probe = inner.write_temporary(&JobId::for_event(""), b"{}")?;
            let linked = inner.jobs.join(".probe.link");
            let _ = fs::remove_file(&linked);
            let result = fs::hard_link(&probe, &linked).and_then(|()| inner.sync_folder());
            let _ = fs::remove_file(&linked);
            fs::remove_file(probe)?;
            result
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::journal::JobState;
    use crate::recording::{Recording, RecordingChunk};

    fn job(event: &str) -> Job {
        let now = SystemTime::now();
        Job::new(event, Recording::new("c").chunk(RecordingChunk::new("d", 0)), now, now + Duration::from_secs(60))
    }

    #[tokio::test]
    async fn the_file_journal_keeps_the_journal_contract() {
        let folder = tempfile::tempdir().unwrap();
        crate::journal::contract::check(&FileJournal::open(folder.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn updates_replace_records_and_leave_no_temporary_files() {
        let folder = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(folder.path()).unwrap();
        let mut first = job("a");
        assert_eq!(journal.insert(&[first.clone(), job("b"), first.clone()]).await.unwrap(), [true, true, false]);
        first.state = JobState::Done;
        journal.update(&first).await.unwrap();
        assert_eq!(journal.get(&first.id).await.unwrap().unwrap().state, JobState::Done);
        journal.remove(&JobId::for_event("b")).await.unwrap();
        journal.remove(&JobId::for_event("b")).await.unwrap();
        journal.check_writable().await.unwrap();
        let names: Vec<String> = fs::read_dir(folder.path().join("jobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{}.json", first.id)]);
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_folder_is_refused_while_the_first_holds_it() {
        let folder = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(folder.path()).unwrap();
        let error = FileJournal::open(folder.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(
            error.to_string(),
            format!("the journal in `{}` is in use by another process", folder.path().display())
        );
        // Reading is still possible, writing is not.
        let reader = FileJournal::open_read_only(folder.path()).unwrap();
        journal.insert(&[job("a")]).await.unwrap();
        assert_eq!(reader.list().await.unwrap().len(), 1);
        assert_eq!(reader.insert(&[job("b")]).await.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        drop(journal);
        FileJournal::open(folder.path()).unwrap();
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_written_fails_the_insert() {
        let folder = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(folder.path()).unwrap();
        // The jobs folder replaced by a file: every write fails with a real I/O error.
        fs::remove_dir(folder.path().join("jobs")).unwrap();
        fs::write(folder.path().join("jobs"), b"").unwrap();
        assert!(journal.insert(&[job("a")]).await.is_err());
        assert!(journal.check_writable().await.is_err());
    }
}
