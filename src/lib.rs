//! Tower layers and services to receive and download Azure Communication Services (ACS) call recordings.
//!
//! ACS records a call, splits the media into chunks, and tells a webhook through Azure Event Grid when they are
//! ready. Event Grid delivers each event until it gets a 200, then never again, and ACS deletes the recording
//! 24 hours after it was made: a webhook must make every accepted recording durable before it answers 200. The
//! `Recorder` does that for you (feature `recorder`); the pieces it is made of are tower
//! layers and services of their own, for those who compose their own:
//!
//! | piece | module | role |
//! |---|---|---|
//! | `Recorder` | `recorder` | the pieces below composed once, losing nothing: deliveries journaled before the 200, a worker pool retrying until each recording expires (feature `recorder`) |
//! | `Journal`, `FileJournal`, `MemoryJournal` | `journal` | jobs and their per-chunk progress: durable in a folder, or in memory for demos and tests (feature `recorder`) |
//! | [`EventGridWebhookLayer`](eventgrid::EventGridWebhookLayer) | [`eventgrid`] | answers Event Grid's handshakes, authenticates deliveries, bounds and parses each body once |
//! | [`RecordingEvents`](recording::RecordingEvents) | [`recording`] | typed `RecordingFileStatusUpdated` events, an extractor (axum with the `axum` feature) |
//! | [`RecordingMetadata`](recording::RecordingMetadata) | [`recording`] | a chunk's metadata document typed: participants and channels, audio and video configuration, pauses |
//! | [`CallAutomationEvents`](recording::CallAutomationEvents) | [`recording`] | Call Automation's `RecordingStateChanged` and `StartRecordingFailed` callbacks, an extractor |
//! | [`AzureCloud`](cloud::AzureCloud) | [`cloud`] | the public, US Government and China presets: storage hosts, Event Grid origins and applications, Entra |
//! | [`RecordingClient`](calling::RecordingClient) | [`calling`] | starts, pauses, resumes and stops call recordings through Call Automation, with repeatable starts and retries |
//! | [`ChunkDownloader`](download::ChunkDownloader) | [`download`] | streams every chunk, resumes with `Range` + `If-Match`, verifies, writes atomically |
//! | [`HmacSigningLayer`](signing::HmacSigningLayer) | [`signing`] | signs each request (HMAC-SHA256), only for allowed hosts |
//! | [`HmacVerifyLayer`](signing::HmacVerifyLayer) | [`signing`] | checks such signatures on a server |
//! | `BearerTokenLayer` | [`signing`] | sends a Microsoft Entra ID token instead of a signature, cached and refreshed ahead of expiry (feature `entra`) |
//! | `EntraDeliveryCheck` | [`eventgrid`] | requires the Entra token of an Entra-secured Event Grid subscription on every delivery (feature `entra`) |
//! | `Emulator` | `emulator` | a local ACS storage and Event Grid stand-in (feature `emulator`) |
//!
//! Data travels one way: request → webhook layer (parse once, into the request extensions) → intake (the journal,
//! then the 200) → workers → download service → sink. Composing your own, the extractor and your handler take the
//! intake's place: persist, then answer 200.
//!
//! # Server: the recorder in axum
//!
//! ```
//! # #[cfg(all(feature = "recorder", feature = "axum"))]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::download::sink::DirectorySink;
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::journal::FileJournal;
//! use acs_recording::recorder::Recorder;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
//! let folder = tempfile::tempdir()?;
//! let recorder = Recorder::builder(
//!     &cs,                                                                // ConnectionString::from_env()?
//!     Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>(), // an https client on Azure
//!     DirectorySink::new(folder.path().join("recordings")),
//!     FileJournal::open(folder.path().join("journal"))?,
//! )
//! .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret")))
//! .build();
//!
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/api/events", recorder.webhook()) // journals each delivery, then answers 200
//!     .route_service("/readyz", recorder.health());
//! let workers = recorder.spawn();
//! // axum::serve(listener, app).with_graceful_shutdown(signal).await?;
//! # let _ = app;
//! workers.shutdown().await?;
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Composing your own: persist, then answer 200
//!
//! The layer parses and authenticates, the extractor types the events; the handler answers 200 only once what it
//! accepted is durable, here in a `Journal`, and 503 when it cannot, so that Event Grid
//! delivers again.
//!
//! ```
//! use std::time::SystemTime;
//!
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::journal::{FileJournal, Job, Journal};
//! use acs_recording::recorder::DEFAULT_RECORDING_LIFETIME;
//! use acs_recording::recording::{Recording, RecordingEvents};
//! use axum::{extract::State, http::StatusCode, routing::post, Router};
//!
//! async fn on_events(State(journal): State<FileJournal>, events: RecordingEvents) -> StatusCode {
//!     let now = SystemTime::now();
//!     let jobs: Vec<Job> = events
//!         .iter()
//!         .map(|event| Job::new(event.id(), Recording::from_event(&event), now, now + DEFAULT_RECORDING_LIFETIME))
//!         .collect();
//!     match journal.insert(&jobs).await {
//!         Ok(_) => StatusCode::OK,                   // durable (or a redelivery): Event Grid is done
//!         Err(_) => StatusCode::SERVICE_UNAVAILABLE, // Event Grid will deliver again later
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! # let folder = tempfile::tempdir()?;
//! let journal = FileJournal::open(folder.path())?;
//! let webhook = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret"));
//! let app: Router = Router::new().route("/api/events", post(on_events).layer(webhook)).with_state(journal);
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! # Client: download with hyper-util
//!
//! ```no_run
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::download::{sink::DirectorySink, ChunkDownloader};
//! use acs_recording::journal::{FileJournal, Journal};
//! use acs_recording::signing::{AllowList, HmacSigningLayer};
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::ServiceBuilder;
//!
//! # async fn run(https: hyper_util::client::legacy::connect::HttpConnector) -> Result<(), acs_recording::BoxError> {
//! let cs = ConnectionString::from_env()?; // ACS_CONNECTION_STRING
//! let allow = AllowList::azure_defaults();
//! let client = ServiceBuilder::new()
//!     .layer(HmacSigningLayer::from_connection_string(&cs).allow_list(allow.clone()))
//!     .service(Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https)); // an https connector
//! let downloader = ChunkDownloader::new(client, DirectorySink::new("recordings"))
//!     .endpoint(cs.endpoint().clone())
//!     .allow_list(allow);
//! let journal = FileJournal::open("journal")?;
//! for mut job in journal.list_open().await? {
//!     let Some(recording) = job.recording.clone() else { continue };
//!     let manifest = downloader.download(recording).await?;
//!     println!("{} chunks, {} bytes", manifest.chunks.len(), manifest.bytes());
//!     job.finish(std::time::SystemTime::now());
//!     journal.update(&job).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! - `axum`: `FromRequest` for [`RecordingEvents`](recording::RecordingEvents) and `FromRequestParts` for
//!   [`Events`](eventgrid::Events), with rejections that map to exact statuses.
//! - `emulator`: `acs_recording::emulator`, a local ACS recording storage (signed, Range-capable, with fault
//!   injection) and Event Grid publisher, for tests and demos.
//! - `recorder`: `acs_recording::journal` and `acs_recording::recorder`, the lossless recorder, with counters and
//!   gauges through the `metrics` facade.
//! - `entra`: Microsoft Entra ID. `signing::BearerTokenLayer` authenticates requests to ACS with tokens from any
//!   `azure_core::credentials::TokenCredential` (the `azure_identity` credentials), and
//!   `eventgrid::EntraDeliveryCheck` validates the tokens of Entra-secured Event Grid deliveries (RS256, the
//!   tenant's published keys). Its dependencies, `azure_core` 1 and `jsonwebtoken` 12, need Rust 1.88, below this
//!   crate's 1.89.
//! - `object-store` (implies `recorder`): `acs_recording::store`, `download::sink::ObjectStoreSink` and
//!   `journal::ObjectStoreJournal`: recordings and the journal in Azure Blob Storage (or any `object_store`
//!   backend, local files included), shared by many recorder replicas that download each chunk once.
//!
//! All are off by default.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod calling;
#[cfg(feature = "recorder")]
mod chain;
mod client;
pub mod clock;
pub mod cloud;
pub mod credential;
mod digest;
pub mod download;
pub mod eventgrid;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod inner;
mod name;
mod random;
pub mod recording;
mod redact;
mod secret;
pub mod signing;
#[cfg(any(feature = "emulator", feature = "recorder"))]
mod time;

#[cfg(feature = "emulator")]
pub mod emulator;
#[cfg(feature = "recorder")]
pub mod intake;
#[cfg(feature = "recorder")]
pub mod journal;
#[cfg(feature = "recorder")]
pub mod recorder;
#[cfg(feature = "object-store")]
pub mod store;

pub use client::HttpClient;
pub use digest::{ParseDigestError, Sha256Digest};

/// A boxed error, as tower uses for errors of unknown type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
