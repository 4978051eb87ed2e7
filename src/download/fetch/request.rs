//! The requests of a fetch: what each asks for (Range, the version's precondition), its send under the read
//! timeout, the dispatch of its status, and redirects.

use http::header::{IF_MATCH, IF_UNMODIFIED_SINCE, LOCATION, RANGE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use tower::ServiceExt;

use super::{Fetch, Mode, MAX_REDIRECTS};
use crate::client::{HttpClient, RequestBody};
use crate::download::error::{Detail, Error, ErrorKind};
use crate::download::retry::{is_transient, Failure};
use crate::BoxError;

impl<S: HttpClient<B>, B: RequestBody> Fetch<S, B> {
    /// Sends the next request and takes its response apart.
    pub(super) async fn request(&mut self) -> Result<(), Error> {
        let mut builder = Request::get(self.uri.clone());
        if !self.no_range {
            let range = match (self.mode, self.first_request) {
                (Mode::Part { end }, _) => format!("bytes={}-{}", self.offset, end.saturating_sub(1)),
                (Mode::Object, Some(first)) if self.offset == 0 && self.version.is_none() => {
                    format!("bytes=0-{}", first - 1)
                }
                _ => format!("bytes={}-", self.offset),
            };
            builder = builder.header(RANGE, range);
        }
        if let Some(version) = &self.version {
            // Pin the version on every request: a changed object answers 412, never a spliced body.
            if let Some(etag) = &version.etag {
                if let Ok(value) = HeaderValue::from_str(etag) {
                    builder = builder.header(IF_MATCH, value);
                }
            } else if let Some(modified) = &version.last_modified {
                if let Ok(value) = HeaderValue::from_str(modified) {
                    builder = builder.header(IF_UNMODIFIED_SINCE, value);
                }
            }
        }
        let request = builder.body(B::default()).map_err(|e| {
            Error::new(ErrorKind::InvalidLocation, Detail::Request)
                .in_scope(&self.scope)
                .with_host_of(&self.uri)
                .with_source(e)
        })?;
        self.requests += 1;
        tracing::debug!(
            attempt = self.requests,
            offset = self.offset,
            host = self.uri.host().unwrap_or(""),
            path = self.uri.path(),
            "requesting"
        );
        let timeout = self.retry.policy().read_timeout;
        let client = &mut self.client;
        let send = async move {
            let ready = client.ready().await.map_err(Into::<BoxError>::into)?;
            ready.call(request).await.map_err(Into::<BoxError>::into)
        };
        let sent = tokio::time::timeout(timeout, send).await;
        let response = match sent {
            Err(_) => return self.failed(Failure::Timeout(timeout), None).await,
            Ok(Err(error)) => {
                if is_permanent_client_error(error.as_ref()) {
                    let error = Error::new(ErrorKind::Client, Detail::ClientFailed).with_source(error);
                    return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
                }
                return self.failed(Failure::Connect(error), None).await;
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        tracing::debug!(attempt = self.requests, status = status.as_u16(), "response");
        match status {
            StatusCode::OK => self.accept_full(response),
            StatusCode::PARTIAL_CONTENT => self.accept_partial(response).await,
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => self.follow(response.headers()),
            StatusCode::PRECONDITION_FAILED => {
                self.restart();
                self.failed(Failure::Changed("412 Precondition Failed"), None).await
            }
            StatusCode::RANGE_NOT_SATISFIABLE => self.range_not_satisfiable(response.headers()).await,
            status if is_transient(status) => {
                let wait = self.retry.retry_after(response.headers());
                self.failed(Failure::Status(status), wait).await
            }
            // 401/403 included: a key being rotated is waited for by the caller (`Error::is_retryable`) with its
            // own backoff, not by spinning here.
            status => Err(Error::final_status(status).in_scope(&self.scope).with_host_of(&self.uri)),
        }
    }

    fn follow(&mut self, headers: &HeaderMap) -> Result<(), Error> {
        self.redirects += 1;
        let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
            let error = Error::new(ErrorKind::Redirect, Detail::RedirectWithoutLocation);
            return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
        };
        if self.redirects > MAX_REDIRECTS {
            let error = Error::new(ErrorKind::Redirect, Detail::TooManyRedirects(MAX_REDIRECTS));
            return Err(error.in_scope(&self.scope).with_host_of(&self.uri));
        }
        self.uri = self.destinations.redirect(&self.uri, location, &self.scope)?;
        Ok(())
    }
}

/// Client errors that retrying cannot fix: the signing layer refused the host or cannot sign the body.
fn is_permanent_client_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(signing) = error.downcast_ref::<crate::signing::Error>() {
            return matches!(
                signing.kind(),
                crate::signing::ErrorKind::RefusedHost | crate::signing::ErrorKind::BodyTooLarge
            );
        }
        current = error.source();
    }
    false
}
