//! The [`CallAutomationEvents`] extractor: Call Automation's recording callbacks of a request, typed.

use http::Request;
use http_body::Body;

use super::callback::RecordingCallback;
use crate::eventgrid::{Error, Event, EventData, Events, Schema, DEFAULT_MAX_BODY_BYTES};
use crate::BoxError;

/// The `RecordingStateChanged` and `StartRecordingFailed` callbacks of one Call Automation delivery.
///
/// Call Automation posts a JSON array of CloudEvents to the callback URL, with no Event Grid handshake: this
/// extractor reads the body as CloudEvents whether it is labelled `application/json` or
/// `application/cloudevents-batch+json` (415 for anything else, 413 over 1 MiB, 400 for what is not CloudEvents
/// JSON), or takes the [`Events`] a layer already put in the request extensions. With the `axum` feature it is an
/// axum extractor (`FromRequest`: the handler's last argument); elsewhere call [`CallAutomationEvents::extract`].
/// Other callbacks (`CallConnected`, `PlayCompleted`, ...) stay reachable through [`CallAutomationEvents::all`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use acs_recording::recording::{CallAutomationEvents, RecordingCallback, RecordingState};
///
/// let body = r#"[{"id":"1","source":"calling/callConnections/c1","type":"Microsoft.Communication.RecordingStateChanged",
///     "specversion":"1.0","data":{"recordingId":"r1","state":"active","callConnectionId":"c1"}}]"#;
/// let request = http::Request::post("/api/callbacks").header("content-type", "application/json").body(body.to_owned())?;
/// let callbacks = CallAutomationEvents::extract(request).await?;
/// let first = callbacks.iter().next().unwrap();
/// assert_eq!(first.id(), "1");
/// let RecordingCallback::StateChanged(changed) = first.callback() else { panic!("a state change") };
/// assert_eq!(changed.state, Some(RecordingState::Active));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct CallAutomationEvents {
    events: Events,
    /// For each recording callback, its event's position and its typed data (or why it does not fit).
    typed: Vec<(usize, Result<RecordingCallback, String>)>,
}

impl CallAutomationEvents {
    /// Types the recording callbacks among parsed events (their data, kept raw by the envelope parse, is typed
    /// here, once). A callback whose data does not fit is kept apart with the reason, in
    /// [`rejected`](Self::rejected).
    pub fn from_events(events: Events) -> Self {
        let typed = events
            .iter()
            .enumerate()
            .filter_map(|(at, event)| {
                let EventData::Other(Some(raw)) = event.data() else { return None };
                let parsed = RecordingCallback::parse(event.event_type(), raw.get())?;
                Some((at, parsed.map_err(|e| format!("invalid data for {}: {e}", event.event_type()))))
            })
            .collect();
        Self { events, typed }
    }

    /// Reads the callbacks of a request: from its extensions, or from its body as CloudEvents (1 MiB limit).
    pub async fn extract<B>(request: Request<B>) -> Result<Self, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Events::extract_as(request, Schema::CloudEvents, DEFAULT_MAX_BODY_BYTES).await.map(Self::from_events)
    }

    /// The recording callbacks, in delivery order.
    pub fn iter(&self) -> impl Iterator<Item = CallbackEvent<'_>> + '_ {
        self.typed.iter().filter_map(|(at, typed)| {
            let callback = typed.as_ref().ok()?;
            Some(CallbackEvent { event: &self.events.as_slice()[*at], callback })
        })
    }

    /// The recording callbacks whose data does not fit, with the reason.
    pub fn rejected(&self) -> impl Iterator<Item = (&Event, &str)> + '_ {
        self.typed.iter().filter_map(|(at, typed)| {
            let reason = typed.as_ref().err()?;
            Some((&self.events.as_slice()[*at], reason.as_str()))
        })
    }

    /// The number of recording callbacks that were typed.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the delivery held no recording callback.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// All events of the delivery, recording callbacks or not.
    pub fn all(&self) -> &Events {
        &self.events
    }
}

/// One recording callback: its CloudEvents envelope and its typed data.
#[derive(Clone, Copy, Debug)]
pub struct CallbackEvent<'a> {
    event: &'a Event,
    callback: &'a RecordingCallback,
}

impl<'a> CallbackEvent<'a> {
    /// The CloudEvent id; a redelivery repeats it.
    pub fn id(&self) -> &'a str {
        self.event.id()
    }

    /// The CloudEvent `source`, such as `calling/callConnections/{callConnectionId}`.
    pub fn source(&self) -> Option<&'a str> {
        self.event.source()
    }

    /// The CloudEvent `subject`, when sent.
    pub fn subject(&self) -> Option<&'a str> {
        self.event.subject()
    }

    /// When the event happened, as sent.
    pub fn time(&self) -> Option<&'a str> {
        self.event.time()
    }

    /// The typed callback.
    pub fn callback(&self) -> &'a RecordingCallback {
        self.callback
    }

    /// The whole envelope.
    pub fn event(&self) -> &'a Event {
        self.event
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequest<S> for CallAutomationEvents {
    type Rejection = Error;

    async fn from_request(request: axum_core::extract::Request, _state: &S) -> Result<Self, Error> {
        Self::extract(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_whose_data_does_not_fit_is_kept_apart_with_the_reason() {
        let body = r#"[
            {"id":"1","source":"s","type":"Microsoft.Communication.StartRecordingFailed","data":{"recordingId":"r"}},
            {"id":"2","source":"s","type":"Microsoft.Communication.RecordingStateChanged","data":{"state":7}},
            {"id":"3","source":"s","type":"Microsoft.Communication.CallConnected","data":{}}
        ]"#;
        let callbacks =
            CallAutomationEvents::from_events(Events::from_slice(Schema::CloudEvents, body.as_bytes()).unwrap());
        let ids: Vec<&str> = callbacks.iter().map(|c| c.id()).collect();
        assert_eq!(ids, ["1"]);
        let rejected: Vec<(&str, &str)> = callbacks.rejected().map(|(e, why)| (e.id(), why)).collect();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, "2");
        assert!(
            rejected[0].1.starts_with("invalid data for Microsoft.Communication.RecordingStateChanged: invalid type"),
            "{}",
            rejected[0].1
        );
        assert_eq!(callbacks.all().len(), 3);
    }
}
