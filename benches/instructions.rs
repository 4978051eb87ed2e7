//! Instruction counts (Callgrind's `Ir`, through gungraun) of the hot paths, each next to its floor in the same run:
//! `<path>` and `<path>_floor` take the same input. `scripts/bench-gate` compares them with the committed baselines
//! in `benches/baselines/instructions.json`.
//!
//! Inputs are built by the `#[bench]` argument expressions, which gungraun runs outside the measurement. What lives
//! across requests in a server (services, the runtime) and what a benchmark produces are returned, so that their
//! drop is not measured, as in the criterion benches; what a request consumes (the webhook's events, the request
//! itself) is dropped inside, on both sides. Clocks are fixed, so no count depends on the time of day.
#![allow(missing_docs)] // library_benchmark_group! and main! generate undocumented items

#[path = "support/poll.rs"]
mod poll;
#[path = "support/signing_floor.rs"]
mod signing_floor;
#[path = "support/webhook_input.rs"]
mod webhook_input;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::download::sink::WriterSink;
use acs_recording::download::ChunkDownloader;
use acs_recording::eventgrid::{EventGridWebhookLayer, Events, Schema};
use acs_recording::journal::Job;
use acs_recording::recording::{Recording, RecordingChunk, RecordingEvents};
use acs_recording::signing::{HmacSigningLayer, HmacVerifyLayer};
use bytes::Bytes;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use poll::run;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use signing_floor::{fixed_time, floor_sign, floor_verify, HOST, KEY};
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};
use webhook_input::{batch, floor_parse};

const GET_PATH: &str = "/recording/download/0-eus-d2-3cca2175?api-version=2021-04-15-preview1";
const POST_PATH: &str = "/calling/recordings?api-version=2023-10-15";

// ---- signing ----------------------------------------------------------------------------------------------------

fn signing_layer() -> HmacSigningLayer {
    let endpoint = Endpoint::parse(&format!("https://{HOST}/")).expect("endpoint");
    HmacSigningLayer::new(endpoint, AccessKey::from_bytes(KEY.to_vec())).with_clock(fixed_time)
}

type Echo<B> = tower::util::ServiceFn<fn(Request<B>) -> std::future::Ready<Result<Request<B>, Infallible>>>;

fn echo<B>() -> Echo<B> {
    service_fn(|request| std::future::ready(Ok(request)))
}

fn get_input() -> (acs_recording::signing::HmacSigning<Echo<Empty<Bytes>>>, Request<Empty<Bytes>>) {
    let request = Request::get(format!("https://{HOST}{GET_PATH}")).body(Empty::new()).expect("request");
    (signing_layer().layer(echo()), request)
}

fn post_input() -> (acs_recording::signing::HmacSigning<Echo<Full<Bytes>>>, Request<Full<Bytes>>) {
    let body = Bytes::from(vec![b'a'; 1024]);
    let request = Request::post(format!("https://{HOST}{POST_PATH}")).body(Full::new(body)).expect("request");
    (signing_layer().layer(echo()), request)
}

#[library_benchmark]
#[bench::run(get_input())]
fn sign_get(
    (mut service, request): (acs_recording::signing::HmacSigning<Echo<Empty<Bytes>>>, Request<Empty<Bytes>>),
) -> impl Sized {
    let signed = run(service.call(request)).expect("signed");
    (service, signed)
}

#[library_benchmark]
#[bench::run(GET_PATH)]
fn sign_get_floor(path: &str) -> impl Sized {
    floor_sign("GET", black_box(path), b"", fixed_time())
}

#[library_benchmark]
#[bench::run(post_input())]
fn sign_post_1k(
    (mut service, request): (acs_recording::signing::HmacSigning<Echo<Full<Bytes>>>, Request<Full<Bytes>>),
) -> impl Sized {
    let signed = run(service.call(request)).expect("signed");
    (service, signed)
}

#[library_benchmark]
#[bench::run(Bytes::from(vec![b'a'; 1024]))]
fn sign_post_1k_floor(body: Bytes) -> impl Sized {
    let signed = floor_sign("POST", black_box(POST_PATH), &body, fixed_time());
    (body, signed)
}

type Verifier = acs_recording::signing::HmacVerify<
    tower::util::ServiceFn<fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>>,
>;

/// A GET signed by the layer, as a server receives it (origin-form URI), and a verifier with the same fixed clock.
fn verify_input() -> (Verifier, Request<Empty<Bytes>>) {
    let (mut signer, request) = get_input();
    let (mut parts, _) = run(signer.call(request)).expect("signed").into_parts();
    parts.uri = GET_PATH.parse().expect("origin-form");
    let layer = HmacVerifyLayer::new(AccessKey::from_bytes(KEY.to_vec()), HOST).with_clock(fixed_time);
    let ok: fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> =
        |_| std::future::ready(Ok(Response::new(Full::new(Bytes::new()))));
    (layer.layer(service_fn(ok)), Request::from_parts(parts, Empty::new()))
}

/// The date, content hash and signature of the same signed GET, as the floor reads them from the headers.
fn verify_floor_input() -> (String, String, String) {
    floor_sign("GET", GET_PATH, b"", fixed_time())
}

#[library_benchmark]
#[bench::run(verify_input())]
fn verify_get((mut service, request): (Verifier, Request<Empty<Bytes>>)) -> impl Sized {
    let response = run(service.call(request)).expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    (service, response)
}

#[library_benchmark]
#[bench::run(verify_floor_input())]
fn verify_get_floor((date, hash, signature): (String, String, String)) {
    assert!(floor_verify("GET", black_box(GET_PATH), &date, &hash, &signature));
}

library_benchmark_group!(
    name = signing,
    benchmarks = [sign_get, sign_get_floor, sign_post_1k, sign_post_1k_floor, verify_get, verify_get_floor]
);

// ---- webhook ----------------------------------------------------------------------------------------------------

/// The handler: extracts `RecordingEvents` (which the layer already parsed) and counts their chunks. A named
/// service whose future is `Ready`, so that no boxed future is measured.
#[derive(Clone, Copy)]
struct Handler;

impl Service<Request<Full<Bytes>>> for Handler {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let events = run(RecordingEvents::extract(request)).expect("events");
        let chunks: usize = events.iter().map(|event| event.data().chunks().len()).sum();
        black_box(chunks);
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// The layer in front of [`Handler`], a delivery of `count` events with the headers Event Grid sends, and the
/// request head the delivery's header values are shared with.
///
/// As in the criterion bench, the header values are clones of a head that outlives the measurement, as hyper's are
/// slices of the connection's read buffer: dropping the request then releases shared values, as in a server,
/// instead of freeing one allocation per value that only this input's construction made.
fn webhook_input(
    count: usize,
) -> (acs_recording::eventgrid::EventGridWebhook<Handler>, Request<Full<Bytes>>, Request<()>) {
    let service = ServiceBuilder::new().layer(EventGridWebhookLayer::new()).service(Handler);
    let body = batch(count);
    let head = Request::post("/events")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("aeg-event-type", "Notification")
        .header("aeg-delivery-count", "0")
        .header("aeg-subscription-name", "RECORDINGS")
        .body(())
        .expect("request");
    let request = head.clone().map(|()| Full::new(body));
    (service, request, head)
}

#[library_benchmark]
#[bench::one(webhook_input(1))]
#[bench::batch64(webhook_input(64))]
fn webhook(
    (mut service, request, head): (
        acs_recording::eventgrid::EventGridWebhook<Handler>,
        Request<Full<Bytes>>,
        Request<()>,
    ),
) -> impl Sized {
    run(service.ready()).expect("ready");
    let response = run(service.call(request)).expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    (service, response, head)
}

#[library_benchmark]
#[bench::one(batch(1))]
#[bench::batch64(batch(64))]
fn webhook_floor(body: Bytes) {
    black_box(floor_parse(&body));
}

#[library_benchmark]
#[bench::one(batch(1))]
#[bench::batch64(batch(64))]
fn envelope(body: Bytes) {
    let events = Events::from_slice(Schema::EventGrid, &body).expect("events");
    black_box(events.len());
}

#[library_benchmark]
#[bench::one(batch(1))]
#[bench::batch64(batch(64))]
fn envelope_floor(body: Bytes) {
    black_box(floor_parse(&body));
}

library_benchmark_group!(name = webhook_group, benchmarks = [webhook, webhook_floor, envelope, envelope_floor]);

// ---- download ---------------------------------------------------------------------------------------------------

/// One MiB less one byte: a body of a whole hash batch (1 MiB) is hashed on a thread of its own, which Callgrind's
/// entry point does not follow; one byte less and the same hashing runs on the benchmark's thread, all counted.
const MIB: usize = (1 << 20) - 1;
const CONTENT: &str = "https://storage.asm.skype.com/v1/objects/0-eus-d2-bench/content/audio";
const METADATA: &str = "https://storage.asm.skype.com/v1/objects/0-eus-d2-bench/content/acsmetadata";

type Storage =
    tower::util::ServiceFn<fn(Request<Empty<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>>;

/// A storage that answers the chunk's metadata with a small JSON document and its media with 1 MiB held in memory
/// (the same `Bytes` every time, so no copy is made to answer).
fn storage_answer(request: Request<Empty<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    static MEDIA: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let body = if request.uri().path().ends_with("/acsmetadata") {
        Bytes::from_static(
            br#"{"resourceId":"bench","recordingInfo":{"contentType":"audio","channelType":"mixed","format":"wav"}}"#,
        )
    } else {
        MEDIA.get_or_init(|| Bytes::from(vec![0x5a; MIB])).clone()
    };
    let response = Response::builder()
        .status(200)
        .header("content-length", body.len())
        .header("etag", "\"0x8DC0BENCH\"")
        .body(Full::new(body))
        .expect("response");
    std::future::ready(Ok(response))
}

fn download_input() -> (tokio::runtime::Runtime, ChunkDownloader<Storage, WriterSink<tokio::io::Sink>>, Recording) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let storage: Storage = service_fn(storage_answer as fn(_) -> _);
    // Warm the shared media so that building it is not measured.
    let _ = storage_answer(Request::get(CONTENT).body(Empty::new()).expect("request"));
    let downloader = ChunkDownloader::new(storage, WriterSink::new(tokio::io::sink()));
    let recording =
        Recording::new("call-bench").format("Wav").chunk(RecordingChunk::new("0-eus-d2-bench", 0).with_locations(
            CONTENT,
            METADATA,
            "https://storage.asm.skype.com/v1/objects/0-eus-d2-bench",
        ));
    (runtime, downloader, recording)
}

#[library_benchmark]
#[bench::mib(download_input())]
fn download_1mib(
    (runtime, downloader, recording): (
        tokio::runtime::Runtime,
        ChunkDownloader<Storage, WriterSink<tokio::io::Sink>>,
        Recording,
    ),
) -> impl Sized {
    let manifest = runtime.block_on(downloader.download(recording)).expect("download");
    assert_eq!(manifest.chunks.len(), 1);
    (runtime, downloader, manifest)
}

#[library_benchmark]
#[bench::mib(Bytes::from(vec![0x5a; MIB]))]
fn download_1mib_floor(body: Bytes) -> impl Sized {
    let digest = Sha256::digest(&body);
    (body, digest)
}

library_benchmark_group!(name = download, benchmarks = [download_1mib, download_1mib_floor]);

// ---- journal ----------------------------------------------------------------------------------------------------

/// A job for the official fixture's three chunks, as the recorder stores it.
fn job() -> Job {
    let chunks = (0..3).map(|index| {
        let id = format!("0-eus-d2-3cca2175891f21c6c9a5975a12c0141{index}");
        let base = format!("https://storage.asm.skype.com/v1/objects/{id}");
        RecordingChunk::new(&id, index).with_locations(
            format!("{base}/content/video"),
            format!("{base}/content/acsmetadata"),
            base.clone(),
        )
    });
    let recording = Recording::new("4f2ab6b1-2a49-4e4c-a0a4-0f8b2d3f5e61")
        .recording_id("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZjJhYjZiMSJ9")
        .start_time("2026-11-26T07:12:03.1234567Z")
        .format("Mp4")
        .chunks(chunks);
    let received = fixed_time();
    Job::new("1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01", recording, received, received + Duration::from_secs(86_400))
}

/// The floor: a plain struct that serializes to the same JSON as [`Job`], its timestamps and states kept as the
/// strings they are in the record. What it leaves out (formatting and parsing RFC 3339 times, the enums) is what
/// the journal adds over any serde_json record.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainJob {
    id: String,
    event_id: String,
    recording: PlainRecording,
    received_at: String,
    expires_at: String,
    state: String,
    attempts: u32,
    chunks: Vec<PlainProgress>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainRecording {
    call_id: String,
    recording_id: String,
    start_time: String,
    format: String,
    chunks: Vec<PlainChunk>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainChunk {
    document_id: String,
    index: i64,
    content_location: String,
    metadata_location: String,
    delete_location: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainProgress {
    index: i64,
    document_id: String,
    state: String,
}

fn plain_job() -> PlainJob {
    let bytes = serde_json::to_vec(&job()).expect("json");
    let plain: PlainJob = serde_json::from_slice(&bytes).expect("the plain struct reads the same record");
    assert_eq!(serde_json::to_vec(&plain).expect("json"), bytes, "the floor writes the same bytes");
    plain
}

#[library_benchmark]
#[bench::three_chunks(job())]
fn journal_encode(job: Job) -> impl Sized {
    let bytes = serde_json::to_vec(black_box(&job)).expect("json");
    (job, bytes)
}

#[library_benchmark]
#[bench::three_chunks(plain_job())]
fn journal_encode_floor(job: PlainJob) -> impl Sized {
    let bytes = serde_json::to_vec(black_box(&job)).expect("json");
    (job, bytes)
}

#[library_benchmark]
#[bench::three_chunks(serde_json::to_vec(&job()).expect("json"))]
fn journal_decode(bytes: Vec<u8>) -> impl Sized {
    let job = serde_json::from_slice::<Job>(black_box(&bytes)).expect("job");
    (bytes, job)
}

#[library_benchmark]
#[bench::three_chunks(serde_json::to_vec(&job()).expect("json"))]
fn journal_decode_floor(bytes: Vec<u8>) -> impl Sized {
    let job = serde_json::from_slice::<PlainJob>(black_box(&bytes)).expect("job");
    (bytes, job)
}

library_benchmark_group!(
    name = journal,
    benchmarks = [journal_encode, journal_encode_floor, journal_decode, journal_decode_floor]
);

main!(library_benchmark_groups = signing, webhook_group, download, journal);
