//! The hashes of a download: SHA-256 always, MD5 when the whole object's MD5 is to be checked, computed on the
//! blocking pool while the next bytes arrive.

use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::error::{Error, Scope, Task};

/// Bytes hashed per blocking task.
const HASH_BATCH: usize = 1 << 20;

/// The hash states of one batch's owner: SHA-256 always, MD5 when the whole object's MD5 is to be checked.
type States = (Sha256, Option<Md5>);

/// SHA-256 (and, when announced, MD5) of the bytes handed out, computed on the blocking pool one batch at a time
/// while the next batch arrives, so that hashing overlaps with receiving and writing instead of adding to them. At
/// most two batches are held (one hashing, one filling); the `Bytes` are shared with the consumer, not copied.
pub(crate) struct Digests {
    states: Option<States>,
    in_flight: Option<tokio::task::JoinHandle<States>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    pub(crate) result: Option<[u8; 32]>,
    pub(crate) md5_result: Option<[u8; 16]>,
}

impl Digests {
    pub(crate) fn new(sha256: Sha256, md5: Option<Md5>) -> Self {
        Self {
            states: Some((sha256, md5)),
            in_flight: None,
            batch: Vec::new(),
            batch_len: 0,
            result: None,
            md5_result: None,
        }
    }

    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), Error> {
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len >= HASH_BATCH {
            let mut states = self.settle().await?;
            let batch = std::mem::take(&mut self.batch);
            self.batch_len = 0;
            self.in_flight = Some(tokio::task::spawn_blocking(move || {
                update(&mut states, &batch);
                states
            }));
        }
        Ok(())
    }

    async fn settle(&mut self) -> Result<States, Error> {
        if let Some(handle) = self.in_flight.take() {
            return handle.await.map_err(|e| Error::join(&Scope::default(), Task::Hashing, e));
        }
        Ok(self.states.take().unwrap_or_default())
    }

    /// Hashes what is left and answers the SHA-256 and, when computed, the MD5.
    pub(crate) async fn finish(&mut self) -> Result<([u8; 32], Option<[u8; 16]>), Error> {
        let mut states = self.settle().await?;
        update(&mut states, &self.batch);
        self.batch.clear();
        self.batch_len = 0;
        let (sha, md5) = states;
        let (sha256, md5): ([u8; 32], Option<[u8; 16]>) = (sha.finalize().into(), md5.map(|md5| md5.finalize().into()));
        self.result = Some(sha256);
        self.md5_result = md5;
        Ok((sha256, md5))
    }
}

fn update((sha, md5): &mut States, batch: &[Bytes]) {
    for bytes in batch {
        sha.update(bytes);
        if let Some(md5) = md5 {
            md5.update(bytes);
        }
    }
}
