//! Killed with SIGKILL at the worst moments and started again with the same command line, the recorder loses
//! nothing and downloads nothing twice; SIGTERM shuts it down cleanly; the subcommands and flag checks.

use crate::support::recorder_process::*;

#[tokio::test]
async fn a_recorder_killed_in_the_middle_of_a_chunk_resumes_it_on_restart() {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-mid", 6_000_000));
    let first = recording.chunks[0].document_id.clone();
    emulator.storage().inject(&first, [Fault::StallAfter(3 << 20)]);
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let event = recording_file_status_updated(&recording);
    assert_eq!(
        recorder.publisher().deliver(std::slice::from_ref(&event)).await,
        DeliveryOutcome::Delivered { attempts: 1 }
    );
    let partial = out.path().join("call-mid").join(format!(".0-{first}.wav.partial"));
    wait_until("part of the chunk is on disk", || std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) >= 2 << 20)
        .await;
    recorder.kill();
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert_eq!(job(out.path(), &event).await.unwrap().state, JobState::Running);

    // The same command line, no redelivery: the chunk continues from what is on disk. The machine did not restart
    // (same boot id), so the bytes the killed process wrote are all there, though no checkpoint (every 64 MiB)
    // fsynced them.
    assert!(kept >= 2 << 20);
    let _recorder = Recorder::start(&emulator, out.path()).await;
    assert_complete(out.path(), &recording, &event).await;
    assert_eq!(served(&emulator, &first), (3 << 20) + (recording.chunks[0].size - kept));
    assert_eq!(served(&emulator, &recording.chunks[1].document_id), recording.chunks[1].size);
}

#[tokio::test]
async fn a_recorder_killed_after_journaling_but_before_answering_takes_the_redelivery_as_a_duplicate() {
    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-journal", 600_000));
    // The first download stalls before any byte, so the only thing the killed process did was journal.
    emulator.storage().inject(&recording.chunks[0].document_id, [Fault::StallAfter(0)]);
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let event = recording_file_status_updated(&recording);
    let url = recorder.url();
    let body = serde_json::to_vec(&[serde_json::json!({"id": event.id, "subject": event.subject,
        "eventType": event.event_type, "eventTime": event.time, "dataVersion": event.data_version, "data": event.data})])
    .unwrap();
    // Event Grid's delivery: the recorder is killed as soon as the job is journaled, before the answer is read.
    let delivery = tokio::spawn(async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Full<bytes::Bytes>>();
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let _ = client.request(request).await;
    });
    let jobs = journal_dir(out.path()).join("jobs");
    let record = jobs.join(format!("{}.json", JobId::for_event(&event.id)));
    // Killed once its first download stalls: otherwise the stall would be left for the restarted process.
    let first = &recording.chunks[0].document_id;
    wait_until("the job is journaled and its first download stalls", || {
        record.exists() && stall_handed_out(&emulator, first)
    })
    .await;
    recorder.kill();
    delivery.abort();

    // Event Grid saw no 200 and delivers again, to the restarted recorder: one job, every file once.
    let recorder = Recorder::start(&emulator, out.path()).await;
    assert_eq!(
        recorder.publisher().deliver(std::slice::from_ref(&event)).await,
        DeliveryOutcome::Delivered { attempts: 1 }
    );
    assert_complete(out.path(), &recording, &event).await;
    for chunk in &recording.chunks {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{}", chunk.document_id);
    }
}

#[tokio::test]
async fn a_recorder_killed_between_two_chunks_never_downloads_the_first_again() {
    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-between", 400_000));
    emulator.storage().inject(&recording.chunks[1].document_id, [Fault::StallAfter(0)]);
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let event = recording_file_status_updated(&recording);
    assert!(recorder.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    wait_for_job(out.path(), &event, "the first chunk is checkpointed", |job| {
        job.chunks[0].state == ChunkState::Stored
    })
    .await;
    wait_until("the second chunk stalls", || stall_handed_out(&emulator, &recording.chunks[1].document_id)).await;
    recorder.kill();

    let _recorder = Recorder::start(&emulator, out.path()).await;
    assert_complete(out.path(), &recording, &event).await;
    for chunk in &recording.chunks {
        assert_eq!(served(&emulator, &chunk.document_id), chunk.size, "{}", chunk.document_id);
    }
}

/// Whether the emulator answered a media request for the document: an injected stall was handed out, not left
/// queued for the next process.
fn stall_handed_out(emulator: &Emulator, document_id: &str) -> bool {
    let requests = emulator.storage().requests_for(document_id);
    requests.iter().any(|request| request.path.ends_with("/content/audio") && request.status != 0)
}

/// Runs a subcommand of the recorder (`status`, `retry`) on a journal; answers its exit status and output.
fn subcommand(out: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(recorder_binary()).args(args).arg("--out").arg(out).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

async fn get_text(url: &str) -> String {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn the_recorder_process_serves_downloads_and_stops_on_sigterm() {
    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("process-call", 600_000));
    let out = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let recorder = Recorder::start_with(&emulator, out.path(), &["--metrics", &metrics]).await;
    let event = recording_file_status_updated(&recording);
    for _ in 0..2 {
        let outcome = recorder.publisher().deliver(std::slice::from_ref(&event)).await;
        assert_eq!(outcome, DeliveryOutcome::Delivered { attempts: 1 });
    }
    assert_complete(out.path(), &recording, &event).await;

    // Probes and Prometheus metrics on their listeners.
    assert_eq!(get_text(&format!("http://{}/healthz", recorder.addr)).await, r#"{"status":"alive"}"#);
    assert_eq!(get_text(&format!("http://{}/readyz", recorder.addr)).await, r#"{"status":"ready"}"#);
    let scraped = get_text(&format!("http://{metrics}/metrics")).await;
    for line in [
        r#"acs_recording_events_total{outcome="accepted"} 1"#.to_owned(),
        r#"acs_recording_events_total{outcome="duplicate"} 1"#.to_owned(),
        r#"acs_recording_jobs{state="done"} 1"#.to_owned(),
        format!("acs_recording_downloaded_bytes_total {}", recording.bytes()),
    ] {
        assert!(scraped.lines().any(|l| l == line), "{line} missing from:\n{scraped}");
    }

    // SIGTERM: the recorder stops taking deliveries, finishes what it accepted, and exits 0.
    recorder.signal("TERM");
    let (status, stdout, stderr) = recorder.exited().await;
    assert!(status.success(), "exit {status}; stdout:\n{stdout}\nstderr:\n{stderr}");
    let line = format!(
        "recording of call process-call (event {}): {} chunks, {} bytes",
        event.id,
        recording.chunks.len(),
        recording.bytes()
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(stdout.contains("shutting down"), "{stdout}");
    // Nothing partial is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(out.path().join("process-call"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_failed_job_is_listed_with_its_reason_and_retried_from_the_command_line() {
    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-cli", 300_000));
    emulator.storage().inject(&recording.chunks[0].document_id, Fault::status_times(404, 1, None));
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let event = recording_file_status_updated(&recording);
    assert!(recorder.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    let failed = wait_for_job(out.path(), &event, "the job fails", |job| job.state == JobState::Failed).await;
    recorder.signal("TERM");
    let (status, _, stderr) = recorder.exited().await;
    assert!(status.success());
    assert!(stderr.contains("recording of call call-cli"), "{stderr}");

    let (ok, listed) = subcommand(out.path(), &["status"]);
    assert!(ok, "{listed}");
    let id = JobId::for_event(&event.id);
    assert!(listed.contains(&format!("{id}  failed")), "{listed}");
    assert!(listed.contains(failed.last_error.as_deref().unwrap()), "{listed}");
    assert!(listed.contains("404 Not Found"), "{listed}");

    let (ok, said) = subcommand(out.path(), &["retry", id.as_str()]);
    assert!(ok, "{said}");
    assert_eq!(said.trim(), format!("job {id} is pending again; the recorder downloads it on its next start"));
    let (ok, said) = subcommand(out.path(), &["retry", id.as_str()]);
    assert!(!ok);
    assert!(said.contains("is pending, not failed"), "{said}");

    let _recorder = Recorder::start(&emulator, out.path()).await;
    assert_complete(out.path(), &recording, &event).await;
}

#[tokio::test]
async fn a_recorder_killed_in_a_parallel_download_fetches_only_the_missing_parts_on_restart() {
    const PART: u64 = 256 * 1024;
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-parts", 2 << 20));
    let document = recording.chunks[0].document_id.clone();
    let size = recording.chunks[0].size;
    // One part stalls: the others complete around it, then the process is killed.
    emulator.storage().inject_at(&document, 4 * PART, [Fault::StallAfter(0)]);
    let out = tempfile::tempdir().unwrap();
    let part = PART.to_string();
    let args = [
        "--parallel-threshold",
        part.as_str(),
        "--part-size",
        part.as_str(),
        "--parallelism",
        "4",
        "--fast-stream",
        "0",
    ];
    let recorder = Recorder::start_with(&emulator, out.path(), &args).await;
    let event = recording_file_status_updated(&recording);
    assert!(recorder.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    let state = out.path().join("call-parts").join(format!(".0-{document}.wav.partial.json"));
    let extents = || -> Vec<(u64, u64)> {
        std::fs::read(&state)
            .ok()
            .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
            .and_then(|v| serde_json::from_value(v["extents"].clone()).ok())
            .unwrap_or_default()
    };
    wait_until("parts are complete", || extents().len() >= 6).await;
    recorder.kill();
    let kept = extents();
    let missing = size - kept.iter().map(|(start, end)| end - start).sum::<u64>();
    assert!(missing >= PART && missing < size / 2, "{kept:?}");
    let before = served(&emulator, &document);
    emulator.storage().clear_faults(&document);

    let _recorder = Recorder::start_with(&emulator, out.path(), &args).await;
    assert_complete(out.path(), &recording, &event).await;
    assert_eq!(served(&emulator, &document) - before, missing, "only the missing parts were fetched again");
}

/// Runs the recorder with `args` and no connection string or endpoint in the environment; answers its exit code
/// and standard error.
fn run_without_environment(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(recorder_binary())
        .args(args)
        .env_remove("ACS_CONNECTION_STRING")
        .env_remove("ACS_ENDPOINT")
        .env_remove("ACS_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn auth_entra_needs_an_https_endpoint_before_anything_runs() {
    let (code, stderr) = run_without_environment(&["--auth", "entra"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: --auth entra needs the ACS endpoint: give --endpoint (or a connection string)\n");

    let (code, stderr) = run_without_environment(&["--auth", "entra", "--endpoint", "http://acs.example/"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: endpoint `http://acs.example/` uses http; only loopback hosts may (use https)\n");

    let (code, stderr) = run_without_environment(&["--auth", "entra", "--entra-credential", "password"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'password' for '--entra-credential <ENTRA_CREDENTIAL>'"), "{stderr}");
}

#[test]
fn the_recorder_refuses_to_serve_a_webhook_without_a_delivery_check_unless_told() {
    let out = tempfile::tempdir().unwrap();
    let connection_string = "endpoint=https://acs.example.communication.azure.com/;accesskey=cHc9PQ==";
    let (code, stderr) = run_without_environment(&[
        "--connection-string",
        connection_string,
        "--listen",
        "127.0.0.1:0",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "error: no delivery check: give --webhook-secret (or ACS_WEBHOOK_SECRET) or --webhook-entra-tenant, or \
         --unauthenticated-webhook to serve an open webhook on purpose\n"
    );
    // Nothing was opened: no journal in the output folder.
    assert!(!out.path().join(".journal").exists());
}

#[test]
fn webhook_entra_needs_a_tenant_and_an_audience_together() {
    let (code, stderr) = run_without_environment(&["--webhook-entra-tenant", "3f4c9e1a-0d5b-4c2e-9a7f-1b2c3d4e5f60"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--webhook-entra-audience <APP_ID_OR_URI>"), "{stderr}");

    let (code, stderr) = run_without_environment(&["--webhook-entra-audience", "api://acs-recorder"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--webhook-entra-tenant <TENANT_ID>"), "{stderr}");

    // A tenant that cannot be one is refused before the recorder listens or opens its journal.
    let out = tempfile::tempdir().unwrap();
    let connection_string = "endpoint=https://acs.example.communication.azure.com/;accesskey=cHc9PQ==";
    let (code, stderr) = run_without_environment(&[
        "--connection-string",
        connection_string,
        "--listen",
        "127.0.0.1:0",
        "--out",
        out.path().to_str().unwrap(),
        "--webhook-entra-tenant",
        "common",
        "--webhook-entra-audience",
        "api://acs-recorder",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: `common` names no tenant: give the directory (tenant) id\n");
    assert!(!out.path().join(".acs-recording").exists());
}

#[tokio::test]
async fn status_lists_a_started_recording_whose_event_did_not_come_as_missing_with_its_ids() {
    let out = tempfile::tempdir().unwrap();
    {
        let journal = FileJournal::open(journal_dir(out.path())).unwrap();
        let now = std::time::SystemTime::now();
        let mut recording = acs_recording::journal::TrackedRecording::new("rec-lost", now);
        recording.server_call_id = Some("server-lost".to_owned());
        recording.stopped_at = Some(now);
        let mut record = Job::awaiting(recording, now);
        record.mark_missing("stopped and no RecordingFileStatusUpdated event came within 30 minutes (1800 s)");
        journal.insert(std::slice::from_ref(&record)).await.unwrap();
    }
    let (ok, listed) = subcommand(out.path(), &["status"]);
    assert!(ok, "{listed}");
    assert!(listed.contains("  missing "), "{listed}");
    assert!(listed.contains("recording rec-lost of call server-lost: stopped"), "{listed}");
    assert!(listed.contains("no RecordingFileStatusUpdated event came within 30 minutes"), "{listed}");
}
