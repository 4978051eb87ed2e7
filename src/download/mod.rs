//! Downloading recordings: every chunk of a recording, media and metadata, streamed in constant memory, resumed
//! after failures, verified, and stored without ever leaving a wrong file.
//!
//! [`ChunkDownloader`] wraps any HTTP client service — normally hyper-util's client inside the
//! [`HmacSigningLayer`](crate::signing::HmacSigningLayer) — and stores chunks in a [`Sink`](sink::Sink): the
//! [`DirectorySink`](sink::DirectorySink) by default, a [`WriterSink`](sink::WriterSink) for any `AsyncWrite`, or your own.
//! A download is not a delivery's answer: whoever receives the event persists it first (then answers 200) and
//! downloads from that record, so that a crash mid-download loses nothing. The
//! [`Recorder`](crate::recorder::Recorder) (feature `recorder`) does both, with retries until the recording expires.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use acs_recording::download::{ChunkDownloader, ErrorKind, Outcome};
//! use acs_recording::download::sink::DirectorySink;
//! use acs_recording::emulator::{Emulator, Fault, RecordingSpec};
//! use acs_recording::recording::{Recording, RecordingChunk};
//! use acs_recording::signing::HmacSigningLayer;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A local ACS stand-in whose recording spans three chunks, the second one's connection dropping midway.
//! let emulator = Emulator::builder().chunk_limit(100_000).start().await?;
//! let stored = emulator.storage().record(RecordingSpec::new("call-1", 250_000));
//! emulator.storage().inject(&stored.chunks[1].document_id, [Fault::DropAfter(30_000)]);
//!
//! let connection_string = emulator.connection_string(); // `ConnectionString::from_env()?` against Azure
//! let client = ServiceBuilder::new()
//!     .layer(HmacSigningLayer::from_connection_string(&connection_string).allow_list(emulator.allow_list()))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//! let folder = tempfile::tempdir()?;
//! let downloader = ChunkDownloader::new(client, DirectorySink::new(folder.path()))
//!     .endpoint(connection_string.endpoint().clone())
//!     .allow_list(emulator.allow_list());
//!
//! // What a `RecordingFileStatusUpdated` event lists, in any order.
//! let mut recording = Recording::new("call-1").format("Wav");
//! for c in stored.chunks.iter().rev() {
//!     recording = recording.chunk(
//!         RecordingChunk::new(&c.document_id, c.index)
//!             .with_locations(&c.content_location, &c.metadata_location, &c.delete_location),
//!     );
//! }
//! let manifest = downloader.clone().oneshot(recording.clone()).await?;
//! for (got, want) in manifest.chunks.iter().zip(&stored.chunks) {
//!     assert_eq!((got.index, got.sha256), (want.index, want.sha256));
//!     assert_eq!(got.location, folder.path().join(format!("call-1/{}-{}.wav", want.index, want.document_id))
//!         .display().to_string());
//! }
//! // The dropped chunk resumed where it stopped, pinned to the version it started with.
//! let resumed = &emulator.storage().requests_for(&stored.chunks[1].document_id)[2];
//! assert_eq!(resumed.range.as_deref(), Some("bytes=30000-"));
//! assert!(resumed.if_match.is_some());
//!
//! // A rerun skips what is complete.
//! let again = downloader.download(recording).await?;
//! assert!(again.chunks.iter().all(|c| c.outcome == Outcome::Skipped));
//!
//! // Event payloads are input: a location on a host that is not allowed is refused before any request.
//! let evil = Recording::new("call-1").chunk(RecordingChunk::new("x", 0).with_content_location("https://attacker.example/x"));
//! let error = downloader.download(evil).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::RefusedHost);
//! assert_eq!(error.to_string(), "chunk 0 (`x`) content: location on refused host `attacker.example`");
//! assert_eq!(error.host(), Some("attacker.example"));
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. **Locations.** `contentLocation`/`metadataLocation` when the event has them; otherwise the legacy
//!    `{endpoint}/recording/download/{documentId}[/metadata]?api-version=2021-04-15-preview1`, the document id
//!    percent-encoded as one path segment ([`legacy_content_location`]). `deleteLocation` is never derived.
//! 2. **Allow-list first.** Every location of every chunk is checked before the first request: only the endpoint
//!    and the [`AllowList`](crate::signing::AllowList) (by default the official SDKs' storage suffixes, `https`
//!    only). A refusal names the host. Redirects are followed (at most 5) only to allowed destinations.
//! 3. **Streaming.** Bytes go from the response to the sink frame by frame; memory stays constant whatever the chunk's
//!    size. [`ChunkDownloader::chunk_body`] gives a chunk as a `Stream`/`Body`.
//! 4. **Parallel ranges**, opt-in ([`ChunkDownloader::parallel`]; on by default in the
//!    [`Recorder`](crate::recorder::Recorder)): the first request asks for `bytes=0-{threshold-1}`; a larger chunk
//!    goes on, while that first response streams, with parts of [`ParallelPolicy::part_size`] bytes,
//!    [`ParallelPolicy::parallelism`] requests in flight, each pinned with `If-Match` to the first response's
//!    version and resumed inside its own range after a cut. Parts are written with positional writes
//!    ([`PositionalWriter`](sink::PositionalWriter)); each completed range is recorded beside the partial file, so that a rerun fetches only
//!    the missing ranges. The SHA-256 covers the whole object in order. Memory is one [`MemoryBudget`] for every
//!    parallel download of the process (64 MiB by default, [`ChunkDownloader::memory_budget`]): each part in
//!    flight but one per chunk holds some of it for its buffers, and bytes that arrive ahead of the hash wait in
//!    memory only while the budget holds them (and within one part of the hash), otherwise they are read back from
//!    the written file in their turn (a sink that cannot read back makes each part reserve all its bytes before it
//!    starts). When the budget is spent a chunk goes on with fewer parts, at least one, so chunks sharing a budget
//!    never wait on each other for good. A version change on any part (412, another ETag or size) restarts
//!    the chunk from byte 0. A sink without positional writes gets the rest as one stream. A first response that
//!    runs at [`ParallelPolicy::fast_stream`] or faster over its first 4 MiB (256 MB/s by default) keeps the chunk
//!    to two requests at a time: on such a link more connections only compete with the hash for CPU.
//! 5. **Resume.** After a reset, a body error, a read timeout or a transient status, the request is repeated with
//!    `Range: bytes=<received>-` and `If-Match: <first ETag>` (`If-Unmodified-Since` without an ETag). A 206 must
//!    start at that byte with the first total; a 200 to a Range request is skipped up to that byte when its ETag is
//!    the pinned one, else the chunk restarts. 412 (the object changed) restarts the chunk from zero and truncates
//!    what was written; never are two versions spliced. 416 on `bytes=0-` (an empty object) is asked again
//!    without Range. A 206 whose total is unknown (`bytes 0-N/*`, RFC 9110 §14.4) never ends the object: the rest
//!    is asked for, as one stream, until a 416 at the next byte (or a total) says where it ends.
//! 6. **Retries.** Exponential backoff with jitter, `Retry-After` honoured up to the largest backoff, bounded
//!    attempts and time, both counted from the last progress ([`RetryPolicy`]): a transfer that keeps receiving
//!    bytes is never given up, one that makes none is. Transient: resets, timeouts, 408, 429, 500, 502, 503, 504.
//!    Permanent (no retry, the error names the status and the chunk): 400, 404, 410 and other statuses. 401 and
//!    403 are not retried per request either, but their error ([`ErrorKind::AccessDenied`]) is
//!    [retryable](Error::is_retryable) later: a rotated key or a role assignment takes a while to take effect.
//! 7. **Verification.** The bytes stored must equal `Content-Length`/`Content-Range` totals; `Content-MD5` is
//!    checked when sent, for a whole object as for each part of a parallel download (a part that fails it starts
//!    the chunk over, as a changed object does, and the error names the check once that happened too often); SHA-256 is computed while streaming (on a thread of its own, overlapping the transfer) and
//!    returned in the [`ChunkManifest`]. When the server announces the whole object's MD5
//!    (`x-ms-blob-content-md5`, as Azure Blob storage does on ranged answers), an MD5 is computed alongside and
//!    checked once every byte arrived; it is kept in the [`ObjectVersion`](sink::ObjectVersion) so that a resume from a partial file
//!    still checks it, and a partial file stored without it restarts from byte 0. A mismatch restarts the object
//!    and counts as a failed attempt.
//! 8. **Storage.** Chunks go in `index` order ([`ChunkDownloader::concurrency`] at once, default 1), metadata
//!    (checked to be JSON, at most 1 MiB) before media. A sink commits only after every check passed; the
//!    [`DirectorySink`](sink::DirectorySink) writes to a temporary name, fsyncs and renames, and a rerun skips complete chunks and
//!    resumes partial ones.
//! 9. **Delete**, opt-in ([`ChunkDownloader::delete_after_write`]): `DELETE <deleteLocation>` only after that
//!    chunk's durable commit; 404 counts as already deleted.
//! 10. **Observability.** A `tracing` span `chunk` per chunk (call id, document id, index, attempts, bytes,
//!     outcome) with an event per failed attempt; only host and path are logged, never signatures or query strings.
//!     Wherever a URL appears in an error message, a `Debug` output or a log field, it is shown as
//!     `scheme://host[:port]/path` with its query replaced by `?…` (user information and fragment dropped): a SAS
//!     `sig=` never lands in logs. Progress goes to [`ChunkDownloader::on_progress`].
//!
//! # Security
//!
//! Event payloads are attacker-controlled input until proven otherwise: keep the allow-list narrow, give the
//! signing layer the same list (it refuses on its own too), and name loopback or IP hosts explicitly only in
//! tests. File names are [sanitised](sink::sanitize_name) and never leave the sink's folder.

mod attempt;
mod backoff;
mod body;
mod budget;
mod digest;
mod error;
mod fetch;
mod future;
pub(crate) mod header;
mod location;
mod manifest;
pub(crate) mod parallel;
mod resumable_sha256;
pub(crate) mod retry;
mod service;
pub mod sink;

pub use backoff::Backoff;
pub use body::ChunkBody;
pub use budget::{MemoryBudget, DEFAULT_MEMORY_BUDGET};
pub use error::{Error, ErrorKind, Location};
pub use future::ResponseFuture;
pub use location::{legacy_content_location, legacy_metadata_location, LEGACY_API_VERSION};
pub use manifest::{ChunkManifest, Outcome, Progress, RecordingManifest};
pub use parallel::ParallelPolicy;
pub use resumable_sha256::{ResumableSha256, Sha256State};
pub use retry::RetryPolicy;
pub use service::ChunkDownloader;
