//! Failed attempts: a retryable failure (an outage, a refused access, a failed delete) is retried with backoff until
//! the recording expires, a permanent one fails the job with its reason, and a failed job can be retried by hand.

use crate::support::recorder::*;

#[tokio::test]
async fn a_storage_outage_longer_than_one_attempt_budget_then_recovery_completes_without_redelivery() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-outage", 150_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    emulator.storage().set_outage(true);
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    // Several attempts, each outlasting its fetch budget, while the job stays pending with the reason.
    let waiting = wait_for(&running.journal, &event.id, "retry", |job| job.attempts >= 3).await;
    assert!(waiting.state.is_open(), "{waiting:?}");
    let reason = waiting.last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("503 Service Unavailable"), "{reason}");
    emulator.storage().set_outage(false);
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(publisher.log().len(), 1, "no redelivery was needed");
    running.stop().await;
}

#[tokio::test]
async fn a_chunk_refused_with_403_is_retried_with_backoff_until_it_is_stored() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-denied", 150_000));
    let refused = recording.chunks[1].document_id.clone();
    // A key being rotated: three attempts are refused, the fourth is let through.
    emulator.storage().inject(&refused, Fault::status_times(403, 3, None));
    let out = tempfile::tempdir().unwrap();
    // Attempts at least 100 ms apart (half the backoff, the rest jitter): long enough to see the job wait.
    let backoff = Duration::from_millis(200);
    let running = Running::start(&emulator, out.path(), |b| b.job_backoff(backoff, backoff)).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    let delivered = Instant::now();
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let waiting = wait_for(&running.journal, &event.id, "a refused attempt", |job| {
        job.state == JobState::Pending && job.attempts >= 1
    })
    .await;
    let reason = waiting.last_error.as_deref().unwrap_or_default();
    assert_eq!(
        reason,
        format!("chunk 1 (`{refused}`) content: access refused with status 403 Forbidden by `127.0.0.1`")
    );
    assert!(waiting.next_attempt_at.is_some(), "{waiting:?}");
    assert_eq!(waiting.chunks[0].state, ChunkState::Stored);

    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.attempts, 4, "three refused attempts, then the download: {job:?}");
    assert!(delivered.elapsed() >= Duration::from_millis(300), "three waits of at least 100 ms");
    // Each chunk's bytes were served once: the refusals cost no byte, the stored chunk was not fetched again.
    assert_eq!(content_bytes_served(&emulator, &recording), recording.bytes());
    running.stop().await;
}

#[tokio::test]
async fn a_chunk_refused_with_403_until_the_recording_expires_fails_its_job() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-denied-for-ever", 50_000));
    let refused = recording.chunks[0].document_id.clone();
    // More refusals than attempts fit in the recording's lifetime: access never comes back.
    emulator.storage().inject(&refused, Fault::status_times(403, 1_000, None));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.recording_lifetime(Duration::from_millis(300))).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.attempts >= 2, "a 403 is retried while the recording lives: {job:?}");
    let reason = job.last_error.unwrap_or_default();
    let (expires, last) = reason
        .strip_prefix("gave up: the recording expires at ")
        .and_then(|rest| rest.split_once("; "))
        .unwrap_or_else(|| panic!("{reason}"));
    assert!(expires.len() == 20 && expires.ends_with('Z'), "{reason}");
    assert_eq!(
        last,
        format!("last failure: chunk 0 (`{refused}`) content: access refused with status 403 Forbidden by `127.0.0.1`")
    );
    running.stop().await;
}

#[tokio::test]
async fn a_retryable_failure_past_the_recording_expiry_fails_the_job() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-late", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.recording_lifetime(Duration::from_millis(200))).await;
    emulator.storage().set_outage(true);
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.last_error.unwrap_or_default();
    assert!(reason.starts_with("gave up: the recording expires at "), "{reason}");
    assert!(reason.contains("503 Service Unavailable"), "{reason}");
    running.stop().await;
}

#[tokio::test]
async fn an_event_older_than_the_recording_lifetime_still_gets_its_first_attempt() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-skew", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    // A sender whose clock is days behind ours: by our clock the recording has already expired.
    let mut event = recording_file_status_updated(&recording);
    event.time = "2020-01-01T00:00:00Z".into();
    let publisher = running.publisher(Schema::EventGrid, once());
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.expires_at, std::time::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + 86_400));
    running.stop().await;
}

#[tokio::test]
async fn a_recording_deleted_from_storage_fails_its_job_with_a_reason_naming_the_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-gone", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let mut event = recording_file_status_updated(&recording);
    let chunk = &mut event.data["recordingStorageInfo"]["recordingChunks"][1];
    let gone = emulator.storage().content_location("no-such-document");
    chunk["contentLocation"] = serde_json::json!(format!("{gone}?sig=SECRET-SAS"));
    let publisher = running.publisher(Schema::EventGrid, once());
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.last_error.clone().unwrap_or_default();
    assert!(reason.starts_with(&format!("chunk 1 (`{}`)", recording.chunks[1].document_id)), "{reason}");
    assert!(reason.contains("404"), "{reason}");
    assert!(!reason.contains("SECRET-SAS"), "{reason}");
    // The chunk before it is stored and stays so; a permanent failure is not retried.
    assert_eq!(job.chunks[0].state, ChunkState::Stored);
    assert_eq!(job.attempts, 1);
    running.stop().await;
}

#[tokio::test]
async fn a_failed_delete_is_retried_without_holding_back_the_other_chunks() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-delete", 150_000));
    let first = recording.chunks[0].document_id.clone();
    emulator.storage().inject_delete(&first, [503; 5]);
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.delete_after_download(true)).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert!(job.chunks.iter().all(|c| c.state == ChunkState::Deleted), "{job:?}");
    assert!(job.attempts >= 2, "{job:?}");
    for chunk in &recording.chunks {
        assert!(emulator.storage().document(&chunk.document_id).unwrap().deleted);
    }
    // The last chunk was deleted before the first chunk's delete finally went through.
    let log = emulator.storage().requests();
    let last_delete = |id: &str| log.iter().rposition(|r| r.method == Method::DELETE && r.path.contains(id)).unwrap();
    assert!(last_delete(&recording.chunks[2].document_id) < last_delete(&first));
    running.stop().await;
}

#[tokio::test]
async fn a_failed_job_retried_by_hand_completes() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-again", 50_000));
    emulator.storage().inject(&recording.chunks[0].document_id, Fault::status_times(404, 1, None));
    let out = tempfile::tempdir().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let journal = FileJournal::open(out.path().join(".journal")).unwrap();
    let recorder = Recorder::builder(&emulator.connection_string(), client, DirectorySink::new(out.path()), journal)
        .allow_list(emulator.allow_list())
        .build();
    let server = TestServer::axum(axum::Router::new().route_service("/e", recorder.webhook())).await;
    let workers = recorder.spawn();
    let publisher = EventGridPublisher::new(&server.url("/e"), Schema::EventGrid).unwrap().with_retry(once());
    let event = recording_file_status_updated(&recording);
    assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
    let failed = finished(recorder.journal(), &event.id).await;
    assert_eq!(failed.state, JobState::Failed);
    let reason = failed.last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("404"), "{reason}");

    let id = JobId::for_event(&event.id);
    assert!(recorder.retry(&id).await.unwrap());
    assert!(!recorder.retry(&JobId::for_event("unknown")).await.unwrap());
    let job = finished(recorder.journal(), &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.attempts, 1, "attempts start over");
    workers.shutdown().await.unwrap();
}
