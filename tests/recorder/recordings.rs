//! What the recording is: an unmixed recording's channel map beside each chunk, a recording exported to the
//! customer's storage recorded rather than downloaded (unless asked), a failed export downloaded as usual.

use crate::support::recorder::*;

#[tokio::test]
async fn an_unmixed_recording_has_its_channel_map_written_beside_each_chunk() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let participants = ["8:acs:caller", "8:acs:customer", "4:+15551234567"];
    let recording = emulator.storage().record(RecordingSpec::new("call-unmixed", 100_000).unmixed(participants));
    assert_eq!(recording.channel_type, "Unmixed");
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    let sink = DirectorySink::new(out.path());
    for chunk in &recording.chunks {
        let target = ChunkTarget::new("call-unmixed", &chunk.document_id, chunk.index, "wav");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sink.manifest_path(&target)).unwrap()).unwrap();
        assert_eq!(manifest["sha256"], chunk.sha256.to_string());
        assert_eq!(
            manifest["channels"],
            serde_json::json!([
                {"channel": 0, "participantId": "8:acs:caller"},
                {"channel": 1, "participantId": "8:acs:customer"},
                {"channel": 2, "participantId": "4:+15551234567"},
            ]),
            "chunk {}",
            chunk.index
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn a_recording_exported_to_the_customer_storage_is_recorded_and_not_downloaded() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-byos", 150_000).storage_type("AzureBlob"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    assert_eq!(event.data["storageType"], "AzureBlob");
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert!(job.chunks.iter().all(|c| c.state == ChunkState::Exported && c.location.is_none()), "{job:?}");
    let exported = job.exported.as_ref().expect("where the recording is");
    assert_eq!(exported.storage_type.as_str(), "AzureBlob");
    assert_eq!(exported.recording_id.as_deref(), Some(recording.recording_id.as_str()));
    let date: String = recording.start_time[..10].chars().filter(char::is_ascii_digit).collect();
    assert_eq!(
        exported.folder_prefix.as_deref(),
        Some(format!("{date}/call-byos/{}-", &recording.recording_id[..8]).as_str())
    );
    // Not one request reached the storage, and nothing was written.
    let requests: usize = recording.chunks.iter().map(|c| emulator.storage().requests_for(&c.document_id).len()).sum();
    assert_eq!(requests, 0);
    assert!(!out.path().join("call-byos").exists());
    running.stop().await;
}

#[tokio::test]
async fn a_failed_export_is_downloaded_from_acs_as_usual() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording =
        emulator.storage().record(RecordingSpec::new("call-export-failed", 150_000).storage_type("acsstorage"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::EventGrid, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.exported, None);
    assert_eq!(content_bytes_served(&emulator, &recording), recording.bytes());
    running.stop().await;
}

#[tokio::test]
async fn an_exported_recording_is_downloaded_too_when_the_builder_asks() {
    let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await.unwrap();
    let recording = emulator.storage().record(RecordingSpec::new("call-byos-copy", 100_000).storage_type("AzureBlob"));
    let out = tempfile::tempdir().unwrap();
    let running = Running::start(&emulator, out.path(), |b| b.exported_recordings(ExportedRecordings::Download)).await;
    let event = recording_file_status_updated(&recording);
    let publisher = running.publisher(Schema::CloudEvents, once());
    assert_eq!(publisher.deliver(std::slice::from_ref(&event)).await, DeliveryOutcome::Delivered { attempts: 1 });
    let job = finished(&running.journal, &event.id).await;
    assert_files_right(&job, &recording);
    assert_eq!(job.exported, None);
    running.stop().await;
}
