//! The recorder example as a separate process in its real mode (a connection string given), pointed at the
//! emulator: the emulator validates its webhook and delivers a recording, the recorder downloads it, and SIGTERM
//! shuts it down cleanly.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acs_recording::emulator::eventgrid::{recording_file_status_updated, DeliveryOutcome, EventGridPublisher, Schema};
use acs_recording::emulator::{Emulator, RecordingSpec};
use sha2::{Digest, Sha256};

/// `target/<profile>/examples/recorder`, built by `cargo test` with the other examples.
fn recorder_binary() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join("recorder")
}

/// Kills the recorder if the test fails before it stops by itself.
struct Recorder(Option<Child>);

impl Recorder {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("recorder running")
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn the_recorder_process_serves_downloads_and_stops_on_sigterm() {
    let binary = recorder_binary();
    if !binary.exists() {
        // `cargo test` builds every example; a run of this test target alone may not have.
        let built = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "recorder",
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .status()
            .unwrap();
        assert!(built.success());
    }
    assert!(binary.exists(), "{}", binary.display());

    let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("process-call", 600_000));
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(&binary)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--webhook-secret", "process-secret", "--no-progress"])
        .args(["--allow-host", &emulator.storage_authority(), "--out"])
        .arg(out.path())
        .env("ACS_CONNECTION_STRING", emulator.connection_string().to_secret_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recorder");
    let mut recorder = Recorder(Some(child));

    // The webhook comes up; Event Grid (emulated) validates it, bounded in time.
    let url = format!("http://127.0.0.1:{port}/api/events?code=process-secret");
    let publisher = EventGridPublisher::new(&url, Schema::EventGrid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.validate().await.is_err() {
        assert!(Instant::now() < deadline, "the recorder's webhook did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = recording_file_status_updated(&recording);
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });

    // Every chunk appears under its final name only once complete; wait for all of them (bounded).
    let files: Vec<PathBuf> = recording
        .chunks
        .iter()
        .map(|c| out.path().join("process-call").join(format!("{}-{}.wav", c.index, c.document_id)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files.iter().all(|f| f.exists()) {
        assert!(Instant::now() < deadline, "the recording was not downloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (file, chunk) in files.iter().zip(&recording.chunks) {
        let digest: [u8; 32] = Sha256::digest(std::fs::read(file).unwrap()).into();
        assert_eq!(digest, chunk.sha256, "{}", file.display());
    }

    // SIGTERM: the recorder stops taking deliveries, finishes what it accepted, and exits 0.
    // The shell's built-in `kill`, so that no procps binary is needed.
    let pid = recorder.child().id();
    let status = Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = recorder.child().try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the recorder did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = recorder.0.take().expect("recorder").wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(status.success(), "exit {status}; stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
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
        .filter(|name| !name.ends_with(".wav") && !name.ends_with(".json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
