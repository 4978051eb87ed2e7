//! Call Automation's recording callbacks, typed: `RecordingStateChanged` and `StartRecordingFailed`.
//!
//! Call Automation posts these to the callback URL given when the call was created or answered, as a JSON array
//! of CloudEvents (`specversion` 1.0, `source` and `subject` such as `calling/callConnections/{id}`). Field names
//! follow the official SDKs (Azure/azure-sdk-for-net `Azure.Communication.CallAutomation`, `RecordingStateChanged`
//! and `StartRecordingFailed`; Azure/azure-sdk-for-java `models/events/RecordingStateChanged.java`). Every field
//! is optional, every enum open, unknown fields are kept in `other`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The CloudEvents `type` of a recording's state change.
pub const RECORDING_STATE_CHANGED_EVENT: &str = "Microsoft.Communication.RecordingStateChanged";
/// The CloudEvents `type` of a recording that could not start.
pub const START_RECORDING_FAILED_EVENT: &str = "Microsoft.Communication.StartRecordingFailed";

open_enum! {
    /// Whether a recording is running (`state`).
    RecordingState {
        /// Recording: started, or resumed after a pause.
        Active => "active",
        /// Not recording: paused, or stopped.
        Inactive => "inactive",
    }
}

open_enum! {
    /// Who records (`recordingKind`).
    RecordingKind {
        /// A recording started through Azure Communication Services.
        AzureCommunicationServices => "AzureCommunicationServices",
        /// A recording started in a Teams meeting.
        Teams => "Teams",
        /// A Teams compliance recording.
        TeamsCompliance => "TeamsCompliance",
    }
}

/// The outcome of the operation a callback reports (`resultInformation`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResultInformation {
    /// An HTTP-like status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The service's detail code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<i64>,
    /// A message for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Microsoft.Communication.RecordingStateChanged`: a recording became active or inactive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordingStateChanged {
    /// The recording id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// Active or inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RecordingState>,
    /// When the recording started, ISO 8601 as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    /// Who records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_kind: Option<RecordingKind>,
    /// The call connection the callback is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// The server call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// The correlation id (the call id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The context given with the operation, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// The outcome, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_information: Option<ResultInformation>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Microsoft.Communication.StartRecordingFailed`: a recording asked for could not start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StartRecordingFailed {
    /// The recording id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// The context given with the start request, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_information: Option<ResultInformation>,
    /// The call connection the callback is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// The server call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// The correlation id (the call id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A recording callback of Call Automation, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordingCallback {
    /// The recording became active or inactive.
    StateChanged(RecordingStateChanged),
    /// The recording could not start.
    StartFailed(StartRecordingFailed),
}

impl RecordingCallback {
    /// Types the data of a CloudEvent of type `event_type`; `None` for a type that is not a recording callback.
    pub(super) fn parse(event_type: &str, data: &str) -> Option<Result<Self, serde_json::Error>> {
        if event_type.eq_ignore_ascii_case(RECORDING_STATE_CHANGED_EVENT) {
            Some(serde_json::from_str(data).map(Self::StateChanged))
        } else if event_type.eq_ignore_ascii_case(START_RECORDING_FAILED_EVENT) {
            Some(serde_json::from_str(data).map(Self::StartFailed))
        } else {
            None
        }
    }

    /// The recording id, in either callback.
    pub fn recording_id(&self) -> Option<&str> {
        match self {
            Self::StateChanged(event) => event.recording_id.as_deref(),
            Self::StartFailed(event) => event.recording_id.as_deref(),
        }
    }

    /// The call connection id, in either callback.
    pub fn call_connection_id(&self) -> Option<&str> {
        match self {
            Self::StateChanged(event) => event.call_connection_id.as_deref(),
            Self::StartFailed(event) => event.call_connection_id.as_deref(),
        }
    }
}
