//! Every started recording accounted for: the records that track a recording from its start until its
//! `RecordingFileStatusUpdated` event comes, and the sweep that reports the ones whose event does not.

use std::collections::HashMap;
use std::io;
use std::time::SystemTime;

use super::shared::Shared;
use crate::calling::RecordingStatus;
use crate::clock::Clock as _;
use crate::journal::{Job, JobId, JobState, Journal, TrackedRecording};

impl TrackedRecording {
    /// The recording a [`RecordingClient::start`](crate::calling::RecordingClient::start) answered, started at
    /// `at`; `None` when the answer names no recording. Add the call's ids with
    /// [`server_call`](Self::server_call) or [`call_connection`](Self::call_connection).
    pub fn from_status(status: &RecordingStatus, at: SystemTime) -> Option<Self> {
        Some(Self::new(status.recording_id.clone()?, at))
    }

    /// Sets the server call id.
    pub fn server_call(mut self, id: impl Into<String>) -> Self {
        self.server_call_id = Some(id.into());
        self
    }

    /// Sets the call connection id.
    pub fn call_connection(mut self, id: impl Into<String>) -> Self {
        self.call_connection_id = Some(id.into());
        self
    }

    /// Marks the recording stopped (or paused) at `at`.
    pub fn stopped(mut self, at: SystemTime) -> Self {
        self.stopped_at = Some(at);
        self
    }
}

/// Tracks a recording durably: a new record `awaiting` its event, or what `seen` adds to the record it has.
pub(crate) async fn track<J: Journal>(shared: &Shared<J>, seen: TrackedRecording) -> io::Result<()> {
    let _counting = shared.counting.read().await;
    let _tracking = shared.tracking.lock().await;
    let job = Job::awaiting(seen.clone(), shared.clock.now());
    if shared.journal.insert(std::slice::from_ref(&job)).await?.first() == Some(&true) {
        shared.states.add(job.state);
        tracing::debug!(recording_id = %seen.recording_id, "recording tracked until its event comes");
        return Ok(());
    }
    let Some(mut record) = shared.journal.get(&job.id).await? else { return Ok(()) };
    let before = record.clone();
    let transition = record.recording_seen(&seen);
    if record != before {
        shared.journal.update(&record).await?;
        shared.states.apply(transition);
    }
    Ok(())
}

/// Marks a tracked recording stopped at `at`: `false` when it is not tracked.
pub(crate) async fn stopped<J: Journal>(shared: &Shared<J>, recording_id: &str, at: SystemTime) -> io::Result<bool> {
    let record = {
        let _tracking = shared.tracking.lock().await;
        shared.journal.get(&TrackedRecording::job_id(recording_id)).await?
    };
    let Some(tracked) = record.and_then(|record| record.tracked) else { return Ok(false) };
    track(shared, tracked.stopped(at)).await?;
    Ok(true)
}

/// Fails the record of a tracked recording that did not start, with the reason: `false` when it is not tracked.
pub(crate) async fn start_failed<J: Journal>(shared: &Shared<J>, recording_id: &str, reason: &str) -> io::Result<bool> {
    let _tracking = shared.tracking.lock().await;
    let Some(mut record) = shared.journal.get(&TrackedRecording::job_id(recording_id)).await? else { return Ok(false) };
    if !matches!(record.state, JobState::Awaiting | JobState::Missing) {
        return Ok(true);
    }
    let transition = record.fail(shared.clock.now(), format!("the recording did not start: {reason}"));
    shared.journal.update(&record).await?;
    shared.states.apply(transition);
    Ok(true)
}

/// Links the tracked recording a download job is for, if any. The download job is durable already: a journal
/// that cannot be read or written here leaves the link to the next sweep.
pub(crate) async fn link<J: Journal>(shared: &Shared<J>, download: &Job) {
    let Some(recording_id) = download.recording.as_ref().and_then(|recording| recording.recording_id.as_deref()) else {
        return;
    };
    let linked = async {
        let _tracking = shared.tracking.lock().await;
        let Some(mut record) = shared.journal.get(&TrackedRecording::job_id(recording_id)).await? else {
            return Ok(());
        };
        link_record(shared, &mut record, download.id.clone()).await
    };
    if let Err(error) = linked.await {
        tracing::warn!(%error, recording_id, "cannot link the tracked recording to its download yet");
    }
}

async fn link_record<J: Journal>(shared: &Shared<J>, record: &mut Job, download: JobId) -> io::Result<()> {
    let transition = record.link(download, shared.clock.now());
    if transition.is_change() {
        shared.journal.update(record).await?;
        shared.states.apply(transition);
        if let Some(tracked) = &record.tracked {
            tracing::info!(recording_id = %tracked.recording_id, download = ?tracked.linked_job, "tracked recording linked to its download");
        }
    }
    Ok(())
}

/// Links every tracked recording whose download job exists, and reports every one that stopped a window ago
/// without an event: `missing` in the journal (and the `acs_recording_jobs{state="missing"}` gauge), and a warning
/// with the recording and call ids.
pub(crate) async fn sweep<J: Journal>(shared: &Shared<J>) -> io::Result<()> {
    // Listing reads every record: not while nothing is tracked.
    if shared.states.get(JobState::Awaiting) + shared.states.get(JobState::Missing) == 0 {
        return Ok(());
    }
    let jobs = shared.journal.list().await?;
    let downloads: HashMap<&str, &JobId> = jobs
        .iter()
        .filter(|job| job.tracked.is_none())
        .filter_map(|job| Some((job.recording.as_ref()?.recording_id.as_deref()?, &job.id)))
        .collect();
    let now = shared.clock.now();
    for job in &jobs {
        let Some(tracked) = job.tracked.as_ref() else { continue };
        let download = downloads.get(tracked.recording_id.as_str());
        let unlinked = matches!(job.state, JobState::Awaiting | JobState::Missing) && download.is_some();
        if !(unlinked || job.event_overdue(now, shared.missing_window)) {
            continue;
        }
        // Read again under the lock: a callback or the event may have changed it since the listing.
        let _tracking = shared.tracking.lock().await;
        let Some(mut record) = shared.journal.get(&job.id).await? else { continue };
        if let Some(download) = download {
            link_record(shared, &mut record, (*download).clone()).await?;
        } else if record.event_overdue(now, shared.missing_window) {
            report_missing(shared, record).await?;
        }
    }
    Ok(())
}

async fn report_missing<J: Journal>(shared: &Shared<J>, mut record: Job) -> io::Result<()> {
    let window = shared.missing_window;
    let transition = record.mark_missing(format!(
        "stopped and no RecordingFileStatusUpdated event came within {} minutes ({} s)",
        window.as_secs() / 60,
        window.as_secs()
    ));
    shared.journal.update(&record).await?;
    shared.states.apply(transition);
    if let Some(tracked) = &record.tracked {
        tracing::warn!(
            recording_id = %tracked.recording_id,
            server_call_id = tracked.server_call_id.as_deref().unwrap_or("-"),
            call_connection_id = tracked.call_connection_id.as_deref().unwrap_or("-"),
            window_s = window.as_secs(),
            "recording stopped and its RecordingFileStatusUpdated event did not come: its files may be lost"
        );
    }
    Ok(())
}
