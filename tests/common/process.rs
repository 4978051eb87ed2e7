//! The recorder example as a child process: where its binary is, and its output read as it comes.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// `target/<profile>/examples/recorder`, built by `cargo test` with the other examples.
pub fn recorder_binary() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let binary = dir.join("examples").join("recorder");
    if !binary.exists() {
        // `cargo test` builds every example; a run of one test target alone may not have.
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

/// Reads a pipe to its end into `into`, in the background (a full pipe would stall the child).
pub fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}
