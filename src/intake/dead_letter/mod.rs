//! Dead-lettered events (feature `object-store`): the recording events Event Grid gave up delivering, read from the
//! subscription's dead-letter container into the recorder's journal.
//!
//! When the webhook cannot be reached for longer than Event Grid retries (24 hours or 30 attempts by default),
//! Event Grid writes the events to the event subscription's dead-letter container, if it has one, and never
//! delivers them again. [`DeadLetterSource`] reads that container (`az://<container>/<prefix>`) or a local copy of
//! it (`file:///<path>`): [`replay`](DeadLetterSource::replay) once, or [`run`](DeadLetterSource::run) beside the
//! recorder to watch it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use acs_recording::credential::ConnectionString;
//! use acs_recording::download::sink::DirectorySink;
//! use acs_recording::intake::dead_letter::DeadLetterSource;
//! use acs_recording::journal::{Journal, MemoryJournal};
//! use acs_recording::recorder::Recorder;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//!
//! let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
//!
//! // A downloaded copy of the container: one blob, as a system topic's subscription writes it.
//! let folder = tempfile::tempdir()?;
//! let hour = folder.path().join("ACS-RECORDINGS/2026/11/27/8");
//! std::fs::create_dir_all(&hour)?;
//! std::fs::write(hour.join("0b3c8f5e-4b1a-4d2e-9f6a-7c8d9e0f1a2b.json"), br#"[{"id":"e1",
//!   "subject":"/recording/call/c1/serverCallId/s1/recordingId/r1",
//!   "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z",
//!   "dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]},
//!   "recordingStartTime":"2026-11-26T07:59:00Z"},
//!   "deadLetterReason":"MaxDeliveryAttemptsExceeded","deliveryAttempts":30,"lastDeliveryOutcome":"NotFound",
//!   "publishTime":"2026-11-26T08:00:01Z","lastDeliveryAttemptTime":"2026-11-27T07:58:00Z"}]"#)?;
//!
//! let dead_letters = DeadLetterSource::open(&format!("file://{}", folder.path().display()))?;
//! let replayed = dead_letters.replay(&recorder.intake()).await?;
//! assert_eq!((replayed.blobs_read, replayed.events_journaled), (1, 1));
//!
//! let job = &recorder.journal().list().await?[0];
//! assert_eq!(job.source.as_deref(), Some(format!("dead-letters:file://{}", folder.path().display()).as_str()));
//! assert_eq!(job.notes, ["dead-lettered by Event Grid: MaxDeliveryAttemptsExceeded after 30 delivery attempts; \
//!     last outcome NotFound at 2026-11-27T07:58:00Z; published 2026-11-26T08:00:01Z"]);
//!
//! // The blob is marked: a second pass skips it.
//! let again = dead_letters.replay(&recorder.intake()).await?;
//! assert_eq!((again.blobs_read, again.blobs_skipped), (0, 1));
//! assert!(folder.path().join(".acs-recording-processed/ACS-RECORDINGS/2026/11/27/8").is_dir());
//! # Ok::<(), acs_recording::BoxError>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. A basic-tier subscription (system or custom topic) writes `<SUBSCRIPTION NAME>/<yyyy>/<m>/<d>/<h>/<guid>.json`
//!    (the name upper-cased), each a JSON array of events in the subscription's schema, each event carrying
//!    `deadLetterReason`, `deliveryAttempts`, `lastDeliveryOutcome`, `publishTime` and `lastDeliveryAttemptTime`
//!    beside its own fields (lower-case in the CloudEvents schema). A namespace subscription writes CloudEvents,
//!    each with a `deadletterProperties` object (`deadletterreason`, `deliveryattempts`, `deliveryresult`,
//!    `publishutc`, `deliveryattemptutc`), the event either beside it or wrapped in `event`. Both are read; a blob
//!    may hold one entry, an array, or entries one after another.
//! 2. Blobs under the prefix are read in name order (oldest hour first). Each job of a recording event records the
//!    source (`dead-letters:<url>`) and, in its notes, why Event Grid gave up (shown by `status`). Events are
//!    deduplicated by id like every delivery: a recording the journal already holds is not downloaded again.
//! 3. A blob is marked processed only after every entry of it was journaled: a create-only marker at
//!    `<prefix>/.acs-recording-processed/<blob name under the prefix>` ([`MARKER_FOLDER`]). A pass skips marked
//!    blobs; a failure before the marker (the journal down, the recorder stopping) leaves the blob to the next pass,
//!    whose events then count as duplicates. Deleting the markers replays everything again, harmlessly.
//! 4. Nothing is dropped silently: an entry neither schema reads, a blob that is not JSON, and a blob over
//!    [`DEFAULT_MAX_BLOB_BYTES`] (64 MiB; only its first 64 KiB are kept) are journaled as rejected with the blob's
//!    name in the reason and their text, logged with the blob's name, and then marked, so that they are reported
//!    once rather than on every pass. Events of other types are skipped and counted.
//! 5. Event Grid writes a dead-lettered event about five minutes after its last attempt; ACS keeps a recording for
//!    24 hours after its event. Replay soon after an outage, or watch the container (`run`).

mod error;
mod parse;
mod source;

pub use error::{Error, ErrorKind};
pub use parse::{parse_blob, DeadLetterProperties, DeadLetteredEvent, Tier, UnreadableBlob, UnreadableEvent};
pub use source::{DeadLetterSource, Replayed, DEFAULT_INTERVAL, DEFAULT_MAX_BLOB_BYTES, MARKER_FOLDER};
