//! Object storage that several recorder replicas share (feature `object-store`): where a `--store` URL points, and
//! the conditional writes that the [`ObjectStoreSink`](crate::download::sink::ObjectStoreSink) and the
//! [`ObjectStoreJournal`](crate::journal::ObjectStoreJournal) coordinate through.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use acs_recording::store::StoreLocation;
//!
//! let folder = tempfile::tempdir()?;
//! let url = format!("file://{}/recordings", folder.path().display());
//! let location = StoreLocation::parse(&url)?;
//! assert_eq!(location.prefix().as_ref(), "");
//! assert!(folder.path().join("recordings").is_dir());
//!
//! let error = StoreLocation::parse("s3://bucket/prefix").unwrap_err();
//! assert_eq!(error.to_string(), "`s3://bucket/prefix` is not a store this recorder opens: use az://<container>/<prefix> or file:///<absolute path>");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Rules
//!
//! 1. `az://<container>/<prefix>` opens Azure Blob Storage with the settings `MicrosoftAzureBuilder::from_env`
//!    reads (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_USE_EMULATOR=true` for
//!    Azurite, `AZURITE_BLOB_STORAGE_URL` to move its port); `file:///<absolute path>` opens a local folder
//!    (created when missing).
//! 2. Small records are written create-only (`PutMode::Create`) or compared-and-swapped (`PutMode::Update` with
//!    the ETag): "already exists" and "precondition failed" are answers, not failures.
//! 3. Errors never carry a key or a SAS token: object_store redacts them, and the URL's query string is never
//!    printed.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// An object store and the prefix under which the recorder keeps everything.
#[derive(Clone)]
pub struct StoreLocation {
    store: Arc<dyn ObjectStore>,
    /// The same store, when it takes the parts of an upload one by one (Azure, S3, GCS): uploads can then resume.
    parts: Option<Arc<dyn MultipartStore>>,
    prefix: Path,
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store's Display names its kind and container; its Debug could hold credentials.
        f.debug_struct("StoreLocation")
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix.as_ref())
            .finish()
    }
}

impl StoreLocation {
    /// A store and a prefix inside it (empty for the store's root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, parts: None, prefix }
    }

    /// A store that also takes the parts of an upload one by one (`MultipartStore`: Azure, S3, GCS, memory): the
    /// [`ObjectStoreSink`](crate::download::sink::ObjectStoreSink) then keeps what a chunk's upload committed so far,
    /// and a later attempt goes on from there.
    pub fn with_parts<T: ObjectStore + MultipartStore>(store: Arc<T>, prefix: Path) -> Self {
        Self { store: store.clone(), parts: Some(store), prefix }
    }

    /// The store's part-by-part uploads, when it has them.
    pub fn parts(&self) -> Option<&Arc<dyn MultipartStore>> {
        self.parts.as_ref()
    }

    /// Opens `az://<container>/<prefix>` (settings from the environment) or `file:///<absolute path>`.
    pub fn parse(url: &str) -> io::Result<Self> {
        let shown = url.split(['?', '#']).next().unwrap_or_default();
        let unsupported = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{shown}` is not a store this recorder opens: use az://<container>/<prefix> or file:///<absolute path>"
                ),
            )
        };
        if let Some(rest) = shown.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(unsupported());
            }
            std::fs::create_dir_all(rest)?;
            // Empty folders go with their last object, as they do in a bucket.
            let local = LocalFileSystem::new_with_prefix(rest).map_err(io_error)?.with_automatic_cleanup(true);
            return Ok(Self::new(Arc::new(local), Path::default()));
        }
        let rest = shown.strip_prefix("az://").or_else(|| shown.strip_prefix("azure://")).ok_or_else(unsupported)?;
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if container.is_empty() {
            return Err(unsupported());
        }
        install_tls_provider();
        let azure = MicrosoftAzureBuilder::from_env().with_container_name(container).build().map_err(io_error)?;
        let prefix = Path::parse(prefix.trim_matches('/')).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("`{prefix}` is not a valid object prefix: {e}"))
        })?;
        Ok(Self::with_parts(Arc::new(azure), prefix))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix everything is kept under.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// A key under the prefix, from `/`-separated parts that are already safe names.
    pub(crate) fn key(&self, parts: &[&str]) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.join(*part);
        }
        path
    }
}

/// Installs ring as rustls's process-wide crypto provider, unless one is installed already: object_store's HTTP
/// client needs one. [`StoreLocation::parse`] calls it; call it before building an Azure store yourself.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An object_store error as an I/O error of the matching kind.
pub(crate) fn io_error(error: object_store::Error) -> io::Error {
    let kind = match &error {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            io::ErrorKind::PermissionDenied
        }
        object_store::Error::NotImplemented { .. } => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

/// Whether a conditional write lost: the object exists, or its version moved on.
pub(crate) fn lost_condition(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. })
}

/// What a conditional PUT did.
#[derive(Debug)]
pub(crate) enum Conditional {
    /// The bytes are in the store, at this version.
    Written(UpdateVersion),
    /// The condition failed: the object holds other bytes (found, at their version) or is gone (`None`).
    Refused(Option<(Bytes, UpdateVersion)>),
}

/// PUTs `bytes` to `path` under `mode`'s condition (create-only, or compare-and-swap on a version).
///
/// A refusal is checked against what the store holds: when a PUT was applied but its answer lost (a connection
/// closed after the request went through), the client sends it again and the second attempt fails the condition
/// that the first one met. The object then holds exactly these bytes, and the write is this caller's. Callers make
/// their bytes unique to the writer (an owner and an expiry, a job's own record), so that another writer's PUT is
/// never taken for theirs.
pub(crate) async fn put_conditional(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
    mode: PutMode,
) -> io::Result<Conditional> {
    let options = PutOptions { mode, ..PutOptions::default() };
    let error = match store.put_opts(path, PutPayload::from_bytes(bytes.clone()), options).await {
        Ok(put) => return Ok(Conditional::Written(UpdateVersion { e_tag: put.e_tag, version: put.version })),
        Err(error) => error,
    };
    if !lost_condition(&error) && !matches!(error, object_store::Error::NotFound { .. }) {
        return Err(io_error(error));
    }
    let found = match store.get(path).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(Conditional::Refused(None)),
        Err(error) => return Err(io_error(error)),
    };
    let version = UpdateVersion { e_tag: found.meta.e_tag.clone(), version: found.meta.version.clone() };
    match found.bytes().await {
        Ok(held) if held == bytes => {
            tracing::info!(key = %path, "a conditional write whose answer was lost is in the store");
            Ok(Conditional::Written(version))
        }
        Ok(held) => Ok(Conditional::Refused(Some((held, version)))),
        Err(object_store::Error::NotFound { .. }) => Ok(Conditional::Refused(None)),
        Err(error) => Err(io_error(error)),
    }
}

/// Writes `bytes` only if nothing is at `path`: `Ok(None)` when something else is (see [`put_conditional`] for
/// a write of these bytes whose answer was lost).
pub(crate) async fn put_create(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
) -> io::Result<Option<UpdateVersion>> {
    match put_conditional(store, path, bytes, PutMode::Create).await? {
        Conditional::Written(version) => Ok(Some(version)),
        Conditional::Refused(_) => Ok(None),
    }
}

/// A token unique to this process and call: for staging keys and lease owners.
pub(crate) fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    let random = hasher.finish();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{random:016x}{n:04x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_name_no_supported_store_are_refused_without_their_query() {
        for url in ["s3://bucket/x", "file://relative/path", "az:///prefix", "http://host/x?sig=secret"] {
            let error = StoreLocation::parse(url).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{url}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| unique_token()).collect();
        assert_eq!(tokens.len(), 1000);
    }
}
