//! The official Event Grid namespaces SDK for JavaScript against the emulator's namespace topic: publish, receive,
//! acknowledge, release, renew and reject as the SDK sends them, with its `SharedAccessKey` header and its
//! api-version.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_recording::emulator::Emulator;
use serde_json::{json, Value};

use crate::support::{npm, process::drain};

/// The SDK release the emulator is checked against.
const SDK_VERSION: &str = "1.0.0";

fn sdk() -> std::path::PathBuf {
    npm::install(
        "eventgrid-namespaces-sdk",
        &format!("@azure/eventgrid-namespaces@{SDK_VERSION}"),
        "node_modules/@azure/eventgrid-namespaces/package.json",
        "the official Event Grid namespaces SDK test",
    )
}

/// Runs `tests/support/sdk/namespace.mjs` with `args` under `node`, for at most 120 s; answers its JSON lines.
async fn run_script(args: &[String]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/sdk/namespace.mjs");
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stdout, stderr) = (stdout.lock().unwrap().clone(), stderr.lock().unwrap().clone());
    assert!(status.success(), "the SDK script failed ({status}): {stdout}{stderr}");
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))).collect()
}

fn step<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    &lines.iter().find(|line| line["step"] == name).unwrap_or_else(|| panic!("no step {name}: {lines:?}"))["value"]
}

#[tokio::test]
async fn the_official_sdk_publishes_receives_and_settles_through_the_emulator() {
    let sdk = sdk();
    let emulator = Emulator::builder().namespace_topic("sdk-topic", "sdk-sub").start().await.unwrap();
    let namespace = emulator.namespace();
    let endpoint = emulator.endpoint().url();
    let endpoint = endpoint.trim_end_matches('/');
    let args = [
        sdk.display().to_string(),
        endpoint.to_owned(),
        namespace.key().to_owned(),
        "sdk-topic".into(),
        "sdk-sub".into(),
    ];
    let lines = run_script(&args).await;

    assert_eq!(
        step(&lines, "received"),
        &json!([{"id": "sdk-1", "deliveryCount": 1, "data": {"n": 1}}, {"id": "sdk-2", "deliveryCount": 1, "data": {"n": 2}}])
    );
    assert_eq!(step(&lines, "acknowledged"), &json!({"succeeded": 1, "failed": ["TokenLost"]}));
    assert_eq!(step(&lines, "released"), &json!(1));
    assert_eq!(step(&lines, "received again"), &json!([{"id": "sdk-2", "deliveryCount": 2}]));
    assert_eq!(step(&lines, "renewed"), &json!(1));
    assert_eq!(step(&lines, "rejected"), &json!(1));
    assert_eq!(namespace.acknowledgements("sdk-1"), 1);
    assert_eq!(namespace.dead_letters()[0].event["id"], "sdk-2");

    let requests: Vec<&Value> = lines.iter().filter_map(|line| line.get("request")).collect();
    let expected_auth = format!("SharedAccessKey {}", namespace.key());
    for request in &requests {
        assert_eq!(request["authorization"], expected_auth.as_str(), "{request}");
        assert_eq!(request["status"], 200, "{request}");
        assert!(request["query"].as_str().unwrap().contains("api-version=2024-06-01"), "{request}");
    }
    assert_eq!(requests[0]["path"], "/topics/sdk-topic:publish");
    assert_eq!(requests[0]["contentType"], "application/cloudevents-batch+json; charset=utf-8");
    let actions: Vec<&str> = requests.iter().map(|r| r["path"].as_str().unwrap().rsplit(':').next().unwrap()).collect();
    assert_eq!(actions, ["publish", "receive", "acknowledge", "release", "receive", "renewLock", "reject"]);
}
