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
///    not journaled again.
/// 2. The new jobs of a delivery, and a record of each recording event whose data did not fit (rejected, with the
///    reason), are written durably; only then is the answer **200** with
///    `{"accepted":N,"duplicates":N,"rejected":N}`.
/// 3. When the journal cannot write, holds its maximum of open jobs, or the recorder is shutting down, the answer
///    is **503** with `Retry-After`, so that Event Grid delivers again later; nothing was accepted.
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
        ResponseFuture::new(async move { accept(&shared, events).await })
    }
}

/// What a delivery added.
struct Admitted {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
}

async fn accept<J: Journal>(shared: &Shared<J>, events: Option<Events>) -> Response<Full<Bytes>> {
    let Some(events) = events else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "the EventGridWebhookLayer is not in front of the intake");
    };
    if !shared.accepting.load(Ordering::Acquire) {
        metrics::delivery("unavailable");
        return unavailable("the recorder is shutting down");
    }
    match admit(shared, RecordingEvents::from_events(events)).await {
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

async fn admit<J: Journal>(shared: &Shared<J>, events: RecordingEvents) -> Result<Admitted, String> {
    let now = shared.clock.now();
    let mut jobs = Vec::new();
    let mut duplicates = 0;
    for event in &events {
        if shared.seen.contains(event.id()) {
            duplicates += 1;
            continue;
        }
        // ACS keeps a recording for 24 hours from when it was made (SPEC.md §3); the event time says when.
        let made = event.time().and_then(crate::time::parse_rfc3339).unwrap_or(now);
        let expires = made.checked_add(shared.lifetime).unwrap_or(now);
        jobs.push(Job::new(event.id(), Recording::from_event(&event), now, expires));
    }
    let fresh = jobs.len();
    for (event, rejected) in events.rejected() {
        if shared.seen.contains(event.id()) {
            duplicates += 1;
        } else {
            jobs.push(Job::rejected(event.id(), rejected.reason(), now));
        }
    }
    if jobs.is_empty() {
        return Ok(Admitted { accepted: 0, duplicates, rejected: 0 });
    }
    // Held while inserting and counting, so that the workers' count at start sees each job exactly once.
    let _counting = shared.counting.read().await;
    let open = shared.states.open();
    if open.saturating_add(fresh) > shared.max_pending {
        return Err(format!("the journal holds its maximum of {} open jobs", shared.max_pending));
    }
    let written = shared.journal.insert(&jobs).await.map_err(|error| format!("the journal cannot write: {error}"))?;
    let (mut accepted, mut rejected) = (0, 0);
    for (job, new) in jobs.iter().zip(written) {
        shared.seen.first_delivery(&job.event_id);
        if !new {
            duplicates += 1;
            continue;
        }
        shared.states.add(job.state);
        if job.state == JobState::Rejected {
            rejected += 1;
            tracing::warn!(event_id = %job.event_id, reason = job.last_error.as_deref().unwrap_or(""), "recording event rejected");
        } else {
            accepted += 1;
            queue(shared, &job.id);
        }
    }
    Ok(Admitted { accepted, duplicates, rejected })
}

pub(crate) fn queue<J>(shared: &Shared<J>, id: &JobId) {
    // The workers may not run yet (or any more): the job is durable and resumes when they start.
    let _ = shared.queue.send(id.clone());
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
