//! Shared set-up for the download tests: the emulator, a signed hyper-util client, a downloader.

use std::path::Path;
use std::time::Duration;

use acs_recording::download::{sink::DirectorySink, ChunkDownloader, RetryPolicy};
use acs_recording::emulator::{Emulator, StoredChunk, StoredRecording};
use acs_recording::recording::{Recording, RecordingChunk};
use acs_recording::signing::{HmacSigning, HmacSigningLayer};
use acs_recording::Sha256Digest;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use tower::Layer;

/// hyper-util's client inside the signing layer, as users build it.
pub(crate) type SignedClient = HmacSigning<Client<HttpConnector, Empty<Bytes>>>;

pub(crate) fn signed_client(emulator: &Emulator) -> SignedClient {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    HmacSigningLayer::from_connection_string(&emulator.connection_string())
        .allow_list(emulator.allow_list())
        .layer(client)
}

/// Quick retries so that fault tests stay fast.
pub(crate) fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(6)
        .initial_backoff(Duration::from_millis(2))
        .max_backoff(Duration::from_millis(20))
        .read_timeout(Duration::from_secs(10))
}

pub(crate) fn downloader(emulator: &Emulator, dir: &Path) -> ChunkDownloader<SignedClient, DirectorySink> {
    ChunkDownloader::new(signed_client(emulator), DirectorySink::new(dir))
        .endpoint(emulator.endpoint().clone())
        .allow_list(emulator.allow_list())
        .retry_policy(fast_retries())
}

pub(crate) fn chunk_of(stored: &StoredChunk) -> RecordingChunk {
    stored.to_recording_chunk()
}

pub(crate) fn recording_of(stored: &StoredRecording) -> Recording {
    stored.to_recording()
}

/// A one-chunk recording of a document stored with `put_document`/`put_tone`.
pub(crate) fn single(emulator: &Emulator, call_id: &str, document_id: &str) -> Recording {
    let storage = emulator.storage();
    Recording::new(call_id).format("Wav").chunk(
        RecordingChunk::new(document_id, 0)
            .with_content_location(storage.content_location(document_id))
            .with_metadata_location(storage.metadata_location(document_id))
            .with_delete_location(storage.delete_location(document_id)),
    )
}

pub(crate) fn sha256_file(path: &Path) -> Sha256Digest {
    Sha256Digest::of(std::fs::read(path).expect("file exists"))
}

pub(crate) fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest::of(bytes)
}

/// Deterministic pseudo-random bytes.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
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
