//! Typed recording events and the extractor that hands them to handlers (`SPEC.md` §3).
//!
//! `Microsoft.Communication.RecordingFileStatusUpdated` says a recording is ready: its chunks, in `index` order,
//! with the URLs to download, read the metadata of, and delete each one. [`RecordingEvents`] gives a handler the
//! recording events of a delivery, from the [`EventGridWebhookLayer`](crate::eventgrid::EventGridWebhookLayer)'s
//! parse or, without the layer, by parsing the body itself.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # {
//! use acs_recording::eventgrid::EventGridWebhookLayer;
//! use acs_recording::recording::RecordingEvents;
//! use axum::{routing::post, Router};
//! use http::StatusCode;
//!
//! async fn on_events(events: RecordingEvents) -> StatusCode {
//!     for event in &events {
//!         for chunk in event.data().chunks() {
//!             println!("chunk {} of {}: {:?}", chunk.index(), event.id(), chunk.content_location());
//!         }
//!         // What the download service takes; queue it, then answer 200.
//!         let Some(recording) = event.to_recording_ref() else { return StatusCode::BAD_REQUEST };
//!         let _ = recording;
//!     }
//!     StatusCode::OK
//! }
//!
//! let app: Router = Router::new().route("/events", post(on_events).layer(EventGridWebhookLayer::new()));
//! # let _ = app;
//! # }
//! ```
//!
//! # Rules
//!
//! 1. Enums are open: a value this version does not know is kept in an `Other(String)` arm.
//! 2. Unknown fields are ignored; only the chunk list and `recordingStartTime` are required, so the 2021 payload
//!    (document id, index and end reason only) parses.
//! 3. [`RecordingFileStatusUpdated::chunks`] is in `index` order, whatever order the service sent.
//! 4. [`RecordingSubject`] reads all three subject forms.
//! 5. Ids and URLs are input: never build a path or a request from them without checking (the download service
//!    does). [`RecordingEvent::to_recording_ref`] hands an event to the download service unchanged.

mod event;
mod extract;

pub use event::{
    ChunkEndReason, RecordingChannelType, RecordingChunk, RecordingContentType, RecordingFileStatusUpdated,
    RecordingFormatType, RecordingSubject, SessionEndReason,
};
pub use extract::{Iter, RecordingEvent, RecordingEvents};
