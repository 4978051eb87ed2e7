use super::*;
use crate::download::error::chain_line;
use http_body_util::Full;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::convert::Infallible;

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
    let downloader = ChunkDownloader::new(client, crate::download::DirectorySink::new(dir.path()))
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
