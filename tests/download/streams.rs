//! A chunk as a body or into any writer: streamed in order, resumed inside, never spliced from two versions.

use super::downloader::{content_gets, emulator};
use crate::support::download::*;
use acs_recording::download::{sink::WriterSink, ChunkDownloader, ErrorKind};
use acs_recording::emulator::{Emulator, Fault, RecordingSpec};
use acs_recording::recording::RecordingChunk;
use tokio_stream_shim::collect_stream;
use tower::ServiceExt;

/// A few lines instead of a dependency on `tokio-stream`/`futures-util`.
mod tokio_stream_shim {
    use std::future::poll_fn;
    use std::pin::Pin;

    use acs_recording::download::{ChunkBody, Error};
    use futures_core::Stream;

    pub(super) async fn collect_stream(mut body: ChunkBody) -> (Result<Vec<u8>, Error>, ChunkBody) {
        let mut out = Vec::new();
        loop {
            match poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
                Some(Ok(bytes)) => out.extend_from_slice(&bytes),
                Some(Err(error)) => return (Err(error), body),
                None => return (Ok(out), body),
            }
        }
    }
}

#[tokio::test]
async fn a_chunk_streams_as_a_body_and_resumes_inside() {
    let emulator = emulator().await;
    let info = emulator.storage().put_document("stream", pattern(700_000, 10));
    emulator.storage().inject("stream", [Fault::DropAfter(123_456), Fault::Status { status: 502, retry_after: None }]);
    let dir = tempfile::tempdir().unwrap();
    let body = downloader(&emulator, dir.path())
        .chunk_body(
            &RecordingChunk::new("stream", 0).with_content_location(emulator.storage().content_location("stream")),
        )
        .unwrap();
    let (bytes, body) = collect_stream(body).await;
    let bytes = bytes.unwrap();
    assert_eq!(sha256(&bytes), info.sha256);
    assert_eq!(body.sha256(), Some(info.sha256));
    let statuses: Vec<u16> = content_gets(&emulator, "stream").iter().map(|r| r.status).collect();
    assert_eq!(statuses, [206, 502, 206]);
}

#[tokio::test]
async fn a_stream_fails_rather_than_splicing_a_changed_object() {
    let emulator = emulator().await;
    emulator.storage().put_document("splice", pattern(400_000, 11));
    emulator.storage().inject("splice", [Fault::DropAfter(100_000), Fault::ChangeObject]);
    let dir = tempfile::tempdir().unwrap();
    let body = downloader(&emulator, dir.path())
        .chunk_body(
            &RecordingChunk::new("splice", 0).with_content_location(emulator.storage().content_location("splice")),
        )
        .unwrap();
    let (result, _) = collect_stream(body).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ObjectChanged);
    assert_eq!(
        error.to_string(),
        "chunk 0 (`splice`) content: object changed after 100000 bytes were yielded by the stream"
    );
}

#[tokio::test]
async fn a_writer_sink_gets_every_chunk_in_order() {
    let emulator = Emulator::builder().chunk_limit(30_000).start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("w", 80_000));
    let downloader = ChunkDownloader::new(signed_client(&emulator), WriterSink::new(Vec::new()))
        .allow_list(emulator.allow_list())
        .retry_policy(fast_retries());
    emulator.storage().inject(&stored.chunks[1].document_id, [Fault::DropAfter(10_000)]);
    let mut recording = recording_of(&stored);
    recording.chunks.swap(0, 2);
    let manifest = downloader.clone().oneshot(recording).await.unwrap();
    assert_eq!(manifest.chunks.len(), 3);
    let sink = downloader.sink().clone();
    drop(downloader);
    let bytes = sink.into_inner().unwrap();
    let mut at = 0usize;
    for chunk in &stored.chunks {
        assert_eq!(sha256(&bytes[at..at + chunk.size as usize]), chunk.sha256);
        at += chunk.size as usize;
    }
    assert_eq!(at, bytes.len());
}

#[tokio::test]
async fn a_writer_sink_fails_when_the_object_changes_after_bytes_were_written() {
    let emulator = emulator().await;
    emulator.storage().put_document("w2", pattern(200_000, 12));
    emulator.storage().inject("w2", [Fault::DropAfter(50_000), Fault::ChangeObject]);
    let downloader = ChunkDownloader::new(signed_client(&emulator), WriterSink::new(Vec::new()))
        .allow_list(emulator.allow_list())
        .retry_policy(fast_retries());
    let error = downloader.download(single(&emulator, "c", "w2")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ObjectChanged);
    assert_eq!(error.to_string(), "chunk 0 (`w2`) content: object changed and the sink cannot start over");
    let cause = std::error::Error::source(&error).expect("the sink's refusal");
    assert!(!error.to_string().contains(&cause.to_string()), "{error} repeats {cause}");
}
