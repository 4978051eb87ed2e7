//! The webhook journals before answering and every accepted job is downloaded: faults and redeliveries absorbed,
//! malformed events kept apart, a journal that cannot write answered with 503, a restart resuming open jobs.

use crate::support::recorder::*;

#[tokio::test]
async fn every_chunk_reaches_the_sink_once_despite_faults_and_a_redelivery() {
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let emulator = Emulator::builder().chunk_limit(256 * 1024).start().await.unwrap();
        let recording = emulator.storage().record(RecordingSpec::new("call-faults", 900_000));
        emulator.storage().inject(&recording.chunks[0].document_id, [Fault::DropAfter(100_000)]);
        emulator.storage().inject(
            &recording.chunks[1].document_id,
            [Fault::status_times(503, 1, Some(0)), vec![Fault::DropAfter(10)]].concat(),
        );
        let out = tempfile::tempdir().unwrap();
        // Three requests per attempt: the dropped connection, the 503 and the second drop each cost one.
        let three = FetchRetry::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
        let running = Running::start(&emulator, out.path(), |b| b.fetch_retry(three)).await;
        let publisher = running.publisher(schema, once());
        publisher.validate().await.unwrap();
        let event = recording_file_status_updated(&recording);
        for _ in 0..2 {
            assert_eq!(
                publisher.deliver(std::slice::from_ref(&event)).await,
                DeliveryOutcome::Delivered { attempts: 1 }
            );
        }
        let job = finished(&running.journal, &event.id).await;
        assert_files_right(&job, &recording);
        assert_eq!(job.attempts, 1, "{schema:?}: the faults were absorbed by the fetch retries");
        // One job for two deliveries, and every media byte served once: the resumes continued where they stopped.
        assert_eq!(running.journal.list().await.unwrap().len(), 1, "{schema:?}");
        assert_eq!(content_bytes_served(&emulator, &recording), recording.bytes(), "{schema:?}");
        running.stop().await;
    }
}

#[tokio::test]
async fn a_batch_with_one_malformed_event_accepts_the_valid_ones_and_records_the_rejected_one() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-a", 100_000));
    let second = emulator.storage().record(RecordingSpec::new("call-b", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let (a, b) = (recording_file_status_updated(&first), recording_file_status_updated(&second));
    let mut bad = recording_file_status_updated(&first);
    bad.id = "malformed-event".into();
    bad.data["recordingStorageInfo"]["recordingChunks"][0].as_object_mut().unwrap().remove("documentId");
    let envelope = |e: &OutgoingEvent| {
        serde_json::json!({"id": e.id, "subject": e.subject, "eventType": e.event_type, "eventTime": e.time,
            "dataVersion": e.data_version, "data": e.data})
    };
    let body = serde_json::to_vec(&[envelope(&a), envelope(&bad), envelope(&b)]).unwrap();
    let url = running.server.url(&format!("/api/events?code={SECRET}"));
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), r#"{"accepted":2,"duplicates":0,"rejected":1}"#);

    assert_files_right(&finished(&running.journal, &a.id).await, &first);
    assert_files_right(&finished(&running.journal, &b.id).await, &second);
    let rejected = running.journal.get(&JobId::for_event("malformed-event")).await.unwrap().expect("recorded");
    assert_eq!(rejected.state, JobState::Rejected);
    assert_eq!(
        rejected.last_error.as_deref(),
        Some("invalid data for Microsoft.Communication.RecordingFileStatusUpdated: missing field `documentId`")
    );
    // The same batch again: everything is a duplicate, nothing new is journaled.
    let again = send(Method::POST, &url, &[("content-type", "application/json")], body).await;
    assert_eq!(again.text(), r#"{"accepted":0,"duplicates":3,"rejected":0}"#);
    assert_eq!(running.journal.list().await.unwrap().len(), 3);
    running.stop().await;
}

#[tokio::test]
async fn a_journal_that_cannot_write_answers_503_and_loses_nothing() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-disk", 100_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let readyz = running.server.url("/readyz");
    assert_eq!(send(Method::GET, &readyz, &[], Bytes::new()).await.status, StatusCode::OK);

    // The journal's folder replaced by a file: every write fails with a real I/O error.
    let jobs = out.path().join(".journal").join("jobs");
    std::fs::remove_dir(&jobs).unwrap();
    std::fs::write(&jobs, b"").unwrap();
    let publisher = running.publisher(Schema::EventGrid, once());
    let event = recording_file_status_updated(&recording);
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Exhausted { attempts: 1 });
    assert_eq!(publisher.log().last().unwrap().status, Some(StatusCode::SERVICE_UNAVAILABLE));
    let ready = send(Method::GET, &readyz, &[], Bytes::new()).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().contains("the journal cannot write"), "{}", ready.text());
    assert_eq!(send(Method::GET, &running.server.url("/healthz"), &[], Bytes::new()).await.status, StatusCode::OK);

    // The disk comes back; Event Grid's next attempt is accepted and the recording downloaded.
    std::fs::remove_file(&jobs).unwrap();
    std::fs::create_dir(&jobs).unwrap();
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    assert_files_right(&finished(&running.journal, &event.id).await, &recording);
    running.stop().await;
}

#[tokio::test]
async fn a_full_journal_answers_503_until_a_job_finishes() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let first = emulator.storage().record(RecordingSpec::new("call-1", 50_000));
    let second = emulator.storage().record(RecordingSpec::new("call-2", 50_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.max_pending(1)).await;
    let publisher = running.publisher(Schema::EventGrid, once());
    emulator.storage().set_outage(true);
    let (a, b) = (recording_file_status_updated(&first), recording_file_status_updated(&second));
    assert!(publisher.deliver(std::slice::from_ref(&a)).await.is_delivered());
    assert_eq!(publisher.deliver(std::slice::from_ref(&b)).await, DeliveryOutcome::Exhausted { attempts: 1 });
    assert_eq!(publisher.log().last().unwrap().status, Some(StatusCode::SERVICE_UNAVAILABLE));
    let (status, text) = running.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("intake full"), "{text}");
    emulator.storage().set_outage(false);
    assert_files_right(&finished(&running.journal, &a.id).await, &first);
    // The journal records the outcome before the worker frees its slot: readiness says when intake is open again.
    let recorder = &running;
    eventually(Duration::from_secs(10), "intake opens again after the job finished", || async move {
        (recorder.ready().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert!(publisher.deliver(std::slice::from_ref(&b)).await.is_delivered());
    assert_files_right(&finished(&running.journal, &b.id).await, &second);
    running.stop().await;
}

#[tokio::test]
async fn an_open_job_resumes_when_the_recorder_starts_again() {
    let emulator = Emulator::builder().chunk_limit(4 << 20).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-resume", 5_000_000));
    let stalled = recording.chunks[0].document_id.clone();
    emulator.storage().inject(&stalled, [Fault::StallAfter(3 << 20)]);
    let out = tempfile::tempdir().unwrap();
    let event = recording_file_status_updated(&recording);
    let partial = out.path().join("call-resume").join(format!(".0-{stalled}.wav.partial"));
    let kept = {
        let running = Running::start(&emulator, out.path(), |b| b.shutdown_grace(Duration::ZERO)).await;
        let publisher = running.publisher(Schema::EventGrid, once());
        assert!(publisher.deliver(std::slice::from_ref(&event)).await.is_delivered());
        let job = wait_for(&running.journal, &event.id, "start", |job| job.state == JobState::Running).await;
        assert_eq!(job.attempts, 1);
        // The stalled chunk has written part of its bytes to its partial file when the recorder stops.
        eventually(Duration::from_secs(30), "the partial file fills", || {
            std::future::ready((std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) >= 2 << 20).then_some(()))
        })
        .await;
        let journal = running.stop().await;
        let interrupted = journal.get(&JobId::for_event(&event.id)).await.unwrap().unwrap();
        assert_eq!(interrupted.state, JobState::Running);
        // The stopped download's writing thread syncs the partial file and its record before it lets the file go
        // (a process that ends lets it go at once): the next recorder starts once it has.
        eventually(Duration::from_secs(30), "the partial file is let go", || {
            std::future::ready(std::fs::File::open(&partial).unwrap().try_lock().ok())
        })
        .await;
        std::fs::metadata(&partial).unwrap().len()
    };
    // A new recorder on the same folders, no redelivery: the job resumes from the partial file.
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.attempts, 2, "{job:?}");
    let requests = emulator.storage().requests_for(&stalled);
    let ranges: Vec<Option<&str>> =
        requests.iter().filter(|r| !r.path.ends_with("acsmetadata")).map(|r| r.range.as_deref()).collect();
    assert_eq!(ranges.last().copied().flatten(), Some(format!("bytes={kept}-").as_str()), "{ranges:?}");
    running.stop().await;
}

#[tokio::test]
async fn done_jobs_are_pruned_after_their_retention_and_failed_ones_are_kept() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let good = emulator.storage().record(RecordingSpec::new("call-good", 50_000));
    let bad = emulator.storage().record(RecordingSpec::new("call-bad", 50_000));
    emulator.storage().inject(&bad.chunks[0].document_id, Fault::status_times(404, 1, None));
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (recording_file_status_updated(&good), recording_file_status_updated(&bad));
    {
        let running = Running::start(&emulator, out.path(), |b| b).await;
        let publisher = running.publisher(Schema::EventGrid, once());
        assert!(publisher.deliver(&[a.clone(), b.clone()]).await.is_delivered());
        assert_eq!(finished(&running.journal, &a.id).await.state, JobState::Done);
        assert_eq!(finished(&running.journal, &b.id).await.state, JobState::Failed);
        running.stop().await;
    }
    // Kept for the default 48 hours, a done job still answers a redelivery as a duplicate across a restart.
    let running = Running::start(&emulator, out.path(), |b| b).await;
    assert_eq!(running.journal.list().await.unwrap().len(), 2);
    let url = running.server.url(&format!("/api/events?code={SECRET}"));
    let redelivery = serde_json::to_vec(&[serde_json::json!({"id": a.id, "subject": a.subject,
        "eventType": a.event_type, "eventTime": a.time, "dataVersion": a.data_version, "data": a.data})])
    .unwrap();
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], redelivery).await;
    assert_eq!(reply.text(), r#"{"accepted":0,"duplicates":1,"rejected":0}"#);
    running.stop().await;
    // With no retention, the next start prunes the done job and keeps the failed one with its reason.
    let running = Running::start(&emulator, out.path(), |b| b.done_retention(Duration::ZERO)).await;
    let left = running.journal.list().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].event_id.as_str(), left[0].state), (b.id.as_str(), JobState::Failed));
    assert!(left[0].last_error.as_deref().unwrap_or_default().contains("404"));
    running.stop().await;
}

/// A source other than the webhook (a queue consumer) admits through the intake: the events are journaled,
/// deduplicated and their recording stored, as a delivery's would be, with no HTTP on the way.
#[tokio::test]
async fn events_admitted_without_http_are_journaled_deduplicated_and_stored() {
    use acs_recording::eventgrid::{Events, Schema as Envelope};
    use acs_recording::recording::RecordingEvents;

    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-admitted", 150_000));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    let message = serde_json::json!([{
        "id": event.id, "eventType": event.event_type, "subject": event.subject, "eventTime": event.time,
        "dataVersion": event.data_version, "data": event.data,
    }]);
    let events =
        RecordingEvents::from_events(Events::from_slice(Envelope::EventGrid, message.to_string().as_bytes()).unwrap());

    let admitted = running.intake.admit(&events).await.unwrap();
    assert_eq!((admitted.accepted, admitted.duplicates, admitted.rejected), (1, 0, 0));
    let again = running.intake.admit(&events).await.unwrap();
    assert_eq!((again.accepted, again.duplicates, again.rejected), (0, 1, 0));
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(running.journal.list().await.unwrap().len(), 1);
    running.stop().await;
}
