//! The recorder process with `--pull` against the emulator's namespace topic: recordings land byte-identical and
//! each event is acknowledged once, a journal outage releases events that land afterwards, a malformed event is
//! dead-lettered with its text journaled, and a process killed while holding locks loses nothing.

use crate::support::recorder_process::*;

const KEY_VARIABLE: &str = "EVENTGRID_NAMESPACE_KEY";

async fn start(emulator: &Emulator, out: &Path, extra: &[&str]) -> Recorder {
    let url = emulator.namespace_subscription_url();
    let mut args = vec!["--pull", url.as_str()];
    args.extend_from_slice(extra);
    let recorder = Recorder::start_with_env(emulator, out, &args, &[(KEY_VARIABLE, emulator.namespace().key())]).await;
    let stdout = recorder.stdout.clone();
    wait_until("the recorder says it receives", || {
        stdout.lock().unwrap().contains("receiving from pull:recordings/recorder")
    })
    .await;
    recorder
}

fn publish(emulator: &Emulator, recording: &StoredRecording) -> OutgoingEvent {
    let event = recording_file_status_updated(recording);
    emulator.namespace().publish(event.to_cloud_event("/acs"));
    event
}

fn assert_files(out: &Path, recording: &StoredRecording) {
    for (index, chunk) in recording.chunks.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(media_path(out, recording, index)).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "chunk {index} of {}", recording.call_id);
    }
}

#[tokio::test]
async fn pulled_recordings_land_byte_identical_and_each_event_is_acknowledged_once() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = start(&emulator, out.path(), &[]).await;
    let recordings: Vec<StoredRecording> =
        (0..3).map(|n| emulator.storage().record(RecordingSpec::new(format!("pull-call-{n}"), 150_000))).collect();
    let events: Vec<OutgoingEvent> = recordings.iter().map(|r| publish(&emulator, r)).collect();

    for (recording, event) in recordings.iter().zip(&events) {
        let job = wait_for_job(out.path(), event, "the job is done", |job| job.state == JobState::Done).await;
        assert_eq!(job.source.as_deref(), Some("pull:recordings/recorder"));
        assert_files(out.path(), recording);
    }
    let namespace = emulator.namespace();
    wait_until("every event is acknowledged", || events.iter().all(|e| namespace.acknowledgements(&e.id) > 0)).await;
    for event in &events {
        assert_eq!((namespace.deliveries(&event.id), namespace.acknowledgements(&event.id)), (1, 1), "{}", event.id);
    }
    assert_eq!(namespace.pending(), 0);
    assert!(namespace.dead_letters().is_empty());
    recorder.signal("TERM");
    let (status, _, stderr) = recorder.exited().await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(namespace.key()), "the key is never logged");
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_and_its_text_journaled() {
    let emulator = Emulator::start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let _recorder = start(&emulator, out.path(), &[]).await;
    let malformed = serde_json::json!({"id": "bad-1", "source": "/acs", "specversion": "1.0",
        "type": "Microsoft.Communication.RecordingFileStatusUpdated", "subject": "/recording/call/c/serverCallId/s",
        "data": {"recordingStorageInfo": {"recordingChunks": [{"index": "zero"}]}}});
    emulator.namespace().publish(malformed.clone());
    let namespace = emulator.namespace();
    wait_until("the event is dead-lettered", || namespace.dead_letters().len() == 1).await;
    assert_eq!(namespace.dead_letters()[0].reason, "Rejected");
    let jobs = FileJournal::open_read_only(journal_dir(out.path())).unwrap().list().await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Rejected);
    let kept: serde_json::Value = serde_json::from_str(jobs[0].message.as_deref().unwrap()).unwrap();
    assert_eq!(kept, malformed);
}

#[tokio::test]
async fn a_journal_outage_releases_the_events_and_they_land_after() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = start(&emulator, out.path(), &["--pull-release-delay", "0"]).await;
    // The outage: the journal's folder of jobs becomes a file, so no record can be written (even by root).
    let jobs = journal_dir(out.path()).join("jobs");
    let away = journal_dir(out.path()).join("jobs.away");
    std::fs::rename(&jobs, &away).unwrap();
    std::fs::write(&jobs, b"not a folder").unwrap();

    let recording = emulator.storage().record(RecordingSpec::new("outage-call", 150_000));
    let event = publish(&emulator, &recording);
    let namespace = emulator.namespace();
    wait_until("the event is released and delivered again", || namespace.deliveries(&event.id) >= 2).await;
    assert_eq!(namespace.acknowledgements(&event.id), 0, "not acknowledged while the journal is down");

    std::fs::remove_file(&jobs).unwrap();
    std::fs::rename(&away, &jobs).unwrap();
    wait_for_job(out.path(), &event, "the job is done", |job| job.state == JobState::Done).await;
    assert_files(out.path(), &recording);
    wait_until("the event is acknowledged", || namespace.acknowledgements(&event.id) == 1).await;
    assert!(namespace.dead_letters().is_empty());
    drop(recorder);
}

#[tokio::test]
async fn a_recorder_killed_holding_locks_loses_nothing() {
    let emulator = Emulator::builder()
        .chunk_limit(64 * 1024)
        .namespace_lock_duration(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let first = start(&emulator, out.path(), &["--pull-lock-seconds", "2"]).await;
    // Frozen while its receive waits: the emulator hands the events to it, and it never gets to read them.
    first.signal("STOP");
    let recordings: Vec<StoredRecording> =
        (0..2).map(|n| emulator.storage().record(RecordingSpec::new(format!("held-call-{n}"), 100_000))).collect();
    let events: Vec<OutgoingEvent> = recordings.iter().map(|r| publish(&emulator, r)).collect();
    let namespace = emulator.namespace();
    wait_until("the frozen recorder holds every lock", || events.iter().all(|e| namespace.deliveries(&e.id) == 1))
        .await;
    first.kill();

    let _second = start(&emulator, out.path(), &["--pull-lock-seconds", "2"]).await;
    for (recording, event) in recordings.iter().zip(&events) {
        wait_for_job(out.path(), event, "the job is done", |job| job.state == JobState::Done).await;
        assert_files(out.path(), recording);
    }
    wait_until("every event is acknowledged", || events.iter().all(|e| namespace.acknowledgements(&e.id) == 1)).await;
    for event in &events {
        assert_eq!(namespace.deliveries(&event.id), 2, "delivered again once the lock expired");
    }
    assert!(namespace.dead_letters().is_empty());
}

#[tokio::test]
async fn the_demo_runs_through_pull_delivery() {
    let out = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(recorder_binary())
        .args(["--no-progress", "--demo-via", "pull", "--demo-chunks", "2", "--demo-chunk-size", "262144", "--out"])
        .arg(out.path())
        .env_remove("ACS_CONNECTION_STRING")
        .env_remove("ACS_ENDPOINT")
        .env_remove(KEY_VARIABLE)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("receiving from pull:recordings/recorder (namespace key)"), "{stdout}");
    assert!(
        stdout.contains("deliveries        2 of the recording's event, answered acknowledged, acknowledged"),
        "{stdout}"
    );
    assert!(stdout.contains("jobs journaled    1 "), "{stdout}");
    assert!(stdout.contains("2 chunks, ") && stdout.contains("every SHA-256 matches the emulator"), "{stdout}");
}

#[tokio::test]
async fn pull_without_a_key_or_entra_is_refused_before_anything_listens() {
    let emulator = Emulator::start().await.unwrap();
    let output = tokio::process::Command::new(recorder_binary())
        .args(["--listen", "127.0.0.1:0", "--pull", &emulator.namespace_subscription_url()])
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
        .env_remove(KEY_VARIABLE)
        .env_remove("ACS_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: --pull needs the namespace key in EVENTGRID_NAMESPACE_KEY, or --auth entra"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening on"));
}

#[tokio::test]
async fn a_refused_key_stops_the_recorder_with_the_services_error() {
    let emulator = Emulator::start().await.unwrap();
    let output = tokio::process::Command::new(recorder_binary())
        .args(["--listen", "127.0.0.1:0", "--no-progress", "--pull", &emulator.namespace_subscription_url()])
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
        .env(KEY_VARIABLE, "d3Jvbmcta2V5")
        .env_remove("ACS_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: receive answered 401 Unauthorized (Unauthorized: "), "{stderr}");
    assert!(!stderr.contains("d3Jvbmcta2V5"), "{stderr}");
}
