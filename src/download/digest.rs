//! The hashes of a download: SHA-256 always, MD5 when the whole object's MD5 is to be checked, computed on a
//! thread of their own while the next bytes arrive.

use std::io;

use std::sync::Arc;

use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::budget::{Held, MemoryBudget};
use super::error::{Detail, Error, ErrorKind, Scope, Task};
use super::resumable_sha256::Sha256Hasher;
use super::sink::SinkWriter;
use crate::Sha256Digest;

/// Bytes handed to the hashing thread at once.
const HASH_BATCH: usize = 1 << 20;

/// Batches queued for the hashing thread before the producer waits: the socket keeps being read while the hash
/// catches up with a burst, and at most this many MiB (plus the batch being filled) wait in memory.
const HASH_QUEUE: usize = 8;

/// Batches queued for the hashing thread without drawing from a [`MemoryBudget`]: what a budgeted download may
/// always have waiting for the hash, so that it goes on when the budget is spent.
const FREE_QUEUE: usize = 2;

/// The hash states: SHA-256 always, MD5 when the whole object's MD5 is to be checked.
type States = (Sha256Hasher, Option<Md5>);

/// What a queued batch holds until it is hashed: budget, or one of the free places in the queue (or, without a
/// budget, nothing).
type Hold = (Option<Held>, Option<OwnedSemaphorePermit>);

/// The queue to the hashing thread, and the thread.
type Pipe = (mpsc::Sender<(Vec<Bytes>, Hold)>, JoinHandle<States>);

/// SHA-256 (and, when announced, MD5) of the bytes handed out, in order.
///
/// The hash is the most expensive step of a download (SHA-256 is sequential: one core hashes one object), so it
/// runs on a blocking-pool thread of its own, fed batches of about 1 MiB through a bounded queue: the task that reads
/// the socket and writes the file only hands over `Bytes` (shared with the writer, never copied) and waits only when
/// the hash is [`HASH_QUEUE`] batches behind. An object smaller than one batch is hashed in place, without a thread.
pub(crate) struct Digests {
    /// The states while no thread took them (before the first full batch).
    states: Option<States>,
    pipe: Option<Pipe>,
    /// With a budget, batches queued past the first [`FREE_QUEUE`] hold budget for their bytes until hashed.
    budget: Option<(MemoryBudget, Arc<Semaphore>)>,
    batch: Vec<Bytes>,
    batch_len: usize,
    pub(crate) result: Option<Sha256Digest>,
    pub(crate) md5_result: Option<[u8; 16]>,
}

impl Digests {
    pub(crate) fn new(sha256: impl Into<Sha256Hasher>, md5: Option<Md5>) -> Self {
        Self {
            states: Some((sha256.into(), md5)),
            pipe: None,
            budget: None,
            batch: Vec::new(),
            batch_len: 0,
            result: None,
            md5_result: None,
        }
    }

    /// Makes the bytes queued for the hash draw from `budget`, past a queue of [`FREE_QUEUE`] batches: bytes
    /// waiting for the hash count as held in memory.
    pub(crate) fn with_budget(mut self, budget: MemoryBudget) -> Self {
        self.budget = Some((budget, Arc::new(Semaphore::new(FREE_QUEUE))));
        self
    }

    /// Adds the next bytes; waits only when the hashing thread is a full queue behind.
    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), Error> {
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len >= HASH_BATCH {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(16));
            self.batch_len = 0;
            self.send(batch).await?;
        }
        Ok(())
    }

    async fn send(&mut self, batch: Vec<Bytes>) -> Result<(), Error> {
        if self.pipe.is_none() {
            let mut states = self.states.take().unwrap_or_default();
            let (sender, mut receiver) = mpsc::channel::<(Vec<Bytes>, Hold)>(HASH_QUEUE);
            let handle = tokio::task::spawn_blocking(move || {
                // What a batch holds is given back once it is hashed, when it is dropped here.
                while let Some((batch, _hold)) = receiver.blocking_recv() {
                    update(&mut states, &batch);
                }
                states
            });
            self.pipe = Some((sender, handle));
        }
        let hold = match &self.budget {
            None => (None, None),
            Some((budget, free)) => {
                let mut held = budget.hold();
                let bytes = batch.iter().map(|b| b.len() as u64).sum();
                if held.try_grow(bytes) {
                    (Some(held), None)
                } else {
                    // The budget is spent: wait for a free place, which only this download's own hash frees.
                    match free.clone().acquire_owned().await {
                        Ok(permit) => (None, Some(permit)),
                        Err(_) => return Err(stopped()),
                    }
                }
            }
        };
        let Some((sender, _)) = &self.pipe else { unreachable!("the pipe was just set") };
        if sender.send((batch, hold)).await.is_err() {
            // The thread ended early: it panicked. Its handle says so.
            return Err(self.join().await.err().unwrap_or_else(stopped));
        }
        Ok(())
    }

    /// Closes the queue and takes the states back from the thread, once it hashed everything.
    async fn join(&mut self) -> Result<States, Error> {
        match self.pipe.take() {
            Some((sender, handle)) => {
                drop(sender);
                handle.await.map_err(|e| Error::join(&Scope::default(), Task::Hashing, e))
            }
            None => Ok(self.states.take().unwrap_or_default()),
        }
    }

    /// Hashes what is left and answers the SHA-256 and, when computed, the MD5.
    pub(crate) async fn finish(&mut self) -> Result<(Sha256Digest, Option<[u8; 16]>), Error> {
        let rest = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        let states = if self.pipe.is_some() {
            if !rest.is_empty() {
                self.send(rest).await?;
            }
            self.join().await?
        } else {
            // Never a full batch (a small object): hashed here, without a thread.
            let mut states = self.states.take().unwrap_or_default();
            update(&mut states, &rest);
            states
        };
        let (sha, md5) = states;
        let (sha256, md5): (Sha256Digest, Option<[u8; 16]>) = (sha.finalize(), md5.map(|md5| md5.finalize().into()));
        self.result = Some(sha256);
        self.md5_result = md5;
        Ok((sha256, md5))
    }
}

/// Feeds the stored bytes of a partial chunk back into fresh hashes, in order: the SHA-256, the MD5 when `md5`, and
/// how many bytes came back.
pub(crate) async fn replayed<W: SinkWriter>(writer: &mut W, md5: bool) -> io::Result<(Sha256, Option<Md5>, u64)> {
    let (mut sha, mut md5, mut replayed) = (Sha256::new(), md5.then(Md5::new), 0u64);
    writer
        .replay(&mut |bytes: &[u8]| {
            sha.update(bytes);
            if let Some(md5) = &mut md5 {
                md5.update(bytes);
            }
            replayed += bytes.len() as u64;
        })
        .await?;
    Ok((sha, md5, replayed))
}

/// The hashing thread is gone without a panic: the runtime is shutting down.
fn stopped() -> Error {
    Error::new(ErrorKind::Sink, Detail::Stopped)
}

fn update((sha, md5): &mut States, batch: &[Bytes]) {
    for bytes in batch {
        sha.update(bytes);
        if let Some(md5) = md5 {
            md5.update(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn digest_of(frames: &[Bytes], md5: bool) -> (Sha256Digest, Option<[u8; 16]>) {
        let mut digests = Digests::new(Sha256::new(), md5.then(Md5::new));
        for frame in frames {
            digests.push(frame.clone()).await.unwrap();
        }
        digests.finish().await.unwrap()
    }

    #[tokio::test]
    async fn many_batches_on_the_thread_hash_like_one_pass() {
        // 20 MiB in uneven frames: more batches than the queue holds, and a partial batch at the end.
        let whole: Vec<u8> = (0..20 * 1024 * 1024 + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        let frames: Vec<Bytes> = whole.chunks(300_001).map(Bytes::copy_from_slice).collect();
        let (sha, md5) = digest_of(&frames, true).await;
        assert_eq!(sha, Sha256Digest::from(Sha256::digest(&whole)));
        assert_eq!(md5, Some(<[u8; 16]>::from(Md5::digest(&whole))));
    }

    #[tokio::test]
    async fn bytes_queued_for_the_hash_hold_budget_and_go_on_without_it() {
        // 20 MiB through a budget of 3 MiB: some batches hold budget, the rest wait for the free places.
        let whole: Vec<u8> = (0..20 * 1024 * 1024 + 7).map(|i| (i * 13 % 251) as u8).collect();
        let budget = MemoryBudget::new(3 << 20);
        let mut digests = Digests::new(Sha256::new(), None).with_budget(budget.clone());
        for frame in whole.chunks(256 * 1024) {
            digests.push(Bytes::copy_from_slice(frame)).await.unwrap();
        }
        let (sha, _) = digests.finish().await.unwrap();
        assert_eq!(sha, Sha256Digest::from(Sha256::digest(&whole)));
        assert!(budget.peak() > 0 && budget.peak() <= 3 << 20, "peak {}", budget.peak());
        assert_eq!(budget.available(), 3 << 20);
    }

    #[tokio::test]
    async fn a_small_object_is_hashed_without_a_thread() {
        let mut digests = Digests::new(Sha256::new(), None);
        digests.push(Bytes::from_static(b"abc")).await.unwrap();
        assert!(digests.pipe.is_none());
        let (sha, md5) = digests.finish().await.unwrap();
        assert_eq!(sha, Sha256Digest::from(Sha256::digest(b"abc")));
        assert_eq!(md5, None);
        assert_eq!(digest_of(&[], false).await.0, Sha256Digest::from(Sha256::digest(b"")));
    }
}
