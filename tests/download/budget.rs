//! One memory budget for every parallel download: chunks that share a budget far smaller than their parts all
//! complete with the right bytes, the budget is never exceeded and comes back whole, and parts that arrive ahead of
//! the hash beyond the budget are hashed from the file.

use crate::support::download::*;
use acs_recording::download::{MemoryBudget, ParallelPolicy};
use acs_recording::emulator::{Emulator, Link, RecordingSpec};

const THRESHOLD: u64 = 64 * 1024;
const PART: u64 = 16 * 1024;

fn policy() -> ParallelPolicy {
    ParallelPolicy::new(THRESHOLD, PART, 4).fast_stream(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_chunks_sharing_a_budget_of_two_parts_all_complete_with_their_bytes() {
    // Four chunks of a threshold and eight parts each, downloaded at once over a link slow enough that they overlap.
    let emulator = Emulator::builder().chunk_limit(THRESHOLD + 8 * PART + 44).start().await.unwrap();
    let stored = emulator.storage().record(RecordingSpec::new("call", 4 * (THRESHOLD + 8 * PART)));
    assert_eq!(stored.chunks.len(), 4);
    emulator.storage().set_link(Link::unlimited().bandwidth(4_000_000));
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget::new(2 * PART);
    let downloader =
        downloader(&emulator, dir.path()).parallel(Some(policy())).concurrency(4).memory_budget(budget.clone());

    let manifest = downloader.download(recording_of(&stored)).await.unwrap();
    for (got, want) in manifest.chunks.iter().zip(&stored.chunks) {
        assert_eq!(got.sha256, want.sha256, "chunk {}", want.index);
        assert_eq!(sha256_file(std::path::Path::new(&got.location)), want.sha256, "chunk {}", want.index);
    }
    // Parts drew from the budget, never past it, and gave everything back.
    assert!(budget.peak() > 0 && budget.peak() <= 2 * PART, "peak {}", budget.peak());
    assert_eq!(budget.available(), 2 * PART);
}

#[tokio::test]
async fn parts_ahead_of_a_slow_first_part_beyond_the_budget_hash_from_the_file() {
    // The first request (a threshold) takes four times as long as each part: the parts after it arrive first, with
    // room in the budget for one part only.
    let emulator = Emulator::builder().start().await.unwrap();
    let size = THRESHOLD + 12 * PART + 5;
    let bytes = pattern(size as usize, 23);
    emulator.storage().put_document("ahead", bytes.clone());
    emulator.storage().set_document_link("ahead", Link::unlimited().bandwidth(1_000_000));
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget::new(PART);
    let downloader = downloader(&emulator, dir.path()).parallel(Some(policy())).memory_budget(budget.clone());

    let manifest = downloader.download(single(&emulator, "call", "ahead")).await.unwrap();
    assert_eq!(manifest.chunks[0].sha256, sha256(&bytes));
    assert_eq!(sha256_file(std::path::Path::new(&manifest.chunks[0].location)), sha256(&bytes));
    assert!(budget.peak() > 0 && budget.peak() <= PART, "peak {}", budget.peak());
    assert_eq!(budget.available(), PART);
}
