//! Two recorder replicas (processes) pulling from one namespace subscription into one shared store: every
//! recording lands once, each chunk is downloaded once, even when the topic holds the same event twice.
#![cfg(unix)]

use crate::support;
use crate::support::emulator::served;
use crate::support::store::checks::{assert_stored, wait_for_done};
use crate::support::store::replica::Replica;
use crate::support::store::Backend;
use acs_recording::emulator::eventgrid::recording_file_status_updated;
use acs_recording::emulator::{Emulator, RecordingSpec, StoredRecording};
use acs_recording::journal::{Journal, ObjectStoreJournal};

support::store::on_both_stores!(two_replicas_on_one_subscription_download_each_chunk_once);

async fn two_replicas_on_one_subscription_download_each_chunk_once(backend: Backend) {
    let emulator = Emulator::builder().chunk_limit(128 * 1024).start().await.unwrap();
    let url = emulator.namespace_subscription_url();
    let key = emulator.namespace().key().to_owned();
    let args = ["--pull", url.as_str(), "--pull-batch", "2"];
    let env = [("EVENTGRID_NAMESPACE_KEY", key.as_str())];
    let replicas = vec![
        Replica::start_with("p0", &emulator, &backend, 2, &args, &env).await,
        Replica::start_with("p1", &emulator, &backend, 2, &args, &env).await,
    ];
    let recordings: Vec<StoredRecording> =
        (0..4).map(|n| emulator.storage().record(RecordingSpec::new(format!("pulled-{n}"), 300_000))).collect();
    let events: Vec<_> = recordings.iter().map(recording_file_status_updated).collect();
    for event in &events {
        emulator.namespace().publish(event.to_cloud_event("/acs"));
    }
    // At least once: the topic holds every event a second time, which the other replica may take.
    for event in &events {
        emulator.namespace().publish(event.to_cloud_event("/acs"));
    }

    for event in &events {
        wait_for_done(&backend, event, &replicas).await;
    }
    for chunk in recordings.iter().flat_map(|r| &r.chunks) {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{} downloaded once", chunk.document_id);
    }
    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    assert_eq!(journal.list().await.unwrap().len(), events.len(), "one job per event");
    let stored: Vec<&StoredRecording> = recordings.iter().collect();
    assert_stored(&backend, &stored).await;
    let namespace = emulator.namespace();
    support::eventually(std::time::Duration::from_secs(30), "both copies of every event are acknowledged", || {
        std::future::ready(events.iter().all(|e| namespace.acknowledgements(&e.id) == 2).then_some(()))
    })
    .await;
    assert!(namespace.dead_letters().is_empty());
    let receivers = replicas.iter().filter(|r| r.stdout().contains("receiving from pull:recordings/recorder")).count();
    assert_eq!(receivers, 2);
}
