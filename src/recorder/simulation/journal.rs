//! The simulated shared journal: records with versions (compare-and-swap, as on Azure), timed leases on the
//! simulation's clock, and faults drawn from the seed at every call.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::world::World;
use crate::journal::{Job, JobId, Journal, Lease, LeaseVersion};

/// A lease as the journal keeps it.
#[derive(Debug, Clone, Copy)]
struct Claim {
    replica: usize,
    /// By the simulation's true time.
    until: SystemTime,
    generation: u64,
}

/// What every replica's handle shares.
#[derive(Debug, Default)]
pub(super) struct Store {
    /// Each record as it was written (JSON, as a real journal stores it) and its version.
    records: BTreeMap<JobId, (Vec<u8>, u64)>,
    claims: BTreeMap<JobId, Claim>,
    next_version: u64,
    /// Broken invariants, in the order they were seen.
    pub(super) violations: Vec<String>,
}

impl Store {
    /// Every record, decoded.
    pub(super) fn jobs(&self) -> Vec<Job> {
        self.records.values().filter_map(|(bytes, _)| serde_json::from_slice(bytes).ok()).collect()
    }
}

/// One replica's handle on the shared journal.
#[derive(Clone)]
pub(super) struct SimJournal {
    store: Arc<Mutex<Store>>,
    world: World,
    replica: usize,
    lease: Duration,
    /// How often the workers look for open jobs; `None` for a journal only one process uses (as a file journal).
    poll: Option<Duration>,
    /// The version this replica last read or wrote of each record; `None` once a write of it lost.
    known: Arc<Mutex<BTreeMap<JobId, Option<u64>>>>,
    /// A planted defect: inserts answer written and keep nothing.
    lose_inserts: bool,
}

impl SimJournal {
    pub(super) fn new(
        store: Arc<Mutex<Store>>,
        world: World,
        replica: usize,
        lease: Duration,
        poll: Option<Duration>,
    ) -> Self {
        Self { store, world, replica, lease, poll, known: Arc::default(), lose_inserts: false }
    }

    /// Plants a defect: every insert answers written and keeps nothing.
    pub(super) fn losing_inserts(mut self, lose: bool) -> Self {
        self.lose_inserts = lose;
        self
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, BTreeMap<JobId, Option<u64>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fault before the call reaches the store, or after it was applied (its answer lost), with `odds` in 1000.
    fn fault(&self, what: &str, odds: u64) -> Option<io::Error> {
        self.world.chance(odds).then(|| io::Error::other(format!("simulated fault: {what}")))
    }

    /// Encodes a record as the journal stores it, and checks that it reads back: the journal must stay readable.
    fn encode(&self, store: &mut Store, job: &Job) -> Vec<u8> {
        let bytes = serde_json::to_vec(job).unwrap_or_default();
        // Times are kept to the microsecond: what reads back must write the same record again.
        match serde_json::from_slice::<Job>(&bytes) {
            Ok(back) if serde_json::to_vec(&back).ok().as_ref() == Some(&bytes) => {}
            Ok(_) => store.violations.push(format!("journal record of {} reads back different", job.id)),
            Err(error) => store.violations.push(format!("journal record of {} is unreadable: {error}", job.id)),
        }
        bytes
    }
}

impl Journal for SimJournal {
    async fn insert(&self, jobs: &[Job]) -> io::Result<Vec<bool>> {
        self.world.pause().await;
        if let Some(error) = self.fault("insert refused", 40) {
            return Err(error);
        }
        let written: Vec<bool> = {
            let mut store = self.store();
            let mut written = Vec::with_capacity(jobs.len());
            for job in jobs {
                if store.records.contains_key(&job.id) {
                    written.push(false);
                    continue;
                }
                written.push(true);
                if self.lose_inserts {
                    continue;
                }
                let bytes = self.encode(&mut store, job);
                store.next_version += 1;
                let version = store.next_version;
                store.records.insert(job.id.clone(), (bytes, version));
                self.known().insert(job.id.clone(), Some(version));
            }
            written
        };
        // Written, then slow to answer (the caller may have gone) or failing after the write.
        if self.world.chance(60) {
            tokio::time::sleep(self.world.duration(Duration::from_secs(60))).await;
        }
        if let Some(error) = self.fault("insert failed after writing", 40) {
            return Err(error);
        }
        Ok(written)
    }

    async fn update(&self, job: &Job) -> io::Result<()> {
        self.world.pause().await;
        if let Some(error) = self.fault("update refused", 20) {
            return Err(error);
        }
        {
            let mut store = self.store();
            let known = self.known().get(&job.id).copied().flatten();
            let current = store.records.get(&job.id).map(|(_, version)| *version);
            if known.is_none() || known != current {
                // The compare-and-swap fails: another worker wrote the record since this one read it.
                self.known().insert(job.id.clone(), None);
                return Err(io::Error::other(format!("record of {} changed since it was read", job.id)));
            }
            let now = self.world.now();
            if let Some(claim) = store.claims.get(&job.id).copied() {
                if claim.replica != self.replica && now < claim.until {
                    store.violations.push(format!(
                        "replica {} wrote job {} while replica {} held its lease",
                        self.replica, job.id, claim.replica
                    ));
                }
            }
            let bytes = self.encode(&mut store, job);
            store.next_version += 1;
            let version = store.next_version;
            store.records.insert(job.id.clone(), (bytes, version));
            // Applied, its answer lost: the writer never learns the new version, so its next write loses.
            if let Some(error) = self.fault("update applied, its answer lost", 20) {
                return Err(error);
            }
            self.known().insert(job.id.clone(), Some(version));
        }
        Ok(())
    }

    async fn get(&self, id: &JobId) -> io::Result<Option<Job>> {
        self.world.pause().await;
        if let Some(error) = self.fault("read refused", 10) {
            return Err(error);
        }
        let store = self.store();
        let Some((bytes, version)) = store.records.get(id) else { return Ok(None) };
        self.known().insert(id.clone(), Some(*version));
        serde_json::from_slice(bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    async fn list(&self) -> io::Result<Vec<Job>> {
        self.world.pause().await;
        if let Some(error) = self.fault("listing refused", 10) {
            return Err(error);
        }
        Ok(self.store().jobs())
    }

    async fn remove(&self, id: &JobId) -> io::Result<()> {
        self.store().records.remove(id);
        Ok(())
    }

    async fn claim(&self, id: &JobId) -> io::Result<Option<Lease>> {
        self.world.pause().await;
        if let Some(error) = self.fault("claim refused", 10) {
            return Err(error);
        }
        let now = self.world.now();
        let mut store = self.store();
        let generation = match store.claims.get(id) {
            Some(claim) if claim.replica != self.replica && now < claim.until => return Ok(None),
            Some(claim) => claim.generation + 1,
            None => 1,
        };
        store.claims.insert(id.clone(), Claim { replica: self.replica, until: now + self.lease, generation });
        // The holder's own clock (skewed) says when it ends: it counts from its own now.
        let local = self.world.replica_now(self.replica) + self.lease;
        let owner = format!("replica-{}", self.replica);
        Ok(Some(Lease::timed(id.clone(), owner, self.lease, local, LeaseVersion::Generation(generation))))
    }

    async fn renew(&self, lease: &mut Lease) -> io::Result<bool> {
        self.world.pause().await;
        if let Some(error) = self.fault("renewal refused", 10) {
            return Err(error);
        }
        let LeaseVersion::Generation(generation) = lease.version else { return Ok(false) };
        let now = self.world.now();
        let mut store = self.store();
        match store.claims.get_mut(lease.job()) {
            Some(claim) if claim.replica == self.replica && claim.generation == generation => {
                claim.until = now + self.lease;
                let local = self.world.replica_now(self.replica) + self.lease;
                lease.renewed(local, LeaseVersion::Generation(generation));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: Lease) -> io::Result<()> {
        let LeaseVersion::Generation(generation) = lease.version else { return Ok(()) };
        let mut store = self.store();
        if let Some(claim) = store.claims.get_mut(lease.job()) {
            if claim.replica == self.replica && claim.generation == generation {
                claim.until = SystemTime::UNIX_EPOCH;
            }
        }
        Ok(())
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.poll
    }
}
