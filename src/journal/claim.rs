//! Leases as claim objects in the store: create-only to take a free job, a compare-and-swap (`PutMode::Update` with
//! the ETag) to take over an expired lease, or, where the store has no conditional update (local files),
//! create-only generation keys.

use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::lease::{Lease, LeaseVersion};
use super::JobId;
use crate::store::{io_error, put_conditional, put_create, Conditional};

/// How takeovers are made safe against a race, as the store allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `claims/<job>.json`, replaced with `If-Match: <etag>`.
    ETag,
    /// `claims/<job>/<generation>.json`, each generation created once; the highest one holds.
    Generations,
}

/// What a claim object holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    owner: String,
    /// RFC 3339, UTC.
    expires_at: String,
}

/// `duration` from now, in whole milliseconds as a claim stores it: computed just before the request that writes it
/// is sent, so that the holder's copy ends no later than the stored one, however long the request then takes.
fn expiry_from_now(duration: Duration) -> SystemTime {
    let at = SystemTime::now().checked_add(duration).unwrap_or_else(SystemTime::now);
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Record {
    fn encode(owner: &str, expires: SystemTime) -> io::Result<Bytes> {
        let record = Record { owner: owner.to_owned(), expires_at: crate::time::format_rfc3339(expires, 3) };
        serde_json::to_vec(&record).map(Bytes::from).map_err(io::Error::other)
    }

    /// A claim as stored; unreadable, it holds nothing (no owner, an unreadable expiry).
    fn decode(raw: &[u8]) -> Self {
        serde_json::from_slice(raw).unwrap_or(Record { owner: String::new(), expires_at: String::new() })
    }

    fn expired(&self, now: SystemTime) -> bool {
        // An unreadable time counts as expired: a lease nobody can read holds nothing.
        crate::time::parse_rfc3339(&self.expires_at).is_none_or(|at| at <= now)
    }
}

/// The claims of one journal: where they live, who this process is, and how long a lease lasts.
#[derive(Debug, Clone)]
pub(super) struct Claims {
    pub(super) root: Path,
    pub(super) owner: String,
    pub(super) duration: Duration,
    pub(super) mode: Mode,
}

/// A claim object's version, as a lease compares against it.
fn etag(version: UpdateVersion) -> LeaseVersion {
    LeaseVersion::ETag { e_tag: version.e_tag, version: version.version }
}

/// Reads a claim object: `None` when it is gone.
async fn read(store: &dyn ObjectStore, key: &Path) -> io::Result<Option<(Record, UpdateVersion)>> {
    let found = match store.get(key).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    let version = UpdateVersion { e_tag: found.meta.e_tag.clone(), version: found.meta.version.clone() };
    let raw = match found.bytes().await {
        Ok(raw) => raw,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    Ok(Some((Record::decode(&raw), version)))
}

async fn delete(store: &dyn ObjectStore, key: &Path) -> io::Result<()> {
    match store.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(io_error(error)),
    }
}

impl Claims {
    fn etag_key(&self, id: &JobId) -> Path {
        self.root.clone().join(format!("{id}.json"))
    }

    fn generations(&self, id: &JobId) -> Path {
        self.root.clone().join(id.as_str())
    }

    fn generation_key(&self, id: &JobId, generation: u64) -> Path {
        self.generations(id).join(format!("{generation:020}.json"))
    }

    /// Every generation key of a job, lowest first.
    async fn listed(&self, store: &dyn ObjectStore, id: &JobId) -> io::Result<Vec<(u64, Path)>> {
        let prefix = self.generations(id);
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.map_err(io_error)?;
        let mut generations: Vec<(u64, Path)> = objects
            .into_iter()
            .filter_map(|meta| {
                let number = meta.location.filename()?.strip_suffix(".json")?.parse().ok()?;
                Some((number, meta.location))
            })
            .collect();
        generations.sort_unstable_by_key(|(number, _)| *number);
        Ok(generations)
    }

    /// Takes the job's lease: `None` while someone else holds it or won the race for it.
    pub(super) async fn claim(&self, store: &dyn ObjectStore, id: &JobId) -> io::Result<Option<Lease>> {
        match self.mode {
            Mode::ETag => {
                let key = self.etag_key(id);
                let expires = expiry_from_now(self.duration);
                let record = Record::encode(&self.owner, expires)?;
                let (held, version) = match put_conditional(store, &key, record, PutMode::Create).await? {
                    Conditional::Written(version) => return Ok(Some(self.lease(id, expires, etag(version)))),
                    Conditional::Refused(None) => return Ok(None),
                    Conditional::Refused(Some((raw, version))) => (Record::decode(&raw), version),
                };
                if !held.expired(SystemTime::now()) {
                    return Ok(None);
                }
                let expires = expiry_from_now(self.duration);
                let record = Record::encode(&self.owner, expires)?;
                match put_conditional(store, &key, record, PutMode::Update(version)).await? {
                    Conditional::Written(version) => {
                        tracing::info!(job = %id, previous = %held.owner, "took over an expired lease");
                        Ok(Some(self.lease(id, expires, etag(version))))
                    }
                    Conditional::Refused(_) => Ok(None),
                }
            }
            Mode::Generations => {
                let listed = self.listed(store, id).await?;
                let (next, previous) = match listed.last() {
                    None => (1, None),
                    Some((number, key)) => {
                        let Some((held, _)) = read(store, key).await? else { return Ok(None) };
                        if !held.expired(SystemTime::now()) {
                            return Ok(None);
                        }
                        (number + 1, Some(held.owner))
                    }
                };
                let expires = expiry_from_now(self.duration);
                let record = Record::encode(&self.owner, expires)?;
                if !self.create_newest(store, id, next, record).await? {
                    return Ok(None);
                }
                if let Some(previous) = previous {
                    tracing::info!(job = %id, %previous, "took over an expired lease");
                }
                for (_, key) in &listed {
                    delete(store, key).await?;
                }
                Ok(Some(self.lease(id, expires, LeaseVersion::Generation(next))))
            }
        }
    }

    fn lease(&self, id: &JobId, expires: SystemTime, version: LeaseVersion) -> Lease {
        Lease::timed(id.clone(), self.owner.clone(), self.duration, expires, version)
    }

    /// Creates generation `number` of a job's claim, create-only, and answers whether it is the newest one.
    ///
    /// Generations are deleted once a newer one exists, so a key can be created again after its first holder moved
    /// on: a taker or a late renewal that listed the generations before another replica took the lease and renewed
    /// it past `number` would create `number` anew. The generations listed after the create tell: a newer one means
    /// the lease is someone else's.
    async fn create_newest(&self, store: &dyn ObjectStore, id: &JobId, number: u64, record: Bytes) -> io::Result<bool> {
        if put_create(store, &self.generation_key(id, number), record).await?.is_none() {
            return Ok(false);
        }
        let newest = self.listed(store, id).await?.last().map(|(newest, _)| *newest);
        Ok(newest == Some(number))
    }

    /// Extends a lease: `false` when it was taken over.
    pub(super) async fn renew(&self, store: &dyn ObjectStore, lease: &mut Lease) -> io::Result<bool> {
        let id = lease.job().clone();
        match lease.version.clone() {
            LeaseVersion::Exclusive => Ok(true),
            LeaseVersion::ETag { e_tag, version } => {
                let expires = expiry_from_now(self.duration);
                let record = Record::encode(&self.owner, expires)?;
                let mode = PutMode::Update(UpdateVersion { e_tag, version });
                match put_conditional(store, &self.etag_key(&id), record, mode).await? {
                    Conditional::Written(version) => {
                        lease.renewed(expires, etag(version));
                        Ok(true)
                    }
                    Conditional::Refused(_) => Ok(false),
                }
            }
            LeaseVersion::Generation(number) => {
                // Still this lease's only if its generation is the newest: a taker deletes it, and a taker that
                // renewed since has deleted the next one too, which this renewal could otherwise create again.
                let newest = self.listed(store, &id).await?.last().map(|(newest, _)| *newest);
                if newest != Some(number) {
                    return Ok(false);
                }
                // The next generation is created once: by this renewal, or by whoever took the lease over.
                let expires = expiry_from_now(self.duration);
                let record = Record::encode(&self.owner, expires)?;
                if !self.create_newest(store, &id, number + 1, record).await? {
                    return Ok(false);
                }
                delete(store, &self.generation_key(&id, number)).await?;
                lease.renewed(expires, LeaseVersion::Generation(number + 1));
                Ok(true)
            }
        }
    }

    /// Gives the lease up, if it is still this lease's. With ETags the claim is first replaced by an expired one
    /// with the same compare-and-swap as a renewal, so a lease another replica took over is never touched. Once the
    /// job is `finished` the claim is then deleted: the store has no conditional delete, so a replica claiming the
    /// job in between can lose its claim, which costs nothing, as it finds the job finished. An open job keeps its
    /// expired claim for the next taker. Generation keys delete only this lease's generation and older ones.
    pub(super) async fn release(&self, store: &dyn ObjectStore, lease: Lease, finished: bool) -> io::Result<()> {
        let id = lease.job().clone();
        match lease.version {
            LeaseVersion::Exclusive => Ok(()),
            LeaseVersion::ETag { e_tag, version } => {
                let key = self.etag_key(&id);
                let released = Record::encode(&self.owner, SystemTime::now())?;
                let mode = PutMode::Update(UpdateVersion { e_tag, version });
                match put_conditional(store, &key, released, mode).await? {
                    Conditional::Written(_) if finished => delete(store, &key).await,
                    Conditional::Written(_) | Conditional::Refused(_) => Ok(()),
                }
            }
            LeaseVersion::Generation(number) => {
                for (generation, key) in self.listed(store, &id).await? {
                    if generation <= number {
                        delete(store, &key).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Deletes every claim object of a job (it was pruned).
    pub(super) async fn forget(&self, store: &dyn ObjectStore, id: &JobId) -> io::Result<()> {
        match self.mode {
            Mode::ETag => delete(store, &self.etag_key(id)).await,
            Mode::Generations => {
                for (_, key) in self.listed(store, id).await? {
                    delete(store, &key).await?;
                }
                Ok(())
            }
        }
    }
}
