//! The lossless recorder: Event Grid deliveries in, every recording in the sink, nothing lost on the way
//! (feature `recorder`).
//!
//! [`Recorder`] composes the crate's pieces once: the [`EventGridWebhookLayer`](crate::eventgrid::EventGridWebhookLayer)
//! in front of an [`Intake`] that writes each delivery's jobs to a [`Journal`](crate::journal::Journal) before
//! answering 200, a pool of workers that download every job's chunks with the signed client and the
//! [`ChunkDownloader`](crate::download::ChunkDownloader), and the [`Sink`](crate::download::Sink). One allow-list
//! serves both the signing layer and the downloader.
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! use acs_recording::download::DirectorySink;
//! use acs_recording::emulator::eventgrid::{recording_file_status_updated, EventGridPublisher, Schema};
//! use acs_recording::emulator::{Emulator, RecordingSpec};
//! use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
//! use acs_recording::journal::{FileJournal, JobState, Journal};
//! use acs_recording::recorder::Recorder;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await?;
//! let stored = emulator.storage().record(RecordingSpec::new("call-1", 150_000));
//! let out = tempfile::tempdir()?;
//!
//! let recorder = Recorder::builder(
//!     &emulator.connection_string(),                                        // ConnectionString::from_env()? on Azure
//!     Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>(), // an https client on Azure
//!     DirectorySink::new(out.path()),
//!     FileJournal::open(out.path().join(".journal"))?,
//! )
//! .allow_list(emulator.allow_list())
//! .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("s3cret")))
//! .build();
//!
//! // The webhook is a tower service: here on axum, as `Router::route_service`.
//! let app = axum::Router::new().route_service("/api/events", recorder.webhook());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/api/events?code=s3cret", listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let workers = recorder.spawn();
//!
//! // Event Grid validates the webhook and delivers; the 200 comes once the job is durable.
//! let publisher = EventGridPublisher::new(&url, Schema::EventGrid)?;
//! publisher.validate().await?;
//! assert!(publisher.deliver(&[recording_file_status_updated(&stored)]).await.is_delivered());
//!
//! // The job reaches `done`, with every chunk's SHA-256 in the journal.
//! let job = loop {
//!     let jobs = recorder.journal().list().await?;
//!     if jobs.first().is_some_and(|job| job.state == JobState::Done) { break jobs[0].clone() }
//!     tokio::time::sleep(std::time::Duration::from_millis(20)).await;
//! };
//! let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
//! for (progress, chunk) in job.chunks.iter().zip(&stored.chunks) {
//!     assert_eq!(progress.sha256, Some(hex(&chunk.sha256)));
//! }
//! workers.shutdown().await?;
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. **Nothing accepted is lost.** A delivery's recording events are journaled before the 200; a journal that
//!    cannot write, a full journal ([`RecorderBuilder::max_pending`]) or a shutdown answers 503, and Event Grid
//!    delivers again. Redeliveries are answered 200 without a second job; an open job a redelivery finds is queued
//!    again, and a job made durable is queued even when the delivery's caller went away.
//! 2. **Event by event.** A recording event whose data does not fit is journaled as `rejected` with its reason;
//!    the valid events of the same delivery are accepted.
//! 3. **Every open job resumes.** The workers ([`Recorder::spawn`] or [`Recorder::run`]) first queues every pending or interrupted job of the journal;
//!    chunks already stored are not downloaded again, partial ones resume from the sink.
//! 4. **Retries until the recording expires.** Each request retries per the fetch policy (its budget restarts
//!    whenever bytes arrive); a failed attempt that can succeed later (resets, timeouts, 5xx, a sink error) is
//!    tried again with backoff ([`RecorderBuilder::job_backoff`]) until the recording's expiry (event time + 24 h).
//!    A permanent failure (404/410, a refused host, a non-JSON metadata document) fails the job with a reason that
//!    names the chunk and the cause; never a secret or a query string.
//! 5. **Deletes are a step of their own** ([`RecorderBuilder::delete_after_download`]): after the chunk is in the
//!    sink; a failed delete is recorded on the chunk and retried, and never holds back the other chunks.
//! 6. **Several recordings at once** ([`RecorderBuilder::workers`], 4 by default): one slow or failing recording
//!    never blocks the others.
//! 7. **Graceful shutdown** ([`RecorderHandle::shutdown`]): the intake answers 503, running downloads get [`RecorderBuilder::shutdown_grace`]
//!    to finish, then stop where they are and resume on the next start.
//! 8. **Observable**: the [`metrics`] facade counters and gauges, `tracing` spans per job, and [`Health`] for
//!    `/healthz` and `/readyz`.
//! 9. **Many replicas on one journal** (feature `object-store`): a worker takes a job's
//!    [`Lease`](crate::journal::Lease) before working on it and skips a job another replica holds, renews the lease
//!    every third of its duration and stops, writing nothing more, once a renewal finds it taken over. Every
//!    [`Journal::poll_interval`](crate::journal::Journal::poll_interval) the workers look for open jobs that any
//!    replica accepted, so that the jobs of a replica that died are finished once its leases expire.
//! 10. **Bring your own storage**: a recording that ACS exported to the customer's container is not downloaded
//!     again by default ([`ExportedRecordings`]): its job is done with where the recording is
//!     ([`Job::exported`](crate::journal::Job::exported)); a failed export is downloaded from ACS as usual.

mod builder;
mod export;
mod future;
mod handle;
mod health;
mod hold;
mod intake;
mod manifest;
pub mod metrics;
mod shared;
mod signed;
#[cfg(all(test, feature = "emulator"))]
mod simulation;
mod worker;

pub use builder::{Recorder, RecorderBuilder, Webhook, DEFAULT_RECORDING_LIFETIME};
pub use export::ExportedRecordings;
pub use future::ResponseFuture;
pub use handle::RecorderHandle;
pub use health::Health;
pub use intake::Intake;
