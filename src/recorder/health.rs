//! Liveness and readiness probes.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::future::ResponseFuture;
use super::shared::Shared;
use crate::journal::Journal;

/// `GET /healthz` answers 200 while the process serves; `GET /readyz` answers 200 when the journal can write,
/// the workers run and the intake accepts (it is not shutting down and the journal is below its maximum of open
/// jobs), 503 with the reason otherwise; anything else is a 404. From
/// [`Recorder::health`](super::Recorder::health).
pub struct Health<J> {
    shared: Arc<Shared<J>>,
}

impl<J> Clone for Health<J> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<J> fmt::Debug for Health<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl<J> Health<J> {
    pub(crate) fn new(shared: Arc<Shared<J>>) -> Self {
        Self { shared }
    }
}

impl<J: Journal, B> Service<Request<B>> for Health<J> {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let shared = self.shared.clone();
        let get = request.method() == Method::GET || request.method() == Method::HEAD;
        let path = request.uri().path().to_owned();
        ResponseFuture::new(async move {
            match (get, path.as_str()) {
                (true, "/healthz") => answer(StatusCode::OK, "alive"),
                (true, "/readyz") => match readiness(&shared).await {
                    Ok(()) => answer(StatusCode::OK, "ready"),
                    Err(reason) => answer(StatusCode::SERVICE_UNAVAILABLE, &reason),
                },
                _ => answer(StatusCode::NOT_FOUND, "not found"),
            }
        })
    }
}

async fn readiness<J: Journal>(shared: &Shared<J>) -> Result<(), String> {
    if !shared.accepting.load(Ordering::Acquire) {
        return Err("shutting down".to_owned());
    }
    if !shared.working.load(Ordering::Acquire) {
        return Err("the workers are not running".to_owned());
    }
    if shared.is_full() {
        return Err(format!("intake full: the journal holds its maximum of {} open jobs", shared.max_pending));
    }
    shared.journal.check_writable().await.map_err(|error| format!("the journal cannot write: {error}"))
}

fn answer(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "status": text }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
