//! The download state machine against a scripted hostile storage server: each request is answered as the script
//! says (a status with any `Retry-After`, a cut or short body, a 200 to a Range request, a wrong `Content-Range` or
//! `Content-Length`, a wrong MD5, an object that changes, a 412), then honestly once the script runs out. Single
//! stream and parallel ranges alike, the outcome is exact or an error: a file under its final name is byte for byte
//! one version of the object, with the manifest's SHA-256; after an error there is no file under the final name;
//! and no error shows the location's query string.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use acs_recording::download::{ChunkDownloader, ParallelPolicy, RetryPolicy, sink::DirectorySink};
use acs_recording::recording::{Recording, RecordingChunk};
use arbitrary::Arbitrary;
use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{Empty, StreamBody};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tower::service_fn;

const HOST: &str = "fuzz.asm.skype.com";
const SAS: &str = "sig=QUERYSECRET";
const METADATA: &[u8] = br#"{"chunkDocumentId":"doc","chunkIndex":0,"recordingInfo":{"contentType":"mixed","channelType":"audio","format":"wav"}}"#;

#[derive(Arbitrary, Debug, Clone)]
enum Answer {
    Honest,
    Status(u16, Option<String>),
    Cut(u16),
    Short(u16),
    IgnoreRange,
    WrongRange(String),
    WrongLength(String),
    WrongMd5,
    ChangeObject(u16),
    Precondition,
    Header(String, String),
}

#[derive(Arbitrary, Debug)]
struct Script {
    size: u16,
    seed: u8,
    parallel: bool,
    send_md5: bool,
    answers: Vec<Answer>,
}

type Frames = stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>;

struct Server {
    versions: Vec<Vec<u8>>,
    answers: VecDeque<Answer>,
    send_md5: bool,
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn frames(body: &[u8], cut: Option<usize>) -> Frames {
    let end = cut.map_or(body.len(), |cut| cut.min(body.len()));
    let mut frames: Vec<Result<Frame<Bytes>, std::io::Error>> =
        body[..end].chunks(1000).map(|piece| Ok(Frame::data(Bytes::copy_from_slice(piece)))).collect();
    if cut.is_some() {
        frames.push(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut by the script")));
    }
    stream::iter(frames)
}

/// `bytes=a-` or `bytes=a-b`, as the downloader sends it.
fn requested_range(request: &Request<Empty<Bytes>>) -> Option<(u64, Option<u64>)> {
    let value = request.headers().get(http::header::RANGE)?.to_str().ok()?;
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    Some((first.parse().ok()?, if last.is_empty() { None } else { Some(last.parse().ok()?) }))
}

impl Server {
    fn answer(&mut self, request: &Request<Empty<Bytes>>) -> Response<StreamBody<Frames>> {
        let script = self.answers.pop_front().unwrap_or(Answer::Honest);
        let mut response = Response::new(StreamBody::new(frames(&[], None)));
        if let Answer::Status(status, retry_after) = &script {
            *response.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            if let Some(value) = retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                response.headers_mut().insert(http::header::RETRY_AFTER, value);
            }
            return response;
        }
        if let Answer::ChangeObject(size) = &script {
            let next = self.versions.len() as u64;
            self.versions.push(pattern(usize::from(*size), next * 7919));
        }
        let is_metadata = request.uri().path().ends_with("/metadata");
        let version = self.versions.len() - 1;
        let object: &[u8] = if is_metadata { METADATA } else { &self.versions[version] };
        let etag = if is_metadata { "\"meta\"".to_owned() } else { format!("\"v{version}\"") };
        if matches!(script, Answer::Precondition)
            || request.headers().get(http::header::IF_MATCH).is_some_and(|tag| tag.as_bytes() != etag.as_bytes())
        {
            *response.status_mut() = StatusCode::PRECONDITION_FAILED;
            return response;
        }
        let total = object.len() as u64;
        let range = requested_range(request).filter(|_| !matches!(script, Answer::IgnoreRange));
        let (status, start, end) = match range {
            Some((first, _)) if first >= total => {
                *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                response.headers_mut().insert(http::header::CONTENT_RANGE, format!("bytes */{total}").parse().unwrap());
                return response;
            }
            Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last.map_or(total, |l| (l + 1).min(total))),
            None => (StatusCode::OK, 0, total),
        };
        let body = &object[start as usize..end as usize];
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(http::header::ETAG, etag.parse().unwrap());
        headers.insert(http::header::LAST_MODIFIED, "Tue, 01 Dec 2026 10:00:00 GMT".parse().unwrap());
        headers.insert(http::header::CONTENT_LENGTH, body.len().into());
        if status == StatusCode::PARTIAL_CONTENT {
            headers.insert(http::header::CONTENT_RANGE, format!("bytes {start}-{}/{total}", end - 1).parse().unwrap());
        }
        if self.send_md5 && status == StatusCode::OK && !is_metadata {
            let md5 = md5_base64(object);
            headers.insert("content-md5", md5.parse().unwrap());
        }
        let mut cut = None;
        match &script {
            Answer::Cut(at) => cut = Some(usize::from(*at)),
            Answer::Short(at) => {
                let at = usize::from(*at).min(body.len());
                *response.body_mut() = StreamBody::new(frames(&body[..at], None));
                return response;
            }
            Answer::WrongRange(text) | Answer::WrongLength(text) => {
                if let Ok(value) = HeaderValue::from_str(text) {
                    let name = if matches!(script, Answer::WrongRange(_)) { http::header::CONTENT_RANGE } else { http::header::CONTENT_LENGTH };
                    headers.insert(name, value);
                }
            }
            Answer::WrongMd5 => {
                headers.insert("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".parse().unwrap());
                headers.insert("x-ms-blob-content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".parse().unwrap());
            }
            Answer::Header(name, value) => {
                if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                    headers.append(name, value);
                }
            }
            _ => {}
        }
        *response.body_mut() = StreamBody::new(frames(body, cut));
        response
    }
}

/// Base64 of the MD5 of `bytes`, computed apart from the library.
fn md5_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(bytes))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fuzz_target!(|script: Script| {
    let size = usize::from(script.size) % 20_000;
    let server = Arc::new(Mutex::new(Server {
        versions: vec![pattern(size, u64::from(script.seed))],
        answers: script.answers.iter().take(24).cloned().collect(),
        send_md5: script.send_md5,
    }));
    let state = server.clone();
    let client = service_fn(move |request: Request<Empty<Bytes>>| {
        let response = state.lock().unwrap().answer(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    let dir = tempfile::tempdir().unwrap();
    let policy = RetryPolicy::default()
        .max_attempts(4)
        .initial_backoff(Duration::ZERO)
        .max_backoff(Duration::ZERO)
        .read_timeout(Duration::from_secs(5));
    let parallel = script.parallel.then(|| ParallelPolicy::new(1024, 700, 3).fast_stream(None));
    let downloader = ChunkDownloader::new(client, DirectorySink::new(dir.path())).retry_policy(policy).parallel(parallel);
    let base = format!("https://{HOST}/v1/objects/doc");
    let recording = Recording::new("call").format("Wav").chunk(
        RecordingChunk::new("doc", 0)
            .with_content_location(format!("{base}/content/audio?{SAS}"))
            .with_metadata_location(format!("{base}/content/acsmetadata?{SAS}")),
    );
    let result = runtime().block_on(downloader.download(recording));
    let media = dir.path().join("call").join("0-doc.wav");
    match result {
        Ok(manifest) => {
            let written = std::fs::read(&media).expect("a finished download has its file");
            let versions = &server.lock().unwrap().versions;
            assert!(versions.iter().any(|v| v == &written), "the file is no version of the object ({} bytes)", written.len());
            let chunk = &manifest.chunks[0];
            assert_eq!(chunk.bytes, written.len() as u64);
            assert_eq!(chunk.sha256, <[u8; 32]>::from(Sha256::digest(&written)), "the manifest's SHA-256 is the file's");
        }
        Err(error) => {
            assert!(!media.exists(), "a failed download left a file under its final name: {error}");
            let mut shown = format!("{error} {error:?}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                shown.push_str(&format!(" {cause} {cause:?}"));
                source = cause.source();
            }
            assert!(!shown.contains("QUERYSECRET"), "an error shows the query string: {shown}");
        }
    }
});
