//! What the emulator takes from a start request: the call, the callback URI, the recording's labels and whether
//! it starts paused, each checked as Call Automation checks it (400 otherwise).

use http::{StatusCode, Uri};

use super::reply::{error, Refusal};
use crate::calling::{CallLocatorKind, StartRecording};
use crate::emulator::storage::participant_id;
use crate::recording::{RecordingChannelType, RecordingContentType, RecordingFormatType};

/// A start request, read.
#[derive(Debug)]
pub(super) struct Start {
    pub(super) call: Call,
    pub(super) callback: Option<Uri>,
    pub(super) pause_on_start: bool,
    pub(super) content: RecordingContentType,
    pub(super) channels: RecordingChannelType,
    pub(super) format: RecordingFormatType,
    /// Raw ids of an unmixed recording's channels, in order.
    pub(super) participants: Vec<String>,
}

/// Which call a recording is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Call {
    pub(super) server_call_id: String,
    /// The call id (the callbacks' `correlationId`).
    pub(super) correlation_id: String,
    pub(super) call_connection_id: Option<String>,
}

impl Start {
    /// Reads a start request's JSON body.
    pub(super) fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let request: StartRecording = serde_json::from_slice(body)
            .map_err(|e| bad_request(&format!("the body is not a start recording request: {e}")))?;
        let call = call(&request)?;
        let callback = match request.recording_state_callback_uri.as_deref() {
            None => None,
            Some(uri) => Some(callback_uri(uri)?),
        };
        let channels = request.recording_channel_type.clone().unwrap_or(RecordingChannelType::Mixed);
        let mut participants: Vec<String> = request
            .audio_channel_participant_ordering
            .iter()
            .chain(request.channel_affinity.iter().map(|affinity| &affinity.participant))
            .filter_map(|participant| participant.raw_id.clone())
            .collect();
        if channels == RecordingChannelType::Unmixed && participants.is_empty() {
            // The service knows who is in the call; the emulator makes up two participants.
            participants = (0..2).map(|n| participant_id(&call.correlation_id, n)).collect();
        }
        Ok(Self {
            call,
            callback,
            pause_on_start: request.pause_on_start.unwrap_or(false),
            content: request.recording_content_type.unwrap_or(RecordingContentType::Audio),
            channels,
            format: request.recording_format_type.unwrap_or(RecordingFormatType::Wav),
            participants,
        })
    }
}

/// The call of a start request: by locator (one id of its kind) or by call connection id, not both.
fn call(request: &StartRecording) -> Result<Call, Refusal> {
    match (&request.call_locator, &request.call_connection_id) {
        (Some(locator), None) if locator.kind == Some(CallLocatorKind::RoomCall) || locator.room_id.is_some() => {
            // The API does not start a recording from a room locator: the room call's server call id does.
            Err(bad_request("a room call locator cannot start a recording; use the call's server call id"))
        }
        (Some(locator), None) => {
            let id = [&locator.server_call_id, &locator.group_call_id]
                .into_iter()
                .flatten()
                .find(|id| !id.is_empty())
                .ok_or_else(|| bad_request("the call locator names no call"))?;
            let server_call_id = locator.server_call_id.clone().unwrap_or_else(|| made_up_server_call_id(id));
            Ok(Call { server_call_id, correlation_id: correlation_id(id), call_connection_id: None })
        }
        (None, Some(connection)) if !connection.is_empty() => Ok(Call {
            server_call_id: made_up_server_call_id(connection),
            correlation_id: correlation_id(connection),
            call_connection_id: Some(connection.clone()),
        }),
        (Some(_), Some(_)) => Err(bad_request("give either callLocator or callConnectionId, not both")),
        _ => Err(bad_request("callLocator or callConnectionId is required")),
    }
}

/// The state callback URI: absolute, `http` or `https`.
fn callback_uri(value: &str) -> Result<Uri, Refusal> {
    let uri: Uri = value.parse().map_err(|_| bad_request("recordingStateCallbackUri is not a URL"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(bad_request("recordingStateCallbackUri must be an absolute http or https URL")),
    }
}

fn bad_request(message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A made-up call id (GUID form) for a call known by one of its ids, the same for every recording of the call.
fn correlation_id(key: &str) -> String {
    let hex = hex_digest(key);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A made-up server call id for a call not found by it.
fn made_up_server_call_id(key: &str) -> String {
    format!("aHR0cHM6Ly9lbXVsYXRvci8{}", &hex_digest(key)[..16])
}

fn hex_digest(key: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
