//! Downloading one large chunk over loopback from the emulator's storage: the whole stack (signing layer,
//! hyper-util client, `ChunkDownloader`, `DirectorySink`) next to the floors (a bare hyper-util client writing the
//! same response into a file with blocking `std::fs` writes; also with SHA-256 computed inline, with SHA-256 on a
//! second thread, and with an fsync; `curl -o`; and SHA-256 of the same number of bytes from memory, the ceiling of
//! any hashed stream), in the same run, for the single stream and for the parallel ranges of the default
//! [`ParallelPolicy`]; the rate, its ratio to the floors and the CPU time per GiB of each (process and children, the
//! in-process server included); then the same chunk over a link limited to 40 MB/s per connection, single stream
//! against parallel ranges; then, in child processes that only download, the peak RSS (`VmHWM`) on loopback at
//! 256 MiB and 1.5 GiB, and on the slow link with the rate: one stream, one chunk in parallel ranges and four chunks
//! in parallel ranges at once (sharing the default memory budget), each printed with its target.
//!
//! `ACS_BENCH_DOWNLOAD_BYTES` sets the loopback size (default 1 GiB) and `ACS_BENCH_SLOW_BYTES` the slow-link size
//! (default 512 MiB; 0 runs the loopback rows only, for a profile); CI runs them smaller with `-- --quick`.
//! Runtime: tokio multi-thread, 2 workers, client and server in the same process. The peak-RSS child uses a
//! current-thread runtime (plus tokio's blocking pool for file writes and hashing).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::download::{sink::DirectorySink, ChunkDownloader, ParallelPolicy};
use acs_recording::emulator::{Emulator, Link};
use acs_recording::recording::{Recording, RecordingChunk};
use acs_recording::signing::{AllowList, HmacSigningLayer};
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tower::{service_fn, Layer, ServiceExt};

const SIZE_ENV: &str = "ACS_BENCH_DOWNLOAD_BYTES";
const SLOW_SIZE_ENV: &str = "ACS_BENCH_SLOW_BYTES";
const CHILD_ENV: &str = "ACS_BENCH_RSS_CHILD";
const PARALLEL_ENV: &str = "ACS_BENCH_RSS_PARALLEL";
/// The bandwidth of one connection on the slow link: a long cross-region path.
const SLOW_LINK: u64 = 40_000_000;

/// CPU seconds, bytes and wall seconds of each benchmark, for the summary.
static CPU: Mutex<BTreeMap<&'static str, (f64, u64, f64)>> = Mutex::new(BTreeMap::new());

/// CPU seconds used so far by this process and the children it waited for (`/proc/self/stat`, in clock ticks of
/// 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    // utime, stime, cutime, cstime: fields 14 to 17 of the file, 11 to 14 after the command name.
    fields.get(11..15).map_or(0.0, |times| times.iter().sum::<f64>() / 100.0)
}

fn record_cpu(name: &'static str, seconds: f64, bytes: u64, wall: Duration) {
    let mut table = CPU.lock().unwrap();
    let entry = table.entry(name).or_default();
    entry.0 += seconds;
    entry.1 += bytes;
    entry.2 += wall.as_secs_f64();
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        rss_child();
        return;
    }
    let size: u64 = std::env::var(SIZE_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emulator = runtime.block_on(Emulator::builder().start()).unwrap();
    let info = emulator.storage().put_tone("bench", size.saturating_sub(44));
    let location = emulator.storage().content_location("bench");
    // Files go under cargo's scratch folder for benches (on the project's disk), else the system temp folder.
    let scratch = option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(scratch).unwrap();
    println!("download bench: {} bytes over loopback; tokio multi-thread runtime, 2 workers", info.size);

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let mut group = criterion.benchmark_group(format!("download_{}MiB", info.size >> 20));
    group.throughput(Throughput::Bytes(info.size));

    for (durable, parallel) in [(false, false), (true, false), (false, true)] {
        let name = match (durable, parallel) {
            (_, true) => "acs_recording/parallel",
            (true, _) => "acs_recording/fsync",
            _ => "acs_recording",
        };
        group.bench_function(name, |b| {
            let dir = work.path().join(name.replace('/', "_"));
            b.to_async(&runtime).iter_custom(|iterations| {
                let dir = dir.clone();
                let emulator = &emulator;
                let location = location.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let downloader =
                            ChunkDownloader::new(signed_client(emulator), DirectorySink::new(&dir).durable(durable))
                                .endpoint(emulator.endpoint().clone())
                                .allow_list(emulator.allow_list())
                                .parallel(parallel.then(ParallelPolicy::default));
                        let recording = Recording::new("bench").format("Wav").chunk(
                            RecordingChunk::new("bench", 0)
                                .with_content_location(&location)
                                .with_metadata_location(emulator.storage().metadata_location("bench")),
                        );
                        let (start, cpu) = (Instant::now(), cpu_seconds());
                        let manifest = downloader.download(recording).await.unwrap();
                        let wall = start.elapsed();
                        total += wall;
                        record_cpu(name, cpu_seconds() - cpu, info.size, wall);
                        assert_eq!(manifest.chunks[0].bytes, info.size);
                        std::fs::remove_dir_all(&dir).unwrap();
                    }
                    total
                }
            })
        });
    }

    for (durable, hash) in [(false, Hash::None), (false, Hash::Inline), (false, Hash::Thread), (true, Hash::None)] {
        let name = match (durable, hash) {
            (true, _) => "floor_hyper_util/fsync",
            (_, Hash::Inline) => "floor_hyper_util/sha256",
            (_, Hash::Thread) => "floor_hyper_util/sha256_thread",
            _ => "floor_hyper_util",
        };
        group.bench_function(name, |b| {
            let path = work.path().join("floor.bin");
            b.to_async(&runtime).iter_custom(|iterations| {
                let path = path.clone();
                let emulator = &emulator;
                let location = location.clone();
                async move {
                    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let request = signed_request(emulator.endpoint(), emulator.access_key(), &location).await;
                        let (start, cpu) = (Instant::now(), cpu_seconds());
                        let written = floor(&client, request, &path, durable, hash).await;
                        let wall = start.elapsed();
                        total += wall;
                        record_cpu(name, cpu_seconds() - cpu, written, wall);
                        assert_eq!(written, info.size);
                        std::fs::remove_file(&path).unwrap();
                    }
                    total
                }
            })
        });
    }

    if curl_available() {
        group.bench_function("curl", |b| {
            let path = work.path().join("curl.bin");
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let request =
                        runtime.block_on(signed_request(emulator.endpoint(), emulator.access_key(), &location));
                    let mut command = Command::new("curl");
                    command.args(["-sS", "--fail", "-o"]).arg(&path);
                    for (name, value) in request.headers() {
                        command.arg("-H").arg(format!("{}: {}", name, value.to_str().unwrap()));
                    }
                    command.arg(&location);
                    let (start, cpu) = (Instant::now(), cpu_seconds());
                    let status = command.status().unwrap();
                    let wall = start.elapsed();
                    total += wall;
                    record_cpu("curl", cpu_seconds() - cpu, info.size, wall);
                    assert!(status.success());
                    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.size);
                    std::fs::remove_file(&path).unwrap();
                }
                total
            })
        });
    } else {
        println!("curl not found: skipping the curl comparison");
    }
    // The ceiling of any hashed stream: one core hashing the same number of bytes already in memory (a 16 MiB
    // buffer over and over: SHA-256's speed does not depend on the bytes).
    group.bench_function("floor_sha256_memory", |b| {
        let buffer = vec![0x5au8; 16 << 20];
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let (start, cpu) = (Instant::now(), cpu_seconds());
                let mut sha = Sha256::new();
                let mut left = info.size;
                while left > 0 {
                    let n = left.min(buffer.len() as u64) as usize;
                    sha.update(&buffer[..n]);
                    left -= n as u64;
                }
                std::hint::black_box(sha.finalize());
                let wall = start.elapsed();
                total += wall;
                record_cpu("floor_sha256_memory", cpu_seconds() - cpu, info.size, wall);
            }
            total
        })
    });
    group.finish();
    summary();

    // A link that is slow per connection: what parallel ranges are for.
    let slow_size: u64 = std::env::var(SLOW_SIZE_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(512 << 20);
    if slow_size == 0 {
        // Only the loopback rows: what a profile of one of them wants.
        return;
    }
    let slow = emulator.storage().put_tone("slow", slow_size.saturating_sub(44));
    emulator.storage().set_document_link("slow", Link::unlimited().bandwidth(SLOW_LINK));
    println!("slow link: {} bytes at {} MB/s per connection", slow.size, SLOW_LINK / 1_000_000);
    let mut group = criterion.benchmark_group(format!("slow_link_{}MiB", slow.size >> 20));
    group.throughput(Throughput::Bytes(slow.size));
    for parallel in [false, true] {
        let name = if parallel { "acs_recording/parallel" } else { "acs_recording/single_stream" };
        group.bench_function(name, |b| {
            let dir = work.path().join(name.replace('/', "_"));
            b.to_async(&runtime).iter_custom(|iterations| {
                let dir = dir.clone();
                let emulator = &emulator;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let downloader =
                            ChunkDownloader::new(signed_client(emulator), DirectorySink::new(&dir).durable(false))
                                .endpoint(emulator.endpoint().clone())
                                .allow_list(emulator.allow_list())
                                .parallel(parallel.then(ParallelPolicy::default));
                        let recording = Recording::new("slow").format("Wav").chunk(
                            RecordingChunk::new("slow", 0)
                                .with_content_location(emulator.storage().content_location("slow"))
                                .with_metadata_location(emulator.storage().metadata_location("slow")),
                        );
                        let start = Instant::now();
                        let manifest = downloader.download(recording).await.unwrap();
                        total += start.elapsed();
                        assert_eq!(manifest.chunks[0].sha256, slow.sha256);
                        std::fs::remove_dir_all(&dir).unwrap();
                    }
                    total
                }
            })
        });
    }
    group.finish();
    criterion.final_summary();

    // Peak RSS of a process that only downloads (`VmHWM` of a child), on loopback at two sizes: the single stream
    // stays within its target whatever the size.
    for (rss_size, mode) in [(256u64 << 20, Mode::Single), (1536 << 20, Mode::Single), (256 << 20, Mode::Parallel)] {
        let id = format!("rss-{rss_size}-{}", matches!(mode, Mode::Parallel));
        emulator.storage().put_tone(&id, rss_size - 44);
        let run = rss_run(&emulator, work.path(), &[id], mode);
        let target = match mode {
            Mode::Single => format!(" (target <= {SINGLE_RSS_TARGET} MiB)"),
            _ => String::new(),
        };
        println!(
            "peak RSS downloading {} MiB over loopback, {}: {} MiB{target}",
            rss_size >> 20,
            mode.name(),
            run.rss_mib
        );
    }

    // The same on the slow link, with the rate of each way: one chunk one stream, one chunk in parallel ranges, and
    // four chunks in parallel ranges at once (as four recorder workers would), all sharing the default budget.
    let one = rss_run(&emulator, work.path(), &["slow".to_owned()], Mode::Single);
    let parallel = rss_run(&emulator, work.path(), &["slow".to_owned()], Mode::Parallel);
    let four: Vec<String> = (0..4).map(|n| format!("slow-{n}")).collect();
    for id in &four {
        emulator.storage().put_tone(id, slow_size.saturating_sub(44));
        emulator.storage().set_document_link(id, Link::unlimited().bandwidth(SLOW_LINK));
    }
    let many = rss_run(&emulator, work.path(), &four, Mode::Parallel);
    let mib = slow.size >> 20;
    println!("slow link ({} MB/s per connection), peak RSS and rate of a downloading process:", SLOW_LINK / 1_000_000);
    println!(
        "  one {mib} MiB chunk, single stream: {} MiB (target <= {SINGLE_RSS_TARGET} MiB), {:.0} MB/s",
        one.rss_mib,
        one.rate / 1e6
    );
    println!(
        "  one {mib} MiB chunk, parallel ranges: {} MiB (target <= 64 MiB; budget peak {} MiB), {:.0} MB/s = {:.1}x one stream (target >= 4x)",
        parallel.rss_mib,
        parallel.budget_mib,
        parallel.rate / 1e6,
        parallel.rate / one.rate
    );
    println!(
        "  four {mib} MiB chunks at once, parallel ranges: {} MiB (target <= 96 MiB; budget peak {} MiB), {:.0} MB/s in all",
        many.rss_mib,
        many.budget_mib,
        many.rate / 1e6
    );
}

/// Peak RSS target of the single stream, MiB.
const SINGLE_RSS_TARGET: u64 = 24;

/// How the peak-RSS child downloads.
#[derive(Clone, Copy)]
enum Mode {
    Single,
    Parallel,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Single => "single stream",
            Mode::Parallel => "parallel ranges",
        }
    }
}

/// What a peak-RSS child measured.
struct RssRun {
    rss_mib: u64,
    /// Bytes per second, every chunk together.
    rate: f64,
    /// The most the memory budget lent at once.
    budget_mib: u64,
}

/// Downloads the documents `ids` (as the chunks of one recording, all at once) in a child process.
fn rss_run(emulator: &Emulator, work: &Path, ids: &[String], mode: Mode) -> RssRun {
    let dir = work.join(format!("rss-{}", ids[0]));
    let mut child = Command::new(std::env::current_exe().unwrap());
    if matches!(mode, Mode::Parallel) {
        child.env(PARALLEL_ENV, "1");
    }
    let locations: Vec<String> = ids.iter().map(|id| emulator.storage().content_location(id)).collect();
    let metadata: Vec<String> = ids.iter().map(|id| emulator.storage().metadata_location(id)).collect();
    let output = child
        .env(CHILD_ENV, "1")
        .env("ACS_BENCH_ENDPOINT", emulator.endpoint().url())
        .env("ACS_BENCH_KEY", emulator.access_key().to_base64())
        .env("ACS_BENCH_STORAGE", emulator.storage_authority())
        .env("ACS_BENCH_LOCATION", locations.join("\n"))
        .env("ACS_BENCH_METADATA", metadata.join("\n"))
        .env("ACS_BENCH_DIR", &dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut fields = stdout.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    let (kib, bytes, seconds) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap());
    let budget_mib = (fields.next().unwrap() / f64::from(1u32 << 20)).ceil() as u64;
    RssRun { rss_mib: (kib / 1024.0).ceil() as u64, rate: bytes / seconds, budget_mib }
}

/// Throughput, its ratio to the floors and CPU per GiB of every loopback row.
fn summary() {
    let table = CPU.lock().unwrap();
    let rate = |name: &str| table.get(name).map(|(_, bytes, wall)| *bytes as f64 / wall);
    for (name, (seconds, bytes, _)) in table.iter() {
        let per_gib = seconds / (*bytes as f64 / f64::from(1u32 << 30));
        let mb_s = rate(name).unwrap_or_default() / 1e6;
        println!(
            "{name}: {mb_s:.0} MB/s, CPU per GiB {per_gib:.2} s (process and children, the in-process server included)"
        );
    }
    if let (Some(ours), Some(sha)) = (rate("acs_recording"), rate("floor_sha256_memory")) {
        println!("single stream / SHA-256 of the same bytes from memory: {:.3} (target >= 0.95)", ours / sha);
    }
    if let (Some(ours), Some(curl)) = (rate("acs_recording"), rate("curl")) {
        println!("single stream / curl -o: {:.3} (target >= 0.9)", ours / curl);
    }
}

type SignedClient =
    acs_recording::signing::HmacSigning<Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>>;

fn signed_client(emulator: &Emulator) -> SignedClient {
    HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .allow_list(emulator.allow_list())
        .layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>())
}

/// The signed request the floor and curl send: the signing layer around a service that hands the request back.
async fn signed_request(endpoint: &Endpoint, key: &AccessKey, location: &str) -> http::Request<Empty<Bytes>> {
    let storage = location.parse::<http::Uri>().unwrap().authority().unwrap().to_string();
    HmacSigningLayer::new(endpoint.clone(), key.clone())
        .allow_list(AllowList::empty().allow_host(&storage).unwrap())
        .layer(service_fn(|request: http::Request<Empty<Bytes>>| async move { Ok::<_, Infallible>(request) }))
        .oneshot(http::Request::get(location).body(Empty::new()).unwrap())
        .await
        .unwrap()
}

/// Where the floor computes its SHA-256, if at all.
#[derive(Clone, Copy, PartialEq)]
enum Hash {
    None,
    /// On the task that reads the socket, frame by frame.
    Inline,
    /// On a blocking-pool thread fed every frame through a bounded channel.
    Thread,
}

/// The floor: a bare hyper-util client, each frame written with a blocking `std::fs` write.
async fn floor(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    request: http::Request<Empty<Bytes>>,
    path: &Path,
    durable: bool,
    hash: Hash,
) -> u64 {
    let mut sha = Sha256::new();
    let (frames, mut queue) = tokio::sync::mpsc::channel::<Bytes>(64);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut sha = Sha256::new();
        while let Some(bytes) = queue.blocking_recv() {
            sha.update(&bytes);
        }
        sha.finalize()
    });
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut file = File::create(path).unwrap();
    let mut written = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            match hash {
                Hash::Inline => sha.update(&data),
                Hash::Thread => frames.send(data.clone()).await.unwrap(),
                Hash::None => {}
            }
            file.write_all(&data).unwrap();
            written += data.len() as u64;
        }
    }
    if durable {
        file.sync_all().unwrap();
    }
    drop(frames);
    std::hint::black_box(hasher.await.unwrap());
    std::hint::black_box(sha.finalize());
    written
}

fn curl_available() -> bool {
    Command::new("curl").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// The child process of the peak-RSS measurement: one download (of one or several chunks, all at once), then
/// `VmHWM` from `/proc/self/status` in KiB, the bytes and the seconds it took.
fn rss_child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let endpoint = Endpoint::parse(&var("ACS_BENCH_ENDPOINT")).unwrap();
    let key = AccessKey::from_base64(&var("ACS_BENCH_KEY")).unwrap();
    let allow = AllowList::empty().allow_host(&var("ACS_BENCH_STORAGE")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (bytes, seconds) = runtime.block_on(async {
        let client = HmacSigningLayer::new(endpoint.clone(), key)
            .allow_list(allow.clone())
            .layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
        let parallel = std::env::var_os(PARALLEL_ENV).is_some().then(ParallelPolicy::default);
        let (locations, metadata) = (var("ACS_BENCH_LOCATION"), var("ACS_BENCH_METADATA"));
        let chunks: Vec<(&str, &str)> = locations.lines().zip(metadata.lines()).collect();
        let downloader = ChunkDownloader::new(client, DirectorySink::new(var("ACS_BENCH_DIR")))
            .endpoint(endpoint)
            .allow_list(allow)
            .parallel(parallel)
            .concurrency(chunks.len());
        let mut recording = Recording::new("rss").format("Wav");
        for (index, (content, metadata)) in chunks.iter().enumerate() {
            recording = recording.chunk(
                RecordingChunk::new(format!("rss-{index}"), index as i64)
                    .with_content_location(*content)
                    .with_metadata_location(*metadata),
            );
        }
        let start = Instant::now();
        let manifest = downloader.download(recording).await.unwrap();
        (manifest.chunks.iter().map(|c| c.bytes).sum::<u64>(), start.elapsed().as_secs_f64())
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    let kib = peak.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim();
    let budget = acs_recording::download::MemoryBudget::global().peak();
    println!("{kib} {bytes} {seconds} {budget}");
}
