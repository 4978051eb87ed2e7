//! `recorder record ...` against the emulator's Call Automation: one JSON line on stdout per operation, one line on
//! stderr and a non-zero exit on failure.

use crate::support::recorder_process::*;

/// Runs `recorder record <args> --allow-host <allow_host>` with `connection_string` in the environment; answers
/// the exit code, stdout and stderr.
async fn record(connection_string: &str, allow_host: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(recorder_binary())
        .arg("record")
        .args(args)
        .args(["--allow-host", allow_host])
        .env("ACS_CONNECTION_STRING", connection_string)
        .env_remove("ACS_ENDPOINT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code(), text(output.stdout), text(output.stderr))
}

async fn record_on(emulator: &Emulator, args: &[&str]) -> (Option<i32>, String, String) {
    record(&emulator.connection_string().to_secret_string(), &emulator.storage_authority(), args).await
}

/// `record <operation> <id>`, which must succeed: its one line, as JSON.
async fn step(emulator: &Emulator, operation: &str, id: &str) -> serde_json::Value {
    let (code, stdout, stderr) = record_on(emulator, &[operation, id]).await;
    assert_eq!(code, Some(0), "{operation}: {stderr}");
    json_line(&stdout)
}

/// The one line printed, as JSON.
fn json_line(stdout: &str) -> serde_json::Value {
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout.trim_end()).unwrap()
}

#[tokio::test]
async fn record_start_prints_the_recording_id_and_active_as_one_json_line() {
    let emulator = Emulator::start().await.unwrap();
    let (code, stdout, stderr) = record_on(
        &emulator,
        &[
            "start",
            "--server-call-id",
            "aHR0cHM6Ly9jYWxsLzE",
            "--content",
            "audio",
            "--channel",
            "mixed",
            "--format",
            "wav",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let status = json_line(&stdout);
    assert!(status["recordingId"].as_str().is_some_and(|id| !id.is_empty()), "{status}");
    assert_eq!(status["recordingState"], "active");
    assert_eq!(status["recordingKind"], "azureCommunicationServices");
    assert_eq!(stderr, "");
}

#[tokio::test]
async fn record_pause_state_resume_and_stop_round_trip_on_one_recording() {
    let emulator = Emulator::start().await.unwrap();
    let (code, stdout, stderr) =
        record_on(&emulator, &["start", "--group-call-id", "e1a3b6b0-5a3c-4c1e-9a9e-0d7c1f2b3a4d", "--pause-on-start"])
            .await;
    assert_eq!(code, Some(0), "{stderr}");
    let started = json_line(&stdout);
    assert_eq!(started["recordingState"], "inactive");
    let id = started["recordingId"].as_str().unwrap().to_owned();

    let resumed = step(&emulator, "resume", &id).await;
    assert_eq!(resumed, serde_json::json!({"recordingId": id, "done": "resumed"}));
    assert_eq!(step(&emulator, "state", &id).await["recordingState"], "active");
    assert_eq!(step(&emulator, "pause", &id).await, serde_json::json!({"recordingId": id, "done": "paused"}));
    let state = step(&emulator, "state", &id).await;
    assert_eq!(state["recordingState"], "inactive");
    assert_eq!(state["recordingId"], id.as_str());
    assert_eq!(step(&emulator, "stop", &id).await, serde_json::json!({"recordingId": id, "done": "stopped"}));

    // Stopped: the recording is gone for a state read, and the failure is one line with the service's code.
    let (code, stdout, stderr) = record_on(&emulator, &["state", &id]).await;
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(stderr, "error: get recording state answered 404 not found (RecordingNotFound): no such recording\n");
}

#[tokio::test]
async fn record_start_naming_the_call_twice_exits_non_zero_with_one_line_before_sending() {
    let emulator = Emulator::start().await.unwrap();
    let (code, stdout, stderr) =
        record_on(&emulator, &["start", "--room-id", "99412345", "--server-call-id", "aHR0cHM6Ly9jYWxsLzE"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: name the call with exactly one of --server-call-id, --group-call-id, --room-id and \
         --call-connection-id\n"
    );
    let (code, _, stderr) = record_on(&emulator, &["start"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(emulator.storage().requests().is_empty());
}

#[tokio::test]
async fn record_against_an_unreachable_endpoint_fails_with_one_line_naming_no_secret() {
    let port = free_port();
    let key = "c2VjcmV0LWtleS1vZi10aGUtdGVzdA==";
    let connection_string = format!("endpoint=http://127.0.0.1:{port}/;accesskey={key}");
    let (code, stdout, stderr) = record(
        &connection_string,
        "127.0.0.1:1",
        &["start", "--server-call-id", "aHR0cHM6Ly9jYWxsLzE", "--max-attempts", "2"],
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: start recording got no answer after 2 attempts"), "{stderr}");
    assert!(!stderr.contains(key) && !stderr.contains("api-version"), "{stderr}");
}

#[tokio::test]
async fn the_demo_records_a_call_through_call_automation_and_downloads_what_the_emulator_announces() {
    let out = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(recorder_binary())
        .args(["--no-progress", "--demo-chunks", "2", "--demo-chunk-size", "262144", "--out"])
        .arg(out.path())
        .env_remove("ACS_CONNECTION_STRING")
        .env_remove("ACS_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let steps: Vec<&str> = stdout.lines().filter_map(|line| line.split_whitespace().next()).collect();
    for step in ["start", "pause", "resume", "stop", "announced"] {
        assert!(steps.contains(&step), "{step}: {stdout}");
    }
    assert!(stdout.contains("pause     inactive\nresume    active\n"), "{stdout}");
    assert!(stdout.contains("deliveries        2 of the recording's event, answered 200 OK, 200 OK"), "{stdout}");
    assert!(stdout.contains("jobs journaled    1 "), "{stdout}");
    assert!(stdout.contains("2 chunks, ") && stdout.contains("every SHA-256 matches the emulator"), "{stdout}");
}

#[tokio::test]
async fn record_start_by_room_reports_the_services_refusal_in_one_line() {
    let emulator = Emulator::start().await.unwrap();
    let (code, stdout, stderr) = record_on(&emulator, &["start", "--room-id", "99412345"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: start recording answered 400 bad request (BadRequest): a room call locator cannot start a recording; \
         use the call's server call id\n"
    );
}

#[tokio::test]
async fn record_start_by_call_connection_posts_its_state_changes_to_the_callback_uri() {
    let emulator = Emulator::start().await.unwrap();
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/recording",
        axum::routing::post(move |body: String| async move {
            kept.lock().unwrap().push(body);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/recording", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (code, stdout, stderr) = record_on(
        &emulator,
        &[
            "start",
            "--call-connection-id",
            "421f0b00-2a3c-4d5e-8f90-0a1b2c3d4e5f",
            "--callback-uri",
            &callback,
            "--blob-container",
            "https://contoso.blob.core.windows.net/recordings",
            "--pause-on-start",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json_line(&stdout)["recordingState"], "inactive");
    let body = eventually(Duration::from_secs(10), "the state callback arrives", || {
        std::future::ready(bodies.lock().unwrap().first().cloned())
    })
    .await;
    let events: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events[0]["type"], "Microsoft.Communication.RecordingStateChanged");
    // Call Automation's callbacks spell the state either way; the value is what counts.
    assert!(events[0]["data"]["state"].as_str().is_some_and(|state| state.eq_ignore_ascii_case("inactive")), "{body}");
    assert_eq!(events[0]["data"]["callConnectionId"], "421f0b00-2a3c-4d5e-8f90-0a1b2c3d4e5f");
    server.abort();
}
