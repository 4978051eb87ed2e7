//! The simulated sink: chunks in memory, partial ones kept across crashes (as a partial file is), positional
//! writes for parallel parts, and faults drawn from the seed.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::world::World;
use crate::download::sink::{
    ChunkTarget, Existing, ObjectVersion, PositionalWriter, ReadFuture, Sink, SinkWriter, Stored, WriteFuture,
};
use crate::Sha256Digest;

/// A chunk being written: what a partial file and its side record hold.
#[derive(Debug, Default, Clone)]
struct Partial {
    version: Option<ObjectVersion>,
    bytes: Vec<u8>,
    /// Ranges parallel parts completed.
    extents: Vec<(u64, u64)>,
    /// Written by parallel parts: only the completed ranges count.
    parallel: bool,
}

/// What the sink holds, shared by every replica (one store).
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Final chunks by key: bytes and the SHA-256 the committer gave.
    pub(super) finals: BTreeMap<String, (Vec<u8>, Sha256Digest)>,
    partials: BTreeMap<String, Partial>,
    /// Broken invariants, in the order they were seen.
    pub(super) violations: Vec<String>,
}

/// The sink; clones share one store.
#[derive(Clone)]
pub(super) struct MemorySink {
    held: Arc<Mutex<Held>>,
    world: World,
    /// A planted defect: commits drop the last byte.
    short: bool,
}

impl MemorySink {
    pub(super) fn new(held: Arc<Mutex<Held>>, world: World) -> Self {
        Self { held, world, short: false }
    }

    /// Plants a defect: every commit drops the chunk's last byte.
    pub(super) fn short_commits(mut self, short: bool) -> Self {
        self.short = short;
        self
    }
}

/// Where a chunk goes: its document id, which the invariants look it up by.
pub(super) fn key(target: &ChunkTarget<'_>) -> String {
    target.document_id.to_owned()
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sink for MemorySink {
    type Writer = MemoryWriter;

    async fn open(&self, target: &ChunkTarget<'_>) -> io::Result<Existing<MemoryWriter>> {
        self.world.pause().await;
        if self.world.chance(20) {
            return Err(io::Error::other("simulated fault: the sink cannot open the chunk"));
        }
        let key = key(target);
        let held = lock(&self.held);
        if let Some((bytes, sha256)) = held.finals.get(&key) {
            return Ok(Existing::Complete(Stored::new(key, bytes.len() as u64, *sha256)));
        }
        let partial = held.partials.get(&key).cloned().unwrap_or_default();
        let resumable = !partial.bytes.is_empty() && (!partial.parallel || !partial.extents.is_empty());
        let writer = |buffer: Partial| MemoryWriter {
            key: key.clone(),
            held: self.held.clone(),
            world: self.world.clone(),
            buffer: Arc::new(Mutex::new(buffer)),
            short: self.short,
        };
        match partial.version.clone() {
            Some(version) if resumable => {
                let offset = contiguous(&partial);
                Ok(Existing::Partial { offset, writer: writer(partial), version })
            }
            _ => Ok(Existing::Absent(writer(Partial::default()))),
        }
    }

    async fn put_metadata(&self, _target: &ChunkTarget<'_>, _document: Bytes) -> io::Result<Option<String>> {
        self.world.pause().await;
        if self.world.chance(10) {
            return Err(io::Error::other("simulated fault: the sink cannot store metadata"));
        }
        Ok(None)
    }
}

/// The bytes from 0 that a resume can go on after: all written bytes of a single stream, or the first completed
/// extent of a parallel download.
fn contiguous(partial: &Partial) -> u64 {
    if !partial.parallel {
        return partial.bytes.len() as u64;
    }
    let mut end = 0;
    let mut extents = partial.extents.clone();
    extents.sort_unstable();
    for (start, stop) in extents {
        if start > end {
            break;
        }
        end = end.max(stop);
    }
    end
}

/// Writes one chunk; every write lands in the shared store at once, as bytes written to a partial file do.
pub(super) struct MemoryWriter {
    key: String,
    held: Arc<Mutex<Held>>,
    world: World,
    buffer: Arc<Mutex<Partial>>,
    short: bool,
}

impl MemoryWriter {
    fn save(&self) {
        let partial = self.buffer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        lock(&self.held).partials.insert(self.key.clone(), partial);
    }
}

impl SinkWriter for MemoryWriter {
    async fn begin(&mut self, version: &ObjectVersion) -> io::Result<()> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner()).version = Some(version.clone());
        self.save();
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        if self.world.chance(5) {
            return Err(io::Error::other("simulated fault: the sink cannot write"));
        }
        self.buffer.lock().unwrap_or_else(|p| p.into_inner()).bytes.extend_from_slice(&data);
        self.save();
        Ok(())
    }

    async fn restart(&mut self) -> io::Result<()> {
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            *buffer = Partial { version: buffer.version.take(), ..Partial::default() };
        }
        self.save();
        Ok(())
    }

    async fn replay(&mut self, each: &mut (dyn FnMut(&[u8]) + Send)) -> io::Result<()> {
        let partial = self.buffer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for piece in partial.bytes.chunks(4096) {
            each(piece);
        }
        Ok(())
    }

    fn positional(&mut self) -> Option<std::sync::Arc<dyn PositionalWriter>> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner()).parallel = true;
        Some(Arc::new(Positional { key: self.key.clone(), held: self.held.clone(), buffer: self.buffer.clone() }))
    }

    fn stored_extents(&self) -> Vec<(u64, u64)> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner()).extents.clone()
    }

    async fn abandon(self) -> io::Result<()> {
        self.save();
        Ok(())
    }

    async fn commit(self, bytes: u64, sha256: Sha256Digest) -> io::Result<String> {
        self.world.pause().await;
        if self.world.chance(20) {
            return Err(io::Error::other("simulated fault: the sink cannot commit"));
        }
        let mut partial = self.buffer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if self.short {
            partial.bytes.pop();
        }
        let mut held = lock(&self.held);
        let actual = Sha256Digest::of(&partial.bytes);
        if partial.bytes.len() as u64 != bytes || actual != sha256 {
            held.violations.push(format!(
                "chunk {} committed with {} bytes of SHA-256 {} as {bytes} bytes of {}",
                self.key,
                partial.bytes.len(),
                actual,
                sha256
            ));
        }
        if let Some((existing, _)) = held.finals.get(&self.key) {
            if *existing != partial.bytes {
                held.violations.push(format!("chunk {} committed twice with different bytes", self.key));
            }
        }
        held.finals.insert(self.key.clone(), (partial.bytes, sha256));
        held.partials.remove(&self.key);
        // Committed, its answer lost: the downloader finds the final chunk on its next attempt.
        if self.world.chance(10) {
            return Err(io::Error::other("simulated fault: the commit's answer was lost"));
        }
        Ok(self.key)
    }
}

/// Positional writes of parallel parts into the chunk's buffer.
struct Positional {
    key: String,
    held: Arc<Mutex<Held>>,
    buffer: Arc<Mutex<Partial>>,
}

impl PositionalWriter for Positional {
    fn write_at(&self, offset: u64, data: Vec<Bytes>) -> WriteFuture<'_> {
        Box::pin(async move {
            let partial = {
                let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
                let mut at = offset as usize;
                for piece in data {
                    if buffer.bytes.len() < at + piece.len() {
                        buffer.bytes.resize(at + piece.len(), 0);
                    }
                    buffer.bytes[at..at + piece.len()].copy_from_slice(&piece);
                    at += piece.len();
                }
                buffer.clone()
            };
            lock(&self.held).partials.insert(self.key.clone(), partial);
            Ok(())
        })
    }

    fn complete(&self, start: u64, end: u64) -> WriteFuture<'_> {
        Box::pin(async move {
            let partial = {
                let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
                buffer.extents.push((start, end));
                buffer.clone()
            };
            lock(&self.held).partials.insert(self.key.clone(), partial);
            Ok(())
        })
    }

    fn readable(&self) -> bool {
        true
    }

    fn read_at(&self, offset: u64, len: usize) -> ReadFuture<'_> {
        Box::pin(async move {
            let buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let range = usize::try_from(offset).ok().and_then(|at| buffer.bytes.get(at..at.checked_add(len)?));
            range.map(Bytes::copy_from_slice).ok_or_else(|| io::Error::other("simulated read past the written bytes"))
        })
    }
}
