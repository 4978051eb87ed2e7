//! Downloading recordings: every chunk, streamed, resumed, verified, stored (`SPEC.md` §3, §5).

mod body;
mod chunk;
mod error;
mod fetch;
mod future;
mod location;
mod retry;
mod service;
mod sink;

pub use body::ChunkBody;
pub use chunk::{Chunk, ChunkManifest, Outcome, Progress, RecordingManifest, RecordingRef};
pub use error::{Error, ErrorKind};
pub use future::ResponseFuture;
pub use location::{legacy_content_location, legacy_metadata_location, LEGACY_API_VERSION};
pub use retry::RetryPolicy;
pub use service::{ChunkDownloader, DEFAULT_METADATA_LIMIT};
pub use sink::{
    extension_for_format, sanitize_name, ChunkTarget, DirectorySink, DirectoryWriter, Existing, ObjectVersion, Sink,
    SinkWriter, Stored, WriterSink, WriterSinkWriter,
};
