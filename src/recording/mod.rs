//! Typed recording events and the extractor that hands them to handlers.
//!
//! `Microsoft.Communication.RecordingFileStatusUpdated` says a recording is ready: its chunks, in `index` order,
//! with the URLs to download, read the metadata of, and delete each one. [`RecordingEvents`] gives a handler the
//! recording events of a delivery, from the [`EventGridWebhookLayer`](crate::eventgrid::EventGridWebhookLayer)'s
//! parse or, without the layer, by parsing the body itself.
//!
//! ```
//! # #[cfg(all(feature = "axum", feature = "recorder"))]
//! # {
//! use std::time::{Duration, SystemTime};
//!
//! use acs_recording::eventgrid::EventGridWebhookLayer;
//! use acs_recording::journal::{Job, Journal, MemoryJournal};
//! use acs_recording::recording::{Recording, RecordingEvents};
//! use axum::{extract::State, routing::post, Router};
//! use http::StatusCode;
//!
//! async fn on_events(State(journal): State<MemoryJournal>, events: RecordingEvents) -> StatusCode {
//!     let now = SystemTime::now();
//!     let mut jobs = Vec::new();
//!     for event in &events {
//!         for chunk in event.data().chunks() {
//!             println!("chunk {} of {}: {:?}", chunk.index(), event.id(), chunk.content_location());
//!         }
//!         // What the download service takes. Never answer 400 to a recording event: Event Grid would not
//!         // deliver it again and the recording would be lost.
//!         let recording = Recording::from_event(&event);
//!         jobs.push(Job::new(event.id(), recording, now, now + Duration::from_secs(24 * 60 * 60)));
//!     }
//!     // Persist, then answer 200 (a `FileJournal` in production: the memory journal is lost with the process).
//!     match journal.insert(&jobs).await {
//!         Ok(_) => StatusCode::OK,
//!         Err(_) => StatusCode::SERVICE_UNAVAILABLE, // Event Grid delivers again later
//!     }
//! }
//!
//! let app: Router = Router::new()
//!     .route("/events", post(on_events).layer(EventGridWebhookLayer::new()))
//!     .with_state(MemoryJournal::new());
//! # let _ = app;
//! # }
//! ```
//!
//! # Rules
//!
//! 1. Enums are open: a value this version does not know is kept in an `Other(String)` arm; known values match
//!    ignoring ASCII case.
//! 2. Nothing of a newer version is lost: unknown fields of the event data and of the metadata document are kept
//!    (`other`). Only the chunk list is required, so the 2021 payload (document id, index and end reason only)
//!    parses; the fields recent API versions call required stay optional.
//! 3. [`RecordingFileStatusUpdated::chunks`] is in `index` order, whatever order the service sent.
//! 4. [`RecordingSubject`] reads all three subject forms.
//! 5. Ids and URLs are input: never build a path or a request from them without checking (the download service
//!    does). [`Recording::from_event`] is the one conversion from an event to what the download service takes.
//! 6. A recording event whose data does not fit is in [`RecordingEvents::rejected`] with its reason.
//! 7. [`RecordingMetadata`] types a chunk's metadata document: participants and their channels (unmixed audio has
//!    up to 5, one participant each), the audio and video configuration, pauses, the chunk's start and duration.
//!    The downloader parses it once, as it checks it, and hands it on in the
//!    [`ChunkManifest`](crate::download::ChunkManifest).
//! 8. Bring your own storage: `storageType` and `recordingId` are read; [`Recording::exported`] says when ACS
//!    exported the recording to the customer's container (and what is known of the folder, see
//!    [`ExportedRecording`]); a failed export names ACS storage and is downloaded as usual.
//! 9. Call Automation's recording callbacks (`RecordingStateChanged`, `StartRecordingFailed`) arrive on the
//!    call's callback URL as a JSON array of CloudEvents: [`CallAutomationEvents`] types them, as
//!    [`RecordingEvents`] does the Event Grid events. Mount it without the Event Grid layer: Call Automation sends no
//!    handshake, and the layer would read a CloudEvents array labelled `application/json` as the Event Grid
//!    schema.

#[macro_use]
mod open_enum;

mod byos;
mod callback;
mod callback_extract;
mod chunk;
mod event;
mod extract;
mod lenient;
mod metadata;
mod model;
mod subject;
mod values;

pub(crate) use open_enum::open_enum;

pub use byos::ExportedRecording;
pub use callback::{
    RecordingCallback, RecordingKind, RecordingState, RecordingStateChanged, ResultInformation, StartRecordingFailed,
    RECORDING_STATE_CHANGED_EVENT, START_RECORDING_FAILED_EVENT,
};
pub use callback_extract::{CallAutomationEvents, CallbackEvent};
pub use chunk::RecordingChunk;
pub use event::RecordingFileStatusUpdated;
pub use extract::{Iter, RecordingEvent, RecordingEvents};
pub use metadata::{
    AudioConfiguration, ChannelAssignment, MetadataParticipant, PauseResumeInterval, RecordingInfo, RecordingMetadata,
    VideoConfiguration,
};
pub use model::Recording;
pub use subject::RecordingSubject;
pub use values::{
    ChunkEndReason, RecordingChannelType, RecordingContentType, RecordingFormatType, RecordingStorageType,
    SessionEndReason,
};
