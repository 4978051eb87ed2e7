//! The recorder's metrics, through the `metrics` facade: install any recorder (for instance a Prometheus
//! exporter) to collect them; without one they cost nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `acs_recording_deliveries_total` | counter | `outcome`: `accepted`, `duplicate`, `unavailable` |
//! | `acs_recording_events_total` | counter | `outcome`: `accepted`, `duplicate`, `rejected` |
//! | `acs_recording_jobs` | gauge | `state`: `pending`, `running`, `done`, `failed`, `rejected`, `awaiting`, `missing`, `linked` |
//! | `acs_recording_downloaded_bytes_total` | counter | |
//! | `acs_recording_retries_total` | counter | |
//! | `acs_recording_event_to_download_seconds` | histogram | |
//! | `acs_recording_journal_unreadable_records_total` | counter | |
//! | `acs_recording_source_messages_total` | counter | `source` (`webhook`, `queue`, `pull`, `dead-letters`), `name`, `outcome` (`received`, `journaled`, `duplicate`, `rejected`, `poisoned`, `acknowledged`, `released`) |
//! | `acs_recording_source_oldest_message_seconds` | gauge | `source`, `name` |

use std::time::Duration;

use crate::journal::JobState;

/// Deliveries by outcome.
pub const DELIVERIES: &str = "acs_recording_deliveries_total";
/// Events by outcome.
pub const EVENTS: &str = "acs_recording_events_total";
/// Jobs by state; `missing` counts the started recordings whose event did not come in time.
pub const JOBS: &str = "acs_recording_jobs";
/// Media bytes stored.
pub const DOWNLOADED_BYTES: &str = "acs_recording_downloaded_bytes_total";
/// Job attempts scheduled again after a failure.
pub const RETRIES: &str = "acs_recording_retries_total";
/// Journal records skipped because they cannot be read (damaged, or from a newer version).
pub const UNREADABLE_RECORDS: &str = crate::journal::UNREADABLE_RECORDS;
/// Messages per source and outcome; see [`Source::count`](super::Source::count).
pub const SOURCE_MESSAGES: &str = "acs_recording_source_messages_total";
/// The age of the oldest message waiting in a source, where the service tells it.
pub const SOURCE_OLDEST_MESSAGE: &str = "acs_recording_source_oldest_message_seconds";
/// Seconds from the webhook's acceptance of an event to its last chunk in the sink.
pub const EVENT_TO_DOWNLOAD: &str = "acs_recording_event_to_download_seconds";

pub(crate) fn delivery(outcome: &'static str) {
    metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
}

pub(crate) fn events(outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(EVENTS, "outcome" => outcome).increment(n as u64);
    }
}

pub(crate) fn jobs(state: JobState, n: usize) {
    metrics::gauge!(JOBS, "state" => state.as_str()).set(n as f64);
}

pub(crate) fn downloaded(bytes: u64) {
    metrics::counter!(DOWNLOADED_BYTES).increment(bytes);
}

pub(crate) fn retry() {
    metrics::counter!(RETRIES).increment(1);
}

pub(crate) fn completed(after: Duration) {
    metrics::histogram!(EVENT_TO_DOWNLOAD).record(after.as_secs_f64());
}

pub(crate) fn source_messages(source: &'static str, name: &str, outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::counter!(SOURCE_MESSAGES, "source" => source, "name" => name.to_owned(), "outcome" => outcome)
            .increment(n as u64);
    }
}

pub(crate) fn source_oldest(source: &'static str, name: &str, age: Duration) {
    metrics::gauge!(SOURCE_OLDEST_MESSAGE, "source" => source, "name" => name.to_owned()).set(age.as_secs_f64());
}
