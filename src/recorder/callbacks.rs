//! The callback route's inner service: Call Automation's `RecordingStateChanged` and `StartRecordingFailed`
//! callbacks into the journal's tracked recordings, then 200 (or 503).

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::future::ResponseFuture;
use super::intake::{problem, unavailable};
use super::shared::Shared;
use super::tracking;
use crate::clock::Clock as _;
use crate::eventgrid::Events;
use crate::journal::{Journal, TrackedRecording};
use crate::recording::{CallAutomationEvents, RecordingCallback, RecordingState};

/// The service behind the callback route ([`Recorder::callbacks`](super::Recorder::callbacks)): each recording
/// callback of a delivery is made durable in the journal before the answer.
///
/// 1. `RecordingStateChanged` tracks its recording, known or not: `active` (started, or resumed) awaits the
///    event; `inactive` (paused or stopped: the callback does not tell them apart) starts the window after which
///    a recording without an event is reported `missing`. A recording that records again awaits again.
/// 2. `StartRecordingFailed` fails the record of a tracked recording, with the reason.
/// 3. Other callbacks, and recording callbacks that name no recording or whose data does not fit, are answered 200
///    and kept nowhere: Call Automation would send them again in vain.
/// 4. **200** with `{"tracked":N}` once every record is durable; **503** with `Retry-After` when the journal
///    cannot write or the recorder is shutting down.
pub struct CallbackIntake<J> {
    shared: Arc<Shared<J>>,
}

impl<J> Clone for CallbackIntake<J> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<J> fmt::Debug for CallbackIntake<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackIntake").finish_non_exhaustive()
    }
}

impl<J> CallbackIntake<J> {
    pub(crate) fn new(shared: Arc<Shared<J>>) -> Self {
        Self { shared }
    }
}

impl<J: Journal> CallbackIntake<J> {
    /// Tracks the recordings of a delivery's callbacks (see the type's rules); answers how many callbacks were
    /// kept. `Ok` means every one is durable.
    pub async fn admit(&self, callbacks: &CallAutomationEvents) -> io::Result<usize> {
        let shared = &self.shared;
        let mut kept = 0;
        for callback in callbacks.iter() {
            let now = shared.clock.now();
            match callback.callback() {
                RecordingCallback::StateChanged(changed) => {
                    let Some(recording_id) = changed.recording_id.as_deref() else { continue };
                    let started = changed.start_date_time.as_deref().and_then(crate::time::parse_rfc3339);
                    let mut seen = TrackedRecording::new(recording_id, started.unwrap_or(now).min(now));
                    seen.call_connection_id.clone_from(&changed.call_connection_id);
                    seen.server_call_id.clone_from(&changed.server_call_id);
                    match changed.state {
                        Some(RecordingState::Active) => {}
                        Some(RecordingState::Inactive) => seen.stopped_at = Some(now),
                        _ => continue,
                    }
                    tracking::track(shared, seen).await?;
                    kept += 1;
                }
                RecordingCallback::StartFailed(failed) => {
                    let Some(recording_id) = failed.recording_id.as_deref() else { continue };
                    let reason = failed
                        .result_information
                        .as_ref()
                        .and_then(|result| result.message.as_deref())
                        .unwrap_or("StartRecordingFailed");
                    let reason: String = reason.chars().take(200).collect();
                    if tracking::start_failed(shared, recording_id, &reason).await? {
                        kept += 1;
                    }
                }
            }
        }
        Ok(kept)
    }
}

impl<J: Journal, B> Service<Request<B>> for CallbackIntake<J> {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> ResponseFuture {
        let intake = self.clone();
        let events = request.extensions_mut().remove::<Events>();
        ResponseFuture::new(async move { accept(intake, events).await })
    }
}

async fn accept<J: Journal>(intake: CallbackIntake<J>, events: Option<Events>) -> Response<Full<Bytes>> {
    let Some(events) = events else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the EventGridWebhookLayer is not in front of the callbacks",
        );
    };
    if !intake.shared.accepting.load(Ordering::Acquire) {
        return unavailable("the recorder is shutting down");
    }
    let callbacks = CallAutomationEvents::from_events(events);
    for (event, reason) in callbacks.rejected() {
        tracing::warn!(event_id = %event.id(), reason, "recording callback does not fit its type; ignored");
    }
    // Tracking runs as a task of its own, so that a caller going away cannot stop it half-way.
    let tracked = tokio::spawn(async move { intake.admit(&callbacks).await })
        .await
        .unwrap_or_else(|error| Err(io::Error::other(error)));
    match tracked {
        Ok(kept) => {
            let mut response = Response::new(Full::new(Bytes::from(format!(r#"{{"tracked":{kept}}}"#))));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => {
            let reason = format!("the journal cannot write: {error}");
            tracing::warn!(reason = %reason, "callback refused with 503; Call Automation sends it again");
            unavailable(&reason)
        }
    }
}
