//! `RecordingStateChanged` callbacks as Call Automation posts them: one CloudEvent in a JSON array, to the state
//! callback URI of the start request, one delivery at a time so that a receiver sees the states in order.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::emulator::eventgrid::{new_id, rfc3339};
use crate::recording::{RecordingKind, RecordingState, RecordingStateChanged, RECORDING_STATE_CHANGED_EVENT};

/// How long one callback may take; Call Automation does not wait on a slow receiver either.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a recording's callback says about it.
#[derive(Debug, Clone)]
pub(crate) struct Announcement<'a> {
    pub(crate) recording_id: &'a str,
    pub(crate) state: RecordingState,
    pub(crate) start_date_time: &'a str,
    pub(crate) call_connection_id: Option<&'a str>,
    pub(crate) server_call_id: &'a str,
    pub(crate) correlation_id: &'a str,
}

/// The body of one `RecordingStateChanged` callback: a JSON array holding one CloudEvent whose `source` and
/// `subject` are `calling/recordings/{recordingId}/recordingStateChanged`.
pub(crate) fn state_changed(announcement: &Announcement<'_>) -> Bytes {
    let data = RecordingStateChanged {
        recording_id: Some(announcement.recording_id.to_owned()),
        state: Some(announcement.state.clone()),
        start_date_time: Some(announcement.start_date_time.to_owned()),
        recording_kind: Some(RecordingKind::AzureCommunicationServices),
        call_connection_id: announcement.call_connection_id.map(str::to_owned),
        server_call_id: Some(announcement.server_call_id.to_owned()),
        correlation_id: Some(announcement.correlation_id.to_owned()),
        ..RecordingStateChanged::default()
    };
    let source = format!("calling/recordings/{}/recordingStateChanged", announcement.recording_id);
    let event = json!([{
        "id": new_id(),
        "source": source,
        "type": RECORDING_STATE_CHANGED_EVENT,
        "data": data,
        "time": rfc3339(SystemTime::now()),
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": source,
    }]);
    Bytes::from(serde_json::to_vec(&event).expect("json values serialize"))
}

/// Queues callbacks for the one task that posts them, in the order they were queued.
#[derive(Debug, Clone)]
pub(crate) struct Callbacks {
    queue: mpsc::UnboundedSender<(Uri, Bytes)>,
}

impl Callbacks {
    /// The queue and the task that empties it (the emulator aborts it when dropped).
    pub(crate) fn spawn() -> (Self, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::unbounded_channel::<(Uri, Bytes)>();
        let task = tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            while let Some((uri, body)) = pending.recv().await {
                let request = Request::post(uri)
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("a parsed uri makes a valid request");
                match tokio::time::timeout(CALLBACK_TIMEOUT, client.request(request)).await {
                    Ok(Ok(response)) if response.status().is_success() => {}
                    // A receiver that refuses or fails loses the callback, as with Call Automation: state is
                    // always there to read with `GET /calling/recordings/{id}`.
                    Ok(Ok(response)) => tracing::warn!(status = %response.status(), "recording callback refused"),
                    Ok(Err(error)) => tracing::warn!(%error, "recording callback failed"),
                    Err(_) => tracing::warn!("recording callback timed out"),
                }
            }
        });
        (Self { queue }, task)
    }

    /// Queues one callback.
    pub(crate) fn send(&self, uri: Uri, body: Bytes) {
        // The task ends only when the emulator is dropped, with the queue.
        let _ = self.queue.send((uri, body));
    }
}
