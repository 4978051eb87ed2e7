//! A sink for any `AsyncWrite`: the media of each chunk, one after the other.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{ChunkTarget, Existing, ObjectVersion, Sink, SinkWriter};
use crate::Sha256Digest;

/// Writes the media of every chunk into one [`AsyncWrite`] (a file, a pipe, a socket, a `Vec<u8>`), in the order
/// the chunks are downloaded: `index` order with the default concurrency of 1. Metadata documents are dropped.
///
/// A writer cannot be rewound: when an object changes after some of its bytes were written, the download fails
/// with [`ErrorKind::ObjectChanged`](crate::download::ErrorKind::ObjectChanged) instead of splicing two versions.
/// Nothing is ever resumed from an earlier run.
pub struct WriterSink<W> {
    writer: Arc<Mutex<W>>,
}

impl<W> WriterSink<W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// Wraps a writer.
    pub fn new(writer: W) -> Self {
        Self { writer: Arc::new(Mutex::new(writer)) }
    }

    /// Gives the writer back, once no download holds this sink any more.
    pub fn into_inner(self) -> Result<W, Self> {
        match Arc::try_unwrap(self.writer) {
            Ok(mutex) => Ok(mutex.into_inner()),
            Err(writer) => Err(Self { writer }),
        }
    }
}

impl<W> Clone for WriterSink<W> {
    fn clone(&self) -> Self {
        Self { writer: self.writer.clone() }
    }
}

impl<W> fmt::Debug for WriterSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSink").finish_non_exhaustive()
    }
}

impl<W> Sink for WriterSink<W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Writer = WriterSinkWriter<W>;

    async fn open(&self, _target: &ChunkTarget<'_>) -> io::Result<Existing<WriterSinkWriter<W>>> {
        let guard = self.writer.clone().lock_owned().await;
        Ok(Existing::Absent(WriterSinkWriter { guard, written: 0 }))
    }

    async fn put_metadata(&self, _target: &ChunkTarget<'_>, _document: Bytes) -> io::Result<Option<String>> {
        Ok(None)
    }
}

/// Writes one chunk for the [`WriterSink`], holding the writer for the whole chunk.
pub struct WriterSinkWriter<W> {
    guard: OwnedMutexGuard<W>,
    written: u64,
}

impl<W> fmt::Debug for WriterSinkWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSinkWriter").field("written", &self.written).finish_non_exhaustive()
    }
}

impl<W> SinkWriter for WriterSinkWriter<W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    async fn begin(&mut self, _version: &ObjectVersion) -> io::Result<()> {
        Ok(())
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.guard.write_all(&data).await?;
        self.written += data.len() as u64;
        Ok(())
    }

    async fn restart(&mut self) -> io::Result<()> {
        if self.written == 0 {
            return Ok(());
        }
        Err(io::Error::new(io::ErrorKind::Unsupported, "a writer cannot be rewound"))
    }

    async fn commit(mut self, _bytes: u64, _sha256: Sha256Digest) -> io::Result<String> {
        self.guard.flush().await?;
        Ok("writer".to_owned())
    }
}
