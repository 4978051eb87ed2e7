//! Recordings that ACS exported to the customer's own storage (bring your own storage).

/// What the recorder does with a recording whose event says ACS exported it to the customer's container
/// ([`Recording::exported`](crate::recording::Recording::exported)); set with
/// [`RecorderBuilder::exported_recordings`](super::RecorderBuilder::exported_recordings). A failed export names ACS
/// storage in its event and is always downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExportedRecordings {
    /// Download nothing: the job is done at once, with where the recording is in [`Job::exported`](crate::journal::Job::exported) and every
    /// chunk [`ChunkState::Exported`](crate::journal::ChunkState::Exported) (the default).
    #[default]
    Record,
    /// Download it from ACS storage as well, as any other recording (ACS keeps it for 24 hours).
    Download,
}
