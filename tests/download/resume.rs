//! Reruns and resumes: complete chunks skipped, partial files taken up again, whole-object MD5s kept across runs.

use std::time::Duration;

use super::downloader::{content_gets, emulator};
use crate::support::download::*;
use acs_recording::download::{ErrorKind, Outcome, RetryPolicy};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec};

#[tokio::test]
async fn a_rerun_skips_complete_chunks_without_a_request() {
    let emulator = Emulator::builder().chunk_limit(50_000).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("rerun", 120_000));
    let first = downloader(&emulator, dir.path()).download(recording_of(&stored)).await.unwrap();
    emulator.storage().clear_log();
    let second = downloader(&emulator, dir.path()).download(recording_of(&stored)).await.unwrap();
    assert_eq!(emulator.storage().requests(), []);
    for (a, b) in first.chunks.iter().zip(&second.chunks) {
        assert_eq!(b.outcome, Outcome::Skipped);
        assert_eq!((a.sha256, a.bytes, &a.location), (b.sha256, b.bytes, &b.location));
    }
}

#[tokio::test]
async fn a_truncated_final_file_is_downloaded_again_on_rerun() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("cut", pattern(400_000, 13));
    downloader(&emulator, dir.path()).download(single(&emulator, "c", "cut")).await.unwrap();
    let media = dir.path().join("c/0-cut.wav");
    let file = std::fs::OpenOptions::new().write(true).open(&media).unwrap();
    file.set_len(123_456).unwrap();
    drop(file);
    emulator.storage().clear_log();

    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "cut")).await.unwrap();
    let chunk = &manifest.chunks[0];
    assert_eq!(chunk.outcome, Outcome::Downloaded);
    assert_eq!((chunk.bytes, chunk.sha256), (info.size, info.sha256));
    assert_eq!(sha256_file(&media), info.sha256);
    assert!(!dir.path().join("c/.0-cut.wav.partial").exists());
    let gets = content_gets(&emulator, "cut");
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].range.as_deref(), Some("bytes=0-"));
}

#[tokio::test]
async fn a_rerun_after_a_crash_mid_chunk_resumes_the_partial_file() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_tone("crash", 5 << 20);
    emulator.storage().inject("crash", [Fault::DropAfter(3 << 20)]);
    let error = downloader(&emulator, dir.path())
        .retry_policy(RetryPolicy::never())
        .download(single(&emulator, "c", "crash"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    let partial = dir.path().join("c/.0-crash.wav.partial");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert_eq!(kept, 3 << 20);
    assert!(!dir.path().join("c/0-crash.wav").exists());
    emulator.storage().clear_log();

    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "crash")).await.unwrap();
    let chunk = &manifest.chunks[0];
    assert_eq!(chunk.outcome, Outcome::Resumed);
    assert_eq!(chunk.sha256, info.sha256);
    assert_eq!(sha256_file(&dir.path().join("c/0-crash.wav")), info.sha256);
    assert!(!partial.exists());
    let gets = content_gets(&emulator, "crash");
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].range.as_deref(), Some(format!("bytes={kept}-").as_str()));
    assert_eq!(gets[0].if_match.as_deref(), Some(info.etag.as_str()));
    assert_eq!(gets[0].bytes_sent, info.size - kept);
}

#[tokio::test]
async fn an_aborted_download_resumes_on_the_next_run() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_tone("aborted", 24 << 20);
    let (reached, mut watch) = tokio::sync::watch::channel(0u64);
    let first = downloader(&emulator, dir.path()).on_progress(move |p| {
        let _ = reached.send(p.chunk_bytes);
    });
    let recording = single(&emulator, "c", "aborted");
    let task = tokio::spawn(async move { first.download(recording).await });
    watch.wait_for(|bytes| *bytes >= 4 << 20).await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(!dir.path().join("c/0-aborted.wav").exists());
    // A blocking write already handed to the pool may still land; wait for the file to settle.
    let partial = dir.path().join("c/.0-aborted.wav.partial");
    let mut kept = std::fs::metadata(&partial).unwrap().len();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = std::fs::metadata(&partial).unwrap().len();
        if now == kept {
            break;
        }
        kept = now;
    }
    assert!(kept > 0 && kept < info.size, "{kept}");
    emulator.storage().clear_log();

    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "aborted")).await.unwrap();
    assert_eq!(manifest.chunks[0].outcome, Outcome::Resumed);
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "aborted");
    assert_eq!(gets[0].range.as_deref(), Some(format!("bytes={kept}-").as_str()));
    assert_eq!(gets[0].if_match.as_deref(), Some(info.etag.as_str()));
}

fn md5_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

#[tokio::test]
async fn the_whole_object_md5_is_checked_across_a_dropped_connection() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("blob-md5", pattern(300_000, 10));
    emulator.storage().send_blob_content_md5("blob-md5", true);
    emulator.storage().inject("blob-md5", [Fault::DropAfter(100_000)]);
    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "blob-md5")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    let gets = content_gets(&emulator, "blob-md5");
    let ranges: Vec<Option<&str>> = gets.iter().map(|r| r.range.as_deref()).collect();
    assert_eq!(ranges, [Some("bytes=0-"), Some("bytes=100000-")]);
}

#[tokio::test]
async fn a_rerun_resumes_a_partial_file_against_its_recorded_whole_object_md5() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(3 << 20, 11);
    let info = emulator.storage().put_document("md5-rerun", bytes.clone());
    emulator.storage().send_blob_content_md5("md5-rerun", true);
    emulator.storage().inject("md5-rerun", [Fault::DropAfter(1 << 20)]);
    let once = downloader(&emulator, dir.path()).retry_policy(RetryPolicy::never());
    once.download(single(&emulator, "c", "md5-rerun")).await.unwrap_err();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("c/.0-md5-rerun.wav.partial.json")).unwrap()).unwrap();
    assert_eq!(state["content_md5"], md5_base64(&bytes).as_str());
    emulator.storage().clear_log();

    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "md5-rerun")).await.unwrap();
    assert_eq!(manifest.chunks[0].outcome, Outcome::Resumed);
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    assert_eq!(sha256_file(&dir.path().join("c/0-md5-rerun.wav")), info.sha256);
    let gets = content_gets(&emulator, "md5-rerun");
    let ranges: Vec<Option<&str>> = gets.iter().map(|r| r.range.as_deref()).collect();
    assert_eq!(ranges, [Some("bytes=1048576-")]);
}

#[tokio::test]
async fn an_old_partial_without_a_recorded_md5_restarts_once_the_server_announces_one() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let info = emulator.storage().put_document("md5-late", pattern(2 << 20, 12));
    emulator.storage().inject("md5-late", [Fault::DropAfter(1 << 20)]);
    let once = downloader(&emulator, dir.path()).retry_policy(RetryPolicy::never());
    once.download(single(&emulator, "c", "md5-late")).await.unwrap_err();
    emulator.storage().send_blob_content_md5("md5-late", true);
    emulator.storage().clear_log();

    let manifest = downloader(&emulator, dir.path()).download(single(&emulator, "c", "md5-late")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, info.sha256);
    assert_eq!(manifest.chunks[0].bytes, 2 << 20);
    assert_eq!(sha256_file(&dir.path().join("c/0-md5-late.wav")), info.sha256);
    let gets = content_gets(&emulator, "md5-late");
    let seen: Vec<(u16, Option<&str>)> = gets.iter().map(|r| (r.status, r.range.as_deref())).collect();
    assert_eq!(seen, [(206, Some("bytes=1048576-")), (206, Some("bytes=0-"))]);
}
