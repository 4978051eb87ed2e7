use super::*;
use crate::download::error::chain_line;
use crate::download::sink::ChunkTarget;
use crate::download::Outcome;
use crate::Sha256Digest;
use http::{Request, Response};
use http_body_util::Full;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::convert::Infallible;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn bytes_that_failed_their_check_on_the_last_attempt_are_not_kept_for_a_rerun() {
    use base64::Engine as _;
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"abcde"));
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = gets.clone();
    // The object is `abcde`; the first answer arrives corrupted in transit, its Content-MD5 says so.
    let client = tower::service_fn(move |request: Request<Empty<Bytes>>| {
        let builder = Response::builder();
        let response = if request.uri().path().ends_with("acsmetadata") {
            builder.status(200).body(Full::new(Bytes::from_static(b"{}")))
        } else if request.headers().get("range").is_some_and(|r| r == "bytes=5-") {
            builder.status(416).header("content-range", "bytes */5").body(Full::new(Bytes::new()))
        } else {
            let body: &'static [u8] = if counter.fetch_add(1, Ordering::Relaxed) == 0 { b"abXde" } else { b"abcde" };
            builder
                .status(206)
                .header("content-range", "bytes 0-4/5")
                .header("etag", "\"a\"")
                .header("content-md5", md5.as_str())
                .body(Full::new(Bytes::from_static(body)))
        };
        async move { Ok::<_, Infallible>(response.unwrap()) }
    });
    let dir = tempfile::tempdir().unwrap();
    let downloader = ChunkDownloader::new(client, crate::download::sink::DirectorySink::new(dir.path()))
        .retry_policy(RetryPolicy::never());
    let recording = Recording::new("call").format("Wav").chunk(
        RecordingChunk::new("d", 0)
            .with_content_location("https://eu.asm.skype.com/v1/objects/d/content/audio")
            .with_metadata_location("https://eu.asm.skype.com/v1/objects/d/content/acsmetadata"),
    );
    let error = downloader.download(recording.clone()).await.unwrap_err();
    assert_eq!(
        chain_line(&error),
        "chunk 0 (`d`) content: gave up after 1 failed attempts: body does not match its Content-MD5"
    );
    let manifest = downloader.download(recording).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("call/0-d.wav")).unwrap(), b"abcde");
    assert_eq!(manifest.chunks[0].sha256, <[u8; 32]>::from(Sha256::digest(b"abcde")));
    assert_eq!(gets.load(Ordering::Relaxed), 2);
}

/// What a scripted storage does differently from Azure Blob storage.
#[derive(Debug, Clone, Copy, Default)]
struct Quirks {
    /// Every 206 says `bytes first-last/*`, and a 416 names no size.
    unknown_total: bool,
    /// Every answer carries the Content-MD5 of other bytes.
    wrong_md5: bool,
}

/// A storage serving `object` by Range (`bytes=a-b`, `bytes=a-`, or none) with ETag `"a"`, and `{}` as metadata.
fn storage(
    object: Bytes,
    quirks: Quirks,
) -> impl tower::Service<
    Request<Empty<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    use base64::Engine as _;
    tower::service_fn(move |request: Request<Empty<Bytes>>| {
        let object = object.clone();
        async move {
            let builder = Response::builder().header("etag", "\"a\"");
            if request.uri().path().ends_with("acsmetadata") {
                return Ok::<_, Infallible>(builder.status(200).body(Full::new(Bytes::from_static(b"{}"))).unwrap());
            }
            let len = object.len() as u64;
            let range = request.headers().get("range").map(|r| r.to_str().unwrap().trim_start_matches("bytes="));
            let (status, first, end) = match range.and_then(|r| r.split_once('-')) {
                None => (200, 0, len),
                Some((first, last)) => {
                    let first: u64 = first.parse().unwrap();
                    let end = last.parse::<u64>().map_or(len, |last| (last + 1).min(len));
                    (206, first, end)
                }
            };
            if first >= len && len > 0 {
                let builder = if quirks.unknown_total {
                    builder
                } else {
                    builder.header("content-range", format!("bytes */{len}"))
                };
                return Ok(builder.status(416).body(Full::new(Bytes::new())).unwrap());
            }
            let body = object.slice(first as usize..end as usize);
            let md5_of = if quirks.wrong_md5 { Bytes::from_static(b"other bytes") } else { body.clone() };
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&md5_of));
            let mut builder = builder.status(status).header("content-md5", md5);
            if status == 206 {
                let total = if quirks.unknown_total { "*".to_owned() } else { len.to_string() };
                builder = builder.header("content-range", format!("bytes {first}-{}/{total}", end - 1));
            }
            Ok(builder.body(Full::new(body)).unwrap())
        }
    })
}

/// Deterministic bytes that no shorter prefix or shifted copy of hashes alike.
fn object(len: usize) -> Bytes {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect::<Vec<u8>>().into()
}

fn one_chunk(document_id: &str) -> Recording {
    Recording::new("call").format("Wav").chunk(
        RecordingChunk::new(document_id, 0)
            .with_content_location(format!("https://eu.asm.skype.com/v1/objects/{document_id}/content/audio"))
            .with_metadata_location(format!("https://eu.asm.skype.com/v1/objects/{document_id}/content/acsmetadata")),
    )
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(std::time::Duration::from_millis(1))
        .max_backoff(std::time::Duration::from_millis(5))
}

#[tokio::test]
async fn an_unknown_total_never_ends_a_chunk_early() {
    let object = object(100);
    let dir = tempfile::tempdir().unwrap();
    let downloader = ChunkDownloader::new(
        storage(object.clone(), Quirks { unknown_total: true, ..Quirks::default() }),
        crate::download::sink::DirectorySink::new(dir.path()),
    )
    .retry_policy(quick_retries())
    .parallel(Some(ParallelPolicy::new(32, 16, 4).fast_stream(None)));
    let manifest = tokio::time::timeout(std::time::Duration::from_secs(10), downloader.download(one_chunk("d")))
        .await
        .unwrap()
        .unwrap();
    let stored = std::fs::read(dir.path().join("call/0-d.wav")).unwrap();
    let want = Sha256Digest::from(Sha256::digest(&object));
    assert_eq!(Sha256Digest::from(Sha256::digest(&stored)), want);
    assert_eq!((manifest.chunks[0].bytes, manifest.chunks[0].sha256), (100, want));
}

#[tokio::test]
async fn a_part_that_does_not_match_its_content_md5_is_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let downloader = ChunkDownloader::new(
        storage(object(100), Quirks { wrong_md5: true, ..Quirks::default() }),
        crate::download::sink::DirectorySink::new(dir.path()),
    )
    .retry_policy(quick_retries())
    .parallel(Some(ParallelPolicy::new(32, 16, 4).fast_stream(None)));
    let error = tokio::time::timeout(std::time::Duration::from_secs(10), downloader.download(one_chunk("d")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(!dir.path().join("call/0-d.wav").exists());
    assert!(error.is_retryable());
    assert_eq!(
        chain_line(&error),
        "chunk 0 (`d`) content: the chunk started over 3 times: chunk 0 (`d`) content bytes 0-32: \
         the part failed its integrity check: body does not match its Content-MD5"
    );
}

#[tokio::test]
async fn chunks_whose_ids_sanitise_alike_are_both_stored() {
    // `a/b` and `a:b` both sanitise to `a_b`; the storage serves each its own bytes.
    let (slash, colon) = (object(300), object(500));
    let objects = [("a%2Fb", slash.clone()), ("a%3Ab", colon.clone())];
    let client = tower::service_fn(move |request: Request<Empty<Bytes>>| {
        let path = request.uri().path().to_owned();
        let body = if path.ends_with("acsmetadata") {
            Bytes::from_static(b"{}")
        } else {
            objects.iter().find(|(id, _)| path.contains(&format!("/{id}/"))).map(|(_, bytes)| bytes.clone()).unwrap()
        };
        async move { Ok::<_, Infallible>(Response::builder().header("etag", "\"a\"").body(Full::new(body)).unwrap()) }
    });
    let dir = tempfile::tempdir().unwrap();
    let downloader = ChunkDownloader::new(client, crate::download::sink::DirectorySink::new(dir.path()));
    let chunk = |id: &str, encoded: &str| {
        RecordingChunk::new(id, 0)
            .with_content_location(format!("https://eu.asm.skype.com/v1/objects/{encoded}/content/audio"))
            .with_metadata_location(format!("https://eu.asm.skype.com/v1/objects/{encoded}/content/acsmetadata"))
    };
    let recording = Recording::new("call").format("Wav").chunk(chunk("a/b", "a%2Fb")).chunk(chunk("a:b", "a%3Ab"));
    let manifest = downloader.download(recording).await.unwrap();
    assert_eq!(manifest.chunks.len(), 2);
    for stored in &manifest.chunks {
        let want = if stored.document_id == "a/b" { &slash } else { &colon };
        assert_eq!(stored.outcome, Outcome::Downloaded, "{}", stored.document_id);
        let on_disk = std::fs::read(&stored.location).unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&on_disk)), <[u8; 32]>::from(Sha256::digest(want)));
        assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(want)));
    }
    assert_ne!(manifest.chunks[0].location, manifest.chunks[1].location);
}

#[tokio::test]
async fn a_partial_file_is_resumed_only_from_the_bytes_its_record_says_were_made_durable() {
    let object = object(100);
    let dir = tempfile::tempdir().unwrap();
    let sink = crate::download::sink::DirectorySink::new(dir.path());
    let target = ChunkTarget::new("call", "d", 0, "wav");
    // After a power loss: 40 bytes were fsynced and recorded; the 30 after them have the right length but lost
    // their contents.
    let partial = sink.partial_path(&target);
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    let mut stored = object[..40].to_vec();
    stored.extend_from_slice(&[0u8; 30]);
    std::fs::write(&partial, &stored).unwrap();
    let record = serde_json::json!({ "etag": "\"a\"", "last_modified": null, "total": 100, "durable": 40 });
    std::fs::write(dir.path().join("call/.0-d.wav.partial.json"), record.to_string()).unwrap();

    let downloader = ChunkDownloader::new(storage(object.clone(), Quirks::default()), sink.clone());
    let manifest = downloader.download(one_chunk("d")).await.unwrap();
    let want: [u8; 32] = Sha256::digest(&object).into();
    assert_eq!(manifest.chunks[0].outcome, Outcome::Resumed);
    assert_eq!(manifest.chunks[0].sha256, want);
    let on_disk = std::fs::read(dir.path().join("call/0-d.wav")).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&on_disk)), want);
}
