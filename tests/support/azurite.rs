//! Azurite, the Azure Storage emulator, for the object-store tests and the store bench (which mounts this file on
//! its own): the one `AZURITE_BLOB_STORAGE_URL` names, or else a private one that this process installs and starts.
//!
//! # Rules
//!
//! 1. `AZURITE_BLOB_STORAGE_URL` set (CI: `.ci/run` starts Azurite and sets it): that Azurite, which must answer
//!    within 30 s, or the tests fail.
//! 2. Not set: Azurite [`VERSION`] from npm under `<repo>/.tools/azurite`, installed once per checkout however many
//!    test binaries start at the same moment (the rules of `npm.rs`, which a mount of this file mounts beside it).
//! 3. The private Azurite listens on a free loopback port and keeps its data in a temporary folder. A shell watches
//!    it: it holds the reading end of a pipe whose only writer is this process, so when this process ends (however
//!    it ends) the read returns and the shell stops Azurite and removes its data. Nothing outlives `cargo test`.
//! 4. The one thing a newcomer must provide is npm (with Node.js 20 or later); without it the panic says so.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// The Azurite release installed: the last one that runs on Node 20 (`.ci/run` and `scripts/azurite` pin it too).
pub(crate) const VERSION: &str = "3.35.0";

/// Azurite's well-known development account and key (documented by Microsoft for the emulator).
pub(crate) const ACCOUNT: &str = "devstoreaccount1";
/// The key of [`ACCOUNT`].
pub(crate) const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The blob service URL of the Azurite this process uses, e.g. `http://127.0.0.1:10000`, answering.
pub(crate) fn url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (url, whose) = match std::env::var("AZURITE_BLOB_STORAGE_URL") {
            Ok(url) => (url.trim_end_matches('/').to_owned(), "AZURITE_BLOB_STORAGE_URL"),
            Err(_) => (start_service(&install(), "blob"), "the one started from .tools/azurite"),
        };
        wait_for(&url, whose);
        url
    })
}

/// The queue service URL of the Azurite this process uses, e.g. `http://127.0.0.1:10001`, answering: the one
/// `AZURITE_QUEUE_STORAGE_URL` names (CI), or else a private `azurite-queue` from the same install as the blobs'.
#[cfg(feature = "storage-queue")]
#[allow(dead_code)] // The store bench mounts this file for the blob service alone.
pub(crate) fn queue_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (url, whose) = match std::env::var("AZURITE_QUEUE_STORAGE_URL") {
            Ok(url) => (url.trim_end_matches('/').to_owned(), "AZURITE_QUEUE_STORAGE_URL"),
            Err(_) => (
                start_service(&install().with_file_name("azurite-queue"), "queue"),
                "the one started from .tools/azurite",
            ),
        };
        wait_for(&url, whose);
        url
    })
}

/// Waits (bounded) until something accepts connections at `url`.
fn wait_for(url: &str, whose: &str) {
    let authority = url.trim_start_matches("http://").to_owned();
    // The port is free until Azurite binds it, which takes Node a moment (seconds on a busy machine).
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&authority).is_err() {
        assert!(Instant::now() < deadline, "Azurite does not answer at {url} ({whose})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `.tools/azurite/node_modules/.bin/azurite-blob`, installed if it is not yet.
fn install() -> PathBuf {
    let marker = Path::new("node_modules").join(".bin").join("azurite-blob");
    let home = super::npm::install(
        "azurite",
        &format!("azurite@{VERSION}"),
        marker.to_str().expect("utf-8"),
        "the object-store tests",
    );
    home.join(marker)
}

/// Starts a private Azurite `service` (`blob`, `queue`) from `binary` under its watching shell; answers its URL.
fn start_service(binary: &Path, service: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap().keep();
    // `$0` Azurite, `$1` the port, `$2` its data, `$3` the service. `read` returns when this process's end of the
    // pipe closes.
    let script = r#""$0" --"$3"Host 127.0.0.1 --"$3"Port "$1" --location "$2" --skipApiVersionCheck \
        --disableTelemetry --silent >/dev/null 2>&1 &
        pid=$!; read _; kill "$pid"; wait "$pid"; rm -rf "$2""#;
    // Never waited for: it lives as long as this process, whose end closes its input and so stops it.
    #[allow(clippy::zombie_processes)]
    let mut shell = Command::new("sh")
        .args(["-c", script])
        .arg(binary)
        .arg(port.to_string())
        .arg(&data)
        .arg(service)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start Azurite");
    // One watched pipe per service this process started (the blob and the queue service).
    static WATCHED: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());
    WATCHED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(shell.stdin.take().expect("piped"));
    format!("http://127.0.0.1:{port}")
}

/// Creates a container with a SharedKey-signed `PUT ?restype=container` (Azurite creates none by itself): 201, or
/// 409 when it exists.
pub(crate) fn create_container(name: &str) {
    let url = url();
    let authority = url.trim_start_matches("http://");
    let date = httpdate::fmt_http_date(SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD.decode(ACCOUNT_KEY).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut stream = TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: {authority}\r\nx-ms-date: {date}\r\n\
         x-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap_or_default().to_owned();
    assert!(status == "201" || status == "409", "creating container {name}: {answer}");
}
