//! The dead-letter source: lists the container, journals each blob's recording events, marks the blob processed.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::FusedFuture;
use futures_util::{FutureExt as _, TryStreamExt as _};
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStoreExt as _};

use super::error::{Error, ErrorKind};
use super::parse::parse_blob;
use crate::journal::{JobId, Journal};
use crate::recorder::{Intake, Source, SourceKind, SourceOutcome};
use crate::recording::RecordingEvents;
use crate::store::StoreLocation;

/// The folder, beside the dead-letter blobs (under the watched prefix), that holds one marker per processed blob:
/// `<prefix>/.acs-recording-processed/<the blob's name under the prefix>`.
pub const MARKER_FOLDER: &str = ".acs-recording-processed";

/// The largest blob read: a larger one is journaled as rejected (with its first 64 KiB) and marked.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 64 << 20;

/// How often [`DeadLetterSource::run`] lists the container by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The text kept of a blob too large to read.
const HEAD_BYTES: u64 = 64 << 10;

/// A container (or folder) of dead-lettered events, read into the recorder's journal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeadLetterSource {
    location: StoreLocation,
    source: Source,
    interval: Duration,
    max_blob_bytes: u64,
}

/// What a pass over the container did: from [`DeadLetterSource::replay`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replayed {
    /// Blobs read and marked processed in this pass.
    pub blobs_read: usize,
    /// Blobs skipped because a marker says an earlier pass processed them.
    pub blobs_skipped: usize,
    /// Blobs that were not JSON or too large: journaled as rejected with their name, then marked.
    pub blobs_unreadable: usize,
    /// Recording events journaled as new jobs.
    pub events_journaled: usize,
    /// Recording events the journal already held (from the webhook, another source or an earlier pass), and
    /// unreadable text rejected before.
    pub duplicates: usize,
    /// Events journaled as rejected: unreadable entries and recording events whose data does not fit.
    pub rejected: usize,
    /// Events of other types, skipped.
    pub not_recordings: usize,
    /// The jobs of the recording events read, new or not, in blob order.
    pub jobs: Vec<JobId>,
}

impl DeadLetterSource {
    /// The blobs under `location`'s prefix; `name` tells this source apart in jobs and metrics
    /// (`dead-letters:<name>`).
    pub fn new(location: StoreLocation, name: impl Into<String>) -> Self {
        Self {
            location,
            source: Source::new(SourceKind::DeadLetters, name),
            interval: DEFAULT_INTERVAL,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        }
    }

    /// Opens `az://<container>/<prefix>` (Azure settings from the environment, as
    /// [`StoreLocation::parse`] reads them) or `file:///<absolute path>`; the source is named by the URL without
    /// its query.
    pub fn open(url: &str) -> io::Result<Self> {
        let location = StoreLocation::parse(url)?;
        let name = url.split(['?', '#']).next().unwrap_or_default();
        Ok(Self::new(location, name))
    }

    /// How long [`run`](Self::run) waits between two listings.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// The largest blob read ([`DEFAULT_MAX_BLOB_BYTES`] unless set).
    pub fn max_blob_bytes(mut self, bytes: u64) -> Self {
        self.max_blob_bytes = bytes;
        self
    }

    /// The source recorded with each job.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Where the marker of `blob` (a key under the prefix) goes.
    pub fn marker(&self, blob: &Path) -> Path {
        let prefix = self.location.prefix();
        let relative: Vec<PathPart<'_>> = blob.prefix_match(prefix).map(Iterator::collect).unwrap_or_default();
        prefix.parts().chain(std::iter::once(PathPart::from(MARKER_FOLDER))).chain(relative).collect()
    }

    /// One pass: every blob under the prefix without a marker, in name order, journaled and then marked.
    pub async fn replay<J: Journal>(&self, intake: &Intake<J>) -> Result<Replayed, Error> {
        let mut replayed = Replayed::default();
        for blob in self.list(&mut replayed).await? {
            self.process(intake, &blob, &mut replayed).await?;
        }
        Ok(replayed)
    }

    /// Passes over the container every [`interval`](Self::interval) until `shutdown` resolves: the blob in hand is
    /// finished first. A failed pass is logged and the next one tries again; it returns early only when the
    /// recorder is shutting down.
    pub async fn run<J: Journal>(
        self,
        intake: Intake<J>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let mut shutdown = pin!(shutdown.fuse());
        loop {
            let mut replayed = Replayed::default();
            let pass = async {
                for blob in self.list(&mut replayed).await? {
                    // Asked between blobs, so that the blob in hand is finished.
                    if shutdown.is_terminated() || shutdown.as_mut().now_or_never().is_some() {
                        break;
                    }
                    self.process(&intake, &blob, &mut replayed).await?;
                }
                Ok::<_, Error>(())
            }
            .await;
            match pass {
                Ok(()) if replayed.blobs_read > 0 => tracing::info!(
                    source = %self.source,
                    blobs = replayed.blobs_read,
                    journaled = replayed.events_journaled,
                    duplicates = replayed.duplicates,
                    rejected = replayed.rejected,
                    "dead-letter blobs processed"
                ),
                Ok(()) => {}
                Err(error) if error.is_shutting_down() => return Ok(()),
                Err(error) => {
                    tracing::warn!(source = %self.source, error = %crate::chain::one_line(&error), "dead-letter pass failed; the next one tries again")
                }
            }
            if shutdown.is_terminated() {
                return Ok(());
            }
            tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// The unmarked blobs under the prefix, in name order; counts the marked ones as skipped.
    async fn list(&self, replayed: &mut Replayed) -> Result<Vec<ObjectMeta>, Error> {
        let prefix = self.location.prefix();
        let listed: Vec<ObjectMeta> = self
            .location
            .store()
            .list((!prefix.as_ref().is_empty()).then_some(prefix))
            .try_collect()
            .await
            .map_err(|error| Error::new(ErrorKind::List, prefix.as_ref(), error))?;
        let (markers, mut blobs): (Vec<_>, Vec<_>) =
            listed.into_iter().partition(|meta| self.is_marker(&meta.location));
        let markers: HashSet<Path> = markers.into_iter().map(|meta| meta.location).collect();
        blobs.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        let before = blobs.len();
        blobs.retain(|meta| !markers.contains(&self.marker(&meta.location)));
        replayed.blobs_skipped += before - blobs.len();
        if let Some(oldest) = blobs.iter().map(|meta| SystemTime::from(meta.last_modified)).min() {
            self.source.oldest_message_age(oldest.elapsed().unwrap_or_default());
        } else {
            self.source.oldest_message_age(Duration::ZERO);
        }
        Ok(blobs)
    }

    fn is_marker(&self, location: &Path) -> bool {
        let first = location.prefix_match(self.location.prefix()).and_then(|mut parts| parts.next());
        first.is_some_and(|part| part.as_ref() == MARKER_FOLDER)
    }

    /// Journals one blob's events (or the blob as rejected), then marks it processed.
    async fn process<J: Journal>(
        &self,
        intake: &Intake<J>,
        blob: &ObjectMeta,
        replayed: &mut Replayed,
    ) -> Result<(), Error> {
        let name = blob.location.as_ref();
        let store = self.location.store();
        let read = |error: object_store::Error| Error::new(ErrorKind::Read, name, error);
        let bytes = if blob.size > self.max_blob_bytes {
            None
        } else {
            match store.get(&blob.location).await {
                Ok(found) => Some(found.bytes().await.map_err(read)?),
                // Gone since the listing (someone cleaned up): nothing to journal, nothing to mark.
                Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(error) => return Err(read(error)),
            }
        };
        match bytes.filter(|bytes| bytes.len() as u64 <= self.max_blob_bytes) {
            None => {
                let size = blob.size;
                let head = store.get_range(&blob.location, 0..size.min(HEAD_BYTES)).await.map_err(read)?;
                let reason =
                    format!("dead-letter blob {name}: {size} bytes, over the limit of {}", self.max_blob_bytes);
                self.reject(intake, name, &head, &reason, replayed).await?;
                replayed.blobs_unreadable += 1;
            }
            Some(bytes) => self.journal(intake, name, &bytes, replayed).await?,
        }
        let marker = format!(
            r#"{{"blob":{},"processedAt":"{}"}}"#,
            serde_json::Value::from(name),
            crate::time::format_rfc3339(SystemTime::now(), 3)
        );
        crate::store::put_create(store.as_ref(), &self.marker(&blob.location), Bytes::from(marker))
            .await
            .map_err(|error| Error::new(ErrorKind::Mark, name, error))?;
        replayed.blobs_read += 1;
        self.source.count(SourceOutcome::Acknowledged, 1);
        Ok(())
    }

    /// Journals the entries of a blob that was read.
    async fn journal<J: Journal>(
        &self,
        intake: &Intake<J>,
        name: &str,
        bytes: &Bytes,
        replayed: &mut Replayed,
    ) -> Result<(), Error> {
        let entries = match parse_blob(bytes) {
            Ok(entries) => entries,
            Err(unreadable) => {
                self.reject(intake, name, bytes, &format!("dead-letter blob {name}: {unreadable}"), replayed).await?;
                replayed.blobs_unreadable += 1;
                return Ok(());
            }
        };
        self.source.count(SourceOutcome::Received, entries.len());
        for entry in entries {
            let event = match entry {
                Ok(event) => event,
                Err(unreadable) => {
                    let reason =
                        format!("dead-letter blob {name}, event {}: {}", unreadable.position, unreadable.reason);
                    self.reject(intake, name, unreadable.raw.as_bytes(), &reason, replayed).await?;
                    continue;
                }
            };
            let events = RecordingEvents::from_events(event.events);
            if events.is_empty() && events.rejected().next().is_none() {
                replayed.not_recordings += 1;
                continue;
            }
            replayed.jobs.extend(events.iter().map(|event| JobId::for_event(event.id())));
            // One admission per event: each job keeps its own event's dead-letter properties in its notes.
            let admitted = intake
                .admit_with_notes(&self.source, &events, &[event.properties.note()])
                .await
                .map_err(|error| Error::new(ErrorKind::Admit, name, error))?;
            replayed.events_journaled += admitted.accepted;
            replayed.duplicates += admitted.duplicates;
            replayed.rejected += admitted.rejected;
        }
        Ok(())
    }

    /// Journals text that cannot be events as rejected, with the blob's name in `reason`.
    async fn reject<J: Journal>(
        &self,
        intake: &Intake<J>,
        name: &str,
        raw: &[u8],
        reason: &str,
        replayed: &mut Replayed,
    ) -> Result<(), Error> {
        tracing::warn!(source = %self.source, blob = name, %reason, "unreadable dead-letter entry journaled as rejected");
        let new = intake
            .reject_message(&self.source, raw, reason)
            .await
            .map_err(|error| Error::new(ErrorKind::Admit, name, error))?;
        // The same text rejected before (another copy of the blob): reported once.
        match new {
            true => replayed.rejected += 1,
            false => replayed.duplicates += 1,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
