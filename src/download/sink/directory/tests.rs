use super::*;

fn target<'a>() -> ChunkTarget<'a> {
    ChunkTarget { call_id: "call", recording_id: None, document_id: "doc", index: 0, extension: "wav" }
}

fn version() -> ObjectVersion {
    ObjectVersion::new(Some("\"0x1\"".to_owned()), None, Some(11))
}

fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256::digest(bytes).into()
}

#[tokio::test]
async fn a_second_open_of_a_chunk_being_written_fails_and_leaves_its_bytes_intact() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let partial = sink.partial_path(&target());
    let Existing::Absent(mut first) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    first.begin(&version()).await.unwrap();
    first.write(Bytes::from_static(b"hello ")).await.unwrap();
    first.abandon().await.unwrap();

    let Existing::Partial { writer: mut second, offset: 6, .. } = sink.open(&target()).await.unwrap() else {
        panic!("the abandoned bytes are resumable")
    };
    let error = sink.open(&target()).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(error.to_string(), format!("`{}` is locked: another download is writing this chunk", partial.display()));
    assert_eq!(fs::read(&partial).unwrap(), b"hello ");

    second.write(Bytes::from_static(b"world")).await.unwrap();
    let location = second.commit(11, sha256(b"hello world")).await.unwrap();
    assert_eq!(fs::read(&location).unwrap(), b"hello world");
    let Existing::Complete(stored) = sink.open(&target()).await.unwrap() else { panic!("committed") };
    assert_eq!((stored.bytes, stored.sha256), (11, sha256(b"hello world")));
}

#[tokio::test]
async fn a_partial_file_without_its_version_is_emptied_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let partial = sink.partial_path(&target());
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    fs::write(&partial, b"stale bytes").unwrap();
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("no version kept") };
    assert_eq!(fs::metadata(&partial).unwrap().len(), 0);
    writer.write(Bytes::from_static(b"hello world")).await.unwrap();
    let location = writer.commit(11, sha256(b"hello world")).await.unwrap();
    assert_eq!(fs::read(&location).unwrap(), b"hello world");
}

#[tokio::test]
async fn a_writer_dropped_without_commit_releases_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let Existing::Absent(writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    drop(writer);
    assert!(matches!(sink.open(&target()).await.unwrap(), Existing::Absent(_)));
}

#[tokio::test]
async fn a_final_file_whose_size_differs_from_its_manifest_is_not_complete() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    writer.begin(&version()).await.unwrap();
    writer.write(Bytes::from_static(b"hello world")).await.unwrap();
    let location = writer.commit(11, sha256(b"hello world")).await.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("call/.0-doc.wav.json")).unwrap()).unwrap();
    let sha = sha256(b"hello world").to_string();
    assert_eq!(manifest, serde_json::json!({ "bytes": 11, "sha256": sha, "documentId": "doc" }));
    assert_eq!(sink.manifest_path(&target()), dir.path().join("call/.0-doc.wav.json"));

    fs::write(&location, b"hello").unwrap();
    let Existing::Absent(writer) = sink.open(&target()).await.unwrap() else { panic!("a short final file") };
    drop(writer);
    // The same size is trusted, with the SHA-256 recorded at commit.
    fs::write(&location, b"HELLO WORLD").unwrap();
    let Existing::Complete(stored) = sink.open(&target()).await.unwrap() else { panic!("same size") };
    assert_eq!((stored.bytes, stored.sha256), (11, sha256(b"hello world")));
}

#[tokio::test]
async fn the_channel_map_of_the_metadata_lands_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    let metadata: RecordingMetadata = serde_json::from_str(
        r#"{"participants":[{"participantId":"8:acs:b","channel":1},{"participantId":"8:acs:a","channel":0}]}"#,
    )
    .unwrap();
    writer.describe(&metadata);
    writer.begin(&version()).await.unwrap();
    writer.write(Bytes::from_static(b"hello world")).await.unwrap();
    writer.commit(11, sha256(b"hello world")).await.unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(sink.manifest_path(&target())).unwrap()).unwrap();
    assert_eq!(
        manifest["channels"],
        serde_json::json!([{"channel": 0, "participantId": "8:acs:a"}, {"channel": 1, "participantId": "8:acs:b"}])
    );
    // A manifest with a channel map still marks the chunk complete.
    let Existing::Complete(stored) = sink.open(&target()).await.unwrap() else { panic!("committed") };
    assert_eq!(stored.bytes, 11);
}

#[tokio::test]
async fn a_final_file_from_before_manifests_is_trusted_and_rehashed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    fs::create_dir_all(dir.path().join("call")).unwrap();
    fs::write(sink.media_path(&target()), b"legacy").unwrap();
    let Existing::Complete(stored) = sink.open(&target()).await.unwrap() else { panic!("a legacy final file") };
    assert_eq!((stored.bytes, stored.sha256), (6, sha256(b"legacy")));
}

#[tokio::test]
async fn a_final_file_of_another_chunk_is_neither_taken_nor_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirectorySink::new(dir.path());
    let Existing::Absent(mut writer) = sink.open(&target()).await.unwrap() else { panic!("nothing stored yet") };
    writer.begin(&version()).await.unwrap();
    writer.write(Bytes::from_static(b"hello world")).await.unwrap();
    let location = writer.commit(11, sha256(b"hello world")).await.unwrap();
    // A manifest naming another chunk (written by hand, or by a layout that let names collide).
    let manifest = dir.path().join("call/.0-doc.wav.json");
    let sha = sha256(b"hello world").to_string();
    fs::write(&manifest, serde_json::json!({ "bytes": 11, "sha256": sha, "documentId": "other" }).to_string()).unwrap();
    let error = sink.open(&target()).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(error.to_string(), format!("`{location}` holds chunk `other`, not `doc`: left as it is"));
    assert_eq!(fs::read(&location).unwrap(), b"hello world");
}

/// Leaves what a killed download leaves: "hello wor" in the partial file, of which its record says 3 bytes were
/// fsynced, the record made during the boot `boot`.
fn interrupted(sink: &DirectorySink, boot: &str) {
    let partial = sink.partial_path(&target());
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    fs::write(&partial, b"hello wor").unwrap();
    let state = PartialState { version: version(), extents: Vec::new(), durable: Some(3), ..PartialState::default() };
    let mut record = serde_json::to_value(state).unwrap();
    record["bootId"] = boot.into();
    fs::write(state_path(&partial), record.to_string()).unwrap();
}

#[tokio::test]
async fn a_partial_file_resumes_from_its_length_on_the_same_boot_and_from_its_fsynced_bytes_after_another() {
    // Where the platform has no boot id, every record is from "another boot".
    let this_boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|id| id.trim().to_owned()).ok();
    let cases = [("00000000-0000-0000-0000-000000000000", 3), (this_boot.as_deref().unwrap_or(""), 9)];
    for (boot, resumed_at) in cases.into_iter().take(if this_boot.is_some() { 2 } else { 1 }) {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirectorySink::new(dir.path());
        interrupted(&sink, boot);
        let Existing::Partial { mut writer, offset, .. } = sink.open(&target()).await.unwrap() else {
            panic!("boot {boot}: the partial file is resumable")
        };
        assert_eq!(offset, resumed_at, "boot {boot}");
        assert_eq!(fs::metadata(sink.partial_path(&target())).unwrap().len(), resumed_at, "boot {boot}");
        writer.write(Bytes::copy_from_slice(&b"hello world"[resumed_at as usize..])).await.unwrap();
        let location = writer.commit(11, sha256(b"hello world")).await.unwrap();
        assert_eq!(sha256(&fs::read(&location).unwrap()), sha256(b"hello world"), "boot {boot}");
    }
}
