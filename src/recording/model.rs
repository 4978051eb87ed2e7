//! [`Recording`]: what a `RecordingFileStatusUpdated` event asks to download, as the download service and the
//! journal take it.

use serde::{Deserialize, Serialize};

use super::byos::ExportedRecording;
use super::chunk::RecordingChunk;
use super::extract::RecordingEvent;
use super::values::{RecordingFormatType, RecordingStorageType};

/// A recording to download: the call it belongs to, its format and its chunks (in any order; they are downloaded
/// in `index` order).
///
/// ```
/// use acs_recording::recording::{Recording, RecordingChunk};
///
/// let recording = Recording::new("call-1")
///     .format("Wav")
///     .chunk(RecordingChunk::new("0-eus-d2-3cca", 0).with_content_location("https://eu.asm.skype.com/v1/objects/0-eus-d2-3cca/content/audio"));
/// assert_eq!(recording.chunks[0].content_location(), Some("https://eu.asm.skype.com/v1/objects/0-eus-d2-3cca/content/audio"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Recording {
    /// The call id: the recording's folder name in the [`DirectorySink`](crate::download::sink::DirectorySink).
    pub call_id: String,
    /// The recording id, from the event's subject or its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// When the recording started (`recordingStartTime`), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Where ACS put the recording (`storageType`), when the event says: see [`Recording::exported`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<RecordingStorageType>,
    /// `recordingFormatType`: picks the file extension. When absent, the format named in each chunk's metadata
    /// document is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<RecordingFormatType>,
    /// The chunks, in any order.
    pub chunks: Vec<RecordingChunk>,
}

impl Recording {
    /// A recording of `call_id` with no chunks yet.
    pub fn new(call_id: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            recording_id: None,
            start_time: None,
            storage_type: None,
            format: None,
            chunks: Vec::new(),
        }
    }

    /// The recording a `RecordingFileStatusUpdated` event announces: the call and recording ids from its subject
    /// (the recording id from the data when the subject has none), its start time, storage and format types, and
    /// all its chunks. An event whose subject does not parse is filed under its event id, so that nothing is lost.
    pub fn from_event(event: &RecordingEvent<'_>) -> Self {
        let data = event.data();
        let mut recording = match event.recording_subject() {
            Some(subject) => {
                let recording = Self::new(subject.call_id());
                match subject.recording_id() {
                    Some(id) => recording.recording_id(id),
                    None => recording,
                }
            }
            None => Self::new(event.id()),
        };
        if recording.recording_id.is_none() {
            recording.recording_id = data.recording_id().map(str::to_owned);
        }
        recording.start_time = data.recording_start_time().map(str::to_owned);
        recording.storage_type = data.storage_type().cloned();
        recording.format = data.format_type().cloned();
        recording.chunks(data.chunks().iter().cloned())
    }

    /// Where the recording is when ACS exported it to the customer's container (bring your own storage,
    /// `storageType` [external](RecordingStorageType::is_external)); `None` when it is in ACS storage, the export
    /// failed, or the event does not say: then it is to be downloaded.
    pub fn exported(&self) -> Option<ExportedRecording> {
        let storage_type = self.storage_type.as_ref().filter(|t| t.is_external())?;
        Some(ExportedRecording::new(
            storage_type.clone(),
            &self.call_id,
            self.recording_id.as_deref(),
            self.start_time.as_deref(),
        ))
    }

    /// Sets when the recording started (`recordingStartTime`).
    pub fn start_time(mut self, time: impl Into<String>) -> Self {
        self.start_time = Some(time.into());
        self
    }

    /// Sets where ACS put the recording (`storageType`).
    pub fn storage_type(mut self, storage_type: RecordingStorageType) -> Self {
        self.storage_type = Some(storage_type);
        self
    }

    /// Sets the recording id.
    pub fn recording_id(mut self, id: impl Into<String>) -> Self {
        self.recording_id = Some(id.into());
        self
    }

    /// Sets the format type (`recordingFormatType`).
    pub fn format(mut self, format: impl Into<RecordingFormatType>) -> Self {
        self.format = Some(format.into());
        self
    }

    /// Adds a chunk.
    pub fn chunk(mut self, chunk: RecordingChunk) -> Self {
        self.chunks.push(chunk);
        self
    }

    /// Adds chunks.
    pub fn chunks(mut self, chunks: impl IntoIterator<Item = RecordingChunk>) -> Self {
        self.chunks.extend(chunks);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventgrid::{Events, Schema};
    use crate::recording::RecordingEvents;

    fn events(body: &str) -> RecordingEvents {
        RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap())
    }

    #[test]
    fn events_convert_in_every_subject_form_and_fall_back_to_the_event_id() {
        let body = r#"[
            {"id":"1","subject":"/recording/call/c1","eventType":"Microsoft.Communication.RecordingFileStatusUpdated",
             "eventTime":"t","dataVersion":"1.0","data":{"recordingStartTime":"t","recordingStorageInfo":
             {"recordingChunks":[{"documentId":"d1","index":1,"endReason":"SessionEnded"},{"documentId":"d0","index":0}]}}},
            {"id":"2","subject":"/recording/call/c2/serverCallId/s2/recordingId/r2","eventType":"Contoso.Other",
             "eventTime":"t","dataVersion":"1.0","data":{}},
            {"id":"3","subject":"/recording/call/c3/serverCallId/s3/recordingId/r3",
             "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"t","dataVersion":"1.0",
             "data":{"recordingStartTime":"t","recordingFormatType":"Mp4","recordingStorageInfo":{"recordingChunks":
             [{"documentId":"d","index":0,"contentLocation":"https://a.asm.skype.com/c","metadataLocation":"m",
               "deleteLocation":"x"}]}}},
            {"id":"4","subject":"/not/a/recording","eventType":"Microsoft.Communication.RecordingFileStatusUpdated",
             "eventTime":"t","dataVersion":"1.0","data":{"recordingStartTime":"t","recordingStorageInfo":
             {"recordingChunks":[{"documentId":"d4","index":0}]}}}
        ]"#;
        let events = events(body);
        let recordings: Vec<Recording> = events.iter().map(|event| Recording::from_event(&event)).collect();
        assert_eq!(recordings.len(), 3);

        assert_eq!((recordings[0].call_id.as_str(), recordings[0].recording_id.as_deref()), ("c1", None));
        assert_eq!(recordings[0].format, None);
        let ids: Vec<(&str, i64)> = recordings[0].chunks.iter().map(|c| (c.document_id(), c.index())).collect();
        assert_eq!(ids, [("d0", 0), ("d1", 1)]);

        assert_eq!((recordings[1].call_id.as_str(), recordings[1].recording_id.as_deref()), ("c3", Some("r3")));
        assert_eq!(recordings[1].format, Some(RecordingFormatType::Mp4));
        let chunk = &recordings[1].chunks[0];
        assert_eq!(
            (chunk.content_location(), chunk.metadata_location(), chunk.delete_location()),
            (Some("https://a.asm.skype.com/c"), Some("m"), Some("x"))
        );

        // A subject that does not parse files the recording under the event id rather than refusing it.
        assert_eq!(recordings[2].call_id, "4");
        assert_eq!(recordings[2].chunks[0].document_id(), "d4");
    }

    #[test]
    fn a_recording_survives_a_round_trip_through_json() {
        let recording = Recording::new("c")
            .recording_id("r")
            .format("Wav")
            .chunk(RecordingChunk::new("d", 0).with_locations("https://a/c", "https://a/m", "https://a/x"));
        let text = serde_json::to_string(&recording).unwrap();
        assert_eq!(serde_json::from_str::<Recording>(&text).unwrap(), recording);
    }
}
