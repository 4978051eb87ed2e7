//! An embedded local stand-in for Azure Communication Services recording storage, for tests, examples and apps
//! that want to run without an Azure account (feature `emulator`).
//!
//! ```
//! use acs_recording::download::ChunkDownloader;
//! use acs_recording::download::sink::WriterSink;
//! use acs_recording::emulator::{Emulator, RecordingSpec};
//! use acs_recording::signing::HmacSigningLayer;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use sha2::{Digest, Sha256};
//! use tower::ServiceBuilder;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let emulator = Emulator::builder().chunk_limit(64 * 1024).start().await?;
//! let recording = emulator.storage().record(RecordingSpec::new("call-1", 150_000));
//! assert_eq!(recording.chunks.len(), 3);
//! assert_eq!(recording.chunks[0].end_reason, "ChunkMaximumSizeExceeded");
//!
//! // Requests must be signed with the emulator's key, as for the real service.
//! let client = ServiceBuilder::new()
//!     .layer(HmacSigningLayer::from_connection_string(&emulator.connection_string()).allow_list(emulator.allow_list()))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//! let downloader = ChunkDownloader::new(client, WriterSink::new(Vec::new()))
//!     .endpoint(emulator.endpoint().clone())
//!     .allow_list(emulator.allow_list());
//!
//! let mut first = recording.to_recording();
//! first.chunks.truncate(1);
//! let manifest = downloader.download(first).await?;
//! assert_eq!(manifest.chunks[0].sha256, recording.chunks[0].sha256);
//!
//! let media = downloader.sink().clone();
//! drop(downloader);
//! let bytes = media.into_inner().expect("no download holds the sink");
//! assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), recording.chunks[0].sha256);
//!
//! // Unsigned requests are refused.
//! let plain = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let response = plain.get(recording.chunks[0].content_location.parse()?).await?;
//! assert_eq!(response.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! ```
//!
//! # What it serves
//!
//! 1. Two listeners on `127.0.0.1`, each on its own port: the *endpoint* (the ACS resource: the legacy
//!    `/recording/download/{documentId}[/metadata]` paths) and the *storage* host that the event locations point
//!    at (`/v1/objects/{id}/content/audio`, `/content/acsmetadata`, `DELETE /v1/objects/{id}`), so downloads
//!    exercise the cross-host signing rule as they do in Azure (a request to the storage host is signed for the
//!    endpoint's host, not its own).
//! 2. Every request must carry a valid ACS HMAC signature over the *endpoint's* authority, checked by
//!    [`HmacVerifyLayer`], or, when one was configured with [`EmulatorBuilder::bearer_token`], the test token as
//!    `Authorization: Bearer <token>` (compared in constant time), as an Entra ID client sends; a failure is a 401.
//! 3. `GET` and `HEAD` with `Range` (`bytes=N-`, `bytes=N-M`, `bytes=-N`; 206 with `Content-Range`, 416 with
//!    `bytes */len`), `ETag`, `Last-Modified`, `If-Match` and `If-Unmodified-Since` (412). `DELETE` answers 200,
//!    then 404 for that object.
//! 4. Synthetic media: a deterministic WAV tone split at the chunk limit (1.5 GB by default), each chunk but the
//!    last ending with `ChunkMaximumSizeExceeded`, with a metadata JSON per chunk.
//! 5. [Faults](Fault) per document and a [request log](LoggedRequest) for tests.
//! 6. Call Automation's recording operations on the endpoint (`/calling/recordings...`, with `api-version`, under
//!    the same signature or token): start, pause, resume, state and stop of a call's recording, the
//!    `RecordingStateChanged` callbacks posted to the start request's callback URI in order, and on stop the
//!    recording's chunks stored ([`EmulatorBuilder::call_recording_bytes`] of audio, split at the chunk limit) and
//!    announced with a `RecordingFileStatusUpdated` to each [subscriber](Emulator::subscribe). Errors have the
//!    service's shape (`{"error":{"code","message"}}`): 400, 401, 404 for an unknown recording, 409 for an
//!    operation its state refuses (anything after stop). A `POST` repeated with a `Repeatability-Request-ID`
//!    already answered gets that answer again and is not carried out twice.
//!
//! ```
//! use acs_recording::calling::{CallLocator, RecordingClient, StartRecording};
//! use acs_recording::emulator::Emulator;
//! use acs_recording::recording::RecordingState;
//! use acs_recording::signing::HmacSigningLayer;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::Layer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let emulator = Emulator::start().await?;
//! let signed = HmacSigningLayer::from_connection_string(&emulator.connection_string())
//!     .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
//! let client = RecordingClient::new(signed, emulator.endpoint().clone());
//!
//! let start = StartRecording::call(CallLocator::server_call("aHR0cHM6Ly9jYWxsLzE")).pause_on_start(true);
//! let status = client.start(&start).await?;
//! assert_eq!(status.recording_state, Some(RecordingState::Inactive));
//! let id = status.recording_id.unwrap();
//! client.resume(&id).await?;
//! assert_eq!(client.state(&id).await?.recording_state, Some(RecordingState::Active));
//! client.stop(&id).await?;
//! assert!(client.pause(&id).await.unwrap_err().is_conflict());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! ```
//!
//! 7. An Event Grid namespace topic with one pull subscription on the endpoint ([`Emulator::namespace`]):
//!    `/topics/{topic}:publish` and `/topics/{topic}/eventsubscriptions/{subscription}:receive` (`acknowledge`,
//!    `release`, `reject`, `renewLock`), with locks, delivery counts, dead letters and long polling, authenticated
//!    with `Authorization: SharedAccessKey <key>`; [`Emulator::publish_to_namespace`] routes the recording events
//!    there as an ACS system topic can.
//!
//! The Event Grid half (subscription handshake and delivery of recording events to a webhook) is in
//! [`eventgrid`]; [`Storage::record`] returns the chunk list (locations and SHA-256 of each chunk) that its events
//! describe.
//!
//! The emulator stops when the [`Emulator`] is dropped.

mod bearer;
mod calling;
pub mod eventgrid;
mod media;
mod metadata;
mod namespace;
mod routes;
mod storage;

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::{Layer, ServiceExt};

pub use namespace::{DeadLetter, NamespaceTopic};
use storage::DEFAULT_CHUNK_LIMIT;
pub use storage::{
    DocumentInfo, Fault, Link, LoggedRequest, RecordingSpec, Storage, StorageBody, StoredChunk, StoredRecording,
};

use crate::body::ResponseBody;
use crate::credential::{AccessKey, ConnectionString, Endpoint};
use crate::secret::SecretDigest;
use crate::signing::{AllowList, HmacVerifyLayer, DEFAULT_VERIFY_BODY_LIMIT};
use bearer::BearerCheck;
use calling::{Calling, DEFAULT_CALL_RECORDING_BYTES};
use eventgrid::EventGridPublisher;
use namespace::NamespaceConfig;
use routes::Routes;
use storage::{Counted, StorageService};

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EmulatorBuilder {
    chunk_limit: u64,
    access_key: Option<AccessKey>,
    bearer_token: Option<SecretDigest>,
    endpoint_addr: SocketAddr,
    call_recording_bytes: u64,
    namespace: NamespaceConfig,
}

impl EmulatorBuilder {
    /// Sets the chunk limit in bytes (default 1.5 GB, `1_500_000_000`, as ACS); tests use small limits.
    pub fn chunk_limit(mut self, bytes: u64) -> Self {
        self.chunk_limit = bytes.max(64);
        self
    }

    /// Sets the access key (default: a fresh random one).
    pub fn access_key(mut self, key: AccessKey) -> Self {
        self.access_key = Some(key);
        self
    }

    /// Also accepts `Authorization: Bearer <token>` with this token, as if Microsoft Entra ID had issued it for
    /// the resource: the way to test a client behind the bearer-token layer (feature `entra`) with a credential that
    /// hands out this token. HMAC signatures keep working beside it.
    pub fn bearer_token(mut self, token: impl AsRef<[u8]>) -> Self {
        self.bearer_token = Some(SecretDigest::of(token.as_ref()));
        self
    }

    /// Sets how many audio bytes a recording stopped through Call Automation stores (default 96,000: one second of
    /// the synthetic 48 kHz tone), split at the chunk limit like any recording.
    pub fn call_recording_bytes(mut self, bytes: u64) -> Self {
        self.call_recording_bytes = bytes;
        self
    }

    /// Sets the endpoint listener's address (default `127.0.0.1:0`); the storage listener always takes a free
    /// loopback port. The endpoint is `http`, so it must be a loopback address.
    pub fn endpoint_addr(mut self, addr: SocketAddr) -> Self {
        self.endpoint_addr = addr;
        self
    }

    /// Names the namespace topic and its pull event subscription (default `recordings` and `recorder`).
    pub fn namespace_topic(mut self, topic: impl Into<String>, subscription: impl Into<String>) -> Self {
        self.namespace.topic = topic.into();
        self.namespace.subscription = subscription.into();
        self
    }

    /// Sets how long a received event stays locked for its receiver (default 60 s, as the service).
    pub fn namespace_lock_duration(mut self, duration: std::time::Duration) -> Self {
        self.namespace.lock_duration = duration;
        self
    }

    /// Sets how many deliveries an event gets before it is dead-lettered (default 10, as the service).
    pub fn namespace_max_delivery_count(mut self, count: u32) -> Self {
        self.namespace.max_delivery_count = count.max(1);
        self
    }

    /// Binds both listeners and starts serving.
    pub async fn start(self) -> io::Result<Emulator> {
        if !self.endpoint_addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the emulator serves plain http on loopback only, not on {}", self.endpoint_addr),
            ));
        }
        let endpoint_listener = TcpListener::bind(self.endpoint_addr).await?;
        let storage_listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint_addr = endpoint_listener.local_addr()?;
        let storage_addr = storage_listener.local_addr()?;
        let endpoint = Endpoint::parse(&format!("http://{endpoint_addr}/")).map_err(io::Error::other)?;
        let key = self.access_key.unwrap_or_else(random_key);
        let resource_id = format!("{:08x}-0000-4000-8000-{:012x}", endpoint_addr.port(), storage_addr.port());
        let storage = Storage::new(format!("http://{storage_addr}"), self.chunk_limit, resource_id);
        let verify = HmacVerifyLayer::new(key.clone(), endpoint.authority());
        let bearer = self.bearer_token;
        let (calling, callbacks) = Calling::new(storage.clone(), self.call_recording_bytes);
        let namespace = NamespaceTopic::new(self.namespace, key.to_base64(), bearer);
        let endpoint_routes = Routes {
            storage: StorageService(storage.clone()),
            calling: Some(calling.clone()),
            namespace: Some(namespace.clone()),
        };
        let storage_routes = Routes { storage: StorageService(storage.clone()), calling: None, namespace: None };
        let tasks = vec![
            tokio::spawn(serve(endpoint_listener, storage.clone(), endpoint_routes, verify.clone(), bearer)),
            tokio::spawn(serve(storage_listener, storage.clone(), storage_routes, verify, bearer)),
            callbacks,
        ];
        Ok(Emulator { endpoint, key, bearer: bearer.is_some(), storage, storage_addr, calling, namespace, tasks })
    }
}

/// A running emulator; it stops (listeners and connections) when dropped.
pub struct Emulator {
    endpoint: Endpoint,
    key: AccessKey,
    bearer: bool,
    storage: Storage,
    storage_addr: SocketAddr,
    calling: Calling,
    namespace: NamespaceTopic,
    tasks: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// A builder with the defaults.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            access_key: None,
            bearer_token: None,
            endpoint_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            call_recording_bytes: DEFAULT_CALL_RECORDING_BYTES,
            namespace: NamespaceConfig::default(),
        }
    }

    /// Starts an emulator with the defaults.
    pub async fn start() -> io::Result<Emulator> {
        Self::builder().start().await
    }

    /// The ACS endpoint, `http://127.0.0.1:<port>/`.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The access key requests must be signed with.
    pub fn access_key(&self) -> &AccessKey {
        &self.key
    }

    /// The connection string of the endpoint and key.
    pub fn connection_string(&self) -> ConnectionString {
        ConnectionString::new(self.endpoint.clone(), self.key.clone())
    }

    /// The storage host's `127.0.0.1:<port>`.
    pub fn storage_authority(&self) -> String {
        self.storage_addr.to_string()
    }

    /// An allow-list naming the storage host, for the signing layer and the downloader.
    pub fn allow_list(&self) -> AllowList {
        AllowList::azure_defaults().allow_host(&self.storage_authority()).expect("a socket address is a valid host")
    }

    /// The storage: documents, recordings, faults and the request log.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Subscribes a webhook to the emulator's Event Grid topic: each recording stopped through Call Automation from
    /// now on is announced to it with a `RecordingFileStatusUpdated` event, delivered with the publisher's retries.
    /// The subscription handshake is the caller's to run first ([`EventGridPublisher::validate`]).
    pub fn subscribe(&self, publisher: EventGridPublisher) {
        self.calling.subscribe(publisher);
    }

    /// The Event Grid namespace topic with its pull subscription, on the endpoint: `/topics/{topic}:publish` and
    /// `/topics/{topic}/eventsubscriptions/{subscription}:receive` (and the lock operations), authenticated with
    /// `Authorization: SharedAccessKey <key>`, the key being the access key in base64.
    pub fn namespace(&self) -> &NamespaceTopic {
        &self.namespace
    }

    /// Routes the recording events to the namespace topic too, as an ACS system topic's event subscription with a
    /// namespace topic endpoint does: each recording stopped through Call Automation from now on is published to
    /// it as a CloudEvent.
    pub fn publish_to_namespace(&self) {
        self.calling.publish_to(self.namespace.clone());
    }

    /// The URL a receiver is given: `http://127.0.0.1:<port>/topics/{topic}/eventsubscriptions/{subscription}`.
    pub fn namespace_subscription_url(&self) -> String {
        format!("http://{}{}", self.endpoint.authority(), self.namespace.subscription_path())
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("endpoint", &self.endpoint)
            .field("storage", &self.storage_addr)
            .field("key", &self.key)
            .field("bearer_token", &self.bearer.then_some("<redacted>"))
            .finish()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn random_key() -> AccessKey {
    let bytes: Vec<u8> = (0..4).flat_map(|_| crate::random::next_u64().to_le_bytes()).collect();
    AccessKey::from_bytes(bytes)
}

/// Accepts connections until aborted; aborting drops the set, which aborts every connection.
async fn serve(
    listener: TcpListener,
    storage: Storage,
    routes: Routes,
    verify: HmacVerifyLayer,
    bearer: Option<SecretDigest>,
) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "emulator accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        while connections.try_join_next().is_some() {}
        let storage = storage.clone();
        let routes = routes.clone();
        let verified = verify.layer(routes.clone());
        connections.spawn(async move {
            let service = service_fn(move |request: http::Request<Incoming>| {
                let storage = storage.clone();
                let routes = routes.clone();
                let verified = verified.clone();
                async move {
                    let (index, sent) = storage.log_request(&request);
                    // The namespace authenticates with its own key, not the ACS signature.
                    if let Some(namespace) = routes.namespace_for(request.uri().path()) {
                        let response = namespace.handle(request).await;
                        storage.log_status(index, response.status());
                        return Ok(response.map(|body| Counted::new(ResponseBody::inner(body), sent)));
                    }
                    let calling = routes.calling_for(request.uri().path()).is_some();
                    let mut response = match bearer::check(request.headers(), bearer.as_ref()) {
                        BearerCheck::Absent => verified.oneshot(request).await?,
                        BearerCheck::Accepted => with_token(routes, request).await,
                        BearerCheck::Rejected => bearer::rejection(),
                    };
                    // Call Automation answers a failed authentication in its own error shape.
                    if calling && response.status() == http::StatusCode::UNAUTHORIZED {
                        response = calling::unauthorized(&response).map(ResponseBody::inner);
                    }
                    storage.log_status(index, response.status());
                    Ok::<_, Infallible>(response.map(|body| Counted::new(body, sent)))
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Serves a request that carried the configured bearer token: its body read under the verifier's limit.
async fn with_token(routes: Routes, request: http::Request<Incoming>) -> http::Response<ResponseBody<StorageBody>> {
    let (parts, body) = request.into_parts();
    match Limited::new(body, DEFAULT_VERIFY_BODY_LIMIT).collect().await {
        Ok(collected) => {
            let request = http::Request::from_parts(parts, Full::new(collected.to_bytes()));
            let response = match routes.calling_for(request.uri().path()) {
                Some(calling) => calling.handle(request).await,
                None => routes.storage.0.handle(request),
            };
            response.map(ResponseBody::inner)
        }
        Err(_) => {
            let mut response = http::Response::new(ResponseBody::full(bytes::Bytes::from_static(
                br#"{"error":"unreadable_body","message":"the request body could not be read"}"#,
            )));
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// `2026-11-26T08:28:18.000Z` from a system time (UTC): the dates of the emulator's events and metadata.
pub(crate) fn iso8601(time: std::time::SystemTime) -> String {
    crate::time::format_rfc3339(time, 3)
}
