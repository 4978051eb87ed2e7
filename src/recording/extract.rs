//! The `RecordingEvents` extractor.

use http::Request;
use http_body::Body;

use super::event::RecordingFileStatusUpdated;
use super::subject::RecordingSubject;
use crate::eventgrid::{Error, Event, Events, RejectedData, DEFAULT_MAX_BODY_BYTES};
use crate::BoxError;

/// The `RecordingFileStatusUpdated` events of a delivery, typed.
///
/// Built from the [`Events`] the webhook layer parsed (no second parse), or, without the layer, from the body with
/// the same limits and errors. With the `axum` feature it is an axum extractor (`FromRequest`, so it must be the
/// handler's last argument); elsewhere call [`RecordingEvents::extract`]. Other event types stay reachable through
/// [`RecordingEvents::all`].
///
/// Event Grid never delivers an event again once it got a 200, and ACS deletes a recording 24 hours after it
/// announced it: a handler must persist the recordings (a journal, a queue that acknowledges writes) before it
/// answers 200, and answer 503 when it cannot, so that Event Grid delivers again. The
/// [`Recorder`](crate::recorder::Recorder) (feature `recorder`) does this for you.
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

    /// The `RecordingFileStatusUpdated` events whose data does not fit the schema, with the reason: record them
    /// (they are not retried once the delivery got its 200).
    pub fn rejected(&self) -> impl Iterator<Item = (&Event, &RejectedData)> + '_ {
        self.events.iter().filter_map(|event| event.rejected().map(|rejected| (event, rejected)))
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
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequest<S> for RecordingEvents {
    type Rejection = Error;

    async fn from_request(request: axum_core::extract::Request, _state: &S) -> Result<Self, Error> {
        Self::extract(request).await
    }
}
