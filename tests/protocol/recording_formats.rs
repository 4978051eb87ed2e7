//! The recording model against its fixtures: metadata documents (mixed and unmixed), bring-your-own-storage
//! events. Provenance in `tests/fixtures/README.md`.

use std::time::Duration;

use crate::support::fixture;
use acs_recording::eventgrid::{Events, Schema};
use acs_recording::recording::{
    ChannelAssignment, Recording, RecordingChannelType, RecordingContentType, RecordingEvents, RecordingFormatType,
    RecordingMetadata, RecordingStorageType,
};

#[test]
fn the_unmixed_metadata_fixture_maps_each_channel_to_one_participant() {
    let metadata: RecordingMetadata = serde_json::from_slice(&fixture("metadata_unmixed.json")).unwrap();
    let info = metadata.recording_info.as_ref().expect("recordingInfo");
    assert_eq!(info.content_type, Some(RecordingContentType::Audio));
    assert_eq!(info.channel_type, Some(RecordingChannelType::Unmixed));
    assert_eq!(info.format, Some(RecordingFormatType::Wav));
    let audio = info.audio_configuration.as_ref().expect("audioConfiguration");
    assert_eq!((audio.sample_rate, audio.bit_rate, audio.channels), (Some(16_000), Some(256_000), Some(3)));
    assert_eq!(info.video_configuration, None);
    assert_eq!(metadata.chunk_index, Some(0));
    assert_eq!(metadata.chunk_start_time.as_deref(), Some("2025-06-02T09:30:00.1234567Z"));
    assert_eq!(metadata.chunk_duration(), Some(Duration::from_secs(754)));
    assert_eq!(metadata.pause_resume_intervals.len(), 1);
    assert_eq!(metadata.pause_resume_intervals[0].start_time.as_deref(), Some("2025-06-02T09:34:10.0000000Z"));
    assert_eq!(metadata.pause_resume_intervals[0].duration(), Some(Duration::from_secs(42)));
    assert_eq!(
        metadata.channels(),
        [
            ChannelAssignment::new(
                0,
                "8:acs:29bd5ea9-e0fc-4d00-8f6f-339b1f0ee2e2_00000021-aaaa-bbbb-cccc-000000000001"
            ),
            ChannelAssignment::new(
                1,
                "8:acs:29bd5ea9-e0fc-4d00-8f6f-339b1f0ee2e2_00000021-aaaa-bbbb-cccc-000000000002"
            ),
            ChannelAssignment::new(2, "4:+14255550123"),
        ]
    );
}

#[test]
fn the_documented_2021_metadata_fixture_parses_with_its_video_configuration() {
    let metadata: RecordingMetadata = serde_json::from_slice(&fixture("metadata_documented_2021.json")).unwrap();
    assert_eq!(metadata.chunk_document_id.as_deref(), Some("0-eus-d11-05bf22b166dfb2119e3ff85d98906121"));
    assert_eq!(metadata.format(), Some(&RecordingFormatType::Mp4));
    let info = metadata.recording_info.as_ref().unwrap();
    // The published example swaps the two values; the open enums keep them as sent.
    assert_eq!(info.channel_type, Some(RecordingChannelType::Other("audioVideo".into())));
    let video = info.video_configuration.as_ref().expect("videoConfiguration");
    assert_eq!(
        (video.longer_side_length, video.shorter_side_length, video.framerate, video.bit_rate),
        (Some(1920), Some(1080), Some(8), Some(1_000_000))
    );
    assert_eq!(metadata.participants.len(), 2);
    assert!(metadata.channels().is_empty());
    assert!(metadata.other.is_empty());
}

fn recording_of(name: &str) -> Recording {
    let events = Events::from_slice(Schema::EventGrid, &fixture(name)).unwrap();
    let events = RecordingEvents::from_events(events);
    let event = events.iter().next().expect("a recording event");
    Recording::from_event(&event)
}

#[test]
fn the_exported_byos_fixture_names_the_customer_storage_and_the_recording() {
    let events = Events::from_slice(Schema::EventGrid, &fixture("recording_byos_exported.eventgrid.json")).unwrap();
    let data = events.as_slice()[0].recording_file_status_updated().expect("typed");
    assert_eq!(data.storage_type(), Some(&RecordingStorageType::AzureBlob));
    assert_eq!(data.recording_id(), Some("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0"));
    // The documented BYOS event has no content, channel or format type: they stay optional.
    assert_eq!((data.content_type(), data.format_type()), (None, None));
    assert!(data.other().is_empty());

    let recording = recording_of("recording_byos_exported.eventgrid.json");
    // The subject has no recording id; the data's is used.
    assert_eq!(recording.recording_id.as_deref(), Some("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0"));
    let exported = recording.exported().expect("exported");
    assert_eq!(exported.call_id, "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    assert_eq!(exported.folder_prefix.as_deref(), Some("20250602/7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d/eyJQbGF0-"));
}

#[test]
fn the_failed_export_fixture_is_a_recording_to_download() {
    let recording = recording_of("recording_byos_export_failed.eventgrid.json");
    assert_eq!(recording.storage_type, Some(RecordingStorageType::AcsStorage));
    assert_eq!(recording.exported(), None);
    assert_eq!(
        recording.chunks[0].content_location(),
        Some("https://us-storage.asm.skype.com/v1/objects/0-eus-d7-8f3c1a2b4d5e6f708192a3b4c5d6e7f8/content/audio")
    );
}
