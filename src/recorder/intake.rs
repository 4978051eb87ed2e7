//! The webhook's inner service: a delivery's recording events into the journal, then 200 (or 503).

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::admission::{self, Admission, AdmitError};
use super::future::ResponseFuture;
use super::shared::Shared;
use super::source::Source;
use crate::eventgrid::{Events, PROBLEM_CONTENT_TYPE};
use crate::journal::Journal;
use crate::recording::RecordingEvents;

/// The recorder's intake: the service behind the [`EventGridWebhookLayer`](crate::eventgrid::EventGridWebhookLayer)
/// that journals each delivery's recording events before answering, through [`Intake::admit`], which any other
/// source of events calls too. Cheap to clone; from [`Recorder::intake`](super::Recorder::intake).
///
/// 1. Redeliveries (same event id) are recognised in memory first, then by the journal; they are answered 200 and
///    not journaled again. A record the journal finds open is queued again: the delivery that wrote it may have
///    failed or been dropped before queueing it.
/// 2. The new jobs of a delivery, and a record of each recording event whose data did not fit (rejected, with the
///    reason), are written durably; only then is the answer **200** with
///    `{"accepted":N,"duplicates":N,"rejected":N}`.
/// 3. When the journal cannot write, holds its maximum of open jobs, or the recorder is shutting down, the answer
///    is **503** with `Retry-After`, so that Event Grid delivers again later; nothing was accepted.
/// 4. The admission runs as a task of its own: when the caller goes away (the server drops this service's future),
///    the jobs already durable are still queued.
/// 5. A job expires at the event's time plus the recording lifetime, the event's time being at most the time
///    received: an event cannot extend its own retention.
pub struct Intake<J> {
    shared: Arc<Shared<J>>,
}

impl<J> Clone for Intake<J> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<J> fmt::Debug for Intake<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake").field("max_pending", &self.shared.max_pending).finish_non_exhaustive()
    }
}

impl<J> Intake<J> {
    pub(crate) fn new(shared: Arc<Shared<J>>) -> Self {
        Self { shared }
    }
}

impl<J: Journal> Intake<J> {
    /// Admits a batch of recording events from any source, as the webhook does for each delivery: journals a job
    /// for each event not seen before (deduplicated in memory, then by the journal), counts them in the metrics,
    /// and queues them for the workers. `Ok` means every accepted event is durable: only then may the source
    /// acknowledge the batch.
    ///
    /// A future source (a queue consumer, say) acknowledges its message only after `admit` returned `Ok`; on an
    /// [`AdmitError`] it leaves the message to be delivered again (every kind is temporary). Redelivering an
    /// admitted batch is harmless: its events count as duplicates.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use acs_recording::credential::ConnectionString;
    /// use acs_recording::download::sink::DirectorySink;
    /// use acs_recording::eventgrid::{Events, Schema};
    /// use acs_recording::journal::{Journal, MemoryJournal};
    /// use acs_recording::recorder::Recorder;
    /// use acs_recording::recording::RecordingEvents;
    /// use bytes::Bytes;
    /// use http_body_util::Empty;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
    ///
    /// // A message from a queue: the Event Grid events of one delivery.
    /// let message = br#"[{"id":"e1","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1",
    ///   "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z",
    ///   "dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]},
    ///   "recordingStartTime":"2026-11-26T07:59:00Z"}}]"#;
    /// let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, message)?);
    /// let intake = recorder.intake();
    /// assert_eq!(intake.admit(&events).await?.accepted, 1); // durable: acknowledge the message now
    /// assert_eq!(intake.admit(&events).await?.duplicates, 1, "a redelivery adds nothing");
    /// assert_eq!(recorder.journal().list().await?.len(), 1);
    /// # Ok::<(), acs_recording::BoxError>(())
    /// # }).unwrap();
    /// ```
    pub async fn admit(&self, events: &RecordingEvents) -> Result<Admission, AdmitError> {
        admission::admit(&self.shared, None, events).await
    }

    /// [`Intake::admit`] for events from `source`: each new job records the source, and the source's metrics
    /// count what was journaled, what was a duplicate and what was rejected.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use acs_recording::credential::ConnectionString;
    /// # use acs_recording::download::sink::DirectorySink;
    /// # use acs_recording::eventgrid::{Events, Schema};
    /// # use acs_recording::journal::{Journal, MemoryJournal};
    /// # use acs_recording::recorder::Recorder;
    /// # use acs_recording::recording::RecordingEvents;
    /// # use bytes::Bytes;
    /// # use http_body_util::Empty;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// # let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
    /// # let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// # let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
    /// use acs_recording::recorder::{Source, SourceKind};
    ///
    /// let message = br#"{"id":"e1","subject":"/recording/call/c1/serverCallId/s1/recordingId/r1",
    ///   "eventType":"Microsoft.Communication.RecordingFileStatusUpdated","eventTime":"2026-11-26T08:00:00Z",
    ///   "dataVersion":"1.0","data":{"recordingStorageInfo":{"recordingChunks":[{"documentId":"d0","index":0}]},
    ///   "recordingStartTime":"2026-11-26T07:59:00Z"}}"#;
    /// let events = RecordingEvents::from_events(Events::from_slice(Schema::EventGrid, message)?);
    /// let queue = Source::new(SourceKind::StorageQueue, "acs-events");
    /// recorder.intake().admit_from(&queue, &events).await?; // durable: delete the message now
    /// let jobs = recorder.journal().list().await?;
    /// assert_eq!(jobs[0].source.as_deref(), Some("queue:acs-events"));
    /// # Ok::<(), acs_recording::BoxError>(())
    /// # }).unwrap();
    /// ```
    pub async fn admit_from(&self, source: &Source, events: &RecordingEvents) -> Result<Admission, AdmitError> {
        admission::admit(&self.shared, Some(source), events).await
    }

    /// [`Intake::admit_from`], adding `notes` to each new job (shown by `status` with the job): what the source
    /// knows about these events that the events do not say, such as why they came late. A duplicate keeps the notes
    /// of its first admission.
    pub async fn admit_with_notes(
        &self,
        source: &Source,
        events: &RecordingEvents,
        notes: &[String],
    ) -> Result<Admission, AdmitError> {
        admission::admit_noted(&self.shared, Some(source), events, notes).await
    }

    /// Journals a message from `source` that can never be events (not JSON, not in an event schema) as a
    /// `rejected` record holding its text and `reason`, so that nothing a source delivered is dropped silently;
    /// the source may acknowledge the message once this returned `Ok`. `Ok(false)`: the same text was rejected
    /// before (the record's id comes from the text's SHA-256).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use acs_recording::credential::ConnectionString;
    /// # use acs_recording::download::sink::DirectorySink;
    /// # use acs_recording::journal::{Journal, JobState, MemoryJournal};
    /// # use acs_recording::recorder::Recorder;
    /// # use bytes::Bytes;
    /// # use http_body_util::Empty;
    /// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    /// # let cs: ConnectionString = "endpoint=https://contoso.communication.azure.com/;accesskey=cHc9PQ==".parse()?;
    /// # let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// # let recorder = Recorder::builder(&cs, client, DirectorySink::new("recordings"), MemoryJournal::new()).build();
    /// use acs_recording::recorder::{Source, SourceKind};
    ///
    /// let queue = Source::new(SourceKind::StorageQueue, "acs-events");
    /// assert!(recorder.intake().reject_message(&queue, b"{oops", "not JSON").await?);
    /// assert!(!recorder.intake().reject_message(&queue, b"{oops", "not JSON").await?, "the same text again");
    /// let jobs = recorder.journal().list().await?;
    /// assert_eq!((jobs[0].state, jobs[0].message.as_deref()), (JobState::Rejected, Some("{oops")));
    /// # Ok::<(), acs_recording::BoxError>(())
    /// # }).unwrap();
    /// ```
    pub async fn reject_message(&self, source: &Source, message: &[u8], reason: &str) -> Result<bool, AdmitError> {
        admission::reject_message(&self.shared, source, message, reason).await
    }
}

impl<J: Journal, B> Service<Request<B>> for Intake<J> {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> ResponseFuture {
        let intake = self.clone();
        let events = request.extensions_mut().remove::<Events>();
        ResponseFuture::new(async move { accept(intake, events).await })
    }
}

async fn accept<J: Journal>(intake: Intake<J>, events: Option<Events>) -> Response<Full<Bytes>> {
    let Some(events) = events else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "the EventGridWebhookLayer is not in front of the intake");
    };
    // One value for every delivery: the hot path allocates nothing to name its source.
    static WEBHOOK: LazyLock<Source> = LazyLock::new(Source::webhook);
    match intake.admit_from(&WEBHOOK, &RecordingEvents::from_events(events)).await {
        Ok(admitted) => {
            let body = format!(
                r#"{{"accepted":{},"duplicates":{},"rejected":{}}}"#,
                admitted.accepted, admitted.duplicates, admitted.rejected
            );
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) if error.is_shutting_down() => unavailable(&error.detail()),
        Err(error) => {
            let reason = error.detail();
            tracing::warn!(reason = %reason, "delivery refused with 503; Event Grid delivers it again");
            unavailable(&reason)
        }
    }
}

pub(super) fn unavailable(reason: &str) -> Response<Full<Bytes>> {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, reason);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
}

pub(super) fn problem(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
    #[derive(serde::Serialize)]
    struct Problem<'a> {
        status: u16,
        title: &'a str,
        detail: &'a str,
    }
    let problem = Problem { status: status.as_u16(), title: status.canonical_reason().unwrap_or("Error"), detail };
    let body = serde_json::to_vec(&problem).map(Bytes::from).unwrap_or_default();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    response
}
