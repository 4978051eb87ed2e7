//! Shared by every integration test binary, each of which mounts this tree once: fixtures, a loopback server, a
//! plain HTTP/1.1 client and [`eventually`] here, the rest by topic in the submodules. A binary uses the parts it
//! needs, so its mount allows what the others leave unused.

#[cfg(feature = "object-store")]
pub(crate) mod azurite;
#[cfg(feature = "emulator")]
pub(crate) mod download;
#[cfg(feature = "emulator")]
pub(crate) mod emulator;
mod eventually;
#[cfg(any(feature = "object-store", feature = "emulator"))]
pub(crate) mod npm;
pub(crate) mod process;
#[cfg(all(unix, feature = "storage-queue", feature = "object-store", feature = "emulator"))]
pub(crate) mod queue;
#[cfg(all(feature = "emulator", feature = "recorder"))]
pub(crate) mod recorder;
#[cfg(all(unix, feature = "emulator", feature = "recorder"))]
pub(crate) mod recorder_process;
#[cfg(feature = "object-store")]
pub(crate) mod store;

pub(crate) use eventually::{at_timeout, eventually};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where a property test keeps the failing cases it found: `<module>.proptest-regressions` beside its source file.
///
/// proptest's default looks for the folder of the nearest `main.rs` and writes to `proptest-regressions/` beside
/// that folder, which for a test binary's folder is one `tests/proptest-regressions/` shared by every binary.
pub(crate) fn regressions_beside_the_test() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions")))
}

/// Reads a fixture from `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}")))
}

/// A server bound to `127.0.0.1:0`, shut down when dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds a loopback listener and runs `serve(listener, shutdown_signal)` on it.
    pub(crate) async fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let (shutdown, signal) = oneshot::channel();
        let task = tokio::spawn(serve(listener, signal));
        Self { addr, shutdown: Some(shutdown), task }
    }

    /// Serves an axum router.
    pub(crate) async fn axum(app: axum::Router) -> Self {
        Self::start(|listener, signal| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await
                .expect("axum server");
        })
        .await
    }

    /// Serves a tower service over HTTP/1 and HTTP/2 on `127.0.0.1:0`.
    pub(crate) async fn service<S, B>(service: S) -> Self
    where
        S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        Self::service_on(listener, service)
    }

    /// Serves a tower service on a listener bound beforehand (to know the port before building the service).
    pub(crate) fn service_on<S, B>(listener: std::net::TcpListener, service: S) -> Self
    where
        S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        listener.set_nonblocking(true).expect("nonblocking listener");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ =
                        auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr, shutdown: None, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts the server down and waits until it has dropped its service.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.abort();
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("{error}: {}", self.text()))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().expect("ascii header"))
    }
}

/// Sends one HTTP/1.1 request over loopback.
pub(crate) async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).expect("request");
    send_request(request).await
}

/// Sends a prepared request over loopback.
pub(crate) async fn send_request<B>(request: Request<B>) -> Reply
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http::<B>();
    let response = client.request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// POSTs JSON.
pub(crate) async fn post_json(url: &str, content_type: &str, body: impl Into<Bytes>) -> Reply {
    send(Method::POST, url, &[("content-type", content_type)], body).await
}

/// A hyper-util client for bodies of type `B`.
pub(crate) fn client<B>() -> Client<hyper_util::client::legacy::connect::HttpConnector, B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new()).build_http()
}

/// Posts the Event Grid validation fixture to `url` and asserts the exact handshake answer.
pub(crate) async fn assert_validation_handshake(url: &str) {
    let reply = send(
        Method::POST,
        url,
        &[("content-type", "application/json"), ("aeg-event-type", "SubscriptionValidation")],
        fixture("subscription_validation.eventgrid.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), r#"{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}"#);
}
