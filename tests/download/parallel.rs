//! Parallel ranged downloads against the emulator: every size byte-identical, the ranges and `If-Match` on the
//! wire, faults on single parts, a changed object, an interrupted download resuming only its missing parts, and a
//! property over fault schedules: the file equals the source, or the download fails; never a wrong final file.

use std::time::Duration;

use crate::support::download::*;
use crate::support::{self, at_timeout, eventually};
use acs_recording::download::{
    sink::{DirectorySink, WriterSink},
    ChunkDownloader, ErrorKind, Outcome, ParallelPolicy,
};
use acs_recording::emulator::{Emulator, Fault, LoggedRequest};
use http::Method;
use proptest::prelude::*;

const THRESHOLD: u64 = 64 * 1024;
const PART: u64 = 16 * 1024;

/// Always parallel: loopback is fast enough that the adaptive policy would keep to two requests.
fn policy() -> ParallelPolicy {
    ParallelPolicy::new(THRESHOLD, PART, 4).fast_stream(None)
}

async fn emulator() -> Emulator {
    Emulator::builder().start().await.unwrap()
}

/// The media `GET`s a document received, in arrival order.
fn gets(emulator: &Emulator, document_id: &str) -> Vec<LoggedRequest> {
    emulator
        .storage()
        .requests_for(document_id)
        .into_iter()
        .filter(|r| r.method == Method::GET && !r.path.ends_with("acsmetadata") && !r.path.ends_with("/metadata"))
        .collect()
}

/// The ranges a parallel download recorded as complete in the partial file's state, if any yet.
fn recorded_extents(state: &std::path::Path) -> Vec<(u64, u64)> {
    std::fs::read(state)
        .ok()
        .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
        .and_then(|v| serde_json::from_value(v["extents"].clone()).ok())
        .unwrap_or_default()
}

fn served(requests: &[LoggedRequest]) -> u64 {
    requests.iter().filter(|r| r.status == 200 || r.status == 206).map(|r| r.bytes_sent).sum()
}

#[tokio::test]
async fn every_size_downloads_byte_identical_with_the_expected_ranges() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy()));
    let sizes = [0, 1, PART - 1, THRESHOLD, THRESHOLD + 1, THRESHOLD + PART, THRESHOLD + 3 * PART + 17, 10 * THRESHOLD];
    for (n, size) in sizes.into_iter().enumerate() {
        let id = format!("size-{n}");
        let bytes = pattern(size as usize, n as u64);
        emulator.storage().put_document(&id, bytes.clone());
        let manifest = downloader.download(single(&emulator, &format!("call-{n}"), &id)).await.unwrap();
        let chunk = &manifest.chunks[0];
        assert_eq!((chunk.bytes, chunk.sha256), (size, sha256(&bytes)), "size {size}");
        assert_eq!(sha256_file(std::path::Path::new(&chunk.location)), sha256(&bytes), "size {size}");

        let requests = gets(&emulator, &id);
        // One request up to the threshold; then the first threshold bytes and parts of the part size.
        let mut expected = vec![format!("bytes=0-{}", THRESHOLD - 1)];
        let mut at = THRESHOLD;
        while at < size {
            let end = (at + PART).min(size);
            expected.push(format!("bytes={at}-{}", end - 1));
            at = end;
        }
        if size == 0 {
            expected.push(String::new()); // an empty object answers 416, asked again without Range
        }
        let mut ranges: Vec<String> = requests.iter().map(|r| r.range.clone().unwrap_or_default()).collect();
        ranges[1..].sort_by_key(|r| {
            r.trim_start_matches("bytes=").split('-').next().unwrap_or("").parse::<u64>().unwrap_or(0)
        });
        assert_eq!(ranges, expected, "size {size}");
        // Every part after the first is pinned to the version of the first response.
        let etag = emulator.storage().document(&id).unwrap().etag;
        if size > THRESHOLD {
            assert!(requests[0].if_match.is_none());
            assert!(requests[1..].iter().all(|r| r.if_match.as_deref() == Some(etag.as_str())), "size {size}");
        }
        assert_eq!(chunk.attempts as usize, requests.len(), "size {size}");
        assert_eq!(served(&requests), size, "every byte served once, size {size}");
    }
}

#[tokio::test]
async fn a_cut_a_503_and_a_200_on_single_parts_are_each_recovered_within_the_part() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let size = THRESHOLD + 4 * PART;
    let bytes = pattern(size as usize, 7);
    emulator.storage().put_document("faults", bytes.clone());
    emulator.storage().inject_at("faults", THRESHOLD, [Fault::DropAfter(5000)]);
    emulator.storage().inject_at("faults", THRESHOLD + PART, Fault::status_times(503, 2, Some(0)));
    emulator.storage().inject_at("faults", THRESHOLD + 2 * PART, [Fault::IgnoreRange]);
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy()));
    let manifest = downloader.download(single(&emulator, "call", "faults")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, sha256(&bytes));
    assert_eq!(sha256_file(std::path::Path::new(&manifest.chunks[0].location)), sha256(&bytes));
    let ranges: Vec<Option<String>> = gets(&emulator, "faults").iter().map(|r| r.range.clone()).collect();
    // The cut part went on from where it stopped, within its own range.
    let resumed = format!("bytes={}-{}", THRESHOLD + 5000, THRESHOLD + PART - 1);
    assert!(ranges.contains(&Some(resumed.clone())), "{resumed} not in {ranges:?}");
    // The 503s were retried with the same range.
    let again = format!("bytes={}-{}", THRESHOLD + PART, THRESHOLD + 2 * PART - 1);
    assert_eq!(ranges.iter().filter(|r| r.as_deref() == Some(again.as_str())).count(), 3, "{ranges:?}");
}

#[tokio::test]
async fn an_object_that_changes_under_a_part_restarts_the_chunk_and_ends_as_the_new_version() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let size = THRESHOLD + 4 * PART;
    emulator.storage().put_document("changing", pattern(size as usize, 9));
    emulator.storage().inject_at("changing", THRESHOLD + 2 * PART, [Fault::ChangeObject]);
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy()));
    let manifest = downloader.download(single(&emulator, "call", "changing")).await.unwrap();
    let now = emulator.storage().document("changing").unwrap();
    assert_eq!(manifest.chunks[0].sha256, now.sha256, "the final file is the new version, whole");
    assert_eq!(sha256_file(std::path::Path::new(&manifest.chunks[0].location)), now.sha256);
    let requests = gets(&emulator, "changing");
    assert!(requests.iter().any(|r| r.status == 412), "a part saw the change");
    // The restart begins at byte 0 without a precondition, then pins the new version.
    let restart =
        requests.iter().rposition(|r| r.range.as_deref() == Some(&*format!("bytes=0-{}", THRESHOLD - 1))).unwrap();
    assert!(restart > 0 && requests[restart].if_match.is_none());
    assert!(requests[restart + 1..].iter().all(|r| r.if_match.as_deref() == Some(now.etag.as_str())));
}

#[tokio::test]
async fn an_interrupted_parallel_download_resumes_only_its_missing_parts() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let size = THRESHOLD + 8 * PART;
    let bytes = pattern(size as usize, 11);
    emulator.storage().put_document("resume", bytes.clone());
    // One part stalls forever: the rest complete, then the download is stopped, as a killed process would be.
    let stalled = THRESHOLD + 3 * PART;
    emulator.storage().inject_at("resume", stalled, [Fault::StallAfter(0)]);
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy()));
    let task = tokio::spawn({
        let (downloader, recording) = (downloader.clone(), single(&emulator, "call", "resume"));
        async move { downloader.download(recording).await }
    });
    let state = dir.path().join("call").join(".0-resume.wav.partial.json");
    let extents = || recorded_extents(&state);
    // The first part and every part but the stalled one: the others go on around it, their bytes waiting to be
    // hashed (in memory within the budget, else on disk).
    let parts = at_timeout(|| format!("the parts complete: {:?}", extents()));
    eventually(Duration::from_secs(30), parts, || std::future::ready((extents().len() >= 8).then_some(()))).await;
    task.abort();
    let _ = task.await;
    let kept = extents();
    assert!(!kept.iter().any(|(start, _)| *start == stalled), "{kept:?}");
    let missing = size - kept.iter().map(|(start, end)| end - start).sum::<u64>();
    let before = served(&gets(&emulator, "resume"));
    emulator.storage().clear_faults("resume");

    let manifest = downloader.download(single(&emulator, "call", "resume")).await.unwrap();
    assert_eq!(manifest.chunks[0].outcome, Outcome::Resumed);
    assert_eq!(manifest.chunks[0].sha256, sha256(&bytes));
    assert_eq!(sha256_file(std::path::Path::new(&manifest.chunks[0].location)), sha256(&bytes));
    let after = gets(&emulator, "resume");
    assert_eq!(served(&after) - before, missing, "only the missing parts were fetched again");
    assert_eq!(missing, PART, "{kept:?}");
}

#[tokio::test]
async fn a_fast_first_response_keeps_the_chunk_to_two_requests_at_a_time() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let size = THRESHOLD + 8 * PART;
    emulator.storage().put_document("fast", pattern(size as usize, 19));
    let stalled = THRESHOLD + 3 * PART;
    emulator.storage().inject_at("fast", stalled, [Fault::StallAfter(0)]);
    emulator.storage().inject_at("fast", stalled + PART, [Fault::StallAfter(0)]);
    // Any rate counts as fast here; loopback is.
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy().fast_stream(Some(1))));
    let task = tokio::spawn({
        let (downloader, recording) = (downloader.clone(), single(&emulator, "call", "fast"));
        async move { downloader.download(recording).await }
    });
    let state = dir.path().join("call").join(".0-fast.wav.partial.json");
    let extents = || recorded_extents(&state);
    // With two requests at a time, the two stalled parts hold both slots: nothing after them starts.
    let parts = at_timeout(|| format!("the parts complete: {:?}", extents()));
    eventually(Duration::from_secs(30), parts, || std::future::ready((extents().len() >= 4).then_some(()))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut kept = extents();
    kept.sort_unstable();
    let before: Vec<(u64, u64)> = (0..3).map(|n| (THRESHOLD + n * PART, THRESHOLD + (n + 1) * PART)).collect();
    assert_eq!(kept, [&[(0, THRESHOLD)], &before[..]].concat());
    let ranges: Vec<Option<String>> = gets(&emulator, "fast").iter().map(|r| r.range.clone()).collect();
    let third = format!("bytes={}-{}", stalled + 2 * PART, stalled + 3 * PART - 1);
    assert!(!ranges.contains(&Some(third)), "no third request started: {ranges:?}");
    task.abort();
}

#[tokio::test]
async fn a_sink_without_positional_writes_gets_one_stream() {
    let emulator = emulator().await;
    let size = THRESHOLD * 3;
    let bytes = pattern(size as usize, 13);
    emulator.storage().put_document("stream", bytes.clone());
    let downloader = ChunkDownloader::new(signed_client(&emulator), WriterSink::new(Vec::new()))
        .endpoint(emulator.endpoint().clone())
        .allow_list(emulator.allow_list())
        .parallel(Some(policy()));
    let manifest = downloader.download(single(&emulator, "call", "stream")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, sha256(&bytes));
    let ranges: Vec<Option<String>> = gets(&emulator, "stream").iter().map(|r| r.range.clone()).collect();
    assert_eq!(ranges, [Some(format!("bytes=0-{}", THRESHOLD - 1)), Some(format!("bytes={THRESHOLD}-"))]);
    let media = downloader.sink().clone();
    drop(downloader);
    assert_eq!(sha256(&media.into_inner().unwrap()), sha256(&bytes));
}

#[tokio::test]
async fn a_part_that_keeps_failing_fails_the_chunk_and_leaves_no_final_file() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let size = THRESHOLD + 2 * PART;
    emulator.storage().put_document("failing", pattern(size as usize, 17));
    emulator.storage().inject_at("failing", THRESHOLD + PART, Fault::status_times(500, 20, Some(0)));
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy()));
    let error = downloader.download(single(&emulator, "call", "failing")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    assert_eq!(
        error.to_string(),
        format!("chunk 0 (`failing`) content bytes {}-{size}: gave up after 6 failed attempts", THRESHOLD + PART)
    );
    assert_eq!(error.part(), Some(THRESHOLD + PART..size));
    assert!(!dir.path().join("call").join("0-failing.wav").exists());
}

fn fault_strategy() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        3 => Just(None),
        1 => (1u64..PART).prop_map(|n| Some(Fault::DropAfter(n))),
        1 => (1u64..PART).prop_map(|n| Some(Fault::ShortBody(n))),
        1 => Just(Some(Fault::Status { status: 503, retry_after: Some(0) })),
        1 => Just(Some(Fault::Status { status: 404, retry_after: None })),
        1 => Just(Some(Fault::IgnoreRange)),
        1 => Just(Some(Fault::ChangeObject)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24, failure_persistence: support::regressions_beside_the_test(), .. ProptestConfig::default()
    })]

    #[test]
    fn any_schedule_of_part_faults_gives_the_right_file_or_an_error(
        faults in proptest::collection::vec(fault_strategy(), 6),
        extra in 0u64..PART,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let emulator = emulator().await;
            let dir = tempfile::tempdir().unwrap();
            let size = THRESHOLD + 4 * PART + extra;
            emulator.storage().put_document("prop", pattern(size as usize, extra));
            for (n, fault) in faults.iter().enumerate() {
                if let Some(fault) = fault {
                    let start = if n == 0 { 0 } else { THRESHOLD + (n as u64 - 1) * PART };
                    emulator.storage().inject_at("prop", start, [fault.clone()]);
                }
            }
            let downloader = ChunkDownloader::new(signed_client(&emulator), DirectorySink::new(dir.path()))
                .endpoint(emulator.endpoint().clone())
                .allow_list(emulator.allow_list())
                .retry_policy(fast_retries())
                .parallel(Some(policy()));
            let result = downloader.download(single(&emulator, "call", "prop")).await;
            let final_file = dir.path().join("call").join("0-prop.wav");
            let now = emulator.storage().document("prop").unwrap();
            match result {
                Ok(manifest) => {
                    assert_eq!(manifest.chunks[0].sha256, now.sha256);
                    assert_eq!(sha256_file(&final_file), now.sha256);
                }
                Err(error) => {
                    assert!(!final_file.exists(), "a failed download left a final file: {error}");
                }
            }
        });
    }
}
