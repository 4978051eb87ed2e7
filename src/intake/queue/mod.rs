//! The Azure Storage queue source: the events an Event Grid subscription delivers to a Storage queue (its "storage
//! queue" endpoint type), read by a recorder that has outbound HTTPS only; several replicas may share one queue.
//!
//! [`QueueSource`] receives messages in batches through a [`QueueClient`], admits each message's events through
//! the recorder's [`Intake`](crate::recorder::Intake) and deletes the message once they are durable.
//!
//! ```no_run
//! # async fn run() -> Result<(), acs_recording::BoxError> {
//! # use acs_recording::credential::ConnectionString;
//! # use acs_recording::download::sink::DirectorySink;
//! # use acs_recording::journal::MemoryJournal;
//! # use acs_recording::recorder::Recorder;
//! # use http_body_util::Empty;
//! # let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
//! # let downloads = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! # let recorder = Recorder::builder(&cs, downloads, DirectorySink::new("recordings"), MemoryJournal::new()).build();
//! use acs_recording::credential::AccessKey;
//! use acs_recording::intake::queue::{QueueClient, QueueCredential, QueueOptions, QueueSource, QueueUrl};
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let url = QueueUrl::parse("http://127.0.0.1:10001/devstoreaccount1/acs-events")?;
//! let key = AccessKey::from_base64(&std::env::var("AZURE_STORAGE_ACCOUNT_KEY")?)?;
//! let source = QueueSource::new(QueueClient::new(http, url, QueueCredential::AccountKey(key)), QueueOptions::default());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! tokio::spawn(source.run(recorder.intake(), async { let _ = stopped.await; }));
//! recorder.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! let _ = stop.send(());
//! # Ok(()) }
//! ```
//!
//! # Rules
//! 1. A message is deleted only after its events were admitted (or, if it can never be an event, journaled as
//!    rejected with its text) and the intake answered `Ok`. Otherwise it is left: the queue makes it visible again
//!    once its visibility timeout passes, to this replica or another, and a redelivery is a duplicate.
//! 2. A message's text is plain JSON when it starts with `{` or `[`, else the base64 of JSON (Event Grid's storage
//!    queue delivery encodes it so); one event per message, in the Event Grid schema or, when the event has
//!    `specversion`, the CloudEvents schema. Events that are not recording events are acknowledged.
//! 3. A message whose processing failed on its `max_dequeue`th delivery (the queue counts deliveries in
//!    `DequeueCount`) is put, text unchanged, to `<queue>-poison` (created when first needed), then deleted. A
//!    journal that holds its maximum of open jobs is backpressure, not a failure of the message: the batch is left
//!    to come back, nothing is poisoned for it, and the next receive waits 30 s.
//! 4. An empty queue is asked again after 1 s, doubling to 30 s, and at once after a batch.
//! 5. The Storage service's rules this relies on: Get Messages hides each message it returns for the visibility
//!    timeout and counts its delivery; Delete Message needs the pop receipt of the latest receive (404 or 400 once
//!    another receive took the message); Shared Key signs the verb, Content-Length (empty when 0), Content-Type,
//!    the sorted lower-case `x-ms-` headers and `/<account><path>` with the sorted, decoded query parameters.
//!
//! # Security
//! The account key and a SAS in the URL are never shown: `Debug`, `Display` and errors give the URL without its
//! query. Plain http is accepted for loopback hosts only (Azurite).

mod auth;
mod client;
mod error;
mod message;
mod shared_key;
mod source;
mod url;
mod xml;

use std::time::SystemTime;

pub use auth::{QueueCredential, STORAGE_SCOPE};
pub use client::{QueueClient, API_VERSION, MAX_BATCH};
pub use error::{Error, ErrorKind};
pub use message::{decode_message, Undecodable};
pub use source::{QueueOptions, QueueSource};
pub use url::QueueUrl;

/// A message as the queue service handed it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueMessage {
    /// The message's id.
    pub id: String,
    /// The receipt that deletes this delivery of the message (empty for a peeked message).
    pub pop_receipt: String,
    /// How many times the message was received, this time included.
    pub dequeue_count: u32,
    /// When the message was put in the queue.
    pub insertion_time: Option<SystemTime>,
    /// The message's text, unescaped.
    pub text: String,
}
