//! Dead-lettered events through the recorder process: `replay-dead-letters file:///...` against the embedded
//! emulator, and `--dead-letters az://...` watching an Azurite container while serving.

use std::path::Path;
use std::time::Duration;

use acs_recording::emulator::eventgrid::{recording_file_status_updated, OutgoingEvent};
use acs_recording::emulator::{Emulator, RecordingSpec, StoredRecording};
use acs_recording::journal::{FileJournal, Job, JobId, JobState, Journal, ObjectStoreJournal};
use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::support::emulator::served;
use crate::support::eventually;
use crate::support::process::{recorder_binary, spawn_listening, Listening};
use crate::support::recorder_process::{media_path, Recorder};
use crate::support::store::Backend;

/// What a basic-tier subscription adds to an event it dead-letters (delivery-and-retry.md, "Delivery event
/// formats").
fn basic_properties(attempts: u64) -> Value {
    json!({
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": attempts,
        "lastDeliveryOutcome": "Probation",
        "lastHttpStatusCode": 503,
        "publishTime": "2026-11-26T08:43:11.0000000Z",
        "lastDeliveryAttemptTime": "2026-11-27T08:40:02.0000000Z",
    })
}

fn basic_note(attempts: u64) -> String {
    format!(
        "dead-lettered by Event Grid: MaxDeliveryAttemptsExceeded after {attempts} delivery attempts; last outcome \
         Probation (HTTP 503) at 2026-11-27T08:40:02.0000000Z; published 2026-11-26T08:43:11.0000000Z"
    )
}

fn merge(mut event: Value, extra: &Value) -> Value {
    let (Value::Object(fields), Value::Object(extra)) = (&mut event, extra) else { unreachable!() };
    fields.extend(extra.clone());
    event
}

fn event_grid(event: &OutgoingEvent) -> Value {
    json!({
        "id": event.id, "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/CommunicationServices/acs",
        "subject": event.subject, "data": event.data, "eventType": event.event_type,
        "dataVersion": event.data_version, "metadataVersion": "1", "eventTime": event.time,
    })
}

fn cloud_event(event: &OutgoingEvent) -> Value {
    json!({
        "specversion": "1.0", "id": event.id, "type": event.event_type, "subject": event.subject,
        "source": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Communication/CommunicationServices/acs",
        "time": event.time, "data": event.data,
    })
}

/// A basic-tier blob in the Event Grid schema.
fn basic_event_grid_blob(events: &[&OutgoingEvent]) -> Vec<u8> {
    let entries: Vec<Value> = events.iter().map(|event| merge(event_grid(event), &basic_properties(30))).collect();
    serde_json::to_vec(&entries).unwrap()
}

/// A basic-tier blob in the CloudEvents schema: the same fields, lower-case.
fn basic_cloud_events_blob(events: &[&OutgoingEvent]) -> Vec<u8> {
    let Value::Object(properties) = basic_properties(12) else { unreachable!() };
    let lower: Map<String, Value> = properties.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
    let entries: Vec<Value> =
        events.iter().map(|event| merge(cloud_event(event), &Value::Object(lower.clone()))).collect();
    serde_json::to_vec(&entries).unwrap()
}

/// A namespace blob (dead-letter-event-subscriptions-namespace-topics.md, "Dead-letter format"): the first event
/// wrapped in `event`, the second in structured mode.
fn namespace_blob(wrapped: &OutgoingEvent, structured: &OutgoingEvent) -> Vec<u8> {
    let properties = json!({
        "customDeliveryProperties": {"custom-header-1": "value1"},
        "deadletterProperties": {
            "deadletterreason": "MaxDeliveryCountExceeded", "deliveryattempts": 10, "deliveryresult": "Unauthorized",
            "publishutc": "2026-11-26T08:43:11.0000000Z", "deliveryattemptutc": "2026-11-26T09:13:11.0000000Z",
        },
    });
    let mut first = properties.clone();
    first["event"] = cloud_event(wrapped);
    serde_json::to_vec(&json!([first, merge(cloud_event(structured), &properties)])).unwrap()
}

fn write(root: &Path, name: &str, bytes: &[u8]) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The official CloudEvents dead-letter example, which is not JSON (see tests/fixtures/dead_letter/README.md).
fn not_json() -> Bytes {
    crate::support::fixture("dead_letter/official_basic.cloudevents.json")
}

/// Runs `replay-dead-letters <url>` to its end (bounded); answers its exit success and stdout.
async fn replay(emulator: &Emulator, out: &Path, url: &str, env: &[(String, String)]) -> (bool, String) {
    let mut command = tokio::process::Command::new(recorder_binary());
    command
        .args(["--no-progress", "--parallelism", "1", "replay-dead-letters", url])
        .args(["--allow-host", &emulator.storage_authority(), "--out"])
        .arg(out)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output()).await.expect("replay ends").unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success() || !stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), stdout)
}

fn summary(stdout: &str) -> Vec<&str> {
    stdout.lines().skip_while(|line| !line.starts_with("blobs read:")).collect()
}

fn assert_stored(out: &Path, recording: &StoredRecording) {
    for (index, chunk) in recording.chunks.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(media_path(out, recording, index)).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{} chunk {index}", recording.call_id);
    }
}

async fn jobs(out: &Path) -> Vec<Job> {
    FileJournal::open_read_only(out.join(".acs-recording")).unwrap().list().await.unwrap()
}

fn job<'a>(jobs: &'a [Job], event: &OutgoingEvent) -> &'a Job {
    let id = JobId::for_event(&event.id);
    jobs.iter().find(|job| job.id == id).unwrap_or_else(|| panic!("no job for {}: {jobs:?}", event.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_journals_both_tiers_and_schemas_and_a_rerun_reads_only_new_blobs() {
    let emulator = Emulator::builder().start().await.unwrap();
    let recordings: Vec<StoredRecording> = (1..=5)
        .map(|n| emulator.storage().record(RecordingSpec::new(format!("call-{n}"), 90_000 + n * 1_000)))
        .collect();
    let events: Vec<OutgoingEvent> = recordings.iter().map(recording_file_status_updated).collect();
    let mut other = events[0].clone();
    other.id = "call-started-1".into();
    other.event_type = "Microsoft.Communication.CallStarted".into();
    other.subject = "call/call-1/startedBy/8:acs:1".into();

    let (dead, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = dead.path();
    write(root, "ACS-SUB/2026/11/27/8/0a.json", &basic_event_grid_blob(&[&events[0], &events[1], &other]));
    write(root, "ACS-SUB-CE/2026/11/27/8/0b.json", &basic_cloud_events_blob(&[&events[2]]));
    write(root, "ns/topic/sub/2026/11/27/8/0c.json", &namespace_blob(&events[3], &events[4]));
    write(root, "ACS-SUB/2026/11/27/9/0d.json", &not_json());
    let url = format!("file://{}", root.display());

    let (ok, stdout) = replay(&emulator, out.path(), &url, &[]).await;
    assert!(ok, "{stdout}");
    assert_eq!(
        summary(&stdout),
        [
            "blobs read: 4",
            "blobs skipped as processed: 0",
            "blobs unreadable: 1",
            "events journaled: 5",
            "duplicates: 0",
            "rejected: 1",
            "not recording events: 1",
            "recordings stored: 5",
            "recordings failed: 0",
        ],
        "{stdout}"
    );
    for recording in &recordings {
        assert_stored(out.path(), recording);
    }
    let journaled = jobs(out.path()).await;
    assert_eq!(journaled.len(), 6, "five recordings and the unreadable blob: {journaled:?}");
    let source = format!("dead-letters:{url}");
    let first = job(&journaled, &events[0]);
    assert_eq!((first.state, first.source.as_deref()), (JobState::Done, Some(source.as_str())));
    assert_eq!(first.notes, [basic_note(30)]);
    assert_eq!(job(&journaled, &events[2]).notes, [basic_note(12)]);
    assert_eq!(
        job(&journaled, &events[3]).notes,
        ["dead-lettered by Event Grid: MaxDeliveryCountExceeded after 10 delivery attempts; last outcome Unauthorized \
          at 2026-11-26T09:13:11.0000000Z; published 2026-11-26T08:43:11.0000000Z"]
    );
    let rejected: Vec<_> = journaled.iter().filter(|job| job.state == JobState::Rejected).collect();
    assert_eq!(
        rejected[0].last_error.as_deref(),
        Some("dead-letter blob ACS-SUB/2026/11/27/9/0d.json: not JSON: key must be a string at line 17 column 1")
    );
    assert_eq!(rejected[0].message.as_deref(), Some(std::str::from_utf8(&not_json()).unwrap()));
    assert_eq!(rejected[0].source.as_deref(), Some(source.as_str()));
    for blob in ["ACS-SUB/2026/11/27/8/0a.json", "ACS-SUB-CE/2026/11/27/8/0b.json", "ns/topic/sub/2026/11/27/8/0c.json"]
    {
        assert!(root.join(".acs-recording-processed").join(blob).is_file(), "marker of {blob}");
    }
    assert!(
        root.join(".acs-recording-processed/ACS-SUB/2026/11/27/9/0d.json").is_file(),
        "the unreadable blob is marked"
    );
    let status = std::process::Command::new(recorder_binary())
        .arg("--out")
        .arg(out.path())
        .args(["status", "--all"])
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    let line = status.lines().position(|line| line.starts_with(first.id.as_str())).expect("the job is listed");
    assert!(status.lines().nth(line).unwrap().ends_with(&format!("from {source}")), "{status}");
    assert_eq!(status.lines().nth(line + 1), Some(format!("    note: {}", basic_note(30)).as_str()), "{status}");

    // A later blob holds the first recording's event again (a second subscription dead-lettered it too).
    write(root, "ACS-SUB/2026/11/27/10/0e.json", &basic_event_grid_blob(&[&events[0]]));
    let (ok, stdout) = replay(&emulator, out.path(), &url, &[]).await;
    assert!(ok, "{stdout}");
    assert_eq!(
        summary(&stdout),
        [
            "blobs read: 1",
            "blobs skipped as processed: 4",
            "blobs unreadable: 0",
            "events journaled: 0",
            "duplicates: 1",
            "rejected: 0",
            "not recording events: 0",
            "recordings stored: 1",
            "recordings failed: 0",
        ],
        "{stdout}"
    );
    assert_eq!(jobs(out.path()).await.len(), 6, "nothing journaled twice");
    for chunk in &recordings[0].chunks {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "chunk {} downloaded once", chunk.document_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_recorder_watches_a_dead_letter_container_in_azurite() {
    let emulator = Emulator::builder().start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-watched", 120_000));
    let event = recording_file_status_updated(&recording);
    let backend = Backend::azurite("dead_letters_watch");
    let container = backend.url.strip_prefix("az://").and_then(|rest| rest.split('/').next()).unwrap().to_owned();
    let store = backend.store().clone();
    let put = |key: &str, bytes: Vec<u8>| {
        let store = store.clone();
        let key = Key::parse(key).unwrap();
        async move { store.put(&key, PutPayload::from(bytes)).await.unwrap() }
    };
    put("deadletters/ACS-SUB/2026/11/27/8/0a.json", basic_event_grid_blob(&[&event])).await;
    put("deadletters/ACS-SUB/2026/11/27/8/0b.json", not_json().to_vec()).await;

    let out = tempfile::tempdir().unwrap();
    let url = format!("az://{container}/deadletters");
    let mut command = std::process::Command::new(recorder_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--no-progress", "--dead-letters", &url, "--dead-letters-interval", "1"])
        .args(["--allow-host", &emulator.storage_authority(), "--out"])
        .arg(out.path())
        .envs(backend.env.iter().map(|(k, v)| (k, v)))
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string());
    let Listening { child, addr, stdout, stderr } = spawn_listening(command, "the watching recorder").await;
    let recorder = Recorder { child: Some(child), addr, stdout, stderr };

    let (out_path, id) = (out.path(), &JobId::for_event(&event.id));
    let done = eventually(Duration::from_secs(60), "the dead-lettered recording is stored", || async move {
        let journal = FileJournal::open_read_only(out_path.join(".acs-recording")).ok()?;
        journal.get(id).await.ok().flatten().filter(|job| job.state == JobState::Done)
    })
    .await;
    assert_eq!(done.source.as_deref(), Some(format!("dead-letters:{url}").as_str()));
    assert_eq!(done.notes, [basic_note(30)]);
    assert_stored(out.path(), &recording);
    let store = &store;
    eventually(Duration::from_secs(30), "both blobs are marked processed", || async move {
        let marked =
            ["0a", "0b"].map(|blob| format!("deadletters/.acs-recording-processed/ACS-SUB/2026/11/27/8/{blob}.json"));
        for key in marked {
            store.head(&Key::parse(&key).unwrap()).await.ok()?;
        }
        Some(())
    })
    .await;
    // Without a delivery check, a recorder with a pull source serves no webhook route; its probes stay.
    let webhook =
        crate::support::send(http::Method::POST, &format!("http://{}/api/events", recorder.addr), &[], "[]").await;
    assert_eq!(webhook.status, http::StatusCode::NOT_FOUND);
    recorder.signal("TERM");
    let (status, _, stderr) = recorder.exited().await;
    assert!(status.success(), "{stderr}");
    let journaled = jobs(out.path()).await;
    let rejected: Vec<_> = journaled.iter().filter(|job| job.state == JobState::Rejected).collect();
    assert_eq!(
        rejected[0].last_error.as_deref(),
        Some("dead-letter blob deadletters/ACS-SUB/2026/11/27/8/0b.json: not JSON: key must be a string at line 17 column 1")
    );
    assert!(stderr.contains("deadletters/ACS-SUB/2026/11/27/8/0b.json"), "a log line names the blob: {stderr}");

    // A one-shot replay of the same container finds every blob marked.
    let again = tempfile::tempdir().unwrap();
    let (ok, stdout) = replay(&emulator, again.path(), &url, &backend.env).await;
    assert!(ok, "{stdout}");
    assert_eq!(summary(&stdout)[..3], ["blobs read: 0", "blobs skipped as processed: 2", "blobs unreadable: 0"]);
    assert_eq!(served(&emulator, &recording.chunks[0].document_id), recording.chunks[0].size);
}

/// A serving recorder that watches `dead_letters` every second, with `extra` arguments; no webhook route.
async fn watcher(emulator: &Emulator, backend: &Backend, out: &Path, dead_letters: &str, extra: &[&str]) -> Recorder {
    let mut command = std::process::Command::new(recorder_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--no-progress", "--parallelism", "1"])
        .args(["--dead-letters", dead_letters, "--dead-letters-interval", "1"])
        .args(extra)
        .args(["--allow-host", &emulator.storage_authority(), "--out"])
        .arg(out)
        .envs(backend.env.iter().map(|(k, v)| (k, v)))
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string());
    let Listening { child, addr, stdout, stderr } = spawn_listening(command, "a watching recorder").await;
    Recorder { child: Some(child), addr, stdout, stderr }
}

/// `count` recordings, each dead-lettered in a blob of its own under `deadletters/ACS-SUB/`; answers them and
/// their events.
async fn dead_lettered(emulator: &Emulator, backend: &Backend, count: u64) -> Vec<(StoredRecording, OutgoingEvent)> {
    let mut made = Vec::new();
    for n in 0..count {
        let recording = emulator.storage().record(RecordingSpec::new(format!("call-{n:02}"), 40_000 + n * 100));
        let event = recording_file_status_updated(&recording);
        let key = Key::parse(format!("deadletters/ACS-SUB/2026/11/27/8/{n:02}.json")).unwrap();
        backend.store().put(&key, PutPayload::from(basic_event_grid_blob(&[&event]))).await.unwrap();
        made.push((recording, event));
    }
    made
}

async fn markers(backend: &Backend) -> usize {
    use futures_util::TryStreamExt as _;
    let prefix = Key::from("deadletters/.acs-recording-processed");
    backend.store().list(Some(&prefix)).try_collect::<Vec<_>>().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_container_and_a_shared_journal_download_each_chunk_once() {
    let emulator = Emulator::builder().start().await.unwrap();
    let backend = Backend::azurite("dead_letters_replicas");
    let container = backend.url.strip_prefix("az://").and_then(|rest| rest.split('/').next()).unwrap().to_owned();
    let made = dead_lettered(&emulator, &backend, 8).await;
    let url = format!("az://{container}/deadletters");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared = ["--store", backend.url.as_str(), "--lease-seconds", "5"];
    let replicas = [
        watcher(&emulator, &backend, a.path(), &url, &shared).await,
        watcher(&emulator, &backend, b.path(), &url, &shared).await,
    ];

    let journal = ObjectStoreJournal::open(backend.location.clone()).await.unwrap();
    let journal = &journal;
    eventually(Duration::from_secs(90), "every dead-lettered recording is stored", || async move {
        let jobs = journal.list().await.unwrap();
        (jobs.len() == 8 && jobs.iter().all(|job| job.state == JobState::Done)).then_some(())
    })
    .await;
    let recordings: Vec<&StoredRecording> = made.iter().map(|(recording, _)| recording).collect();
    crate::support::store::checks::assert_stored(&backend, &recordings).await;
    for recording in &recordings {
        for chunk in &recording.chunks {
            assert_eq!(
                served(&emulator, &chunk.document_id),
                chunk.size,
                "chunk {} downloaded once",
                chunk.document_id
            );
        }
    }
    eventually(Duration::from_secs(30), "every blob is marked", || async {
        (markers(&backend).await == 8).then_some(())
    })
    .await;
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_recorder_killed_mid_pass_loses_no_dead_lettered_recording() {
    let emulator = Emulator::builder().start().await.unwrap();
    let backend = Backend::azurite("dead_letters_killed");
    let container = backend.url.strip_prefix("az://").and_then(|rest| rest.split('/').next()).unwrap().to_owned();
    let made = dead_lettered(&emulator, &backend, 24).await;
    let url = format!("az://{container}/deadletters");
    let out = tempfile::tempdir().unwrap();

    let first = watcher(&emulator, &backend, out.path(), &url, &[]).await;
    let backend_ref = &backend;
    eventually(Duration::from_secs(60), "the first blob is marked", || async move {
        (markers(backend_ref).await > 0).then_some(())
    })
    .await;
    first.kill();
    let marked_at_kill = markers(&backend).await;
    // Each blob costs a journal write and a marker: the kill lands mid-pass (2 of 24 marked, typically).
    assert!(marked_at_kill < 24, "the pass ended before the kill");

    let second = watcher(&emulator, &backend, out.path(), &url, &[]).await;
    let out_path = out.path();
    eventually(Duration::from_secs(90), "every dead-lettered recording is stored", || async move {
        let jobs = FileJournal::open_read_only(out_path.join(".acs-recording")).ok()?.list().await.ok()?;
        (jobs.len() == 24 && jobs.iter().all(|job| job.state == JobState::Done)).then_some(())
    })
    .await;
    for (recording, _) in &made {
        assert_stored(out.path(), recording);
    }
    eventually(Duration::from_secs(30), "every blob is marked", || async {
        (markers(&backend).await == 24).then_some(())
    })
    .await;
    drop(second);
}
