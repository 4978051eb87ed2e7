//! The intake's one step, whatever the source of the events: journal first, then acknowledge.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::metrics;
use super::shared::Shared;
use super::source::{Source, SourceKind, SourceOutcome};
use super::tracking;
use crate::clock::Clock as _;
use crate::journal::{Job, JobId, JobState, Journal};
use crate::recording::{Recording, RecordingEvents};
use crate::BoxError;

/// What an admission added: from [`Intake::admit`](super::Intake::admit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Admission {
    /// Recording events journaled as new jobs.
    pub accepted: usize,
    /// Recording events seen before (redeliveries): nothing new was written.
    pub duplicates: usize,
    /// Recording events whose data did not fit, journaled as `rejected` with the reason.
    pub rejected: usize,
}

/// Why an admission failed: what the events asked for may not be durable, so their source must deliver them
/// again later (Event Grid does, after a 503). Every kind is temporary.
#[derive(Debug)]
pub struct AdmitError {
    kind: AdmitErrorKind,
    message: String,
    source: Option<BoxError>,
}

/// The kind of an [`AdmitError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdmitErrorKind {
    /// The recorder is shutting down (or its intake was stopped).
    ShuttingDown,
    /// The journal holds its maximum of open jobs.
    Full,
    /// The journal could not write or read.
    Journal,
    /// The admission's task stopped before it finished (a panic, or the runtime shutting down).
    Interrupted,
}

impl AdmitError {
    fn new(kind: AdmitErrorKind, message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self { kind, message: message.into(), source }
    }

    fn journal(message: impl Into<String>, source: io::Error) -> Self {
        Self::new(AdmitErrorKind::Journal, message, Some(source.into()))
    }

    /// What went wrong.
    pub fn kind(&self) -> AdmitErrorKind {
        self.kind
    }

    /// Whether the recorder is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.kind == AdmitErrorKind::ShuttingDown
    }

    /// Whether the journal holds its maximum of open jobs.
    pub fn is_full(&self) -> bool {
        self.kind == AdmitErrorKind::Full
    }

    /// The message and its causes on one line, for the 503's problem document.
    pub(crate) fn detail(&self) -> String {
        crate::chain::one_line(self)
    }
}

impl fmt::Display for AdmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// Journals, deduplicates, counts and queues a batch of recording events; see [`Intake::admit`](super::Intake::admit).
pub(crate) async fn admit<J: Journal>(
    shared: &Arc<Shared<J>>,
    source: Option<&Source>,
    events: &RecordingEvents,
) -> Result<Admission, AdmitError> {
    admit_noted(shared, source, events, &[]).await
}

/// [`admit`], adding `notes` to each new job: what the source knows about the events (why they came late, say).
pub(crate) async fn admit_noted<J: Journal>(
    shared: &Arc<Shared<J>>,
    source: Option<&Source>,
    events: &RecordingEvents,
    notes: &[String],
) -> Result<Admission, AdmitError> {
    if !shared.accepting.load(Ordering::Acquire) {
        metrics::delivery("unavailable");
        return Err(AdmitError::new(AdmitErrorKind::ShuttingDown, "the recorder is shutting down", None));
    }
    // The admission runs as a task of its own: when the caller goes away mid-insert (Event Grid gives up after
    // 30 s and closes the connection, and the server drops this future), a job that became durable is still
    // queued. Event Grid delivers again and finds it; either way it is worked on.
    // A delivery whose events were all seen before writes nothing and needs no task.
    let admitted = match plan(shared, source, events, notes) {
        Plan { jobs, fresh: _, duplicates } if jobs.is_empty() => {
            Ok(Admission { accepted: 0, duplicates, rejected: 0 })
        }
        plan => {
            let shared = shared.clone();
            tokio::spawn(async move { write(&shared, plan).await }).await.unwrap_or_else(|error| {
                Err(AdmitError::new(AdmitErrorKind::Interrupted, "the admission task failed", Some(error.into())))
            })
        }
    };
    match &admitted {
        Ok(admitted) => {
            metrics::delivery(if admitted.accepted + admitted.rejected > 0 { "accepted" } else { "duplicate" });
            metrics::events("accepted", admitted.accepted);
            metrics::events("duplicate", admitted.duplicates);
            metrics::events("rejected", admitted.rejected);
            // The webhook's deliveries and events are the two counters above; other sources count per source too.
            if let Some(source) = source.filter(|source| source.kind() != SourceKind::Webhook) {
                source.count(SourceOutcome::Journaled, admitted.accepted);
                source.count(SourceOutcome::Duplicate, admitted.duplicates);
                source.count(SourceOutcome::Rejected, admitted.rejected);
            }
        }
        Err(_) => metrics::delivery("unavailable"),
    }
    admitted
}

/// What a delivery would add: a job for each event not seen before (the rejected ones last), and the count of the
/// others.
struct Plan {
    jobs: Vec<Job>,
    /// How many of `jobs` are recordings to download (the rest are rejected events).
    fresh: usize,
    duplicates: usize,
}

fn plan<J>(shared: &Shared<J>, source: Option<&Source>, events: &RecordingEvents, notes: &[String]) -> Plan {
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
        job.notes.extend(notes.iter().cloned());
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
    if let Some(source) = source.filter(|_| !jobs.is_empty()) {
        let source = source.to_string();
        for job in &mut jobs {
            job.source = Some(source.clone());
        }
    }
    Plan { jobs, fresh, duplicates }
}

/// Journals a message that can never be events as rejected, with its text; see
/// [`Intake::reject_message`](super::Intake::reject_message).
pub(crate) async fn reject_message<J: Journal>(
    shared: &Arc<Shared<J>>,
    source: &Source,
    message: &[u8],
    reason: &str,
) -> Result<bool, AdmitError> {
    if !shared.accepting.load(Ordering::Acquire) {
        return Err(AdmitError::new(AdmitErrorKind::ShuttingDown, "the recorder is shutting down", None));
    }
    let mut job = Job::rejected_message(message, reason, shared.clock.now());
    job.source = Some(source.to_string());
    if shared.seen.contains(&job.event_id) {
        source.count(SourceOutcome::Duplicate, 1);
        return Ok(false);
    }
    let shared = shared.clone();
    let written = tokio::spawn(async move {
        let new = shared
            .journal
            .insert(std::slice::from_ref(&job))
            .await
            .map_err(|error| AdmitError::journal("the journal cannot write", error))?;
        shared.seen.first_delivery(&job.event_id);
        let new = new.first().copied().unwrap_or(false);
        if new {
            shared.states.add(job.state);
            tracing::warn!(
                source = job.source.as_deref().unwrap_or(""),
                reason = job.last_error.as_deref().unwrap_or(""),
                "message rejected"
            );
        }
        Ok::<_, AdmitError>(new)
    })
    .await
    .unwrap_or_else(|error| {
        Err(AdmitError::new(AdmitErrorKind::Interrupted, "the admission task failed", Some(error.into())))
    })?;
    source.count(if written { SourceOutcome::Rejected } else { SourceOutcome::Duplicate }, 1);
    Ok(written)
}

/// Writes a delivery's new jobs to the journal and queues them.
async fn write<J: Journal>(shared: &Shared<J>, plan: Plan) -> Result<Admission, AdmitError> {
    let Plan { jobs, fresh, mut duplicates } = plan;
    // Held while inserting and counting, so that the workers' count at start sees each job exactly once.
    let _counting = shared.counting.read().await;
    // A delivery is taken while there is room, whatever its size: a batch larger than the maximum would otherwise
    // be refused for ever, even with nothing open. The bound is therefore exceeded by at most one batch.
    if fresh > 0 && shared.is_full() {
        let message = format!("the journal holds its maximum of {} open jobs", shared.max_pending);
        return Err(AdmitError::new(AdmitErrorKind::Full, message, None));
    }
    let written =
        shared.journal.insert(&jobs).await.map_err(|error| AdmitError::journal("the journal cannot write", error))?;
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
            tracking::link(shared, job).await;
        }
    }
    Ok(Admission { accepted, duplicates, rejected })
}

/// Queues a job whose record a redelivery found, when it is still open.
async fn requeue_if_open<J: Journal>(shared: &Shared<J>, id: &JobId) -> Result<(), AdmitError> {
    match shared.journal.get(id).await {
        Ok(Some(job)) if job.state.is_open() => {
            shared.enqueue(id);
            Ok(())
        }
        Ok(_) => Ok(()),
        // Unread, the job might be open and unqueued: no 200 until it is known.
        Err(error) => Err(AdmitError::journal(format!("the journal cannot read job {id}"), error)),
    }
}
