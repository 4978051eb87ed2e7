//! The emulator's Event Grid namespace topic with pull delivery: one topic and one event subscription on the
//! endpoint listener, speaking the data plane the [`NamespaceClient`](crate::eventgrid::namespace::NamespaceClient)
//! and the official SDKs' receiver clients speak.
//!
//! # Rules
//!
//! 1. `POST /topics/{topic}:publish` and `POST /topics/{topic}/eventsubscriptions/{subscription}:{action}`
//!    (`receive`, `acknowledge`, `release`, `reject`, `renewLock`) with `api-version` 2024-06-01 (or the earlier
//!    versions the SDKs sent: 2023-06-01-preview, 2023-10-01-preview, 2023-11-01), authenticated with
//!    `Authorization: SharedAccessKey <key>` (or the emulator's bearer token, when one was configured), the key
//!    compared in constant time; 401 otherwise, 404 for another topic or subscription.
//! 2. A receive hands out up to `maxEvents` events, each locked for the lock duration (60 s unless configured),
//!    and waits up to `maxWaitTime` seconds for the first (the service's minimum of 10 s is not enforced, so that
//!    tests poll quickly; 120 s is the maximum).
//! 3. An event whose lock expired is handed out again with a higher delivery count; once it was delivered the
//!    maximum number of times (10 unless configured) it goes to the [dead letters](NamespaceTopic::dead_letters)
//!    instead, as a rejected one does.
//! 4. Settling a token whose lock expired, or one never handed out, fails that token alone with `TokenLost`.

mod queue;
mod serve;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

pub use queue::DeadLetter;
use queue::Queue;

use crate::secret::SecretDigest;

/// The lock duration of the emulator's subscription unless configured: the service's default.
pub(crate) const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(60);

/// The maximum delivery count unless configured: the service's default.
pub(crate) const DEFAULT_MAX_DELIVERY_COUNT: u32 = 10;

/// How the namespace topic is set up.
#[derive(Clone, Debug)]
pub(crate) struct NamespaceConfig {
    pub(crate) topic: String,
    pub(crate) subscription: String,
    pub(crate) lock_duration: Duration,
    pub(crate) max_delivery_count: u32,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            topic: "recordings".into(),
            subscription: "recorder".into(),
            lock_duration: DEFAULT_LOCK_DURATION,
            max_delivery_count: DEFAULT_MAX_DELIVERY_COUNT,
        }
    }
}

/// The emulator's namespace topic and its one pull subscription: publish to it, and read what receivers did
/// (acknowledgements per event, dead letters). Cheap to clone.
#[derive(Clone)]
pub struct NamespaceTopic {
    shared: Arc<Shared>,
}

struct Shared {
    config: NamespaceConfig,
    key: String,
    key_digest: SecretDigest,
    bearer: Option<SecretDigest>,
    queue: Mutex<Queue>,
    /// Wakes waiting receives when an event is published.
    published: Notify,
}

impl NamespaceTopic {
    pub(crate) fn new(config: NamespaceConfig, key: String, bearer: Option<SecretDigest>) -> Self {
        let queue = Queue::new(config.lock_duration, config.max_delivery_count.max(1));
        let key_digest = SecretDigest::of(format!("SharedAccessKey {key}").as_bytes());
        Self {
            shared: Arc::new(Shared {
                config,
                key,
                key_digest,
                bearer,
                queue: Mutex::new(queue),
                published: Notify::new(),
            }),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.config.topic
    }

    /// The event subscription's name.
    pub fn subscription(&self) -> &str {
        &self.shared.config.subscription
    }

    /// The access key receivers and publishers authenticate with (`Authorization: SharedAccessKey <key>`).
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// `/topics/{topic}/eventsubscriptions/{subscription}` on the emulator's endpoint: the path of the URL a
    /// receiver is given.
    pub fn subscription_path(&self) -> String {
        format!("/topics/{}/eventsubscriptions/{}", self.topic(), self.subscription())
    }

    /// Publishes one CloudEvent as is (no check of its fields, so that tests can publish what the service would
    /// refuse).
    pub fn publish(&self, event: Value) {
        self.queue().publish(event, Instant::now());
        self.shared.published.notify_waiters();
    }

    /// How many times the event with this id was acknowledged.
    pub fn acknowledgements(&self, event_id: &str) -> u32 {
        self.queue().acknowledged.get(event_id).copied().unwrap_or(0)
    }

    /// How many times the event with this id was handed to a receiver.
    pub fn deliveries(&self, event_id: &str) -> u32 {
        self.queue().deliveries.get(event_id).copied().unwrap_or(0)
    }

    /// The ids of every event acknowledged, each as often as it was.
    pub fn acknowledged(&self) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = self.queue().acknowledged.iter().map(|(id, n)| (id.clone(), *n)).collect();
        all.sort();
        all
    }

    /// The events rejected or delivered too often, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.queue().dead_letters.clone()
    }

    /// Events neither acknowledged, rejected nor dead-lettered yet.
    pub fn pending(&self) -> usize {
        self.queue().len()
    }
}

impl fmt::Debug for NamespaceTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceTopic")
            .field("topic", &self.shared.config.topic)
            .field("subscription", &self.shared.config.subscription)
            .field("lock_duration", &self.shared.config.lock_duration)
            .field("max_delivery_count", &self.shared.config.max_delivery_count)
            .field("key", &"<redacted>")
            .finish()
    }
}
