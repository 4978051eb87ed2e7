//! The journal in object storage: one JSON object per job and the claims, under `<prefix>/.acs-recording/`, shared by
//! every replica that opens the same prefix.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use super::claim::{Claims, Mode};
use super::{Job, JobId, Journal, Lease};
use crate::store::{io_error, put_conditional, put_create, unique_token, Conditional, StoreLocation};

/// The folder, beside the recordings, that holds the journal (a name no sanitised call id can take).
pub const JOURNAL_FOLDER: &str = ".acs-recording";

/// Reads of job records at once while listing.
const LIST_CONCURRENCY: usize = 16;

/// The longest a PUT to the store takes by default, retries included: object_store's default retry timeout (3
/// minutes), then one more backoff (at most 15 s) and one more request (timed out after 30 s), rounded up.
pub(crate) const DEFAULT_LONGEST_PUT: Duration = Duration::from_secs(4 * 60);

/// A [`Journal`] in object storage: `<prefix>/.acs-recording/jobs/<job id>.json`, one object per job, and a lease
/// per job being worked on in `<prefix>/.acs-recording/claims/`. Every replica opening the same prefix sees every
/// accepted job.
///
/// 1. [`insert`](Journal::insert) is create-only (`PutMode::Create`): of several replicas given the same event,
///    one writes the job and the others answer it as a duplicate.
/// 2. [`claim`](Journal::claim) creates `claims/<job id>.json` (owner, expiry) create-only; an expired claim (its
///    owner died) is taken over with `PutMode::Update` on its ETag, so that of two replicas racing one wins.
///    Stores without conditional updates (local files) use create-only generation keys
///    `claims/<job id>/<generation>.json` instead: the next generation is created once.
/// 3. A renewal is the same compare-and-swap (or the next generation, taken only while the lease's own generation
///    is the newest and kept only if no newer one appeared meanwhile): it fails once another replica took the
///    lease, and the holder stops. The holder counts its lease from before the request that wrote the claim, so
///    it never believes it holds the job after the store says it expired. A release replaces the claim by an expired one with that compare-and-swap too,
///    and deletes it once the job is finished, so that only job records stay.
/// 4. An empty marker `open/<job id>` stands beside each open job: [`list_open`](Journal::list_open), which
///    replicas poll for work, lists the markers rather than every record, so polling does not grow with the done
///    jobs kept. The marker is written before the record and deleted when the job finishes (or by a redelivery
///    that finds the job finished); one left behind (a crash in between) is deleted by the next poll, a marker without its record
///    only once it is older than the [longest PUT](ObjectStoreJournal::longest_put), since the record may still be
///    on its way. A poll that deleted a marker reads the record again and puts the marker back if the job is open,
///    and a write of an open job checks its marker after the record is written and puts it back if a poll deleted
///    it meanwhile: an open job never stays without its marker.
/// 5. An [`update`](Journal::update) replaces a record with a compare-and-swap on the version this process last
///    read or wrote (where the store has one): a worker that lost its job to another replica cannot overwrite what
///    the new owner recorded.
/// 6. Records are small (a few KiB per job); done jobs are pruned by the recorder as with the
///    [`FileJournal`](super::FileJournal).
/// 7. A conditional write whose answer was lost (the store applied it, the connection closed before the answer,
///    and the client's retry found the condition failed) is recognised by reading the object back: holding exactly
///    the bytes this process sent (a claim names its owner and expiry, a record its receipt time), it is this
///    process's write, at the version read. A claim, renewal or checkpoint is thus never taken for a lost race.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::{Duration, SystemTime};
/// use acs_recording::journal::{Job, Journal, ObjectStoreJournal};
/// use acs_recording::recording::{Recording, RecordingChunk};
/// use acs_recording::store::StoreLocation;
///
/// let folder = tempfile::tempdir()?;
/// let location = StoreLocation::parse(&format!("file://{}", folder.path().display()))?;
/// // Two replicas on the same store.
/// let a = ObjectStoreJournal::open(location.clone()).await?.owner("a");
/// let b = ObjectStoreJournal::open(location).await?.owner("b");
///
/// let now = SystemTime::now();
/// let job = Job::new("event-1", Recording::new("call-1").chunk(RecordingChunk::new("doc-0", 0)), now, now + Duration::from_secs(86_400));
/// assert_eq!(a.insert(std::slice::from_ref(&job)).await?, [true]);
/// // The same event, delivered again to b a moment later.
/// let again = Job::new("event-1", job.recording.clone().unwrap(), now + Duration::from_millis(5), now + Duration::from_secs(86_400));
/// assert_eq!(b.insert(std::slice::from_ref(&again)).await?, [false]);
///
/// let lease = a.claim(&job.id).await?.expect("free");
/// assert!(b.claim(&job.id).await?.is_none()); // a holds it
/// a.release(lease).await?;
/// assert!(b.claim(&job.id).await?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ObjectStoreJournal {
    inner: Arc<Inner>,
}

/// The version of a job record this process's next update compares against.
#[derive(Debug, Clone)]
enum Known {
    /// Read or written at this version.
    At(UpdateVersion),
    /// An update lost its compare-and-swap: another worker wrote the record since. Nothing more is written until the
    /// record is read again, or a stale worker's next (unconditional) write would undo the new owner's.
    Lost,
}

#[derive(Debug)]
struct Inner {
    location: StoreLocation,
    jobs: Path,
    open: Path,
    probes: Path,
    claims: Claims,
    /// How long a PUT may take, retries included: a marker without its record is left behind only once older.
    longest_put: Duration,
    /// What this process knows of each job record's version, for compare-and-swap updates.
    versions: Mutex<HashMap<JobId, Known>>,
}

impl ObjectStoreJournal {
    /// Opens the journal under `location`'s prefix, with leases of 30 seconds. Checks that the store answers, and
    /// whether it can compare-and-swap (`PutMode::Update`) or needs generation keys.
    pub async fn open(location: StoreLocation) -> io::Result<Self> {
        let root = location.key(&[JOURNAL_FOLDER]);
        let probes = root.clone().join("probes");
        let mode = probe_mode(location.store().as_ref(), &probes).await?;
        let claims = Claims {
            root: root.clone().join("claims"),
            owner: default_owner(),
            duration: Duration::from_secs(30),
            mode,
        };
        let (jobs, open) = (root.clone().join("jobs"), root.join("open"));
        let (versions, longest_put) = (Mutex::default(), DEFAULT_LONGEST_PUT);
        Ok(Self { inner: Arc::new(Inner { location, jobs, open, probes, claims, longest_put, versions }) })
    }

    /// Sets how long a lease lasts without renewal (default 30 s, at least 1 s); holders renew it every third of
    /// that, and other replicas look for open jobs every half of it.
    pub fn lease_duration(self, duration: Duration) -> Self {
        self.map_claims(|claims| claims.duration = duration.max(Duration::from_secs(1)))
    }

    /// Sets the name this process holds leases under (default: host name, process id and a random token).
    pub fn owner(self, owner: impl Into<String>) -> Self {
        let owner = owner.into();
        self.map_claims(|claims| claims.owner = owner)
    }

    /// Sets the longest a PUT to the store can take, retries included (default 4 minutes, for
    /// object_store's default retry settings): a job's `open/` marker without its record is deleted as left behind
    /// only once older than this, since an insert's record PUT may still be on its way. Set it to the store
    /// client's `RetryConfig::retry_timeout` plus a backoff and a request timeout when the client is configured
    /// otherwise.
    pub fn longest_put(self, longest: Duration) -> Self {
        self.map_inner(|inner| inner.longest_put = longest)
    }

    fn map_claims(self, change: impl FnOnce(&mut Claims)) -> Self {
        self.map_inner(|inner| change(&mut inner.claims))
    }

    fn map_inner(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            location: shared.location.clone(),
            jobs: shared.jobs.clone(),
            open: shared.open.clone(),
            probes: shared.probes.clone(),
            claims: shared.claims.clone(),
            longest_put: shared.longest_put,
            versions: Mutex::default(),
        });
        change(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The name this process holds leases under.
    pub fn owner_name(&self) -> &str {
        &self.inner.claims.owner
    }

    /// Whether expired leases are taken over with a compare-and-swap on the ETag (`true`) or with generation keys.
    pub fn uses_compare_and_swap(&self) -> bool {
        self.inner.claims.mode == Mode::ETag
    }

    /// Where the journal is.
    pub fn location(&self) -> &StoreLocation {
        &self.inner.location
    }

    fn store(&self) -> &dyn ObjectStore {
        self.inner.location.store().as_ref()
    }

    fn key_of(&self, id: &JobId) -> Path {
        self.inner.jobs.clone().join(format!("{id}.json"))
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Known>> {
        self.inner.versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember_version(&self, id: &JobId, version: UpdateVersion) {
        self.versions().insert(id.clone(), Known::At(version));
    }

    fn remember_lost(&self, id: &JobId) {
        self.versions().insert(id.clone(), Known::Lost);
    }

    fn forget_version(&self, id: &JobId) {
        self.versions().remove(id);
    }

    fn marker_of(&self, id: &JobId) -> Path {
        self.inner.open.clone().join(id.as_str())
    }

    async fn mark_open(&self, id: &JobId) -> io::Result<()> {
        self.store().put(&self.marker_of(id), PutPayload::new()).await.map_err(io_error)?;
        Ok(())
    }

    /// Puts the marker of an open job back if a poll deleted it: called once the job's record is written, so that
    /// a poll that read no record (or a finished one) before and deleted the marker since cannot leave it without.
    async fn keep_marked(&self, id: &JobId) -> io::Result<()> {
        match self.store().head(&self.marker_of(id)).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(job = %id, "put back the marker of an open job");
                self.mark_open(id).await
            }
            Err(error) => Err(io_error(error)),
        }
    }

    /// Deletes a marker left behind, then reads the record again: a job written open in between gets its marker
    /// back, and is answered.
    ///
    /// Deleting before reading is what makes this safe against a write in between, which checks the marker after
    /// its record (`keep_marked`). A marker put back is read after in turn, as the job may have finished meanwhile:
    /// a few rounds settle a record that keeps changing, and end with the marker in place, since a stray marker
    /// costs the next poll a read where a missing one loses the job.
    async fn unmark_left_behind(&self, id: &JobId) -> io::Result<Option<Job>> {
        for _ in 0..3 {
            self.unmark(id).await?;
            if self.read_open(id).await?.is_none() {
                return Ok(None);
            }
            self.mark_open(id).await?;
            if let Some(job) = self.read_open(id).await? {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// The job's record, if it is open.
    async fn read_open(&self, id: &JobId) -> io::Result<Option<Job>> {
        Ok(read(self.store(), &self.key_of(id)).await?.map(|(job, _)| job).filter(|job| job.state.is_open()))
    }

    async fn unmark(&self, id: &JobId) -> io::Result<()> {
        match self.store().delete(&self.marker_of(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(io_error(error)),
        }
    }

    /// What a marker stands for: its open job, or `None` once the marker is deleted as left behind.
    async fn open_job(&self, marker: ObjectMeta) -> io::Result<Option<Job>> {
        let Some(id) = marker.location.filename().and_then(JobId::parse) else { return Ok(None) };
        let Some(found) = readable(read(self.store(), &self.key_of(&id)).await)? else { return Ok(None) };
        match found {
            Some((job, _)) if job.state.is_open() => Ok(Some(job)),
            Some(_) => self.unmark_left_behind(&id).await,
            None => {
                // Written before its record, or left by an insert that died: only one older than the longest PUT
                // of a record is stale.
                let written = SystemTime::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(marker.last_modified.timestamp_millis()).unwrap_or_default());
                let old = SystemTime::now().duration_since(written).is_ok_and(|age| age > self.inner.longest_put);
                if old {
                    return self.unmark_left_behind(&id).await;
                }
                Ok(None)
            }
        }
    }
}

/// `<host>-<pid>-<token>`: unique per process, readable in a claim.
fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "host".to_owned());
    let host = crate::name::sanitize_name(&host);
    format!("{host}-{}-{}", std::process::id(), &unique_token()[..8])
}

/// An update against a version that cannot match: `NotImplemented` says the store has no conditional update.
async fn probe_mode(store: &dyn ObjectStore, probes: &Path) -> io::Result<Mode> {
    let key = probes.clone().join(format!("{}.json", unique_token()));
    let never = UpdateVersion { e_tag: Some("\"acs-recording-probe\"".to_owned()), version: None };
    let options = PutOptions { mode: PutMode::Update(never), ..PutOptions::default() };
    match store.put_opts(&key, PutPayload::from_static(b"{}"), options).await {
        Err(object_store::Error::NotImplemented { .. }) => Ok(Mode::Generations),
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => Ok(Mode::ETag),
        Err(error) => Err(io_error(error)),
        Ok(_) => {
            let _ = store.delete(&key).await;
            Ok(Mode::ETag)
        }
    }
}

/// An update refused because another worker wrote the job's record since this process read it.
#[derive(Debug)]
struct Superseded {
    key: Path,
    /// Refused without asking the store: an earlier update already lost.
    again: bool,
}

impl Superseded {
    fn error(key: &Path, again: bool) -> io::Error {
        io::Error::other(Self { key: key.clone(), again })
    }
}

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.again {
            false => write!(f, "journal record `{}` was changed by another worker since this one read it", self.key),
            true => {
                write!(
                    f,
                    "journal record `{}` was changed by another worker: read it again before writing it",
                    self.key
                )
            }
        }
    }
}

impl std::error::Error for Superseded {}

/// Whether a journal write failed because another worker wrote the job's record since this one read it: the worker
/// lost the job and must stop writing it.
pub(crate) fn is_superseded(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Superseded>())
}

fn encode(job: &Job) -> io::Result<Bytes> {
    serde_json::to_vec_pretty(job).map(Bytes::from).map_err(io::Error::other)
}

fn decode(key: &Path, bytes: &[u8]) -> io::Result<Job> {
    serde_json::from_slice(bytes).map_err(|error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("journal record `{key}` is unreadable: {error}"))
    })
}

/// A read for a listing: a record that cannot be decoded is reported and skipped (`Ok(None)`), so that one bad
/// record never stops the listing, the recorder's start or any replica's poll.
fn readable<T>(read: io::Result<T>) -> io::Result<Option<T>> {
    match read {
        Ok(found) => Ok(Some(found)),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            super::unreadable(&error);
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// A job record and the version it was read at.
async fn read(store: &dyn ObjectStore, key: &Path) -> io::Result<Option<(Job, UpdateVersion)>> {
    let found = match store.get(key).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    let version = UpdateVersion { e_tag: found.meta.e_tag.clone(), version: found.meta.version.clone() };
    match found.bytes().await {
        Ok(raw) => decode(key, &raw).map(|job| Some((job, version))),
        // Pruned between the listing and the read: not a job any more.
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(io_error(error)),
    }
}

impl Journal for ObjectStoreJournal {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        let mut written = Vec::with_capacity(jobs.len());
        for job in jobs {
            // The marker first: an open job is never without one (a stray marker is cleaned up by the next poll).
            if job.state.is_open() {
                self.mark_open(&job.id).await?;
            }
            let created = put_create(self.store(), &self.key_of(&job.id), encode(job)?).await?;
            if job.state.is_open() {
                match created {
                    Some(_) => self.keep_marked(&job.id).await?,
                    // A redelivery: the marker just written stays only beside a job still open.
                    None if self.read_open(&job.id).await?.is_none() => drop(self.unmark_left_behind(&job.id).await?),
                    None => {}
                }
            }
            written.push(created.is_some());
        }
        Ok(written)
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        if job.state.is_open() {
            // A failed job made pending again needs its marker back.
            self.mark_open(&job.id).await?;
        }
        let (key, record) = (self.key_of(&job.id), encode(job)?);
        let known = self.versions().get(&job.id).cloned().filter(|_| self.uses_compare_and_swap());
        let put = match known {
            // Replaced only if nobody wrote it since this process did: a worker that was taken over (paused past
            // its lease, say) cannot overwrite what the new owner recorded.
            Some(Known::At(version)) => {
                match put_conditional(self.store(), &key, record, PutMode::Update(version)).await? {
                    Conditional::Written(version) => version,
                    Conditional::Refused(_) => {
                        self.remember_lost(&job.id);
                        return Err(Superseded::error(&key, false));
                    }
                }
            }
            Some(Known::Lost) => return Err(Superseded::error(&key, true)),
            None => {
                let put = self.store().put(&key, PutPayload::from_bytes(record)).await.map_err(io_error)?;
                UpdateVersion { e_tag: put.e_tag, version: put.version }
            }
        };
        if job.state.is_open() {
            self.remember_version(&job.id, put);
            self.keep_marked(&job.id).await?;
        } else {
            self.forget_version(&job.id);
            self.unmark(&job.id).await?;
        }
        Ok(())
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        let Some((job, version)) = read(self.store(), &self.key_of(id)).await? else {
            self.forget_version(id);
            return Ok(None);
        };
        self.remember_version(id, version);
        Ok(Some(job))
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        let store = self.inner.location.store().clone();
        let listed: Vec<_> = store.list(Some(&self.inner.jobs)).try_collect().await.map_err(io_error)?;
        let keys = listed.into_iter().map(|meta| meta.location).filter(|key| {
            key.filename()
                .is_some_and(|name| name.ends_with(".json") && JobId::parse(&name[..name.len() - 5]).is_some())
        });
        let reads =
            futures_util::stream::iter(
                keys.map(|key| {
                    let store = store.clone();
                    async move {
                        Ok::<_, io::Error>(readable(read(store.as_ref(), &key).await)?.flatten().map(|(job, _)| job))
                    }
                }),
            );
        let mut jobs: Vec<Job> =
            reads.buffer_unordered(LIST_CONCURRENCY).try_collect::<Vec<_>>().await?.into_iter().flatten().collect();
        jobs.sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn list_open(&self) -> io::Result<Vec<Job>> {
        let markers: Vec<ObjectMeta> =
            self.store().list(Some(&self.inner.open)).try_collect().await.map_err(io_error)?;
        let reads = futures_util::stream::iter(markers.into_iter().map(|marker| self.open_job(marker)));
        let mut jobs: Vec<Job> =
            reads.buffer_unordered(LIST_CONCURRENCY).try_collect::<Vec<_>>().await?.into_iter().flatten().collect();
        jobs.sort_by(|a, b| a.received_at.cmp(&b.received_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        self.forget_version(id);
        match self.store().delete(&self.key_of(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(io_error(error)),
        }
        self.unmark(id).await?;
        self.inner.claims.forget(self.store(), id).await
    }

    async fn check_writable(&self) -> io::Result<()> {
        let key = self.inner.probes.clone().join(format!("{}.json", unique_token()));
        put_create(self.store(), &key, Bytes::from_static(b"{}")).await?;
        self.store().delete(&key).await.map_err(io_error)
    }

    async fn claim(&self, id: &JobId) -> io::Result<Option<Lease>> {
        self.inner.claims.claim(self.store(), id).await
    }

    async fn renew(&self, lease: &mut Lease) -> io::Result<bool> {
        self.inner.claims.renew(self.store(), lease).await
    }

    async fn release(&self, lease: Lease) -> io::Result<()> {
        let record = read(self.store(), &self.key_of(lease.job())).await?;
        let finished = record.is_none_or(|(job, _)| !job.state.is_open());
        self.inner.claims.release(self.store(), lease, finished).await
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.inner.claims.duration / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_object_store_journal_keeps_the_journal_contract() {
        let folder = tempfile::tempdir().unwrap();
        let location = StoreLocation::parse(&format!("file://{}", folder.path().display())).unwrap();
        crate::journal::contract::check(&ObjectStoreJournal::open(location).await.unwrap()).await;
    }
}
