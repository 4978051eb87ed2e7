//! The webhook's inner service: a delivery's recording events into the journal, then 200 (or 503).

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::future::ResponseFuture;
use super::metrics;
use super::shared::Shared;
use crate::clock::Clock as _;
use crate::eventgrid::{Events, PROBLEM_CONTENT_TYPE};
use crate::journal::{Job, JobId, JobState, Journal};
use crate::recording::{Recording, RecordingEvents};

/// The recorder's intake: the service behind the [`EventGridWebhookLayer`](crate::eventgrid::EventGridWebhookLayer)
/// that journals each delivery's recording events before answering.
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

impl<J: Journal, B> Service<Request<B>> for Intake<J> {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> ResponseFuture {
        let shared = self.shared.clone();
        let events = request.extensions_mut().remove::<Events>();
        ResponseFuture::new(async move { accept(shared, events).await })
    }
}

/// What a delivery added.
struct Admitted {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
}

async fn accept<J: Journal>(shared: Arc<Shared<J>>, events: Option<Events>) -> Response<Full<Bytes>> {
    let Some(events) = events else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "the EventGridWebhookLayer is not in front of the intake");
    };
    if !shared.accepting.load(Ordering::Acquire) {
        metrics::delivery("unavailable");
        return unavailable("the recorder is shutting down");
    }
    // The admission runs as a task of its own: when the caller goes away mid-insert (Event Grid gives up after
    // 30 s and closes the connection, and the server drops this future), a job that became durable is still
    // queued. Event Grid delivers again and finds it; either way it is worked on.
    // A delivery whose events were all seen before writes nothing and needs no task.
    let admitted = match plan(&shared, &RecordingEvents::from_events(events)) {
        Plan { jobs, fresh: _, duplicates } if jobs.is_empty() => Ok(Admitted { accepted: 0, duplicates, rejected: 0 }),
        plan => tokio::spawn(async move { admit(&shared, plan).await })
            .await
            .unwrap_or_else(|error| Err(format!("the admission task failed: {error}"))),
    };
    match admitted {
        Ok(admitted) => {
            metrics::delivery(if admitted.accepted + admitted.rejected > 0 { "accepted" } else { "duplicate" });
            metrics::events("accepted", admitted.accepted);
            metrics::events("duplicate", admitted.duplicates);
            metrics::events("rejected", admitted.rejected);
            let body = format!(
                r#"{{"accepted":{},"duplicates":{},"rejected":{}}}"#,
                admitted.accepted, admitted.duplicates, admitted.rejected
            );
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(reason) => {
            metrics::delivery("unavailable");
            tracing::warn!(reason = %reason, "delivery refused with 503; Event Grid delivers it again");
            unavailable(&reason)
        }
    }
}

/// What a delivery would add: a job for each event not seen before (the rejected ones last), and the count of the
/// others.
struct Plan {
    jobs: Vec<Job>,
    /// How many of `jobs` are recordings to download (the rest are rejected events).
    fresh: usize,
    duplicates: usize,
}

fn plan<J>(shared: &Shared<J>, events: &RecordingEvents) -> Plan {
    let now = shared.clock.now();
    let mut jobs = Vec::new();
    let mut duplicates = 0;
    for event in events {
        if shared.seen.contains(event.id()) {
            duplicates += 1;
            continue;
        }
        // ACS keeps a recording for 24 hours from when it was made; the event time says when. An event
        // dated in the future cannot extend its own retention: the expiry is at most the lifetime from now.
        let made = event.time().and_then(crate::time::parse_rfc3339).unwrap_or(now).min(now);
        let expires = made.checked_add(shared.lifetime).unwrap_or(now);
        let mut job = Job::new(event.id(), Recording::from_event(&event), now, expires);
        for field in event.data().malformed_fields() {
            // Bounded: the value is the sender's, of any size.
            let value: String = event.data().other().get(field).map(ToString::to_string).unwrap_or_default();
            let value: String = value.chars().take(64).collect();
            tracing::warn!(event_id = %event.id(), field, %value, "recording event field does not fit its type; downloading anyway");
            job.notes.push(format!("`{field}` does not fit its type: {value}"));
        }
        jobs.push(job);
    }
    let fresh = jobs.len();
    for (event, rejected) in events.rejected() {
        if shared.seen.contains(event.id()) {
            duplicates += 1;
        } else {
            jobs.push(Job::rejected(event.id(), rejected.reason(), now));
        }
    }
    Plan { jobs, fresh, duplicates }
}

/// Writes a delivery's new jobs to the journal and queues them.
async fn admit<J: Journal>(shared: &Shared<J>, plan: Plan) -> Result<Admitted, String> {
    let Plan { jobs, fresh, mut duplicates } = plan;
    // Held while inserting and counting, so that the workers' count at start sees each job exactly once.
    let _counting = shared.counting.read().await;
    // A delivery is taken while there is room, whatever its size: a batch larger than the maximum would otherwise
    // be refused for ever, even with nothing open. The bound is therefore exceeded by at most one batch.
    if fresh > 0 && shared.is_full() {
        return Err(format!("the journal holds its maximum of {} open jobs", shared.max_pending));
    }
    let written = shared.journal.insert(&jobs).await.map_err(|error| format!("the journal cannot write: {error}"))?;
    let (mut accepted, mut rejected) = (0, 0);
    for (job, new) in jobs.iter().zip(written) {
        if !new {
            // A record exists: an earlier delivery wrote it, but may not have queued it (its caller went away, or
            // the insert failed after the record was linked). An open job is queued again; the workers' in-flight
            // set runs it once.
            requeue_if_open(shared, &job.id).await?;
            shared.seen.first_delivery(&job.event_id);
            duplicates += 1;
            continue;
        }
        shared.seen.first_delivery(&job.event_id);
        shared.states.add(job.state);
        if job.state == JobState::Rejected {
            rejected += 1;
            tracing::warn!(event_id = %job.event_id, reason = job.last_error.as_deref().unwrap_or(""), "recording event rejected");
        } else {
            accepted += 1;
            shared.enqueue(&job.id);
        }
    }
    Ok(Admitted { accepted, duplicates, rejected })
}

/// Queues a job whose record a redelivery found, when it is still open.
async fn requeue_if_open<J: Journal>(shared: &Shared<J>, id: &JobId) -> Result<(), String> {
    match shared.journal.get(id).await {
        Ok(Some(job)) if job.state.is_open() => {
            shared.enqueue(id);
            Ok(())
        }
        Ok(_) => Ok(()),
        // Unread, the job might be open and unqueued: no 200 until it is known.
        Err(error) => Err(format!("the journal cannot read job {id}: {error}")),
    }
}

fn unavailable(reason: &str) -> Response<Full<Bytes>> {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, reason);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
}

fn problem(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
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
