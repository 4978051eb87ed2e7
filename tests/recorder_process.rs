//! The recorder example as a separate process in its real mode (a connection string given), pointed at the
//! emulator: killed with SIGKILL at the worst moments and started again with the same command line, it loses
//! nothing and downloads nothing twice; SIGTERM shuts it down cleanly.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_recording::emulator::eventgrid::{
    recording_file_status_updated, DeliveryOutcome, EventGridPublisher, OutgoingEvent, RetryPolicy, Schema,
};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec, StoredRecording};
use acs_recording::journal::{ChunkState, FileJournal, Job, JobId, JobState, Journal};
use http::Method;
use sha2::{Digest, Sha256};

const SECRET: &str = "process-secret";

/// `target/<profile>/examples/recorder`, built by `cargo test` with the other examples.
fn recorder_binary() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let binary = dir.join("examples").join("recorder");
    if !binary.exists() {
        // `cargo test` builds every example; a run of this test target alone may not have.
        let built = Command::new(env!("CARGO"))
            .args(["build", "--all-features", "--example", "recorder", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .unwrap();
        assert!(built.success());
    }
    assert!(binary.exists(), "{}", binary.display());
    binary
}

/// A running recorder process, killed if the test fails before it stops by itself. Its output is read as it comes
/// (a full pipe would stall it) and kept for the test.
struct Recorder {
    child: Option<Child>,
    addr: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// Reads a pipe to its end into `into`, in the background.
fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl Recorder {
    /// Starts the recorder with the command line every start of a test uses (on a port the system picks), and
    /// waits until its webhook answers the validation handshake (bounded).
    async fn start(emulator: &Emulator, out: &Path) -> Self {
        Self::start_with(emulator, out, &[]).await
    }

    async fn start_with(emulator: &Emulator, out: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(recorder_binary())
            .args(["--listen", "127.0.0.1:0", "--webhook-secret", SECRET, "--no-progress"])
            .args(extra)
            .args(["--allow-host", &emulator.storage_authority(), "--out"])
            .arg(out)
            .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the recorder");
        let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        drain(child.stdout.take().expect("piped"), stdout.clone());
        drain(child.stderr.take().expect("piped"), stderr.clone());
        let mut recorder = Self { child: Some(child), addr: String::new(), stdout, stderr };
        let deadline = Instant::now() + Duration::from_secs(60);
        // The recorder prints where it listens: `... listening on http://127.0.0.1:PORT/api/events ...`.
        loop {
            let printed = recorder.stdout.lock().unwrap().clone();
            if let Some(rest) = printed.split("listening on http://").nth(1) {
                recorder.addr = rest.split('/').next().unwrap_or_default().to_owned();
                break;
            }
            let exited = recorder.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "the recorder exited: {}", recorder.stderr.lock().unwrap());
            assert!(Instant::now() < deadline, "the recorder did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let publisher = recorder.publisher();
        while publisher.validate().await.is_err() {
            assert!(Instant::now() < deadline, "the recorder's webhook did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        recorder
    }

    fn url(&self) -> String {
        format!("http://{}/api/events?code={SECRET}", self.addr)
    }

    fn publisher(&self) -> EventGridPublisher {
        let once = RetryPolicy {
            delays: vec![Duration::from_millis(5)],
            max_attempts: 1,
            response_timeout: Duration::from_secs(10),
        };
        EventGridPublisher::new(&self.url(), Schema::EventGrid).unwrap().with_retry(once)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        // The shell's built-in `kill`, so that no procps binary is needed.
        let status = Command::new("sh").args(["-c", &format!("kill -{signal} {pid}")]).status().unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the process ends at once, in the middle of whatever it does.
    fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.take().expect("running").wait();
    }

    /// Waits (bounded) for the process to exit; answers its status and output.
    async fn exited(mut self) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut child = self.child.take().expect("running");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the recorder did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The pipes close with the process; give the readers a moment to take the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stdout, stderr)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn journal_dir(out: &Path) -> PathBuf {
    out.join(".acs-recording")
}

async fn job(out: &Path, event: &OutgoingEvent) -> Option<Job> {
    let journal = FileJournal::open_read_only(journal_dir(out)).ok()?;
    journal.get(&JobId::for_event(&event.id)).await.ok().flatten()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for_job(out: &Path, event: &OutgoingEvent, what: &str, accept: impl Fn(&Job) -> bool) -> Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(job) = job(out, event).await {
            if accept(&job) {
                return job;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {:?}", job(out, event).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn media_path(out: &Path, recording: &StoredRecording, index: usize) -> PathBuf {
    let chunk = &recording.chunks[index];
    out.join(&recording.call_id).join(format!("{}-{}.wav", chunk.index, chunk.document_id))
}

/// Every chunk's file has the emulator's SHA-256, the job is done, and the journal holds that one job.
async fn assert_complete(out: &Path, recording: &StoredRecording, event: &OutgoingEvent) {
    let job = wait_for_job(out, event, "the job is done", |job| job.state == JobState::Done).await;
    for (index, chunk) in recording.chunks.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(media_path(out, recording, index)).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "chunk {index}");
        assert_eq!(job.chunks[index].state, ChunkState::Stored);
    }
    let jobs = FileJournal::open_read_only(journal_dir(out)).unwrap().list().await.unwrap();
    assert_eq!(jobs.len(), 1, "no duplicate job: {jobs:?}");
}

/// Media bytes the storage sent for one chunk, over all its requests.
fn served(emulator: &Emulator, document_id: &str) -> u64 {
    emulator
        .storage()
        .requests_for(document_id)
        .iter()
        .filter(|r| r.method == Method::GET && !r.path.ends_with("acsmetadata") && (r.status == 200 || r.status == 206))
        .map(|r| r.bytes_sent)
        .sum()
}

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

    // The same command line, no redelivery: the chunk continues from what is on disk.
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
    emulator.storage().inject(&recording.chunks[0].document_id, Fault::status_times(403, 1, None));
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
    assert!(listed.contains("403 Forbidden"), "{listed}");

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
    // One part stalls: the others complete up to the memory bound, then the process is killed.
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

/// Sends `request` on a new connection and reads the answer until the server closes it or `wait` passes; answers
/// what was read and whether the server closed the connection.
async fn exchange(addr: &str, request: &[u8], wait: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn idle_connections_slow_headers_and_stalled_bodies_are_cut_off() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let addr = recorder.addr.clone();
    let stalled_body = format!(
        "POST /api/events?code={SECRET} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\naeg-event-type: Notification\r\n\r\n[{{\"id\":"
    );
    // All three at once: each must be closed (or answered) by the server within its timeout plus a margin.
    let wait = Duration::from_secs(25);
    let started = Instant::now();
    let (idle, slow_headers, stalled) = tokio::join!(
        exchange(&addr, b"", wait),
        exchange(&addr, b"POST /api/events HTTP/1.1\r\nhost: x\r\n", wait),
        exchange(&addr, stalled_body.as_bytes(), wait),
    );
    assert!(idle.1, "an idle connection was kept open for {wait:?}");
    assert!(slow_headers.1, "a connection that never finished its headers was kept open for {wait:?}");
    assert!(stalled.1, "a stalled body kept its connection open for {wait:?}");
    assert_eq!(status_line(&stalled.0), "HTTP/1.1 408 Request Timeout", "{}", stalled.0);
    assert!(started.elapsed() >= Duration::from_secs(9), "cut off before the timeouts: {:?}", started.elapsed());
    // The server goes on serving.
    recorder.publisher().validate().await.unwrap();
}

#[tokio::test]
async fn header_floods_and_oversized_batches_are_refused_and_the_server_goes_on() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let wait = Duration::from_secs(10);
    let start = format!("POST /api/events?code={SECRET} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n");

    let many: String = (0..500).map(|i| format!("x-flood-{i}: {i}\r\n")).collect();
    let (answer, _) =
        exchange(&recorder.addr, format!("{start}{many}content-length: 2\r\n\r\n[]").as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 431 Request Header Fields Too Large", "{answer}");

    let huge = format!("x-huge: {}\r\n", "a".repeat(200 * 1024));
    let (answer, _) =
        exchange(&recorder.addr, format!("{start}{huge}content-length: 2\r\n\r\n[]").as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 431 Request Header Fields Too Large", "{answer}");

    // A batch of 2 MiB of events: 413, decided from Content-Length before any of it is read, and again when a
    // chunked body passes the limit while it arrives.
    let event = r#"{"id":"e","eventType":"Other","subject":"s","eventTime":"2026-12-01T10:00:00Z","data":{},"dataVersion":"1"}"#;
    let batch = format!("[{}]", vec![event; 2 * 1024 * 1024 / event.len()].join(","));
    let request = format!("{start}aeg-event-type: Notification\r\ncontent-length: {}\r\n\r\n{batch}", batch.len());
    let (answer, _) = exchange(&recorder.addr, request.as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 413 Payload Too Large", "{answer}");
    let chunked = format!(
        "{start}aeg-event-type: Notification\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{batch}\r\n0\r\n\r\n",
        batch.len()
    );
    let (answer, _) = exchange(&recorder.addr, chunked.as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 413 Payload Too Large", "{answer}");

    recorder.publisher().validate().await.unwrap();
}

/// The resident memory of a process, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn ten_thousand_idle_connections_leave_the_webhook_serving_in_bounded_memory() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let pid = recorder.child.as_ref().unwrap().id();
    let before = rss_kib(pid);
    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..100 {
        let batch = (0..100).map(|_| tokio::net::TcpStream::connect(recorder.addr.clone()));
        for stream in futures_util::future::join_all(batch).await {
            idle.push(stream.expect("connect"));
        }
    }
    // Every one of them accepted and waiting for headers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = emulator.storage().record(RecordingSpec::new("call-idle", 4096));
    let event = recording_file_status_updated(&stored);
    assert!(recorder.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    let during = rss_kib(pid);
    assert_complete(out.path(), &stored, &event).await;
    let grown = during.saturating_sub(before);
    eprintln!("recorder RSS {before} KiB, with 10 000 idle connections {during} KiB (+{grown} KiB)");
    assert!(grown < 128 * 1024, "10 000 idle connections grew the recorder by {grown} KiB");
    drop(idle);
}
