//! The recorder example as a child process: where its binary is, its output read as it comes, and the address it
//! listens on.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{at_timeout, eventually};

/// `target/<profile>/examples/recorder`, built (once per test binary) from the sources as they are: a test target
/// run alone (`cargo test --test <name>`) would otherwise start whatever binary an earlier build left there.
pub(crate) fn recorder_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut dir = std::env::current_exe().expect("test binary path");
            dir.pop(); // the test binary
            if dir.ends_with("deps") {
                dir.pop();
            }
            // A no-op when `cargo test` has just built every example.
            let built = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--all-features", "--example", "recorder", "--manifest-path"])
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
                .status()
                .expect("cargo runs");
            assert!(built.success(), "the recorder example does not build");
            let binary = dir.join("examples").join("recorder");
            assert!(binary.exists(), "{}", binary.display());
            binary
        })
        .clone()
}

/// Reads a pipe to its end into `into`, in the background (a full pipe would stall the child).
pub(crate) fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

/// A recorder process that printed where it listens, its output still being read.
pub(crate) struct Listening {
    pub(crate) child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    pub(crate) stdout: Arc<Mutex<String>>,
    pub(crate) stderr: Arc<Mutex<String>>,
}

/// Spawns `command` with its output piped and drained, and waits (bounded, 60 s) until the recorder prints
/// `... listening on http://127.0.0.1:PORT/api/events ...`; `what` names it in failures.
pub(crate) async fn spawn_listening(mut command: Command, what: &str) -> Listening {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the recorder");
    let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
    drain(child.stdout.take().expect("piped"), stdout.clone());
    drain(child.stderr.take().expect("piped"), stderr.clone());
    let started = at_timeout(|| format!("{what} starts: {}", stderr.lock().unwrap()));
    let addr = eventually(Duration::from_secs(60), started, || {
        let printed = stdout.lock().unwrap().clone();
        let addr = printed
            .split("listening on http://")
            .nth(1)
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned());
        if addr.is_none() {
            let exited = child.try_wait().ok().flatten();
            assert!(exited.is_none(), "{what} exited: {}", stderr.lock().unwrap());
        }
        std::future::ready(addr)
    })
    .await;
    Listening { child, addr, stdout, stderr }
}
