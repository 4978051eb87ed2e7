//! Call Automation's recording operations: start, pause, resume, stop and get the state of a call recording.
//!
//! [`RecordingClient`] sends the operations through any HTTP client (a tower service, inside a signing layer), and
//! retries what may succeed later. [`StartRecording`] is the start request, [`RecordingStatus`] the recording's
//! state as the service answers it, [`ErrorResponse`] the body of an error answer; participants are
//! [`CommunicationIdentifier`]s.
//!
//! ```
//! use std::convert::Infallible;
//! use acs_recording::calling::{CallLocator, ErrorKind, RecordingClient, StartRecording};
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::recording::RecordingState;
//! use acs_recording::signing::HmacSigningLayer;
//! use bytes::Bytes;
//! use http::{Method, Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, Layer};
//!
//! /// Plays ACS: any HTTP client goes here (hyper-util's, for one).
//! async fn acs(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     assert!(request.headers()["authorization"].to_str().unwrap().starts_with("HMAC-SHA256 "));
//!     assert_eq!(request.uri().query(), Some("api-version=2025-06-15"));
//!     let (status, answer) = match (request.method().clone(), request.uri().path()) {
//!         (Method::POST, "/calling/recordings") => {
//!             assert_eq!(request.headers()["repeatability-request-id"].len(), 36);
//!             let body = request.into_body().collect().await?.to_bytes();
//!             assert_eq!(&body[..], br#"{"callLocator":{"serverCallId":"aHR0cHM6","kind":"serverCallLocator"},"pauseOnStart":true}"#);
//!             (StatusCode::OK, r#"{"recordingId":"rec-1","recordingState":"inactive","recordingKind":"azureCommunicationServices"}"#)
//!         }
//!         (Method::POST, "/calling/recordings/rec-1:resume") => (StatusCode::ACCEPTED, ""),
//!         (Method::DELETE, "/calling/recordings/rec-1") => (StatusCode::NO_CONTENT, ""),
//!         _ => (StatusCode::NOT_FOUND, r#"{"error":{"code":"8522","message":"Recording not found."}}"#),
//!     };
//!     let mut response = Response::new(Full::new(Bytes::from(answer)));
//!     *response.status_mut() = status;
//!     Ok(response)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc=".parse()?;
//! let signed = HmacSigningLayer::from_connection_string(&cs).layer(service_fn(acs));
//! let client = RecordingClient::new(signed, cs.endpoint().clone());
//!
//! let start = StartRecording::call(CallLocator::server_call("aHR0cHM6")).pause_on_start(true);
//! let status = client.start(&start).await?;
//! assert_eq!(status.recording_id.as_deref(), Some("rec-1"));
//! assert_eq!(status.recording_state, Some(RecordingState::Inactive));
//! client.resume("rec-1").await?;
//! client.stop("rec-1").await?;
//!
//! let error = client.stop("rec-2").await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::NotFound);
//! assert_eq!(error.to_string(), "stop recording answered 404 not found (8522)");
//! assert_eq!(error.service_error().unwrap().message, "Recording not found.");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The model on its own:
//!
//! ```
//! use acs_recording::calling::{CallLocator, CommunicationIdentifier, ExternalStorage, StartRecording};
//! use acs_recording::recording::{RecordingChannelType, RecordingContentType, RecordingFormatType};
//!
//! let start = StartRecording::call(CallLocator::server_call("aHR0cHM6Ly9za3lwZS5uZXQ="))
//!     .state_callback("https://app.example/recording-events")
//!     .content(RecordingContentType::Audio)
//!     .channels(RecordingChannelType::Unmixed)
//!     .format(RecordingFormatType::Wav)
//!     .channel_affinity(0, CommunicationIdentifier::phone_number("+14255550123"))
//!     .pause_on_start(true)
//!     .storage(ExternalStorage::azure_blob("https://contoso.blob.core.windows.net/recordings"));
//! let json = serde_json::to_value(&start).unwrap();
//! assert_eq!(json["recordingContentType"], "audio");
//! assert_eq!(json["channelAffinity"][0]["participant"]["phoneNumber"]["value"], "+14255550123");
//! assert_eq!(json["externalStorage"]["recordingStorageKind"], "azureBlobStorage");
//! ```
//!
//! # Rules
//!
//! 1. The operations are those of the stable Call Automation REST API [`API_VERSION`] (`2025-06-15`), on the ACS
//!    endpoint, with `api-version` in the query: `POST /calling/recordings` starts (200 or 202 with the state),
//!    `POST /calling/recordings/{id}:pause` and `:resume` answer 202, `DELETE /calling/recordings/{id}` stops (204),
//!    `GET /calling/recordings/{id}` answers the state (200).
//! 2. Field names are the API's, camel-cased; unset options are left out so that the service applies its defaults.
//! 3. Enums are open, as in the event model: a value this version does not know is kept verbatim. The value sets
//!    the event model has (content, channel, format and storage types, state, kind) are its types; this model
//!    writes them as the API does (`audioVideo`, `teamsCompliance`) and reads either spelling.
//! 4. A start request names the call by a [`CallLocator`] or by a call connection id, exactly one; the client
//!    sends no other.
//! 5. Every `POST` is repeatable: it carries a `Repeatability-Request-ID` (a random UUID, version 4, lower-case)
//!    and a `Repeatability-First-Sent` (the IMF-fixdate of the first attempt), the same on every attempt of one
//!    call, so that the service executes a retried request once. The API declares the pair on start; pause and
//!    resume carry it too, harmless where it is not read. `DELETE` and `GET` are idempotent and carry none.
//! 6. 408, 429, 5xx and answers that never came (a failed connection, a timeout) are retried under the
//!    [`RetryPolicy`](crate::download::RetryPolicy): jittered exponential waits, or the server's `Retry-After`
//!    (seconds or an HTTP date) when longer, never more than the backoff's maximum; at most `max_attempts`
//!    requests, and no wait that would end past `max_total`. Any other status is final at once.
//! 7. A failure is an [`Error`] naming the operation, the last status, the service's error code
//!    (`{"error":{"code":..,"message":..}}`, kept whole in [`Error::service_error`]) and the attempts; 404 and 409
//!    are kinds of their own. A host the signing layer refuses, or a credential that gives no token, is final.
//! 8. No message or `Debug` shows a key, a token, a request URL, or the query of a URL that may carry a secret
//!    (the callback, the customer's container).

mod client;
mod error;
mod identifier;
mod model;
mod retry;

pub use client::RecordingClient;
pub use error::{Error, ErrorKind, Operation};

pub use identifier::{
    CommunicationCloud, CommunicationIdentifier, CommunicationUser, IdentifierKind, MicrosoftTeamsApp,
    MicrosoftTeamsUser, PhoneNumber, TeamsExtensionUser,
};
pub use model::{
    CallLocator, CallLocatorKind, ChannelAffinity, ErrorResponse, ExternalStorage, RecordingStatus, ServiceError,
    StartRecording,
};

/// The Call Automation API version the operations are sent with.
pub const API_VERSION: &str = "2025-06-15";

/// The header that makes a `POST` repeatable: a version 4 UUID, the same on every attempt of one request.
pub const REPEATABILITY_REQUEST_ID: &str = "repeatability-request-id";

/// The header that dates the first attempt of a repeatable request, as an IMF-fixdate.
pub const REPEATABILITY_FIRST_SENT: &str = "repeatability-first-sent";
