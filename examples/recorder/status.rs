//! `status` and `retry`: the journal seen from the command line.

use std::path::Path;

use acs_recording::journal::{FileJournal, JobId, JobState, Journal, ObjectStoreJournal};
use acs_recording::store::StoreLocation;
use acs_recording::BoxError;

/// Lists the jobs that are not done (all of them with `all`), with their reasons.
pub(crate) async fn status(journal: &Path, all: bool) -> Result<(), BoxError> {
    let journal = FileJournal::open_read_only(journal)?;
    list(&journal, &journal.root().display().to_string(), all).await
}

/// `status` for the journal every replica on `--store` shares.
pub(crate) async fn status_in_store(url: &str, all: bool) -> Result<(), BoxError> {
    let journal = ObjectStoreJournal::open(StoreLocation::parse(url)?).await?;
    list(&journal, url, all).await
}

/// `retry` in the shared journal: a running replica takes the job on its next look at the journal.
pub(crate) async fn retry_in_store(url: &str, id: &str) -> Result<(), BoxError> {
    let id = JobId::parse(id).ok_or("a job id is 32 lower-case hex digits, as `status` prints it")?;
    let journal = ObjectStoreJournal::open(StoreLocation::parse(url)?).await?;
    reopen(&journal, &id).await?;
    println!("job {id} is pending again; a recorder on the store downloads it");
    Ok(())
}

async fn reopen(journal: &impl Journal, id: &JobId) -> Result<(), BoxError> {
    let mut job = journal.get(id).await?.ok_or_else(|| format!("no job {id}"))?;
    if !job.reopen() {
        return Err(format!("job {id} is {}, not failed", job.state).into());
    }
    journal.update(&job).await?;
    Ok(())
}

async fn list(journal: &impl Journal, place: &str, all: bool) -> Result<(), BoxError> {
    let jobs = journal.list().await?;
    // Done downloads and tracked recordings whose event came are settled: shown with `--all` only.
    let shown: Vec<_> =
        jobs.iter().filter(|job| all || !matches!(job.state, JobState::Done | JobState::Linked)).collect();
    println!("{} jobs in {place} ({} shown)", jobs.len(), shown.len());
    for job in shown {
        let call = job.recording.as_ref().map_or("-", |r| r.call_id.as_str());
        let source = job.source.as_deref().unwrap_or("-");
        println!(
            "{}  {:<8} call {call}  event {}  chunks {}/{}  attempts {}  from {source}",
            job.id,
            job.state,
            job.event_id,
            job.chunks_stored(),
            job.chunks.len(),
            job.attempts
        );
        if let Some(tracked) = &job.tracked {
            let call = tracked.server_call_id.as_deref().or(tracked.call_connection_id.as_deref()).unwrap_or("-");
            let stopped = tracked.stopped_at.map_or("recording".to_owned(), |at| format!("stopped {}", ago(at)));
            match &tracked.linked_job {
                Some(download) => {
                    println!("    recording {} of call {call}: event came, job {download}", tracked.recording_id)
                }
                None => println!("    recording {} of call {call}: {stopped}, no event yet", tracked.recording_id),
            }
        }
        if let Some(reason) = &job.last_error {
            println!("    {reason}");
        }
        for note in &job.notes {
            println!("    note: {note}");
        }
        if let Some(message) = &job.message {
            // The text as sent, on one line and cut short: `status --all` is for a person's eyes.
            let text: String = message.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
            println!("    message: {text}");
        }
        if let Some(exported) = &job.exported {
            let folder = exported.folder_prefix.as_deref().unwrap_or("(folder not known from the event)");
            println!("    exported by ACS to the customer's storage ({}): {folder}", exported.storage_type);
        }
    }
    Ok(())
}

/// Makes a failed job pending again; the recorder downloads it on its next start.
pub(crate) async fn retry(journal: &Path, id: &str) -> Result<(), BoxError> {
    let id = JobId::parse(id).ok_or("a job id is 32 lower-case hex digits, as `status` prints it")?;
    let journal = FileJournal::open(journal).map_err(|error| format!("{error} (stop the recorder first)"))?;
    reopen(&journal, &id).await?;
    println!("job {id} is pending again; the recorder downloads it on its next start");
    Ok(())
}

/// How long ago `at` was, in whole seconds.
fn ago(at: std::time::SystemTime) -> String {
    let seconds = at.elapsed().map_or(0, |elapsed| elapsed.as_secs());
    format!("{seconds} s ago")
}
