//! Tower layers and services to receive and download Azure Communication Services (ACS) call recordings.
//!
//! ACS records a call, splits the media into chunks, and tells a webhook through Azure Event Grid when they are
//! ready. This crate gives each step as a tower piece, so it drops into an axum or tonic app and wraps any HTTP
//! client:
//!
//! | piece | module | role |
//! |---|---|---|
//! | `Recorder` | `recorder` | the pieces below composed once, losing nothing: deliveries journaled before the 200, a worker pool retrying until each recording expires (feature `recorder`) |
//! | `Journal`, `FileJournal` | `journal` | durable jobs and their per-chunk progress (feature `recorder`) |
//! | [`EventGridWebhookLayer`](eventgrid::EventGridWebhookLayer) | [`eventgrid`] | answers Event Grid's handshakes, authenticates deliveries, bounds and parses each body once |
//! | [`RecordingEvents`](recording::RecordingEvents) | [`recording`] | typed `RecordingFileStatusUpdated` events, an extractor (axum with the `axum` feature) |
//! | [`RecordingMetadata`](recording::RecordingMetadata) | [`recording`] | a chunk's metadata document typed: participants and channels, audio and video configuration, pauses |
//! | [`CallAutomationEvents`](recording::CallAutomationEvents) | [`recording`] | Call Automation's `RecordingStateChanged` and `StartRecordingFailed` callbacks, an extractor |
//! | [`AzureCloud`](cloud::AzureCloud) | [`cloud`] | the public, US Government and China presets: storage hosts, Event Grid origins and applications, Entra |
//! | [`DownloadQueue`](queue::DownloadQueue) | [`queue`] | in memory: answers 200 at once (503 when full), deduplicates redeliveries, hands jobs to a worker |
//! | [`ChunkDownloader`](download::ChunkDownloader) | [`download`] | streams every chunk, resumes with `Range` + `If-Match`, verifies, writes atomically |
//! | [`HmacSigningLayer`](signing::HmacSigningLayer) | [`signing`] | signs each request (HMAC-SHA256), only for allowed hosts |
//! | [`HmacVerifyLayer`](signing::HmacVerifyLayer) | [`signing`] | checks such signatures on a server |
//! | `BearerTokenLayer` | [`signing`] | sends a Microsoft Entra ID token instead of a signature, cached and refreshed ahead of expiry (feature `entra`) |
//! | `EntraDeliveryCheck` | [`eventgrid`] | requires the Entra token of an Entra-secured Event Grid subscription on every delivery (feature `entra`) |
//! | `Emulator` | `emulator` | a local ACS storage and Event Grid stand-in (feature `emulator`) |
//!
//! Data travels one way: request → webhook layer (parse once, into the request extensions) → extractor →
//! handler → queue → download service → sink.
//!
//! # Server: receive events in axum
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::queue::DownloadQueue;
//! use acs_recording::recording::RecordingEvents;
//! use axum::{extract::State, http::StatusCode, routing::post, Router};
//!
//! async fn on_events(State(queue): State<DownloadQueue>, events: RecordingEvents) -> StatusCode {
//!     match queue.accept(&events) {
//!         Ok(_) => StatusCode::OK,                           // accepted (or a redelivery): Event Grid is done
//!         Err(_) => StatusCode::SERVICE_UNAVAILABLE,         // Event Grid will deliver again later
//!     }
//! }
//!
//! let (queue, jobs) = DownloadQueue::new(1024);
//! let webhook = EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret"));
//! let app: Router = Router::new().route("/api/events", post(on_events).layer(webhook)).with_state(queue);
//! # let _ = (app, jobs);
//! # }
//! ```
//!
//! # Client: download with hyper-util
//!
//! ```no_run
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::download::{ChunkDownloader, DirectorySink};
//! use acs_recording::signing::{AllowList, HmacSigningLayer};
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::ServiceBuilder;
//!
//! # async fn run(mut jobs: acs_recording::queue::DownloadJobs,
//! #     https: hyper_util::client::legacy::connect::HttpConnector) -> Result<(), acs_recording::BoxError> {
//! let cs = ConnectionString::from_env()?; // ACS_CONNECTION_STRING
//! let allow = AllowList::azure_defaults();
//! let client = ServiceBuilder::new()
//!     .layer(HmacSigningLayer::from_connection_string(&cs).allow_list(allow.clone()))
//!     .service(Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https)); // an https connector
//! let downloader = ChunkDownloader::new(client, DirectorySink::new("recordings"))
//!     .endpoint(cs.endpoint().clone())
//!     .allow_list(allow);
//! while let Some(job) = jobs.recv().await {
//!     let manifest = downloader.download(job.recording).await?;
//!     println!("{} chunks, {} bytes", manifest.chunks.len(), manifest.bytes());
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
//! - `object-store` (implies `recorder`): `acs_recording::store`, `download::ObjectStoreSink` and
//!   `journal::ObjectStoreJournal`: recordings and the journal in Azure Blob Storage (or any `object_store`
//!   backend, local files included), shared by many recorder replicas that download each chunk once.
//!
//! All are off by default.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod body;
pub mod clock;
pub mod cloud;
pub mod credential;
pub mod download;
pub mod eventgrid;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
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
pub mod journal;
#[cfg(feature = "recorder")]
pub mod recorder;
#[cfg(feature = "object-store")]
pub mod store;

/// A boxed error, as tower uses for errors of unknown type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
