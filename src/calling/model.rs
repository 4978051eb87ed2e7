//! The requests and answers of the recording operations, as JSON: the start request, the recording's state, the
//! error body.
//!
//! The value sets the event model already has are the same types here (`recording::RecordingContentType` and the
//! others). Events write their values capitalised (`AudioVideo`), the Call Automation API camel-cased
//! (`audioVideo`); both are read (known values match ignoring case), and this model writes the API's form.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::identifier::CommunicationIdentifier;
use crate::recording::{
    open_enum, RecordingChannelType, RecordingContentType, RecordingFormatType, RecordingKind, RecordingState,
    RecordingStorageType,
};
use crate::redact::redact_url;

open_enum! {
    /// How a [`CallLocator`] finds the call (`kind`).
    CallLocatorKind {
        /// By group call id.
        GroupCall => "groupCallLocator",
        /// By server call id.
        ServerCall => "serverCallLocator",
        /// By ACS room id.
        RoomCall => "roomCallLocator",
    }
}

/// The call to record (`callLocator`): by server call id, group call id or room id.
///
/// ```
/// use acs_recording::calling::CallLocator;
///
/// assert_eq!(
///     serde_json::to_string(&CallLocator::server_call("aHR0cHM6")).unwrap(),
///     r#"{"serverCallId":"aHR0cHM6","kind":"serverCallLocator"}"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallLocator {
    /// The group call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_call_id: Option<String>,
    /// The server call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// The ACS room id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Which of the ids is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CallLocatorKind>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CallLocator {
    /// The call with this server call id (from the `IncomingCall` event or a call connection).
    pub fn server_call(id: impl Into<String>) -> Self {
        Self { server_call_id: Some(id.into()), kind: Some(CallLocatorKind::ServerCall), ..Self::default() }
    }

    /// The group call with this id.
    pub fn group_call(id: impl Into<String>) -> Self {
        Self { group_call_id: Some(id.into()), kind: Some(CallLocatorKind::GroupCall), ..Self::default() }
    }

    /// The call of this ACS room. The API documents room locators as not supported for starting a recording: use
    /// the room call's server call id there.
    pub fn room(id: impl Into<String>) -> Self {
        Self { room_id: Some(id.into()), kind: Some(CallLocatorKind::RoomCall), ..Self::default() }
    }
}

/// Which audio channel of an unmixed recording a participant is written to (`channelAffinity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChannelAffinity {
    /// The channel, 0 to 4; the service picks one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
    /// The participant whose audio goes to the channel.
    pub participant: CommunicationIdentifier,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ChannelAffinity {
    /// `participant`'s audio on `channel`.
    pub fn new(channel: u32, participant: CommunicationIdentifier) -> Self {
        Self { channel: Some(channel), participant, other: Map::new() }
    }
}

/// Where the recording is kept (`externalStorage`): ACS storage, or the customer's Azure Blob container.
///
/// ```
/// use acs_recording::calling::ExternalStorage;
///
/// assert_eq!(
///     serde_json::to_string(&ExternalStorage::azure_blob("https://contoso.blob.core.windows.net/recordings")).unwrap(),
///     r#"{"recordingStorageKind":"azureBlobStorage","recordingDestinationContainerUrl":"https://contoso.blob.core.windows.net/recordings"}"#
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ExternalStorage {
    /// ACS storage or Azure Blob storage.
    #[serde(serialize_with = "api_value")]
    pub recording_storage_kind: RecordingStorageType,
    /// The container (or a folder in it) to put the recording in; may carry a SAS token, so it never appears in
    /// `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_destination_container_url: Option<String>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ExternalStorage {
    /// ACS storage: the recording is downloaded from ACS once ready.
    pub fn azure_communication_services() -> Self {
        Self {
            recording_storage_kind: RecordingStorageType::AzureCommunicationServices,
            recording_destination_container_url: None,
            other: Map::new(),
        }
    }

    /// The customer's Azure Blob container (the resource's managed identity needs write access to it).
    pub fn azure_blob(container_url: impl Into<String>) -> Self {
        Self {
            recording_storage_kind: RecordingStorageType::AzureBlobStorage,
            recording_destination_container_url: Some(container_url.into()),
            other: Map::new(),
        }
    }
}

impl std::fmt::Debug for ExternalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.recording_destination_container_url.as_deref().map(redact_url);
        f.debug_struct("ExternalStorage")
            .field("recording_storage_kind", &self.recording_storage_kind)
            .field("recording_destination_container_url", &url)
            .finish_non_exhaustive()
    }
}

/// The start request (`StartCallRecordingRequest`): the call, by locator or call connection id, and the options.
///
/// Unset options are left out of the JSON, so that the service applies its defaults. `Debug` shows the URLs
/// without their query, which may carry a secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StartRecording {
    /// The call to record; one of this and `call_connection_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_locator: Option<CallLocator>,
    /// The call connection whose call to record; one of this and `call_locator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// Where `RecordingStateChanged` and `StartRecordingFailed` are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_state_callback_uri: Option<String>,
    /// Audio, or audio and video.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "api_value_opt")]
    pub recording_content_type: Option<RecordingContentType>,
    /// Mixed, or one channel per participant.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "api_value_opt")]
    pub recording_channel_type: Option<RecordingChannelType>,
    /// WAV, MP3 or MP4.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "api_value_opt")]
    pub recording_format_type: Option<RecordingFormatType>,
    /// The order in which the participants get the channels of an unmixed recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_channel_participant_ordering: Vec<CommunicationIdentifier>,
    /// Fixed channels for participants of an unmixed recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_affinity: Vec<ChannelAffinity>,
    /// Start paused, to be resumed later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_on_start: Option<bool>,
    /// Where the recording is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_storage: Option<ExternalStorage>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl StartRecording {
    /// Records the call `locator` finds.
    pub fn call(locator: CallLocator) -> Self {
        Self { call_locator: Some(locator), ..Self::default() }
    }

    /// Records the call of a call connection.
    pub fn call_connection(call_connection_id: impl Into<String>) -> Self {
        Self { call_connection_id: Some(call_connection_id.into()), ..Self::default() }
    }

    /// Sets the URL the recording's state changes are posted to.
    pub fn state_callback(mut self, uri: impl Into<String>) -> Self {
        self.recording_state_callback_uri = Some(uri.into());
        self
    }

    /// Sets the content type.
    pub fn content(mut self, content: RecordingContentType) -> Self {
        self.recording_content_type = Some(content);
        self
    }

    /// Sets the channel type.
    pub fn channels(mut self, channels: RecordingChannelType) -> Self {
        self.recording_channel_type = Some(channels);
        self
    }

    /// Sets the format.
    pub fn format(mut self, format: RecordingFormatType) -> Self {
        self.recording_format_type = Some(format);
        self
    }

    /// Gives the participants the channels of an unmixed recording in this order.
    pub fn participant_order(mut self, participants: impl IntoIterator<Item = CommunicationIdentifier>) -> Self {
        self.audio_channel_participant_ordering = participants.into_iter().collect();
        self
    }

    /// Writes `participant`'s audio to `channel` of an unmixed recording.
    pub fn channel_affinity(mut self, channel: u32, participant: CommunicationIdentifier) -> Self {
        self.channel_affinity.push(ChannelAffinity::new(channel, participant));
        self
    }

    /// Starts the recording paused.
    pub fn pause_on_start(mut self, paused: bool) -> Self {
        self.pause_on_start = Some(paused);
        self
    }

    /// Sets where the recording is kept.
    pub fn storage(mut self, storage: ExternalStorage) -> Self {
        self.external_storage = Some(storage);
        self
    }
}

impl std::fmt::Debug for StartRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartRecording")
            .field("call_locator", &self.call_locator)
            .field("call_connection_id", &self.call_connection_id)
            .field("recording_state_callback_uri", &self.recording_state_callback_uri.as_deref().map(redact_url))
            .field("recording_content_type", &self.recording_content_type)
            .field("recording_channel_type", &self.recording_channel_type)
            .field("recording_format_type", &self.recording_format_type)
            .field("audio_channel_participant_ordering", &self.audio_channel_participant_ordering)
            .field("channel_affinity", &self.channel_affinity)
            .field("pause_on_start", &self.pause_on_start)
            .field("external_storage", &self.external_storage)
            .finish_non_exhaustive()
    }
}

/// A recording's state (`RecordingStateResponse`), as start and get answer it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordingStatus {
    /// The recording id, for pause, resume, stop and get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    /// Active or inactive (paused, or not started yet).
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "api_value_opt")]
    pub recording_state: Option<RecordingState>,
    /// Who records.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "api_value_opt")]
    pub recording_kind: Option<RecordingKind>,
    /// Fields this version does not know, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl RecordingStatus {
    /// A status with this id, state and kind (what a server answers).
    pub fn new(recording_id: impl Into<String>, state: RecordingState, kind: RecordingKind) -> Self {
        Self {
            recording_id: Some(recording_id.into()),
            recording_state: Some(state),
            recording_kind: Some(kind),
            other: Map::new(),
        }
    }
}

/// The body of an error answer (`CommunicationErrorResponse`): `{"error":{"code":..,"message":..}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorResponse {
    /// The error.
    pub error: ServiceError,
}

impl ErrorResponse {
    /// An error body with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ServiceError { code: code.into(), message: message.into(), ..ServiceError::default() } }
    }
}

/// What the service says went wrong (`CommunicationError`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceError {
    /// The error code, such as `8522` or `Forbidden`.
    #[serde(default)]
    pub code: String,
    /// A message for people.
    #[serde(default)]
    pub message: String,
    /// What the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The errors that led to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ServiceError>,
    /// The inner error.
    #[serde(default, rename = "innererror", skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<Box<ServiceError>>,
}

/// A value of an open enum in the form the Call Automation API writes: known values camel-cased, values this
/// version does not know verbatim.
pub(crate) trait ApiValue {
    /// The value as the API writes it.
    fn api_value(&self) -> Cow<'_, str>;
}

macro_rules! api_value {
    ($($name:ty),+) => {$(
        impl ApiValue for $name {
            fn api_value(&self) -> Cow<'_, str> {
                match self {
                    Self::Other(other) => Cow::Borrowed(other),
                    known => lower_first(known.as_str()),
                }
            }
        }
    )+};
}

api_value!(
    RecordingContentType,
    RecordingChannelType,
    RecordingFormatType,
    RecordingStorageType,
    RecordingState,
    RecordingKind
);

fn lower_first(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some(first) if first.is_ascii_uppercase() => {
            Cow::Owned(format!("{}{}", first.to_ascii_lowercase(), &value[first.len_utf8()..]))
        }
        _ => Cow::Borrowed(value),
    }
}

fn api_value<S: Serializer, T: ApiValue>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.api_value())
}

fn api_value_opt<S: Serializer, T: ApiValue>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => api_value(value, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_written_camel_cased_and_unknown_ones_verbatim() {
        let cases = [
            (RecordingContentType::AudioVideo.api_value(), "audioVideo"),
            (RecordingContentType::Audio.api_value(), "audio"),
            (RecordingChannelType::Unmixed.api_value(), "unmixed"),
            (RecordingFormatType::Mp3.api_value(), "mp3"),
            (RecordingStorageType::AzureBlobStorage.api_value(), "azureBlobStorage"),
            (RecordingKind::TeamsCompliance.api_value(), "teamsCompliance"),
            (RecordingState::Active.api_value(), "active"),
        ];
        for (written, expected) in cases {
            assert_eq!(written, expected);
        }
        let unknown = RecordingFormatType::Other("Ogg".into());
        assert_eq!(unknown.api_value(), "Ogg");
    }

    #[test]
    fn a_status_reads_the_api_values_into_the_event_model_enums() {
        let status: RecordingStatus = serde_json::from_str(
            r#"{"recordingId":"r1","recordingState":"inactive","recordingKind":"teamsCompliance"}"#,
        )
        .unwrap();
        assert_eq!(status, RecordingStatus::new("r1", RecordingState::Inactive, RecordingKind::TeamsCompliance));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"recordingId":"r1","recordingState":"inactive","recordingKind":"teamsCompliance"}"#
        );
    }

    #[test]
    fn the_container_url_query_never_shows_in_debug() {
        let storage = ExternalStorage::azure_blob("https://contoso.blob.core.windows.net/rec?sig=SECRET");
        let debug = format!("{storage:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("https://contoso.blob.core.windows.net/rec?…"), "{debug}");
        let start =
            StartRecording::call_connection("c1").state_callback("https://app.example/cb?code=SECRET").storage(storage);
        let debug = format!("{start:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }

    #[test]
    fn the_error_body_reads_code_message_and_inner_error() {
        let body =
            r#"{"error":{"code":"8522","message":"Recording not found","innererror":{"code":"x","message":"y"}}}"#;
        let response: ErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(response.error.code, "8522");
        assert_eq!(response.error.message, "Recording not found");
        assert_eq!(response.error.inner_error.as_deref().map(|e| e.code.as_str()), Some("x"));
        assert_eq!(serde_json::to_string(&response).unwrap(), body);
    }
}
