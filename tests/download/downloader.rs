//! The chunk downloader against the emulator's storage, signatures checked, through hyper-util's client inside the
//! signing layer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::download::*;
use acs_recording::download::{sink::DirectorySink, ChunkDownloader, ErrorKind, Location, Outcome};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec};
use acs_recording::recording::{ChannelAssignment, Recording, RecordingChunk};
use http::Method;

pub(super) async fn emulator() -> Emulator {
    Emulator::builder().chunk_limit(1 << 20).start().await.expect("emulator starts")
}

pub(super) fn content_gets(emulator: &Emulator, document_id: &str) -> Vec<acs_recording::emulator::LoggedRequest> {
    emulator
        .storage()
        .requests_for(document_id)
        .into_iter()
        .filter(|r| r.method == Method::GET && !r.path.contains("metadata"))
        .collect()
}
#[tokio::test]
async fn downloads_of_every_size_are_byte_identical() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let downloader = downloader(&emulator, dir.path());
    let sizes = [1usize, 1000, (1 << 20) + 1, 3 * (1 << 20) + 7];
    for (n, size) in sizes.into_iter().enumerate() {
        let id = format!("doc-{n}");
        let bytes = pattern(size, n as u64);
        let info = emulator.storage().put_document(&id, bytes.clone());
        let manifest = downloader.download(single(&emulator, "call-sizes", &id)).await.unwrap();
        let chunk = &manifest.chunks[0];
        assert_eq!(chunk.bytes, size as u64);
        assert_eq!(chunk.sha256, sha256(&bytes));
        assert_eq!(chunk.sha256, info.sha256);
        let path = dir.path().join("call-sizes").join(format!("0-{id}.wav"));
        assert_eq!(chunk.location, path.display().to_string());
        assert_eq!(sha256_file(&path), info.sha256);
        assert_eq!(chunk.outcome, Outcome::Downloaded);
        assert_eq!(chunk.attempts, 1);
    }
}

#[tokio::test]
async fn a_recording_over_64_mib_matches_its_sha256() {
    let emulator = Emulator::builder().chunk_limit(48 << 20).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call-big", 70 << 20));
    assert_eq!(stored.chunks.len(), 2);
    assert!(stored.bytes() > 64 << 20);
    let manifest = downloader(&emulator, dir.path()).download(recording_of(&stored)).await.unwrap();
    for (got, want) in manifest.chunks.iter().zip(&stored.chunks) {
        assert_eq!(got.sha256, want.sha256);
        assert_eq!(got.bytes, want.size);
        assert_eq!(sha256_file(std::path::Path::new(&got.location)), want.sha256);
    }
    assert_eq!(manifest.bytes(), stored.bytes());
}

#[tokio::test]
async fn chunks_listed_out_of_order_land_in_index_order() {
    let emulator = Emulator::builder().chunk_limit(100_000).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call/../order", 350_000));
    assert_eq!(stored.chunks.len(), 4);
    let mut recording = recording_of(&stored);
    recording.chunks.reverse();
    let manifest = downloader(&emulator, dir.path()).download(recording).await.unwrap();
    let indexes: Vec<i64> = manifest.chunks.iter().map(|c| c.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    // Requests went out in index order too, metadata first for each chunk.
    let order: Vec<String> = emulator
        .storage()
        .requests()
        .iter()
        .map(|r| stored.chunks.iter().find(|c| r.path.contains(&c.document_id)).unwrap().index.to_string())
        .collect();
    assert_eq!(order, ["0", "0", "1", "1", "2", "2", "3", "3"]);
    let folder = dir.path().join("call____order");
    for (chunk, want) in manifest.chunks.iter().zip(&stored.chunks) {
        let media = folder.join(format!("{}-{}.wav", want.index, want.document_id));
        assert_eq!(sha256_file(&media), want.sha256);
        let metadata = folder.join(format!("{}-{}.json", want.index, want.document_id));
        assert_eq!(chunk.metadata_location.as_deref(), Some(metadata.display().to_string().as_str()));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
        assert_eq!(json["chunkIndex"], want.index);
        assert_eq!(json["chunkDocumentId"], want.document_id.as_str());
    }
    let mut names: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    // Media, metadata and each media file's hidden commit manifest; no temporary files left.
    let mut expected: Vec<String> = stored
        .chunks
        .iter()
        .flat_map(|c| {
            let base = format!("{}-{}", c.index, c.document_id);
            [format!("{base}.wav"), format!("{base}.json"), format!(".{base}.wav.json")]
        })
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn storage_requests_are_signed_for_the_endpoint_and_carry_x_ms_host() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    emulator.storage().put_document("signed", b"hello".to_vec());
    downloader(&emulator, dir.path()).download(single(&emulator, "c", "signed")).await.unwrap();
    let requests = emulator.storage().requests();
    assert_eq!(requests.len(), 2);
    for r in requests {
        assert_eq!(r.x_ms_host.as_deref(), Some(emulator.endpoint().authority()));
        assert!(r.status == 200 || r.status == 206, "{r:?}");
    }
}

#[tokio::test]
async fn a_dropped_connection_resumes_with_range_and_if_match() {
    let emulator = emulator().await;
    let size = 3 * (1 << 20) + 5;
    let bytes = pattern(size, 7);
    for (n, drop_at) in [1u64, 65_535, (1 << 20) + 3, size as u64 - 1].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let id = format!("drop-{n}");
        let info = emulator.storage().put_document(&id, bytes.clone());
        emulator.storage().inject(&id, [Fault::DropAfter(drop_at)]);
        let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", &id)).await.unwrap();
        assert_eq!(manifest.chunks[0].sha256, info.sha256);
        assert_eq!(manifest.chunks[0].attempts, 2);
        let gets = content_gets(&emulator, &id);
        assert_eq!(gets.len(), 2, "{gets:?}");
        assert_eq!(gets[0].range.as_deref(), Some("bytes=0-"));
        assert_eq!(gets[0].if_match, None);
        assert_eq!(gets[0].bytes_sent, drop_at);
        assert_eq!(gets[1].range.as_deref(), Some(format!("bytes={drop_at}-").as_str()));
        assert_eq!(gets[1].if_match.as_deref(), Some(info.etag.as_str()));
        assert_eq!(gets[1].status, 206);
        let served: u64 = gets.iter().map(|r| r.bytes_sent).sum();
        assert!(served <= size as u64 + 256 * 1024, "served {served} for {size}");
        assert_eq!(served, size as u64);
    }
}

#[tokio::test]
async fn service_unavailable_honours_retry_after() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("busy", pattern(10_000, 1));
    emulator.storage().inject("busy", Fault::status_times(503, 1, Some(1)));
    // `Retry-After` is honoured up to `max_backoff`, which the fast test policy keeps at 20 ms.
    let policy = fast_retries().max_backoff(Duration::from_secs(2));
    let manifest =
        downloader(&emulator, dir.path()).retry_policy(policy).download(single(&emulator, "c", "busy")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "busy");
    let statuses: Vec<u16> = gets.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 206]);
    assert!(gets[1].at - gets[0].at >= Duration::from_secs(1), "waited {:?}", gets[1].at - gets[0].at);
}

#[tokio::test]
async fn transient_statuses_that_outlast_the_policy_fail_naming_status_and_chunk() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    emulator.storage().put_document("down", pattern(100, 1));
    emulator.storage().inject("down", Fault::status_times(500, 10, None));
    let error = downloader(&emulator, dir.path())
        .retry_policy(fast_retries().max_attempts(3))
        .download(single(&emulator, "c", "down"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    assert_eq!(error.status(), Some(http::StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(error.to_string(), "chunk 0 (`down`) content: gave up after 3 failed attempts");
    let last = std::error::Error::source(&error).expect("the last failure");
    assert_eq!(last.to_string(), "status 500 Internal Server Error");
    assert_eq!(
        (error.attempts(), error.location(), error.host()),
        (Some(3), Some(Location::Content), Some("127.0.0.1"))
    );
    assert_eq!(content_gets(&emulator, "down").len(), 3);
    assert!(!dir.path().join("c/0-down.wav").exists());
}

#[tokio::test]
async fn an_object_changed_between_attempts_restarts_and_keeps_the_new_version() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let old = emulator.storage().put_document("moving", pattern(500_000, 3));
    emulator.storage().inject("moving", [Fault::DropAfter(200_000), Fault::ChangeObject]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "moving")).await.unwrap();
    let new = emulator.storage().document("moving").unwrap();
    assert_ne!(new.sha256, old.sha256);
    assert_eq!(manifest.chunks[0].sha256, new.sha256);
    assert_eq!(sha256_file(&dir.path().join("c/0-moving.wav")), new.sha256);
    let gets = content_gets(&emulator, "moving");
    let seen: Vec<(u16, Option<&str>, Option<&str>)> =
        gets.iter().map(|r| (r.status, r.range.as_deref(), r.if_match.as_deref())).collect();
    assert_eq!(
        seen,
        [
            (206, Some("bytes=0-"), None),
            (412, Some("bytes=200000-"), Some(old.etag.as_str())),
            (206, Some("bytes=0-"), None),
        ]
    );
}

#[tokio::test]
async fn a_200_answer_to_a_range_request_skips_the_stored_bytes() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("whole", pattern(800_000, 4));
    emulator.storage().inject("whole", [Fault::DropAfter(300_000), Fault::IgnoreRange]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "whole")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    assert_eq!(manifest.chunks[0].bytes, 800_000);
    let gets = content_gets(&emulator, "whole");
    let seen: Vec<(u16, Option<&str>)> = gets.iter().map(|r| (r.status, r.range.as_deref())).collect();
    assert_eq!(seen, [(206, Some("bytes=0-")), (200, Some("bytes=300000-"))]);
    assert_eq!(sha256_file(&dir.path().join("c/0-whole.wav")), info.sha256);
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_resumed() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("short", pattern(600_000, 5));
    emulator.storage().inject("short", [Fault::ShortBody(250_000)]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "short")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "short");
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].bytes_sent, 250_000);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=250000-"));
    assert_eq!(gets[1].if_match.as_deref(), Some(info.etag.as_str()));
}

#[tokio::test]
async fn an_empty_object_answers_416_and_is_fetched_again_without_range() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("empty", Vec::new());
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "empty")).await.unwrap();
    assert_eq!(manifest.chunks[0].bytes, 0);
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "empty");
    let seen: Vec<(u16, Option<&str>)> = gets.iter().map(|r| (r.status, r.range.as_deref())).collect();
    assert_eq!(seen, [(416, Some("bytes=0-")), (200, None)]);
    assert_eq!(std::fs::metadata(dir.path().join("c/0-empty.wav")).unwrap().len(), 0);
}

#[tokio::test]
async fn not_found_is_permanent_and_never_retried() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    emulator.storage().put_document("gone", pattern(1000, 6));
    emulator.storage().inject("gone", [Fault::Status { status: 404, retry_after: None }]);
    let error = downloader(&emulator, dir.path()).download(single(&emulator, "c", "gone")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
    assert!(!error.is_retryable());
    assert_eq!(error.to_string(), "chunk 0 (`gone`) content: permanent status 404 Not Found from `127.0.0.1`");
    assert_eq!(content_gets(&emulator, "gone").len(), 1);
    assert!(!dir.path().join("c/0-gone.wav").exists());
}

#[tokio::test]
async fn a_location_on_a_host_not_allowed_makes_no_request_at_all() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    emulator.storage().put_document("fine", pattern(1000, 6));
    for evil in
        ["https://evil.example/v1/objects/x/content/audio", "http://127.0.0.2:9/steal", "http://169.254.169.254/"]
    {
        let recording = single(&emulator, "c", "fine").chunk(RecordingChunk::new("x", 1).with_content_location(evil));
        let error = downloader(&emulator, dir.path()).download(recording).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RefusedHost, "{evil}");
        assert!(error.is_refused());
        let host = evil.parse::<http::Uri>().unwrap().host().unwrap().to_owned();
        assert_eq!(error.to_string(), format!("chunk 1 (`x`) content: location on refused host `{host}`"));
        assert_eq!((error.chunk_index(), error.document_id(), error.host()), (Some(1), Some("x"), Some(host.as_str())));
    }
    assert_eq!(emulator.storage().requests(), []);
    assert!(!dir.path().join("c").exists());
}

#[tokio::test]
async fn chunks_without_locations_use_the_legacy_endpoint_urls() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let id = "0-eus d1/legacy";
    let info = emulator.storage().put_document(id, pattern(70_000, 8));
    let recording = Recording::new("legacy-call").chunk(RecordingChunk::new(id, 0));
    let manifest = downloader(&emulator, dir.path()).download(recording).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    // No format given: the extension comes from the metadata document (`recordingInfo.format`), fetched first.
    // The id needed sanitising: a short hash of the raw id keeps its name apart from any id that sanitises alike.
    let tag = sha256(id.as_bytes()).to_string()[..16].to_owned();
    let name = format!("/0-0-eus_d1_legacy-{tag}.wav");
    assert!(manifest.chunks[0].location.ends_with(&name), "{}", manifest.chunks[0].location);
    let paths: Vec<String> = emulator.storage().requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/recording/download/0-eus%20d1%2Flegacy/metadata?api-version=2021-04-15-preview1",
            "/recording/download/0-eus%20d1%2Flegacy?api-version=2021-04-15-preview1",
        ]
    );
}

#[tokio::test]
async fn content_md5_is_checked_when_sent() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("md5", pattern(300_000, 9));
    emulator.storage().send_content_md5("md5", true);
    emulator.storage().inject("md5", [Fault::DropAfter(100_000)]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "md5")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
}

#[tokio::test]
async fn delete_is_sent_only_after_the_durable_write() {
    let emulator = Emulator::builder().chunk_limit(40_000).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("del", 70_000));
    let manifest =
        downloader(&emulator, dir.path()).delete_after_write(true).download(recording_of(&stored)).await.unwrap();
    assert!(manifest.chunks.iter().all(|c| c.deleted));
    for chunk in &stored.chunks {
        let requests = emulator.storage().requests_for(&chunk.document_id);
        let methods: Vec<(&Method, u16)> = requests.iter().map(|r| (&r.method, r.status)).collect();
        assert_eq!(methods, [(&Method::GET, 206), (&Method::GET, 206), (&Method::DELETE, 200)]);
        assert!(emulator.storage().document(&chunk.document_id).unwrap().deleted);
    }
    // The objects are gone: a later GET is a 404.
    let error =
        downloader(&emulator, tempfile::tempdir().unwrap().path()).download(recording_of(&stored)).await.unwrap_err();
    assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn concurrent_chunks_report_progress_and_land_in_index_order() {
    let emulator = Emulator::builder().chunk_limit(200_000).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("conc", 1_000_000));
    assert_eq!(stored.chunks.len(), 6);
    let last = Arc::new(Mutex::new((0u64, 0usize, 0usize)));
    let seen = last.clone();
    let manifest = downloader(&emulator, dir.path())
        .concurrency(3)
        .on_progress(move |p| {
            let mut last = seen.lock().unwrap();
            last.0 = last.0.max(p.recording_bytes);
            last.1 = last.1.max(p.chunks_done);
            last.2 = p.chunks_total;
        })
        .download(recording_of(&stored))
        .await
        .unwrap();
    let indexes: Vec<i64> = manifest.chunks.iter().map(|c| c.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4, 5]);
    for (got, want) in manifest.chunks.iter().zip(&stored.chunks) {
        assert_eq!(got.sha256, want.sha256);
    }
    assert_eq!(*last.lock().unwrap(), (stored.bytes(), 6, 6));
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_requests_are_refused_by_the_storage() {
    let emulator = emulator().await;
    emulator.storage().put_document("secret", b"x".to_vec());
    let other = Emulator::builder().start().await.unwrap();
    // A client signing with another emulator's key.
    let client = acs_recording::signing::HmacSigningLayer::new(emulator.endpoint().clone(), other.access_key().clone())
        .allow_list(emulator.allow_list());
    let client = tower::Layer::layer(
        &client,
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<bytes::Bytes>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let error = ChunkDownloader::new(client, DirectorySink::new(dir.path()))
        .allow_list(emulator.allow_list())
        .download(single(&emulator, "c", "secret"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(error.kind(), ErrorKind::AccessDenied);
    assert!(error.is_retryable(), "a key being rotated: the caller tries again later");
    assert_eq!(
        error.to_string(),
        "chunk 0 (`secret`) metadata: access refused with status 401 Unauthorized by `127.0.0.1`"
    );
    assert_eq!(error.location(), Some(Location::Metadata));
}

#[tokio::test]
async fn redirects_are_followed_only_to_allowed_hosts() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("moved", pattern(50_000, 13));
    // To the endpoint's legacy path of the same document: allowed.
    let legacy = acs_recording::download::legacy_content_location(emulator.endpoint(), "moved");
    emulator.storage().inject("moved", [Fault::Redirect(legacy)]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "moved")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let statuses: Vec<(u16, String)> =
        content_gets(&emulator, "moved").into_iter().map(|r| (r.status, r.path)).collect();
    assert_eq!(
        statuses,
        [
            (307, "/v1/objects/moved/content/audio".to_owned()),
            (206, "/recording/download/moved?api-version=2021-04-15-preview1".to_owned()),
        ]
    );

    // Elsewhere: refused, and nothing is sent there.
    emulator.storage().inject("moved", [Fault::Redirect("http://169.254.169.254/latest/meta-data".to_owned())]);
    let error = downloader(&emulator, tempfile::tempdir().unwrap().path())
        .download(single(&emulator, "c", "moved"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Redirect);
    assert_eq!(error.to_string(), "chunk 0 (`moved`) content: refused to follow a redirect to host `169.254.169.254`");
}

#[tokio::test]
async fn without_an_etag_resumes_pin_the_version_with_if_unmodified_since() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("no-etag", pattern(400_000, 14));
    emulator.storage().send_etag("no-etag", false);
    emulator.storage().inject("no-etag", [Fault::DropAfter(150_000)]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "no-etag")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "no-etag");
    // One resume; a machine under load may see that resume's pooled connection fail and send it again, but every
    // request after the first asks for the rest only, pinned to the version by its date.
    let described: Vec<_> = gets.iter().map(|r| (r.status, r.range.clone())).collect();
    assert!(matches!(gets.len(), 2 | 3), "{described:?}");
    for resume in &gets[1..] {
        assert_eq!(resume.range.as_deref(), Some("bytes=150000-"), "{described:?}");
        assert_eq!(resume.if_match, None);
        let since = resume.if_unmodified_since.as_deref().expect("If-Unmodified-Since sent");
        assert!(httpdate::parse_http_date(since).is_ok(), "{since}");
    }

    // And a change under it is caught: 412, restart, the new version.
    emulator.storage().inject("no-etag", [Fault::DropAfter(100_000), Fault::ChangeObject]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "no-etag")).await.unwrap();
    let new = emulator.storage().document("no-etag").unwrap();
    assert_ne!(new.sha256, info.sha256);
    assert_eq!(manifest.chunks[0].sha256, new.sha256);
    let statuses: Vec<u16> = content_gets(&emulator, "no-etag").iter().skip(gets.len()).map(|r| r.status).collect();
    assert_eq!(statuses, [206, 412, 206]);
}

#[tokio::test]
async fn a_stalled_body_times_out_and_resumes() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("stall", pattern(300_000, 15));
    emulator.storage().inject("stall", [Fault::StallAfter(120_000)]);
    let policy = fast_retries().read_timeout(Duration::from_millis(300));
    let manifest =
        downloader(&emulator, dir.path()).retry_policy(policy).download(single(&emulator, "c", "stall")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "stall");
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=120000-"));
    assert_eq!(gets[1].if_match.as_deref(), Some(info.etag.as_str()));
    assert!(gets[1].at - gets[0].at >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_manifest_carries_the_typed_metadata_fetched_once_per_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call-typed", 150_000).unmixed(["8:acs:a", "8:acs:b"]));
    let dir = tempfile::tempdir().unwrap();
    // Without a format type the extension comes from the metadata document: the same single fetch and parse.
    let mut recording = stored.to_recording();
    recording.format = None;
    let manifest = downloader(&emulator, dir.path()).download(recording).await.unwrap();
    for (got, chunk) in manifest.chunks.iter().zip(&stored.chunks) {
        assert!(got.location.ends_with(".wav"), "{}", got.location);
        let metadata = got.metadata.as_ref().expect("typed metadata");
        assert_eq!(metadata.chunk_index, Some(chunk.index));
        assert_eq!(metadata.chunk_document_id.as_deref(), Some(chunk.document_id.as_str()));
        assert_eq!(metadata.channels(), [ChannelAssignment::new(0, "8:acs:a"), ChannelAssignment::new(1, "8:acs:b")]);
        let metadata_gets = emulator
            .storage()
            .requests_for(&chunk.document_id)
            .into_iter()
            .filter(|r| r.method == Method::GET && r.path.ends_with("acsmetadata"))
            .count();
        assert_eq!(metadata_gets, 1, "chunk {}", chunk.index);
    }
}
