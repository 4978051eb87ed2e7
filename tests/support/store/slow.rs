//! A store whose PUTs (and DELETEs) can be made slow: each one of a key containing a given text waits a while, or
//! until the test lets it through, before it reaches the store (as a throttled PUT that object_store retries for
//! minutes does).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_recording::store::StoreLocation;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use tokio::sync::oneshot;

use super::Backend;

/// The backend's store behind slow PUTs.
#[derive(Debug)]
pub(crate) struct SlowPuts {
    inner: Arc<dyn ObjectStore>,
    rules: Arc<Mutex<Vec<Rule>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Put,
    Delete,
}

#[derive(Debug)]
struct Rule {
    operation: Operation,
    contains: String,
    wait: Wait,
}

#[derive(Debug)]
enum Wait {
    /// Every matching PUT waits this long.
    Every(Duration),
    /// The next matching PUT says it arrived, then waits until released.
    Once { arrived: oneshot::Sender<()>, release: oneshot::Receiver<()> },
}

/// A request held back: `arrived` completes once it reached the store wrapper, `release` lets it through.
pub(crate) struct HeldPut {
    pub(crate) arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl HeldPut {
    pub(crate) fn release(self) {
        let _ = self.release.send(());
    }
}

impl SlowPuts {
    /// The backend's store, wrapped, as a location with the backend's prefix.
    pub(crate) fn over(backend: &Backend) -> (Arc<Self>, StoreLocation) {
        let slow = Arc::new(Self { inner: backend.store().clone(), rules: Arc::default() });
        let location = StoreLocation::new(slow.clone(), backend.location.prefix().clone());
        (slow, location)
    }

    /// Every PUT to a key containing `contains` waits `delay` before it is sent on.
    pub(crate) fn delay(&self, contains: &str, delay: Duration) {
        let rule = Rule { operation: Operation::Put, contains: contains.to_owned(), wait: Wait::Every(delay) };
        self.rules.lock().unwrap().push(rule);
    }

    /// The next PUT to a key containing `contains` waits until it is released.
    pub(crate) fn hold_next(&self, contains: &str) -> HeldPut {
        self.hold(Operation::Put, contains)
    }

    /// The next DELETE of a key containing `contains` waits until it is released.
    pub(crate) fn hold_next_delete(&self, contains: &str) -> HeldPut {
        self.hold(Operation::Delete, contains)
    }

    fn hold(&self, operation: Operation, contains: &str) -> HeldPut {
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        let wait = Wait::Once { arrived: arrived_tx, release: release_rx };
        self.rules.lock().unwrap().push(Rule { operation, contains: contains.to_owned(), wait });
        HeldPut { arrived, release }
    }
}

async fn wait_for(rules: &Mutex<Vec<Rule>>, operation: Operation, location: &Path) {
    let wait = {
        let mut rules = rules.lock().unwrap();
        let matches = |rule: &Rule| rule.operation == operation && location.as_ref().contains(&rule.contains);
        let Some(at) = rules.iter().position(matches) else { return };
        match &rules[at].wait {
            Wait::Every(delay) => Wait::Every(*delay),
            Wait::Once { .. } => rules.remove(at).wait,
        }
    };
    match wait {
        Wait::Every(delay) => tokio::time::sleep(delay).await,
        Wait::Once { arrived, release } => {
            let _ = arrived.send(());
            let _ = release.await;
        }
    }
}

impl fmt::Display for SlowPuts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlowPuts({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for SlowPuts {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        wait_for(&self.rules, Operation::Put, location).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let rules = self.rules.clone();
        let held = locations.then(move |location| {
            let rules = rules.clone();
            async move {
                if let Ok(location) = &location {
                    wait_for(&rules, Operation::Delete, location).await;
                }
                location
            }
        });
        self.inner.delete_stream(held.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
