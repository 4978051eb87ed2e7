//! A fault-injecting HTTP proxy in front of Azurite: a real hyper server on `127.0.0.1:0` that forwards every
//! request, except where a rule says otherwise.
//!
//! Rules are matched per request by method, path, query and header, in the order they were added; a rule applies
//! to its first `times` matches and is then spent, so that a test says exactly which requests fail. Actions: a
//! delay, a reset after some request body bytes were forwarded, a 503 (with or without `Retry-After`), a response
//! lost after Azurite applied the request, and a partition of every request for a while (held, then forwarded if
//! the client still waits, or refused). Every request is logged with what happened to it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Which requests a rule applies to; every field given must match.
#[derive(Debug, Clone, Default)]
pub(crate) struct Match {
    method: Option<Method>,
    path: Option<String>,
    query: Option<String>,
    header: Option<(String, Option<String>)>,
}

impl Match {
    /// Requests with this method.
    pub(crate) fn method(method: Method) -> Self {
        Self { method: Some(method), ..Self::default() }
    }

    /// Any request.
    pub(crate) fn any() -> Self {
        Self::default()
    }

    /// Whose path contains `text`.
    pub(crate) fn path(mut self, text: &str) -> Self {
        self.path = Some(text.to_owned());
        self
    }

    /// Whose query string contains `text` (such as `comp=block`).
    pub(crate) fn query(mut self, text: &str) -> Self {
        self.query = Some(text.to_owned());
        self
    }

    /// That carry header `name` (any value).
    pub(crate) fn header(mut self, name: &str) -> Self {
        self.header = Some((name.to_ascii_lowercase(), None));
        self
    }

    /// That carry header `name` with exactly `value`.
    pub(crate) fn header_value(mut self, name: &str, value: &str) -> Self {
        self.header = Some((name.to_ascii_lowercase(), Some(value.to_owned())));
        self
    }

    fn matches(&self, method: &Method, path: &str, query: &str, headers: &HeaderMap) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| path.contains(p))
            && self.query.as_deref().is_none_or(|q| query.contains(q))
            && self.header.as_ref().is_none_or(|(name, value)| match headers.get(name.as_str()) {
                None => false,
                Some(found) => value.as_deref().is_none_or(|v| found.as_bytes() == v.as_bytes()),
            })
    }
}

/// What happens to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Forwarded after this long.
    Delay(Duration),
    /// The first `n` bytes of the body are forwarded, then both connections are closed: nothing is applied.
    ResetAfter(usize),
    /// Answered 503 `ServerBusy` without forwarding, with `Retry-After: <seconds>` if given.
    Unavailable { retry_after: Option<u64> },
    /// Forwarded and applied by Azurite; then the client's connection is closed without an answer.
    LoseResponse,
}

/// What the proxy did with one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    /// Path and query.
    pub(crate) uri: String,
    pub(crate) headers: HeaderMap,
    /// The rule applied, by the index [`FaultProxy::rule`] returned.
    pub(crate) rule: Option<usize>,
    /// Azurite's status, 0 when nothing reached the client (a reset, a lost response, a partition).
    pub(crate) status: u16,
    /// Whether Azurite received the whole request.
    pub(crate) forwarded: bool,
    /// When the request arrived, then when Azurite answered it (for a forwarded one).
    pub(crate) at: Instant,
}

#[derive(Debug)]
struct Rule {
    when: Match,
    action: Action,
    left: usize,
    applied: usize,
}

/// How a partition treats the requests it catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partition {
    /// Held until the partition ends, then forwarded if the client still waits (a slow network).
    Hang,
    /// Closed at once, unanswered and not forwarded.
    Refuse,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    partition: Option<(Instant, Partition)>,
}

/// The proxy; stops accepting when dropped.
#[derive(Debug)]
pub(crate) struct FaultProxy {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`).
    pub(crate) async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
        let (upstream, shared) = (Arc::new(upstream.trim_end_matches('/').to_owned()), state.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (client, upstream, state) = (client.clone(), upstream.clone(), shared.clone());
                let service =
                    service_fn(move |request| handle(request, client.clone(), upstream.clone(), state.clone()));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`: what a client sets as its `AZURITE_BLOB_STORAGE_URL`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule for the next `times` matching requests; answers its index.
    pub(crate) fn rule(&self, when: Match, action: Action, times: usize) -> usize {
        let mut state = self.state.lock().unwrap();
        state.rules.push(Rule { when, action, left: times, applied: 0 });
        state.rules.len() - 1
    }

    /// How many requests rule `index` applied to.
    pub(crate) fn applied(&self, index: usize) -> usize {
        self.state.lock().unwrap().rules[index].applied
    }

    /// Every request from now on is held or refused until `duration` has passed.
    pub(crate) fn partition(&self, duration: Duration, how: Partition) {
        self.state.lock().unwrap().partition = Some((Instant::now() + duration, how));
    }

    /// Every request so far, oldest first.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The writes (PUT, DELETE) Azurite applied (answered 2xx, or applied with its answer lost) at or after
    /// `since`.
    pub(crate) fn writes_applied_since(&self, since: Instant) -> Vec<Seen> {
        let write = |seen: &Seen| seen.method == Method::PUT || seen.method == Method::DELETE;
        let applied = |seen: &Seen| seen.forwarded && (seen.status == 0 || (200..300).contains(&seen.status));
        self.seen().into_iter().filter(|seen| seen.at >= since && write(seen) && applied(seen)).collect()
    }
}

/// Why the client's connection is closed without an answer (hyper closes it when the service fails).
#[derive(Debug)]
struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never: Infallible| match never {}).boxed()
}

async fn handle(
    request: Request<Incoming>,
    client: Client<HttpConnector, Body>,
    upstream: Arc<String>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, Dropped> {
    let (parts, body) = request.into_parts();
    let (path, query) = (parts.uri.path().to_owned(), parts.uri.query().unwrap_or_default().to_owned());
    let (rule, partition, index) = {
        let mut state = state.lock().unwrap();
        let partition = state.partition.filter(|(until, _)| Instant::now() < *until);
        let found =
            state.rules.iter().position(|r| r.left > 0 && r.when.matches(&parts.method, &path, &query, &parts.headers));
        let rule = found.map(|at| {
            let rule = &mut state.rules[at];
            rule.left -= 1;
            rule.applied += 1;
            (at, rule.action)
        });
        let uri = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
        let seen = Seen {
            method: parts.method.clone(),
            uri,
            headers: parts.headers.clone(),
            rule: rule.map(|r| r.0),
            status: 0,
            forwarded: false,
            at: Instant::now(),
        };
        state.seen.push(seen);
        (rule, partition, state.seen.len() - 1)
    };
    let record = |status: u16, forwarded: bool| {
        let mut state = state.lock().unwrap();
        state.seen[index].status = status;
        state.seen[index].forwarded = forwarded;
        if forwarded {
            state.seen[index].at = Instant::now();
        }
    };
    let body = body.collect().await.map_err(|_| Dropped("the client's body broke off"))?.to_bytes();
    match partition {
        Some((_, Partition::Refuse)) => return Err(Dropped("partitioned: refused")),
        // Dropped with the connection if the client gives up meanwhile: only a request still awaited goes on.
        Some((until, Partition::Hang)) => tokio::time::sleep_until(until.into()).await,
        None => {}
    }
    let action = rule.map(|(_, action)| action);
    let forwarded = match action {
        Some(Action::Unavailable { retry_after }) => {
            record(503, false);
            let mut answer = Response::new(full(Bytes::from_static(
                b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>injected</Message></Error>",
            )));
            *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            if let Some(seconds) = retry_after {
                answer.headers_mut().insert(http::header::RETRY_AFTER, seconds.into());
            }
            return Ok(answer);
        }
        Some(Action::ResetAfter(n)) => {
            // Azurite gets the first bytes and then a body that breaks off; the client's connection closes.
            let head: Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>> =
                Ok(Frame::data(body.slice(..n.min(body.len()))));
            let broken = stream::iter([head, Err("reset by the proxy".into())]);
            let _ = client.request(upstream_request(&parts, &upstream, StreamBody::new(broken).boxed())).await;
            return Err(Dropped("reset in the middle of the body"));
        }
        Some(Action::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            body
        }
        Some(Action::LoseResponse) | None => body,
    };
    let answer = client
        .request(upstream_request(&parts, &upstream, full(forwarded)))
        .await
        .map_err(|_| Dropped("Azurite did not answer"))?;
    let status = answer.status().as_u16();
    if action == Some(Action::LoseResponse) {
        // Applied: read to the end so that Azurite is done with it, then never answered.
        let _ = answer.into_body().collect().await;
        record(0, true);
        return Err(Dropped("response lost"));
    }
    record(status, true);
    Ok(answer.map(|body| body.map_err(Into::into).boxed()))
}

fn upstream_request(parts: &http::request::Parts, upstream: &str, body: Body) -> Request<Body> {
    let uri = format!("{upstream}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = Request::builder().method(parts.method.clone()).uri(uri).body(body).unwrap();
    *request.headers_mut() = parts.headers.clone();
    request
}
