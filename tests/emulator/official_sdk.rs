//! The official Call Automation SDK for JavaScript against the emulator: its recording operations (start, pause,
//! resume, state, stop) as the SDK sends them, HMAC-signed, with its repeatability headers and its own api-version.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_recording::emulator::Emulator;
use acs_recording::recording::RecordingState;
use serde_json::Value;

use super::calling::{receiver, states};
use crate::support::{eventually, npm, process::drain};

/// The SDK release installed: the newest stable 1.x, which runs on Node 20 or later.
const SDK_VERSION: &str = "1.6.0";
/// The api-version that release sends when none is configured.
const SDK_API_VERSION: &str = "2026-03-12";

/// `.tools/call-automation-sdk`, holding the SDK.
fn sdk() -> std::path::PathBuf {
    npm::install(
        "call-automation-sdk",
        &format!("@azure/communication-call-automation@{SDK_VERSION}"),
        "node_modules/@azure/communication-call-automation/package.json",
        "the official SDK test",
    )
}

/// Runs `tests/support/sdk/record.mjs` with `args` under `node`, for at most 120 s; answers its JSON lines.
async fn run_script(args: &[String]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/sdk/record.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("node does not run ({error}): install Node.js 20 or later"));
    let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
    drain(child.stdout.take().expect("piped"), stdout.clone());
    drain(child.stderr.take().expect("piped"), stderr.clone());
    // Polled rather than waited for, so that the emulator on this runtime keeps answering the script.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the SDK script ran over 120 s: {}{}", stdout.lock().unwrap(), stderr.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The pipes' readers finish once the child's ends close; give them a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stdout, stderr) = (stdout.lock().unwrap().clone(), stderr.lock().unwrap().clone());
    assert!(status.success(), "the SDK script failed ({status}): {stdout}{stderr}");
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_records_a_call_through_the_emulator() {
    let sdk = sdk();
    let emulator = Emulator::start().await.unwrap();
    let (callbacks, bodies) = receiver().await;
    let lines = run_script(&[
        sdk.display().to_string(),
        emulator.connection_string().to_secret_string(),
        "server-call-sdk".to_owned(),
        callbacks.url("/callbacks"),
    ])
    .await;

    let steps: Vec<&Value> = lines.iter().filter(|line| line.get("step").is_some()).collect();
    let recording_id = steps[0]["recordingId"].as_str().expect("a recording id");
    assert!(!recording_id.is_empty());
    let told: Vec<(&str, Option<&str>)> =
        steps.iter().map(|step| (step["step"].as_str().unwrap(), step["state"].as_str())).collect();
    assert_eq!(
        told,
        [("start", Some("active")), ("pause", Some("inactive")), ("resume", Some("active")), ("stop", None)]
    );

    // What the SDK sent, and that the emulator accepted each: its signature, its api-version, its headers.
    let requests: Vec<&Value> = lines.iter().filter_map(|line| line.get("request")).collect();
    // The SDK percent-encodes the id in the path as JavaScript's `encodeURIComponent` does: the emulator's ids are
    // base64, whose padding `=` goes as `%3D` (and which the emulator decodes).
    let encoded: String = recording_id
        .chars()
        .map(|c| match c {
            '=' => "%3D".to_owned(),
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let recording = format!("/calling/recordings/{encoded}");
    let sent: Vec<(&str, String, u64)> = requests
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["path"].as_str().unwrap().to_owned(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        sent,
        [
            ("POST", "/calling/recordings".to_owned(), 200),
            ("POST", format!("{recording}:pause"), 202),
            ("GET", recording.clone(), 200),
            ("POST", format!("{recording}:resume"), 202),
            ("GET", recording.clone(), 200),
            ("DELETE", recording, 204),
        ]
    );
    for request in &requests {
        assert_eq!(request["signed"], true, "{request}");
        assert_eq!(request["apiVersion"], SDK_API_VERSION, "{request}");
    }
    // The SDK makes its start repeatable, and only its start (pause, resume and stop go without the headers).
    assert!(requests[0]["repeatabilityRequestId"].is_string(), "{}", requests[0]);
    assert!(requests[0]["repeatabilityFirstSent"].is_string(), "{}", requests[0]);
    for request in &requests[1..] {
        assert_eq!(request["repeatabilityRequestId"], Value::Null, "{request}");
    }

    let announced = eventually(Duration::from_secs(10), "the four state callbacks", || async {
        let states = states(&bodies).await;
        (states.len() >= 4).then_some(states)
    })
    .await;
    assert_eq!(
        announced,
        [RecordingState::Active, RecordingState::Inactive, RecordingState::Active, RecordingState::Inactive]
    );
}
