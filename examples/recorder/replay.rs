//! `replay-dead-letters`: the recording events Event Grid dead-lettered, journaled and downloaded in one run.

use std::process::ExitCode;
use std::time::Duration;

use acs_recording::credential::Credential;
use acs_recording::download::sink::{DirectorySink, ObjectStoreSink, Sink};
use acs_recording::eventgrid::EventGridWebhookLayer;
use acs_recording::intake::dead_letter::DeadLetterSource;
use acs_recording::journal::{FileJournal, JobState, Journal, ObjectStoreJournal};
use acs_recording::recorder::Recorder;
use acs_recording::store::StoreLocation;
use acs_recording::BoxError;

use crate::serve::{self, Settings};

/// Reads every unprocessed blob at `url`, downloads the recordings it admitted and prints a summary; fails when a
/// recording could not be stored.
pub(crate) async fn run(settings: &Settings, credential: Credential, url: &str) -> Result<ExitCode, BoxError> {
    let dead_letters = DeadLetterSource::open(url)?;
    let allow = serve::allow_list(settings.cloud, &settings.allow_hosts)?;
    let client = serve::https_client();
    match &settings.store {
        None => {
            let journal = FileJournal::open(&settings.journal)?;
            let builder = Recorder::builder(credential, client, DirectorySink::new(&settings.out), journal);
            replay(serve::configure(builder, settings, allow, EventGridWebhookLayer::new()).build(), &dead_letters)
                .await
        }
        Some(store) => {
            let location = StoreLocation::parse(store)?;
            let journal = ObjectStoreJournal::open(location.clone()).await?.lease_duration(settings.lease);
            let builder = Recorder::builder(credential, client, ObjectStoreSink::new(location), journal);
            replay(serve::configure(builder, settings, allow, EventGridWebhookLayer::new()).build(), &dead_letters)
                .await
        }
    }
}

async fn replay<K: Sink, J: Journal>(
    recorder: Recorder<K, J>,
    dead_letters: &DeadLetterSource,
) -> Result<ExitCode, BoxError> {
    // The workers run while the blobs are read, so that downloads start with the first blob.
    let workers = recorder.spawn();
    let replayed = dead_letters.replay(&recorder.intake()).await?;
    let (mut stored, mut failed, mut other) = (0, 0, 0);
    let mut seen = std::collections::HashSet::new();
    // An event dead-lettered twice (two subscriptions, two blobs) is one recording.
    for id in replayed.jobs.iter().filter(|id| seen.insert(*id)) {
        // Each job ends done or failed: the workers give up on a recording once ACS no longer keeps it.
        let job = loop {
            match recorder.journal().get(id).await? {
                Some(job) if job.state.is_open() => tokio::time::sleep(Duration::from_millis(200)).await,
                job => break job,
            }
        };
        match job.map(|job| job.state) {
            Some(JobState::Done) => stored += 1,
            Some(JobState::Failed) => failed += 1,
            _ => other += 1,
        }
    }
    workers.shutdown().await?;
    println!("dead letters from {}", dead_letters.source().name());
    println!("blobs read: {}", replayed.blobs_read);
    println!("blobs skipped as processed: {}", replayed.blobs_skipped);
    println!("blobs unreadable: {}", replayed.blobs_unreadable);
    println!("events journaled: {}", replayed.events_journaled);
    println!("duplicates: {}", replayed.duplicates);
    println!("rejected: {}", replayed.rejected);
    println!("not recording events: {}", replayed.not_recordings);
    println!("recordings stored: {stored}");
    println!("recordings failed: {failed}");
    if other > 0 {
        println!("recordings otherwise settled (exported, rejected, gone): {other}");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
