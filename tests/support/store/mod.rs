//! Shared by the object-store tests: the two backends every suite runs against (Azurite and local files), and
//! Azurite itself, found through `AZURITE_BLOB_STORAGE_URL` or started from its npm install.
#![allow(dead_code, unreachable_pub)]

#[cfg(unix)]
pub mod checks;
pub mod proxy;
#[cfg(unix)]
pub mod replica;
pub mod slow;

/// Runs each suite twice, as `<suite>::azurite` and `<suite>::local_files`: a suite is an `async fn(Backend)` of
/// the calling test file.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azurite() {
                super::$suite(Backend::azurite(stringify!($suite))).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_files() {
                super::$suite(Backend::local()).await
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both_stores;

use std::io::Write;
use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use acs_recording::store::StoreLocation;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::ObjectStore;

/// Azurite's well-known development account and key (documented by Microsoft for the emulator).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const HOW_TO_START: &str = "start Azurite with `scripts/azurite 10000 &` and set \
     AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:10000 (or install it under .tools/azurite with npm)";

/// The blob service URL of the Azurite these tests use, e.g. `http://127.0.0.1:10000`.
pub fn azurite_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = match std::env::var("AZURITE_BLOB_STORAGE_URL") {
            Ok(url) => url.trim_end_matches('/').to_owned(),
            Err(_) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("CI needs Azurite: AZURITE_BLOB_STORAGE_URL is not set (.ci/run starts it)")
            }
            Err(_) => start_azurite(),
        };
        let authority = url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&authority).is_err() {
            assert!(Instant::now() < deadline, "Azurite does not answer at {url}: {HOW_TO_START}");
            std::thread::sleep(Duration::from_millis(50));
        }
        url
    })
}

/// Starts a private Azurite from the npm install for this test process: it runs under a shell that kills it when
/// the test process's end closes the shell's standard input, so that nothing is left running.
fn start_azurite() -> String {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let candidates = [
        std::env::var("AZURITE_BIN").unwrap_or_default(),
        format!("{manifest}/.tools/azurite/node_modules/.bin/azurite-blob"),
    ];
    let binary = candidates
        .into_iter()
        .find(|path| !path.is_empty() && std::path::Path::new(path).exists())
        .unwrap_or_else(|| panic!("AZURITE_BLOB_STORAGE_URL is not set and no Azurite is installed: {HOW_TO_START}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap().keep();
    let script = format!(
        "'{binary}' --blobHost 127.0.0.1 --blobPort {port} --location '{}' --skipApiVersionCheck --disableTelemetry \
         --silent >/dev/null 2>&1 & pid=$!; read _; kill $pid; wait $pid; rm -rf '{}'",
        data.display(),
        data.display()
    );
    // Never waited for: it lives as long as the test process, whose end closes its input and so stops it.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new("sh").args(["-c", &script]).stdin(Stdio::piped()).spawn().expect("start Azurite");
    static STDIN: OnceLock<Mutex<ChildStdin>> = OnceLock::new();
    let _ = STDIN.set(Mutex::new(child.stdin.take().expect("piped")));
    format!("http://127.0.0.1:{port}")
}

/// Creates a container with a SharedKey-signed `PUT ?restype=container` (Azurite creates none by itself): 201, or
/// 409 when it exists.
pub fn create_container(name: &str) {
    let url = azurite_url();
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
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap_or_default().to_owned();
    assert!(status == "201" || status == "409", "creating container {name}: {answer}");
}

/// Where a suite runs: Azurite (a fresh container) or a local folder, with what a recorder process needs to
/// reach the same place.
pub struct Backend {
    pub name: &'static str,
    pub location: StoreLocation,
    /// The `--store` URL.
    pub url: String,
    /// The environment a recorder process needs for `url`.
    pub env: Vec<(String, String)>,
    _folder: Option<tempfile::TempDir>,
}

/// A container name (at most 63 characters) unique to this test and run.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let name: String = name.to_lowercase().replace('_', "-").chars().take(40).collect();
    format!("{}-{}-{:x}", name.trim_end_matches('-'), std::process::id(), nanos & 0xffff_ffff)
}

impl Backend {
    /// A fresh container in Azurite.
    pub fn azurite(test: &str) -> Self {
        let container = unique(test);
        create_container(&container);
        Self::azurite_at(container, azurite_url())
    }

    /// The same Azurite container reached through another endpoint (a proxy at `http://127.0.0.1:<port>`): for the
    /// client under test, while checks read Azurite directly.
    pub fn through(&self, url: &str) -> Self {
        let container =
            self.url.strip_prefix("az://").and_then(|rest| rest.split('/').next()).expect("an Azurite backend");
        Self::azurite_at(container.to_owned(), url)
    }

    fn azurite_at(container: String, url: &str) -> Self {
        acs_recording::store::install_tls_provider();
        let store = MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_endpoint(format!("{url}/{ACCOUNT}"))
            .with_allow_http(true)
            .with_container_name(&container)
            .build()
            .unwrap();
        Self {
            name: "azurite",
            // As `StoreLocation::parse` opens `az://`: with part-by-part uploads, so that uploads resume.
            location: StoreLocation::with_parts(Arc::new(store), Path::from("recordings")),
            url: format!("az://{container}/recordings"),
            env: vec![
                ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
                ("AZURITE_BLOB_STORAGE_URL".into(), url.to_owned()),
            ],
            _folder: None,
        }
    }

    /// A fresh local folder.
    pub fn local() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("file://{}", folder.path().display());
        let location = StoreLocation::parse(&url).unwrap();
        Self { name: "local", location, url, env: Vec::new(), _folder: Some(folder) }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        self.location.store()
    }

    /// Every key under the prefix, sorted.
    pub async fn keys(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        let prefix = self.location.prefix();
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let listed: Vec<_> = self.store().list(prefix).try_collect().await.unwrap();
        let mut keys: Vec<String> = listed.into_iter().map(|meta| meta.location.to_string()).collect();
        keys.sort();
        keys
    }
}
