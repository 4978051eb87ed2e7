//! One large chunk from the emulator's storage into Azurite through the `ObjectStoreSink`, next to the same chunk
//! into the `DirectorySink`, in the same run; each beside its floor: a bare hyper-util client streaming the response
//! into a file, and into a bare object_store multipart upload (8 MiB parts, two in flight). Each case runs in a
//! child process of its own, which reports its wall time and its peak RSS (`VmHWM`).
//!
//! `ACS_BENCH_STORE_BYTES` sets the size (default 1 GiB; CI runs 256 MiB). Azurite is the one
//! `AZURITE_BLOB_STORAGE_URL` names (`.ci/run` starts it), or else one of this run's own, installed with npm under
//! `.tools/azurite` as the object-store tests do (`tests/support/azurite.rs`). Runtime: tokio current-thread in each child, plus the blocking pool for file writes.

use std::fs::File;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::download::{
    sink::{DirectorySink, ObjectStoreSink, PART_SIZE},
    ChunkDownloader,
};
use acs_recording::emulator::Emulator;
use acs_recording::recording::{Recording, RecordingChunk};
use acs_recording::signing::{AllowList, HmacSigningLayer};
use acs_recording::store::StoreLocation;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::{ObjectStoreExt, WriteMultipart};
use tower::Layer;

/// The Azurite the object-store tests use, found or installed and started the same way.
#[path = "../tests/support/azurite.rs"]
mod azurite;
/// The npm bootstrap `azurite` installs with.
#[path = "../tests/support/npm.rs"]
mod npm;

const SIZE_ENV: &str = "ACS_BENCH_STORE_BYTES";
const CASE_ENV: &str = "ACS_BENCH_STORE_CASE";
const CONTAINER: &str = "bench";

const CASES: [(&str, &str); 5] = [
    ("directory", "acs_recording DirectorySink (fsync)"),
    ("floor_file", "floor: hyper-util into a file"),
    ("azurite", "acs_recording ObjectStoreSink, Azurite"),
    ("azurite_streaming", "acs_recording ObjectStoreSink, Azurite, resume_uploads(false)"),
    ("floor_azurite", "floor: hyper-util into object_store multipart, Azurite"),
];

fn main() {
    if let Ok(case) = std::env::var(CASE_ENV) {
        child(&case);
        return;
    }
    // `cargo bench` passes criterion's flags (`--bench`, `--quick`): nothing here reads them.
    let size: u64 = std::env::var(SIZE_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let azurite = azurite::url();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let emulator = runtime.block_on(Emulator::builder().start()).unwrap();
    let info = emulator.storage().put_tone("bench", size.saturating_sub(44));
    let scratch = option_env!("CARGO_TARGET_TMPDIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(scratch).unwrap();
    azurite::create_container(CONTAINER);
    println!("store bench: {} MiB from the emulator over loopback, one child process per case", info.size >> 20);
    println!("{:<64} {:>10} {:>12}", "case", "MB/s", "peak RSS");
    for (case, label) in CASES {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(CASE_ENV, case)
            .env("ACS_BENCH_ENDPOINT", emulator.endpoint().url())
            .env("ACS_BENCH_KEY", emulator.access_key().to_base64())
            .env("ACS_BENCH_STORAGE", emulator.storage_authority())
            .env("ACS_BENCH_LOCATION", emulator.storage().content_location("bench"))
            .env("ACS_BENCH_METADATA", emulator.storage().metadata_location("bench"))
            .env("ACS_BENCH_DIR", work.path().join(case))
            .env("ACS_BENCH_PREFIX", format!("{case}-{}", std::process::id()));
        command.env("AZURE_STORAGE_USE_EMULATOR", "true").env("AZURITE_BLOB_STORAGE_URL", azurite);
        let output = command.output().unwrap();
        assert!(output.status.success(), "{case}: {}", String::from_utf8_lossy(&output.stderr));
        let report = String::from_utf8_lossy(&output.stdout);
        let mut fields = report.split_whitespace();
        let bytes: f64 = fields.next().unwrap().parse().unwrap();
        let seconds: f64 = fields.next().unwrap().parse().unwrap();
        let peak_kib: u64 = fields.next().unwrap().parse().unwrap();
        assert_eq!(bytes as u64, info.size, "{case}");
        println!("{label:<64} {:>10.0} {:>8} MiB", bytes / seconds / 1e6, peak_kib >> 10);
        let _ = std::fs::remove_dir_all(work.path().join(case));
    }
}

/// One case in this process: prints `<bytes> <seconds> <peak RSS in KiB>`.
fn child(case: &str) {
    let var = |name: &str| std::env::var(name).unwrap();
    let endpoint = Endpoint::parse(&var("ACS_BENCH_ENDPOINT")).unwrap();
    let key = AccessKey::from_base64(&var("ACS_BENCH_KEY")).unwrap();
    let allow = AllowList::empty().allow_host(&var("ACS_BENCH_STORAGE")).unwrap();
    let client = HmacSigningLayer::new(endpoint.clone(), key)
        .allow_list(allow.clone())
        .layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let recording = Recording::new("bench").format("Wav").chunk(
        RecordingChunk::new("bench", 0)
            .with_content_location(var("ACS_BENCH_LOCATION"))
            .with_metadata_location(var("ACS_BENCH_METADATA")),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    let bytes = runtime.block_on(async {
        match case {
            "directory" => {
                let downloader = ChunkDownloader::new(client, DirectorySink::new(var("ACS_BENCH_DIR")))
                    .endpoint(endpoint)
                    .allow_list(allow)
                    .parallel(None);
                downloader.download(recording).await.unwrap().chunks[0].bytes
            }
            "azurite" | "azurite_streaming" => {
                let location = StoreLocation::parse(&format!("az://{CONTAINER}/{}", var("ACS_BENCH_PREFIX"))).unwrap();
                let sink = ObjectStoreSink::new(location).resume_uploads(case == "azurite");
                let downloader = ChunkDownloader::new(client, sink).endpoint(endpoint).allow_list(allow).parallel(None);
                downloader.download(recording).await.unwrap().chunks[0].bytes
            }
            "floor_file" | "floor_azurite" => {
                use tower::ServiceExt as _;
                let request = http::Request::get(var("ACS_BENCH_LOCATION")).body(Empty::new()).unwrap();
                let response = client.oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let mut body = response.into_body();
                let mut written = 0u64;
                if case == "floor_file" {
                    std::fs::create_dir_all(var("ACS_BENCH_DIR")).unwrap();
                    let mut file = File::create(std::path::Path::new(&var("ACS_BENCH_DIR")).join("floor.bin")).unwrap();
                    while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame.unwrap().into_data() {
                            file.write_all(&data).unwrap();
                            written += data.len() as u64;
                        }
                    }
                    file.sync_all().unwrap();
                } else {
                    let location = StoreLocation::parse(&format!("az://{CONTAINER}/floor")).unwrap();
                    let key = location.prefix().clone().join(var("ACS_BENCH_PREFIX").as_str());
                    let upload = location.store().put_multipart(&key).await.unwrap();
                    let mut upload = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                    while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame.unwrap().into_data() {
                            written += data.len() as u64;
                            upload.put(data);
                            upload.wait_for_capacity(2).await.unwrap();
                        }
                    }
                    upload.finish().await.unwrap();
                }
                written
            }
            other => panic!("no case {other}"),
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1));
    println!("{bytes} {seconds} {}", peak.unwrap_or("0"));
}
