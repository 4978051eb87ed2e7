//! A bounded queue between the webhook and the downloader: accept deliveries at once, download in the background.
//!
//! Event Grid waits at most 30 seconds for an answer and retries anything but 200–204, so a webhook should answer
//! as soon as the events are safely accepted, and download afterwards (`SPEC.md` §4). [`DownloadQueue::accept`]
//! does the accepting:
//!
//! 1. Events already accepted (same event `id`, within the [`Deduplicator`]'s limits) are skipped: deliveries are
//!    at least once, and a redelivery must not download a recording twice.
//! 2. The new events of a delivery are queued all together or not at all. When the queue is full or closed the
//!    caller should answer **503**, so that Event Grid delivers again later; the events are then forgotten by
//!    the deduplicator, so that the redelivery is accepted.
//! 3. Otherwise the caller answers **200**.
//!
//! The queue lives in memory: jobs accepted but not yet downloaded are lost if the process dies. The `Recorder`
//! (feature `recorder`) journals them durably before the 200 instead; use it where that matters.
//!
//! # Example
//!
//! ```
//! use acs_recording::eventgrid::{Events, Schema};
//! use acs_recording::queue::DownloadQueue;
//! use acs_recording::recording::RecordingEvents;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (queue, mut jobs) = DownloadQueue::new(16);
//! let body = br#"[{"id":"e1","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1",
//!   "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z",
//!   "dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]},
//!   "recordingStartTime":"2026-11-26T07:59:00Z"}}]"#;
//! let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, body)?);
//!
//! assert_eq!(queue.accept(&events)?.queued, 1);
//! assert_eq!(queue.accept(&events)?.duplicates, 1, "a redelivery queues nothing");
//!
//! let job = jobs.recv().await.unwrap();
//! assert_eq!(job.event_id, "e1");
//! assert_eq!(job.recording.call_id, "c1");
//! assert_eq!(job.recording.chunks[0].document_id(), "d0");
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```

use std::fmt;

use tokio::sync::mpsc;

use crate::eventgrid::Deduplicator;
use crate::recording::{Recording, RecordingEvents};

/// The accepting end of the queue; cheap to clone into every handler.
#[derive(Clone, Debug)]
pub struct DownloadQueue {
    sender: mpsc::Sender<DownloadJob>,
    seen: Deduplicator,
}

/// One recording to download, with the id of the event that announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadJob {
    /// The event id (for logs and for [`DownloadQueue::forget`]).
    pub event_id: String,
    /// What to download.
    pub recording: Recording,
}

/// The receiving end: jobs in the order they were accepted.
#[derive(Debug)]
pub struct DownloadJobs {
    receiver: mpsc::Receiver<DownloadJob>,
}

/// What [`DownloadQueue::accept`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Accepted {
    /// Recording events queued for download.
    pub queued: usize,
    /// Recording events skipped as redeliveries.
    pub duplicates: usize,
}

/// The queue could not take a delivery's events; answer 503 so that Event Grid delivers them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueUnavailable {
    closed: bool,
}

impl QueueUnavailable {
    /// Whether the queue is closed for good (the downloader stopped) rather than full for now.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl fmt::Display for QueueUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.closed { "the download queue is closed" } else { "the download queue is full" })
    }
}

impl std::error::Error for QueueUnavailable {}

impl DownloadQueue {
    /// A queue holding at most `capacity` jobs, with the default [`Deduplicator`].
    pub fn new(capacity: usize) -> (Self, DownloadJobs) {
        Self::with_deduplicator(capacity, Deduplicator::default())
    }

    /// A queue holding at most `capacity` jobs (at least 1), deduplicating with `seen`.
    pub fn with_deduplicator(capacity: usize, seen: Deduplicator) -> (Self, DownloadJobs) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender, seen }, DownloadJobs { receiver })
    }

    /// Queues the recordings of a delivery's new events, all or none (see the module docs).
    pub fn accept(&self, events: &RecordingEvents) -> Result<Accepted, QueueUnavailable> {
        let mut fresh = Vec::new();
        let mut duplicates = 0;
        for event in events {
            if self.seen.first_delivery(event.id()) {
                fresh.push(DownloadJob { event_id: event.id().to_owned(), recording: Recording::from_event(&event) });
            } else {
                duplicates += 1;
            }
        }
        if fresh.is_empty() {
            return Ok(Accepted { queued: 0, duplicates });
        }
        match self.sender.try_reserve_many(fresh.len()) {
            Ok(permits) => {
                let queued = fresh.len();
                for (permit, job) in permits.zip(fresh) {
                    permit.send(job);
                }
                Ok(Accepted { queued, duplicates })
            }
            Err(error) => {
                for job in &fresh {
                    self.seen.forget(&job.event_id);
                }
                Err(QueueUnavailable { closed: matches!(error, mpsc::error::TrySendError::Closed(())) })
            }
        }
    }

    /// Forgets an event id, so that a redelivery of it is accepted again (for a job whose download failed and
    /// should be retried on Event Grid's next delivery).
    pub fn forget(&self, event_id: &str) {
        self.seen.forget(event_id);
    }
}

impl DownloadJobs {
    /// The next job; `None` once every [`DownloadQueue`] clone is dropped and the queue is drained, which is how
    /// a worker learns that the webhook has shut down.
    pub async fn recv(&mut self) -> Option<DownloadJob> {
        self.receiver.recv().await
    }

    /// Stops accepting: later [`DownloadQueue::accept`] calls fail as closed, while jobs already queued can still
    /// be received.
    pub fn close(&mut self) {
        self.receiver.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventgrid::{Events, Schema};

    fn delivery(ids: &[&str]) -> RecordingEvents {
        let events: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    r#"{{"id":"{id}","subject":"/recording/call/c-{id}","eventType":"Microsoft.Communication.RecordingFileStatusUpdated",
                    "eventTime":"2026-11-26T08:00:00Z","dataVersion":"1.0","data":{{"recordingStorageInfo":
                    {{"recordingChunks":[{{"documentId":"d-{id}","index":0}}]}},"recordingStartTime":"2026-11-26T07:00:00Z"}}}}"#
                )
            })
            .collect();
        let body = format!("[{}]", events.join(","));
        RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap())
    }

    #[tokio::test]
    async fn a_full_queue_takes_nothing_and_forgets_the_ids() {
        let (queue, mut jobs) = DownloadQueue::new(2);
        assert_eq!(queue.accept(&delivery(&["a"])).unwrap(), Accepted { queued: 1, duplicates: 0 });
        // Two new events do not fit in the one free slot: none is queued.
        let error = queue.accept(&delivery(&["b", "c"])).unwrap_err();
        assert!(!error.is_closed());
        assert_eq!(error.to_string(), "the download queue is full");
        assert_eq!(jobs.recv().await.unwrap().event_id, "a");
        // The redelivery is accepted in full, since the refused ids were forgotten.
        assert_eq!(queue.accept(&delivery(&["b", "c", "a"])).unwrap(), Accepted { queued: 2, duplicates: 1 });
        assert_eq!(jobs.recv().await.unwrap().recording.call_id, "c-b");
        assert_eq!(jobs.recv().await.unwrap().recording.call_id, "c-c");
    }

    #[tokio::test]
    async fn a_closed_queue_reports_closed() {
        let (queue, mut jobs) = DownloadQueue::new(4);
        jobs.close();
        let error = queue.accept(&delivery(&["a"])).unwrap_err();
        assert!(error.is_closed());
        assert_eq!(error.to_string(), "the download queue is closed");
    }

    #[tokio::test]
    async fn jobs_end_when_every_queue_is_dropped() {
        let (queue, mut jobs) = DownloadQueue::new(4);
        queue.accept(&delivery(&["a"])).unwrap();
        drop(queue);
        assert!(jobs.recv().await.is_some());
        assert!(jobs.recv().await.is_none());
    }
}
