//! Bring your own storage: where ACS exported a recording to the customer's container.
//!
//! A recording started with external storage is written by ACS into the customer's Azure Blob container, and the
//! `RecordingFileStatusUpdated` event says so with `storageType` (and carries the `recordingId`). When the export
//! failed, the event names ACS storage instead and its locations stay downloadable for 24 hours. The export's
//! folder layout, as documented (MicrosoftDocs/azure-docs
//! `articles/communication-services/quickstarts/call-automation/call-recording/bring-your-own-storage.md`):
//!
//! ```text
//! /{YYYYMMDD}/{callId}/{first 8 characters of recordingId}-{guid}/{chunk}-acsmetadata.{documentId}.json
//! /{YYYYMMDD}/{callId}/{first 8 characters of recordingId}-{guid}/{chunk}-audiomp3.{documentId}.mp3
//! ```
//!
//! The event does not carry the container or the `{guid}`: [`ExportedRecording::folder_prefix`] is the part of the
//! path that can be known from the event, the date taken from `recordingStartTime`.
//!
//! ```
//! use acs_recording::recording::{Recording, RecordingStorageType};
//!
//! let recording = Recording::new("7d1c2b3a")
//!     .recording_id("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0")
//!     .start_time("2025-06-02T09:30:00.1234567Z")
//!     .storage_type(RecordingStorageType::AzureBlob);
//! let exported = recording.exported().expect("exported to the customer's container");
//! assert_eq!(exported.folder_prefix.as_deref(), Some("20250602/7d1c2b3a/eyJQbGF0-"));
//!
//! // A failed export names ACS storage: download it as usual.
//! assert!(recording.storage_type(RecordingStorageType::AcsStorage).exported().is_none());
//! ```

use serde::{Deserialize, Serialize};

use super::values::RecordingStorageType;

/// A recording that ACS exported to the customer's container, and what the event tells of where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ExportedRecording {
    /// The event's `storageType`.
    pub storage_type: RecordingStorageType,
    /// The call id.
    pub call_id: String,
    /// The recording id, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// `{YYYYMMDD}/{callId}/{first 8 characters of recordingId}-`: the start of the export's folder in the
    /// container, when the start time and recording id are known. The `{guid}` after it is not in the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_prefix: Option<String>,
}

impl ExportedRecording {
    /// What is known of an export of `call_id`'s recording.
    pub(super) fn new(
        storage_type: RecordingStorageType,
        call_id: &str,
        recording_id: Option<&str>,
        start_time: Option<&str>,
    ) -> Self {
        let folder_prefix = match (start_time.and_then(date_of), recording_id) {
            (Some(date), Some(id)) => Some(format!("{date}/{call_id}/{}-", id.chars().take(8).collect::<String>())),
            _ => None,
        };
        Self { storage_type, call_id: call_id.to_owned(), recording_id: recording_id.map(str::to_owned), folder_prefix }
    }
}

/// `YYYYMMDD` from an ISO 8601 time that starts with `YYYY-MM-DD`.
fn date_of(time: &str) -> Option<String> {
    let date = time.get(..10)?.as_bytes();
    let digits = |range: std::ops::Range<usize>| date[range].iter().all(u8::is_ascii_digit);
    (digits(0..4) && date[4] == b'-' && digits(5..7) && date[7] == b'-' && digits(8..10))
        .then(|| format!("{}{}{}", &time[..4], &time[5..7], &time[8..10]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_prefix_needs_a_start_date_and_a_recording_id() {
        let cases = [
            (Some("r-1234567890"), Some("2025-06-02T09:30:00Z"), Some("20250602/c/r-123456-")),
            (Some("short"), Some("2025-12-31"), Some("20251231/c/short-")),
            (None, Some("2025-06-02T09:30:00Z"), None),
            (Some("r"), None, None),
            (Some("r"), Some("02/06/2025"), None),
            (Some("r"), Some("2025"), None),
        ];
        for (recording_id, start, expected) in cases {
            let exported = ExportedRecording::new(RecordingStorageType::AzureBlob, "c", recording_id, start);
            assert_eq!(exported.folder_prefix.as_deref(), expected, "{recording_id:?} {start:?}");
        }
    }
}
