//! Where events come from: the webhook, a Storage queue, an Event Grid namespace subscription, dead-letter blobs.
//!
//! ```
//! use acs_recording::recorder::{Source, SourceKind, SourceOutcome};
//!
//! let source = Source::new(SourceKind::StorageQueue, "acs-events");
//! assert_eq!(source.to_string(), "queue:acs-events");
//! assert_eq!(Source::webhook().to_string(), "webhook");
//! source.count(SourceOutcome::Received, 3); // a metric; free without an installed recorder
//! ```
//!
//! # Rules
//! - Every source keeps one promise: it acknowledges an event to where it came from (a 200, a deleted message, an
//!   acknowledged lock token, a blob marked processed) only after [`Intake::admit_from`](super::Intake::admit_from)
//!   returned `Ok`, so a journal that cannot write leaves the event to come again, and a redelivery is a duplicate.
//! - A message that can never be an event is journaled as rejected with its text and the reason
//!   ([`Intake::reject_message`](super::Intake::reject_message)) before it is acknowledged: nothing is dropped
//!   silently.
//! - Each job records its source (`Job::source`, in this type's text form), which `status` shows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::metrics;

/// The kind of door an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// Event Grid's push delivery to the recorder's HTTPS endpoint.
    Webhook,
    /// An Azure Storage queue that an Event Grid subscription delivers to.
    StorageQueue,
    /// An Event Grid namespace topic's event subscription, read with pull delivery.
    NamespacePull,
    /// Dead-lettered events in a blob container.
    DeadLetters,
}

impl SourceKind {
    /// The kind's label in metrics and in [`Source`]'s text: `webhook`, `queue`, `pull`, `dead-letters`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::StorageQueue => "queue",
            Self::NamespacePull => "pull",
            Self::DeadLetters => "dead-letters",
        }
    }
}

/// One source of events: its kind and a name that tells it apart from others of its kind (a queue's name, an
/// event subscription's path, a container). Cheap to clone.
///
/// Its text form, recorded with each job, is `kind:name` (`queue:acs-events`), or `webhook` for the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    kind: SourceKind,
    name: Arc<str>,
}

/// What became of a source's messages, counted in `acs_recording_source_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceOutcome {
    /// Messages (or events) taken from the source.
    Received,
    /// Recording events journaled as new jobs (counted by the intake).
    Journaled,
    /// Recording events seen before (counted by the intake).
    Duplicate,
    /// Events or messages journaled as rejected (counted by the intake).
    Rejected,
    /// Messages moved aside after failing too often (a poison queue, a rejected lock token).
    Poisoned,
    /// Messages acknowledged to the source after their events were durable.
    Acknowledged,
    /// Messages handed back to the source to be delivered again (a transient failure).
    Released,
}

impl SourceOutcome {
    /// The outcome's label in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Journaled => "journaled",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Poisoned => "poisoned",
            Self::Acknowledged => "acknowledged",
            Self::Released => "released",
        }
    }
}

impl Source {
    /// A source of `kind` named `name`.
    pub fn new(kind: SourceKind, name: impl Into<String>) -> Self {
        Self { kind, name: Arc::from(name.into()) }
    }

    /// The webhook.
    pub fn webhook() -> Self {
        Self::new(SourceKind::Webhook, "")
    }

    /// The kind of source.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The source's name (empty for the webhook).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts `n` messages with `outcome` in `acs_recording_source_messages_total{source, name, outcome}`. The
    /// intake counts what it journaled for every source but the webhook, whose deliveries and events have counters
    /// of their own (`acs_recording_deliveries_total`, `acs_recording_events_total`).
    pub fn count(&self, outcome: SourceOutcome, n: usize) {
        metrics::source_messages(self.kind.as_str(), &self.name, outcome.as_str(), n);
    }

    /// Sets `acs_recording_source_oldest_message_seconds{source, name}`: the age of the oldest message waiting,
    /// where the service tells it.
    pub fn oldest_message_age(&self, age: Duration) {
        metrics::source_oldest(self.kind.as_str(), &self.name, age);
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}:{}", self.kind.as_str(), self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        assert_eq!(Source::webhook().to_string(), "webhook");
        assert_eq!(Source::new(SourceKind::StorageQueue, "q1").to_string(), "queue:q1");
        assert_eq!(
            Source::new(SourceKind::NamespacePull, "topics/t/eventsubscriptions/s").to_string(),
            "pull:topics/t/eventsubscriptions/s"
        );
        assert_eq!(Source::new(SourceKind::DeadLetters, "dl").to_string(), "dead-letters:dl");
    }
}
