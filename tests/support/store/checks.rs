//! The invariants every multi-replica test checks, read directly from the store: a job ends `done`, each chunk's
//! final object has the emulator's SHA-256, the recording's manifest lists them, and nothing else is left behind.

use std::time::Duration;

use acs_recording::emulator::eventgrid::OutgoingEvent;
use acs_recording::emulator::{Emulator, StoredRecording};
use acs_recording::journal::{Job, JobId, JobState, Journal, ObjectStoreJournal};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use super::replica::Replica;
use super::Backend;
use crate::support::{at_timeout, eventually};

pub(crate) fn media_requests_answered(emulator: &Emulator, document_id: &str) -> bool {
    let requests = emulator.storage().requests_for(document_id);
    requests.iter().any(|request| request.path.ends_with("/content/audio") && request.status != 0)
}

pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    eventually(Duration::from_secs(60), what, || std::future::ready(done().then_some(()))).await
}

/// Waits (bounded) until the job is done and its lease released: the record says done before the claim goes.
pub(crate) async fn wait_for_done(backend: &Backend, event: &OutgoingEvent, replicas: &[Replica]) -> Job {
    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    let id = JobId::for_event(&event.id);
    let logs = at_timeout(|| {
        let logs: Vec<String> = replicas.iter().map(|r| format!("{}:\n{}", r.name, r.stderr())).collect();
        format!("the job is done\n{}", logs.join("\n"))
    });
    let (journal, id) = (&journal, &id);
    eventually(Duration::from_secs(60), logs, || async move {
        let job = journal.get(id).await.unwrap().filter(|job| job.state == JobState::Done)?;
        let claim = format!("/claims/{id}");
        (!backend.keys().await.iter().any(|key| key.contains(&claim))).then_some(job)
    })
    .await
}

pub(crate) fn media_key(backend: &Backend, recording: &StoredRecording, index: usize) -> Path {
    let chunk = &recording.chunks[index];
    let name = format!("{}-{}.wav", chunk.index, chunk.document_id);
    let prefix = backend.location.prefix().clone();
    prefix.join(recording.call_id.as_str()).join(name.as_str())
}

/// Every chunk's final object has the emulator's SHA-256, and the store holds nothing but final objects and
/// small internal records: no staging object, no claim.
pub(crate) async fn assert_stored(backend: &Backend, recordings: &[&StoredRecording]) {
    for recording in recordings {
        for (index, chunk) in recording.chunks.iter().enumerate() {
            let key = media_key(backend, recording, index);
            let bytes = backend.store().get(&key).await.unwrap().bytes().await.unwrap();
            assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), chunk.sha256, "{key}");
        }
    }
    for recording in recordings {
        // The recording's manifest: every chunk's final key, size and SHA-256, written once all were in.
        let key = backend
            .location
            .prefix()
            .clone()
            .join(recording.call_id.as_str())
            .join(format!("recording-{}.json", recording.recording_id).as_str());
        let raw = backend.store().get(&key).await.unwrap().bytes().await.unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest["callId"], recording.call_id.as_str(), "{manifest}");
        assert_eq!(manifest["recordingId"], recording.recording_id.as_str(), "{manifest}");
        let chunks = manifest["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), recording.chunks.len(), "{manifest}");
        let total: u64 = recording.chunks.iter().map(|c| c.size).sum();
        assert_eq!(manifest["bytes"], total, "{manifest}");
        for (index, (listed, chunk)) in chunks.iter().zip(&recording.chunks).enumerate() {
            let hex = chunk.sha256.to_string();
            assert_eq!(listed["sha256"], hex.as_str(), "{manifest}");
            assert_eq!(listed["bytes"], chunk.size, "{manifest}");
            assert_eq!(listed["location"], media_key(backend, recording, index).as_ref(), "{manifest}");
        }
    }
    let media_count: usize = recordings.iter().map(|r| r.chunks.len()).sum();
    let keys = backend.keys().await;
    assert!(
        keys.iter().all(|k| !k.contains(".partial") && !k.contains("/claims/") && !k.contains("/open/")),
        "{}: {keys:?}",
        backend.name
    );
    let media: Vec<&String> = keys.iter().filter(|k| k.ends_with(".wav")).collect();
    assert_eq!(media.len(), media_count, "{keys:?}");
    for key in keys.iter().filter(|k| !k.ends_with(".wav")) {
        let size = backend.store().head(&Path::from(key.as_str())).await.unwrap().size;
        assert!(size < 64 * 1024, "{key} holds {size} bytes");
    }
}
