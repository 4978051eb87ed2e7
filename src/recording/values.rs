//! The open value sets of the recording model: content, channel and format types, end reasons, storage types.

open_enum! {
    /// What a recording holds (`recordingContentType`).
    RecordingContentType {
        /// Audio and video.
        AudioVideo => "AudioVideo",
        /// Audio only.
        Audio => "Audio",
    }
}

open_enum! {
    /// How the audio channels are laid out (`recordingChannelType`).
    RecordingChannelType {
        /// All participants mixed into one channel.
        Mixed => "Mixed",
        /// One channel per participant.
        Unmixed => "Unmixed",
    }
}

open_enum! {
    /// The container format of the media (`recordingFormatType`).
    RecordingFormatType {
        /// WAV audio.
        Wav => "Wav",
        /// MP3 audio.
        Mp3 => "Mp3",
        /// MP4 audio and video.
        Mp4 => "Mp4",
    }
}

open_enum! {
    /// Why a chunk ended (`endReason`).
    ChunkEndReason {
        /// The recording session ended.
        SessionEnded => "SessionEnded",
        /// The chunk reached the maximum size; the recording continues in the next chunk.
        ChunkMaximumSizeExceeded => "ChunkMaximumSizeExceeded",
        /// The chunk reached the maximum duration; the recording continues in the next chunk.
        ChunkMaximumTimeExceeded => "ChunkMaximumTimeExceeded",
        /// The chunk could not be uploaded.
        ChunkUploadFailure => "ChunkUploadFailure",
    }
}

open_enum! {
    /// Why the recorded call session ended (`sessionEndReason`).
    SessionEndReason {
        /// The call ended.
        CallEnded => "CallEnded",
        /// The participant who started the recording left.
        InitiatorLeft => "InitiatorLeft",
    }
}

open_enum! {
    /// Where ACS put the recording (`storageType`; set when the recording went to the customer's own storage). The
    /// documented values
    /// vary between versions of the documentation, so [`is_external`](Self::is_external) decides.
    RecordingStorageType {
        /// Exported to the customer's Azure Blob container (the current documentation's value).
        AzureBlob => "AzureBlob",
        /// Exported to the customer's container (an earlier preview's value).
        BlobStorage => "blobstorage",
        /// Exported to the customer's container (the name the start-recording options use).
        AzureBlobStorage => "AzureBlobStorage",
        /// Kept in ACS storage (an earlier preview's value): download it.
        AcsStorage => "acsstorage",
        /// Kept in ACS storage (the name the start-recording options use): download it.
        AzureCommunicationServices => "AzureCommunicationServices",
    }
}

impl RecordingFormatType {
    /// The file extension for media of this format: `wav`, `mp3`, `mp4`, or `bin` for a format this version does
    /// not know. The value is matched ignoring ASCII case and surrounding spaces.
    ///
    /// ```
    /// use acs_recording::recording::RecordingFormatType;
    /// assert_eq!(RecordingFormatType::parse("Wav").extension(), "wav");
    /// assert_eq!(RecordingFormatType::parse(" mp3 ").extension(), "mp3");
    /// assert_eq!(RecordingFormatType::parse("ogg").extension(), "bin");
    /// ```
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Mp4 => "mp4",
            Self::Other(other) if other.trim().len() != other.len() => Self::parse(other.trim()).extension(),
            Self::Other(_) => "bin",
        }
    }
}

impl RecordingStorageType {
    /// Whether the recording was exported to the customer's own container. `false` for ACS storage and for any
    /// value this version does not know: then the recording is downloaded from ACS, which never loses it.
    pub fn is_external(&self) -> bool {
        matches!(self, Self::AzureBlob | Self::BlobStorage | Self::AzureBlobStorage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values_verbatim() {
        let format: RecordingFormatType = serde_json::from_str(r#""Ogg""#).unwrap();
        assert_eq!(format, RecordingFormatType::Other("Ogg".into()));
        assert_eq!(format.as_str(), "Ogg");
        assert_eq!(serde_json::to_string(&format).unwrap(), r#""Ogg""#);
        let known: RecordingFormatType = serde_json::from_str(r#""Mp4""#).unwrap();
        assert_eq!(known, RecordingFormatType::Mp4);
        assert_eq!(format!("{known:?}"), "RecordingFormatType::Mp4");
    }

    #[test]
    fn known_values_match_in_any_case_as_the_metadata_document_writes_them() {
        assert_eq!(RecordingFormatType::parse("wav"), RecordingFormatType::Wav);
        assert_eq!(RecordingChannelType::parse("unmixed"), RecordingChannelType::Unmixed);
        assert_eq!(RecordingContentType::parse("audioVideo"), RecordingContentType::AudioVideo);
    }

    #[test]
    fn extensions_follow_the_format_type() {
        for (format, ext) in [("Wav", "wav"), ("MP3", "mp3"), ("mp4", "mp4"), ("Unknown", "bin"), (" wav", "wav")] {
            assert_eq!(RecordingFormatType::parse(format).extension(), ext);
        }
    }

    #[test]
    fn only_the_customer_container_storage_types_are_external() {
        let cases = [
            ("AzureBlob", true),
            ("blobstorage", true),
            ("AzureBlobStorage", true),
            ("acsstorage", false),
            ("AzureCommunicationServices", false),
            ("SomethingNew", false),
        ];
        for (value, external) in cases {
            assert_eq!(RecordingStorageType::parse(value).is_external(), external, "{value}");
        }
    }
}
