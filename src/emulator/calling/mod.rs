//! Call Automation's recording operations on the emulator's endpoint: start, pause, resume, state and stop of a
//! call's recording, with the `RecordingStateChanged` callbacks and, on stop, the chunks stored and announced.
//!
//! # Rules
//!
//! 1. `POST /calling/recordings` starts a recording (200 with `recordingId`, `recordingState`, `recordingKind`);
//!    `POST /calling/recordings/{id}:pause` and `:resume` answer 202, `GET /calling/recordings/{id}` 200 with the
//!    state, `DELETE /calling/recordings/{id}` 204. They are served on the endpoint only, behind the same HMAC
//!    signature or bearer token as the storage.
//! 2. Every operation needs the `api-version` query parameter (a date such as `2024-09-15`, optionally
//!    `-preview`); without one the answer is 400 `MissingApiVersionParameter`. Errors have Call Automation's shape,
//!    `{"error":{"code":"...","message":"..."}}`: 400 for a body that is not a start request (or names the call
//!    by a room locator, which the API does not start recordings from), 401 for a failed signature or token, 404
//!    for a recording the emulator does not know (or a stopped one, on `GET`), 409 for an operation the
//!    recording's state does not allow (anything on a stopped recording, a second start for a call being
//!    recorded).
//! 3. A recording is active, or inactive while paused (from the start with `pauseOnStart`); resume makes it
//!    active again; stop ends it. Pausing a paused recording or resuming an active one is accepted and changes
//!    nothing.
//! 4. Each change of state is posted to the start request's `recordingStateCallbackUri` as Call Automation sends
//!    it: a JSON array of one CloudEvent of type `Microsoft.Communication.RecordingStateChanged`, in order, one at
//!    a time. Stopping announces `inactive`.
//! 5. On stop the recording's chunks are stored (the emulator's chunk limit applies; content, channel and format
//!    as the start request asked) and a `RecordingFileStatusUpdated` naming them is delivered to every Event Grid
//!    subscriber.
//! 6. A `POST` with a `Repeatability-Request-ID` already answered with a success gets that answer again, with
//!    `Repeatability-Result: accepted`; it is not carried out a second time.
//! 7. The media stored is always the emulator's synthetic WAV tone; the event labels it with the content, channel
//!    and format types asked for. Callbacks go over plain `http`: an `https` callback URI is accepted, and its
//!    callbacks are lost (logged), as are those a receiver refuses.

mod callbacks;
mod lifecycle;
mod reply;
mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use percent_encoding::percent_decode_str;
use tokio::task::JoinHandle;

use super::eventgrid::{recording_file_status_updated, EventGridPublisher, ACS_TOPIC};
use super::namespace::NamespaceTopic;
use super::{iso8601, RecordingSpec, Storage, StorageBody, StoredRecording};
use crate::calling::RecordingStatus;
use crate::recording::{RecordingChannelType, RecordingKind};
use callbacks::{Announcement, Callbacks};
use lifecycle::{Change, Phase};
use reply::{error, Refusal, Replies, Reply};
use start::Start;

pub(crate) use reply::unauthorized;

/// Audio bytes a recording stopped through Call Automation stores by default: one second of the emulator's tone.
pub(crate) const DEFAULT_CALL_RECORDING_BYTES: u64 = 96_000;

/// The recording operations' state: recordings by id, the answers to repeatable requests, the Event Grid
/// subscribers. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Calling {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    storage: Storage,
    callbacks: Callbacks,
    recording_bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    recordings: HashMap<String, CallRecording>,
    replies: Replies,
    subscribers: Vec<EventGridPublisher>,
    /// Namespace topics the recording events are published to (pull delivery).
    namespaces: Vec<NamespaceTopic>,
}

/// One recording started through Call Automation.
#[derive(Debug)]
struct CallRecording {
    phase: Phase,
    start: Start,
    start_date_time: String,
}

enum Route {
    Start,
    Recording(String),
    Pause(String),
    Resume(String),
}

impl Calling {
    /// The recording operations over `storage`, with the task that posts their callbacks.
    pub(crate) fn new(storage: Storage, recording_bytes: u64) -> (Self, JoinHandle<()>) {
        let (callbacks, task) = Callbacks::spawn();
        let shared = Shared { state: Mutex::new(State::default()), storage, callbacks, recording_bytes };
        (Self { shared: Arc::new(shared) }, task)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds an Event Grid subscriber: every recording stopped from now on is announced to it.
    pub(crate) fn subscribe(&self, publisher: EventGridPublisher) {
        self.state().subscribers.push(publisher);
    }

    /// Adds a namespace topic: every recording stopped from now on is published to it as a CloudEvent.
    pub(crate) fn publish_to(&self, namespace: NamespaceTopic) {
        self.state().namespaces.push(namespace);
    }

    /// Whether a path is one of the recording operations' (`/calling/...`).
    pub(crate) fn serves(path: &str) -> bool {
        path == "/calling" || path.starts_with("/calling/")
    }

    /// Answers one authenticated request to a `/calling/...` path.
    pub(crate) async fn handle(&self, request: Request<Full<Bytes>>) -> Response<StorageBody> {
        let (parts, body) = request.into_parts();
        let Some(route) = route(parts.uri.path()) else {
            return error(StatusCode::NOT_FOUND, "NotFound", "no such operation").into_response();
        };
        let method_allowed = match route {
            Route::Start | Route::Pause(_) | Route::Resume(_) => parts.method == Method::POST,
            Route::Recording(_) => parts.method == Method::GET || parts.method == Method::DELETE,
        };
        if !method_allowed {
            return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed here")
                .into_response();
        }
        if let Err(refusal) = check_api_version(&parts.uri) {
            return refusal.into_response();
        }
        let request_id = (parts.method == Method::POST).then(|| reply::request_id(&parts.headers)).flatten();
        // The body was read whole by the signature check (or the bearer path) before it got here.
        let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
        // One lock from the look-up of a repeated request to keeping its answer: two attempts of one request that
        // arrive together are carried out once.
        let mut state = self.state();
        if let Some(reply) = request_id.as_deref().and_then(|id| state.replies.get(id)) {
            return reply.into_response(true);
        }
        let outcome = match route {
            Route::Start => self.start(&mut state, &body),
            Route::Recording(id) if parts.method == Method::GET => properties_of(&state, &id),
            Route::Recording(id) => self.stop(&mut state, &id),
            Route::Pause(id) => self.transition(&mut state, &id, "pause", Phase::pause),
            Route::Resume(id) => self.transition(&mut state, &id, "resume", Phase::resume),
        };
        match outcome {
            Ok(reply) => {
                if let Some(id) = request_id.clone() {
                    state.replies.keep(id, &reply);
                }
                reply.into_response(request_id.is_some())
            }
            Err(refusal) => refusal.into_response(),
        }
    }

    fn start(&self, state: &mut State, body: &[u8]) -> Result<Reply, Refusal> {
        let start = Start::parse(body)?;
        let busy = state.recordings.values().any(|r| r.start.call == start.call && r.phase != Phase::Stopped);
        if busy {
            return Err(error(StatusCode::CONFLICT, "Conflict", "a recording of this call is already in progress"));
        }
        let recording_id = new_recording_id();
        let recording = CallRecording {
            phase: Phase::started(start.pause_on_start),
            start,
            start_date_time: iso8601(SystemTime::now()),
        };
        let reply = properties(&recording_id, &recording);
        self.announce(&recording_id, &recording);
        state.recordings.insert(recording_id, recording);
        Ok(reply)
    }

    fn transition(
        &self,
        state: &mut State,
        id: &str,
        operation: &str,
        apply: fn(&mut Phase) -> Result<Change, lifecycle::Conflict>,
    ) -> Result<Reply, Refusal> {
        let recording = state.recordings.get_mut(id).ok_or_else(not_found)?;
        let change = apply(&mut recording.phase)
            .map_err(|conflict| error(StatusCode::CONFLICT, "Conflict", conflict.message(operation)))?;
        if change != Change::Unchanged {
            self.announce(id, recording);
        }
        Ok(Reply::empty(StatusCode::ACCEPTED))
    }

    fn stop(&self, state: &mut State, id: &str) -> Result<Reply, Refusal> {
        let recording = state.recordings.get_mut(id).ok_or_else(not_found)?;
        recording.phase.stop().map_err(|conflict| error(StatusCode::CONFLICT, "Conflict", conflict.message("stop")))?;
        self.announce(id, recording);
        let event = recording_file_status_updated(&self.store(id, recording));
        for publisher in state.subscribers.clone() {
            let event = event.clone();
            tokio::spawn(async move { publisher.deliver(std::slice::from_ref(&event)).await });
        }
        for namespace in &state.namespaces {
            namespace.publish(event.to_cloud_event(ACS_TOPIC));
        }
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    /// Stores the chunks of a stopped recording, labelled as its start request asked.
    fn store(&self, id: &str, recording: &CallRecording) -> StoredRecording {
        let start = &recording.start;
        let mut spec = RecordingSpec::new(&start.call.correlation_id, self.shared.recording_bytes).recording_id(id);
        if start.channels == RecordingChannelType::Unmixed {
            spec = spec.unmixed(start.participants.iter().cloned());
        }
        let mut stored = self.shared.storage.record(spec);
        stored.server_call_id = start.call.server_call_id.clone();
        stored.start_time = recording.start_date_time.clone();
        stored.content_type = start.content.as_str().to_owned();
        stored.channel_type = start.channels.as_str().to_owned();
        stored.format = start.format.as_str().to_owned();
        stored
    }

    /// Queues the callback announcing a recording's state, when it has a callback URI.
    fn announce(&self, id: &str, recording: &CallRecording) {
        let Some(uri) = &recording.start.callback else { return };
        let call = &recording.start.call;
        let body = callbacks::state_changed(&Announcement {
            recording_id: id,
            state: recording.phase.state(),
            start_date_time: &recording.start_date_time,
            call_connection_id: call.call_connection_id.as_deref(),
            server_call_id: &call.server_call_id,
            correlation_id: &call.correlation_id,
        });
        self.shared.callbacks.send(uri.clone(), body);
    }
}

/// The 200 of a `GET`: the state of a recording that was not stopped.
fn properties_of(state: &State, id: &str) -> Result<Reply, Refusal> {
    match state.recordings.get(id) {
        Some(recording) if recording.phase != Phase::Stopped => Ok(properties(id, recording)),
        _ => Err(not_found()),
    }
}

/// The 200 of a start or a `GET`: `recordingId`, `recordingState`, `recordingKind`.
fn properties(id: &str, recording: &CallRecording) -> Reply {
    let status = RecordingStatus::new(id, recording.phase.state(), RecordingKind::AzureCommunicationServices);
    Reply::json(Bytes::from(serde_json::to_vec(&status).expect("a status serializes")))
}

fn not_found() -> Refusal {
    error(StatusCode::NOT_FOUND, "RecordingNotFound", "no such recording")
}

/// `/calling/recordings`, `/calling/recordings/{id}`, `/calling/recordings/{id}:pause` and `:resume`, the id
/// percent-decoded.
fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/calling/recordings")?;
    if rest.is_empty() {
        return Some(Route::Start);
    }
    let segment = rest.strip_prefix('/')?;
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8().ok().map(|id| id.into_owned());
    // Recording ids never hold a colon; the action follows the last one.
    match segment.rsplit_once(':') {
        Some((id, "pause")) => Some(Route::Pause(decode(id)?)),
        Some((id, "resume")) => Some(Route::Resume(decode(id)?)),
        Some(_) => None,
        None => Some(Route::Recording(decode(segment)?)),
    }
}

/// 400 unless the query names an `api-version` shaped like one (`YYYY-MM-DD`, optionally `-preview`).
fn check_api_version(uri: &Uri) -> Result<(), Refusal> {
    let version = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("api-version="))
        .filter(|value| !value.is_empty());
    let Some(version) = version else {
        let message = "the api-version query parameter is required";
        return Err(error(StatusCode::BAD_REQUEST, "MissingApiVersionParameter", message));
    };
    let date = version.strip_suffix("-preview").unwrap_or(version);
    let shaped = date.len() == 10
        && date.bytes().enumerate().all(|(at, b)| if at == 4 || at == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        let message = format!("the api-version `{version}` is not supported");
        return Err(error(StatusCode::BAD_REQUEST, "UnsupportedApiVersion", message));
    }
    Ok(())
}

/// A recording id shaped like Call Automation's: base64 of a small JSON document, in the URL-safe alphabet so
/// that it needs no escaping in a path.
fn new_recording_id() -> String {
    let id = super::eventgrid::new_id();
    let document = format!(r#"{{"PlatformEndpointId":"{id}","ResourceSpecificId":"{id}"}}"#);
    base64::engine::general_purpose::URL_SAFE.encode(document)
}

#[cfg(test)]
mod tests;
