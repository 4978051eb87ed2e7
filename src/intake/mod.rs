//! The doors events come through besides the webhook: sources that a recorder reaches with outbound HTTPS only.
//!
//! Each source reads messages from where Azure put them, admits their recording events through the recorder's
//! [`Intake`](crate::recorder::Intake) and acknowledges a message only once its events are durable, so a journal
//! that cannot write leaves the message to come again and a redelivery is a duplicate. Each job records its source
//! ([`Source`](crate::recorder::Source)).
//!
//! ```
//! use acs_recording::recorder::{Source, SourceKind};
//!
//! // What a queue source records with each job it admits.
//! assert_eq!(Source::new(SourceKind::StorageQueue, "acs-events").to_string(), "queue:acs-events");
//! ```

#[cfg(feature = "object-store")]
pub mod dead_letter;
#[cfg(feature = "recorder")]
pub mod pull;
#[cfg(feature = "storage-queue")]
pub mod queue;
