//! A soak: continuous deliveries (with redeliveries) and downloads with faults on, for `ACS_SOAK_SECONDS` (20 s by
//! default; `ACS_SOAK_SECONDS=600` for the ten-minute figure in the README). The recorder's resident memory and
//! open file descriptors stay flat, and every file is right.

use crate::support::recorder_process::*;

fn soak_duration() -> Duration {
    let seconds = std::env::var("ACS_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20u64);
    Duration::from_secs(seconds.clamp(5, 3600))
}

/// The faults of round `round`, on its first chunk: a cut, a 503, a short body, or none.
fn faults(round: u64) -> Vec<Fault> {
    match round % 4 {
        0 => vec![Fault::DropAfter(10_000)],
        1 => vec![Fault::Status { status: 503, retry_after: None }],
        2 => vec![Fault::ShortBody(5_000)],
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_soak_of_deliveries_and_faulty_downloads_keeps_memory_and_descriptors_flat_and_every_file_right() {
    let emulator = Emulator::builder().chunk_limit(128 * 1024).start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let pid = recorder.child.as_ref().unwrap().id();
    let publisher = recorder.publisher();
    let duration = soak_duration();
    let started = Instant::now();
    let warm_up = duration / 4;
    let mut sent = Vec::new();
    let mut baseline = None;
    let mut round = 0u64;
    while started.elapsed() < duration {
        let recording =
            emulator.storage().record(RecordingSpec::new(format!("soak-{round}"), 60_000 + (round % 5) * 50_000));
        emulator.storage().inject(&recording.chunks[0].document_id, faults(round));
        let event = recording_file_status_updated(&recording);
        let copies = if round.is_multiple_of(3) { 2 } else { 1 };
        for _ in 0..copies {
            let mut attempts = 0;
            while !publisher.deliver(std::slice::from_ref(&event)).await.is_delivered() {
                attempts += 1;
                assert!(attempts < 50, "round {round}: the delivery was refused 50 times");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        sent.push((recording, event));
        round += 1;
        if baseline.is_none() && started.elapsed() >= warm_up {
            baseline = Some((rss_kib(pid), open_fds(pid)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss_start, fds_start) = baseline.expect("a baseline after the warm-up");
    let (rss_end, fds_end) = (rss_kib(pid), open_fds(pid));

    for (recording, event) in &sent {
        let job = wait_for_job(out.path(), event, "the job is done", |job| job.state == JobState::Done).await;
        for (index, chunk) in recording.chunks.iter().enumerate() {
            let digest: [u8; 32] =
                Sha256::digest(std::fs::read(media_path(out.path(), recording, index)).unwrap()).into();
            assert_eq!(digest, chunk.sha256, "{} chunk {index}", recording.call_id);
            assert_eq!(job.chunks[index].state, ChunkState::Stored);
        }
    }
    let jobs = FileJournal::open_read_only(journal_dir(out.path())).unwrap().list().await.unwrap();
    assert_eq!(jobs.len(), sent.len(), "one job per event, redeliveries included");
    let fds_done = open_fds(pid);
    eprintln!(
        "soak of {:?}: {} recordings ({} chunks), RSS {rss_start} -> {rss_end} KiB, fds {fds_start} -> {fds_end} (idle {fds_done})",
        duration,
        sent.len(),
        sent.iter().map(|(r, _)| r.chunks.len()).sum::<usize>(),
    );
    assert!(rss_end <= rss_start + 32 * 1024, "RSS grew from {rss_start} to {rss_end} KiB");
    assert!(fds_end <= fds_start + 16, "descriptors grew from {fds_start} to {fds_end}");
    assert!(fds_done <= fds_start + 16, "descriptors grew from {fds_start} to {fds_done} once idle");
}
