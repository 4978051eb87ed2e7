//! Shared by the object-store tests: the two backends every suite runs against (Azurite, from
//! [`support::azurite`](super::azurite), and local files), the recorder replicas, the checks and the faulty stores.

#[cfg(unix)]
pub(crate) mod checks;
pub(crate) mod proxy;
#[cfg(unix)]
pub(crate) mod replica;
pub(crate) mod slow;

/// Runs each suite twice, as `<suite>::azurite` and `<suite>::local_files`: a suite is an `async fn(Backend)` of
/// the calling test file.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azurite() {
                super::$suite(Backend::azurite(stringify!($suite))).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local_files() {
                super::$suite(Backend::local()).await
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both_stores;

use std::sync::Arc;
use std::time::SystemTime;

use acs_recording::store::StoreLocation;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::ObjectStore;

pub(crate) use super::azurite::{create_container, url as azurite_url, ACCOUNT, ACCOUNT_KEY};

/// Where a suite runs: Azurite (a fresh container) or a local folder, with what a recorder process needs to
/// reach the same place.
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) location: StoreLocation,
    /// The `--store` URL.
    pub(crate) url: String,
    /// The environment a recorder process needs for `url`.
    pub(crate) env: Vec<(String, String)>,
    _folder: Option<tempfile::TempDir>,
}

/// A container name (at most 63 characters) unique to this test and run.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let name: String = name.to_lowercase().replace('_', "-").chars().take(40).collect();
    format!("{}-{}-{:x}", name.trim_end_matches('-'), std::process::id(), nanos & 0xffff_ffff)
}

impl Backend {
    /// A fresh container in Azurite.
    pub(crate) fn azurite(test: &str) -> Self {
        let container = unique(test);
        create_container(&container);
        Self::azurite_at(container, azurite_url())
    }

    /// The same Azurite container reached through another endpoint (a proxy at `http://127.0.0.1:<port>`): for the
    /// client under test, while checks read Azurite directly.
    pub(crate) fn through(&self, url: &str) -> Self {
        let container =
            self.url.strip_prefix("az://").and_then(|rest| rest.split('/').next()).expect("an Azurite backend");
        Self::azurite_at(container.to_owned(), url)
    }

    fn azurite_at(container: String, url: &str) -> Self {
        acs_recording::store::install_tls_provider();
        let store = MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_endpoint(format!("{url}/{ACCOUNT}"))
            .with_allow_http(true)
            .with_container_name(&container)
            .build()
            .unwrap();
        Self {
            name: "azurite",
            // As `StoreLocation::parse` opens `az://`: with part-by-part uploads, so that uploads resume.
            location: StoreLocation::with_parts(Arc::new(store), Path::from("recordings")),
            url: format!("az://{container}/recordings"),
            env: vec![
                ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
                ("AZURITE_BLOB_STORAGE_URL".into(), url.to_owned()),
            ],
            _folder: None,
        }
    }

    /// A fresh local folder.
    pub(crate) fn local() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("file://{}", folder.path().display());
        let location = StoreLocation::parse(&url).unwrap();
        Self { name: "local", location, url, env: Vec::new(), _folder: Some(folder) }
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        self.location.store()
    }

    /// Every key under the prefix, sorted.
    pub(crate) async fn keys(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        let prefix = self.location.prefix();
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let listed: Vec<_> = self.store().list(prefix).try_collect().await.unwrap();
        let mut keys: Vec<String> = listed.into_iter().map(|meta| meta.location.to_string()).collect();
        keys.sort();
        keys
    }
}
