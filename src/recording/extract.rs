//! The `RecordingEvents` extractor.

use http::Request;
use http_body::Body;

use super::event::{RecordingChunk, RecordingFileStatusUpdated, RecordingSubject};
use crate::download::{Chunk, RecordingRef};
use crate::eventgrid::{Error, Event, Events, DEFAULT_MAX_BODY_BYTES};
use crate::BoxError;

/// The `RecordingFileStatusUpdated` events of a delivery, typed.
///
/// Built from the [`Events`] the webhook layer parsed (no second parse), or, without the layer, from the body with
/// the same limits and errors. With the `axum` feature it is an axum extractor (`FromRequest`, so it must be the
/// handler's last argument); elsewhere call [`RecordingEvents::extract`]. Other event types stay reachable through
/// [`RecordingEvents::all`].
#[derive(Clone, Debug)]
pub struct RecordingEvents {
    events: Events,
}

impl RecordingEvents {
    /// Wraps parsed events.
    pub fn from_events(events: Events) -> Self {
        Self { events }
    }

    /// Reads the recording events of a request: from the webhook layer's extensions, or from the body (1 MiB
    /// limit, 415/413/400 as the layer answers) when the layer is absent. For another limit, use
    /// [`Events::extract`] and [`RecordingEvents::from_events`].
    pub async fn extract<B>(request: Request<B>) -> Result<Self, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Events::extract(request, DEFAULT_MAX_BODY_BYTES).await.map(Self::from_events)
    }

    /// Iterates over the recording events, in delivery order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { events: self.events.iter() }
    }

    /// The number of recording events.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the delivery held no recording event.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// All events of the delivery, recording or not.
    pub fn all(&self) -> &Events {
        &self.events
    }

    /// Takes all events out.
    pub fn into_events(self) -> Events {
        self.events
    }
}

impl<'a> IntoIterator for &'a RecordingEvents {
    type Item = RecordingEvent<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`RecordingEvent`]s, from [`RecordingEvents::iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    events: std::slice::Iter<'a, Event>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = RecordingEvent<'a>;

    fn next(&mut self) -> Option<RecordingEvent<'a>> {
        self.events.find_map(|event| event.recording_file_status_updated().map(|data| RecordingEvent { event, data }))
    }
}

/// One `RecordingFileStatusUpdated` event: its envelope and its typed data.
#[derive(Clone, Copy, Debug)]
pub struct RecordingEvent<'a> {
    event: &'a Event,
    data: &'a RecordingFileStatusUpdated,
}

impl<'a> RecordingEvent<'a> {
    /// The event id; redeliveries repeat it.
    pub fn id(&self) -> &'a str {
        self.event.id()
    }

    /// The raw subject.
    pub fn subject(&self) -> Option<&'a str> {
        self.event.subject()
    }

    /// The call, server call and recording ids from the subject, in any of its three forms.
    pub fn recording_subject(&self) -> Option<RecordingSubject> {
        self.event.subject().and_then(RecordingSubject::parse)
    }

    /// When the event happened, as sent.
    pub fn time(&self) -> Option<&'a str> {
        self.event.time()
    }

    /// The typed data; its chunks are in `index` order.
    pub fn data(&self) -> &'a RecordingFileStatusUpdated {
        self.data
    }

    /// The whole envelope.
    pub fn event(&self) -> &'a Event {
        self.event
    }

    /// What the download service needs: the call and recording ids from the subject, the format and the chunks.
    /// `None` when the subject is not a recording subject (the call id names the recording's folder).
    pub fn to_recording_ref(&self) -> Option<RecordingRef> {
        let subject = self.recording_subject()?;
        let mut recording = RecordingRef::new(subject.call_id());
        if let Some(recording_id) = subject.recording_id() {
            recording = recording.recording_id(recording_id);
        }
        if let Some(format) = self.data.format_type() {
            recording = recording.format(format.as_str());
        }
        Some(recording.chunks(self.data.chunks().iter().map(Chunk::from)))
    }
}

impl From<&RecordingChunk> for Chunk {
    fn from(chunk: &RecordingChunk) -> Self {
        let mut converted = Chunk::new(chunk.document_id(), chunk.index());
        if let Some(reason) = chunk.end_reason() {
            converted = converted.end_reason(reason.as_str());
        }
        if let Some(url) = chunk.content_location() {
            converted = converted.content_location(url);
        }
        if let Some(url) = chunk.metadata_location() {
            converted = converted.metadata_location(url);
        }
        if let Some(url) = chunk.delete_location() {
            converted = converted.delete_location(url);
        }
        converted
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequest<S> for RecordingEvents {
    type Rejection = Error;

    async fn from_request(request: axum_core::extract::Request, _state: &S) -> Result<Self, Error> {
        Self::extract(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventgrid::Schema;

    #[test]
    fn events_convert_to_download_input_in_both_subject_forms() {
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
               "deleteLocation":"x"}]}}}
        ]"#;
        let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, body.as_bytes()).unwrap());
        assert_eq!(events.len(), 2);
        let refs: Vec<RecordingRef> = events.iter().map(|event| event.to_recording_ref().unwrap()).collect();

        assert_eq!(
            (refs[0].call_id.as_str(), refs[0].recording_id.as_deref(), refs[0].format.as_deref()),
            ("c1", None, None)
        );
        let chunks: Vec<(&str, i64, Option<&str>)> =
            refs[0].chunks.iter().map(|c| (c.document_id.as_str(), c.index, c.end_reason.as_deref())).collect();
        assert_eq!(chunks, [("d0", 0, None), ("d1", 1, Some("SessionEnded"))]);

        assert_eq!(
            (refs[1].call_id.as_str(), refs[1].recording_id.as_deref(), refs[1].format.as_deref()),
            ("c3", Some("r3"), Some("Mp4"))
        );
        let chunk = &refs[1].chunks[0];
        assert_eq!(
            (chunk.content_location.as_deref(), chunk.metadata_location.as_deref(), chunk.delete_location.as_deref()),
            (Some("https://a.asm.skype.com/c"), Some("m"), Some("x"))
        );
    }
}
