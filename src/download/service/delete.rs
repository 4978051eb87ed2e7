//! `DELETE <deleteLocation>`, with the fetch's retry rules. ACS keeps a recording for a limited time; deleting it
//! once it is stored is the caller's choice, never a default.

use http::{Method, Request, StatusCode, Uri};
use tower::ServiceExt;

use super::ChunkDownloader;
use crate::client::{HttpClient, RequestBody};
use crate::download::error::{Detail, Error, ErrorKind, Location, Scope};
use crate::download::retry::{is_transient, Failure, RetryState};
use crate::download::sink::Sink;
use crate::BoxError;

// Every method here is crate-private: the bounds name crate-private traits, which no public signature shows.
#[allow(private_bounds)]
impl<S, B, K> ChunkDownloader<S, K, B>
where
    S: HttpClient<B>,
    B: RequestBody,
    K: Sink,
{
    /// `DELETE <deleteLocation>`, with the same retry bounds as a fetch; 404 counts as deleted (an
    /// earlier run got there first).
    pub(super) async fn delete(&self, scope: &Scope, uri: Option<Uri>) -> Result<bool, Error> {
        let Some(uri) = uri else { return Ok(false) };
        let scope = scope.at(Location::Delete);
        let error = |kind, detail| Error::new(kind, detail).in_scope(&scope).with_host_of(&uri);
        let mut retry = RetryState::new(self.config.policy, self.config.clock.clone());
        loop {
            let request = Request::builder()
                .method(Method::DELETE)
                .uri(uri.clone())
                .body(B::default())
                .map_err(|e| error(ErrorKind::InvalidLocation, Detail::Request).with_source(e))?;
            let mut client = self.client.clone();
            let send = async move {
                let ready = client.ready().await.map_err(Into::<BoxError>::into)?;
                ready.call(request).await.map_err(Into::<BoxError>::into)
            };
            let read_timeout = retry.policy().read_timeout;
            let sent = tokio::time::timeout(read_timeout, send).await;
            let (failure, wait) = match sent {
                Ok(Ok(response)) => match response.status() {
                    StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => {
                        return Ok(true)
                    }
                    status if is_transient(status) => (Failure::Status(status), retry.retry_after(response.headers())),
                    status => return Err(Error::final_status(status).in_scope(&scope).with_host_of(&uri)),
                },
                Ok(Err(sent)) => (Failure::Connect(sent), None),
                Err(_) => (Failure::Timeout(read_timeout), None),
            };
            // Nothing is delivered by a DELETE: every failure counts.
            retry.wait_after(failure, 0, wait).await.map_err(|e| e.in_scope(&scope).with_host_of(&uri))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SharedClock;
    use crate::download::{sink::WriterSink, RetryPolicy};
    use bytes::Bytes;
    use http::Response;
    use http_body_util::{Empty, Full};
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::time::Instant;

    type Answers = Arc<Mutex<VecDeque<Response<Full<Bytes>>>>>;

    /// Deletes through a client answering `answers` in order (then 503); returns the result and the requests made.
    async fn delete_with(policy: RetryPolicy, answers: Vec<Response<Full<Bytes>>>) -> (Result<bool, Error>, usize) {
        delete_with_clock(policy, SharedClock::system(), answers).await
    }

    async fn delete_with_clock(
        policy: RetryPolicy,
        clock: SharedClock,
        answers: Vec<Response<Full<Bytes>>>,
    ) -> (Result<bool, Error>, usize) {
        let answers: Answers = Arc::new(Mutex::new(answers.into()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (script, counter) = (answers.clone(), requests.clone());
        let client = tower::service_fn(move |request: Request<Empty<Bytes>>| {
            assert_eq!(request.method(), Method::DELETE);
            counter.fetch_add(1, Ordering::Relaxed);
            let next = script.lock().unwrap().pop_front().unwrap_or_else(|| answer(503, Some("3600")));
            async move { Ok::<_, Infallible>(next) }
        });
        let downloader =
            ChunkDownloader::new(client, WriterSink::new(Vec::<u8>::new())).retry_policy(policy).with_clock(clock);
        let uri: Uri = "https://eu.asm.skype.com/v1/objects/d".parse().unwrap();
        let result = downloader.delete(&Scope::chunk(0, "d"), Some(uri)).await;
        (result, requests.load(Ordering::Relaxed))
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Response<Full<Bytes>> {
        let mut builder = Response::builder().status(status);
        if let Some(seconds) = retry_after {
            builder = builder.header("retry-after", seconds);
        }
        builder.body(Full::new(Bytes::new())).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_gives_up_once_its_time_budget_is_spent() {
        let started = Instant::now();
        let policy = RetryPolicy::default()
            .max_attempts(100)
            .max_backoff(Duration::from_secs(30))
            .max_total(Duration::from_secs(60));
        let (result, requests) = delete_with(policy, Vec::new()).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(error.host(), Some("eu.asm.skype.com"));
        assert_eq!(error.to_string(), "chunk 0 (`d`) delete: retry time budget of 60 s exhausted");
        assert_eq!(std::error::Error::source(&error).unwrap().to_string(), "status 503 Service Unavailable");
        assert_eq!((error.attempts(), error.location()), (Some(3), Some(Location::Delete)));
        crate::download::error::assert_no_repeats(&error);
        // Waits of 30 s after the first and second failures; a third would end at 90 s.
        assert_eq!(requests, 3);
        assert_eq!(started.elapsed().as_secs(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_waits_at_most_max_backoff_for_an_absurd_retry_after() {
        let started = Instant::now();
        let answers = vec![answer(503, Some("18446744073709551615")), answer(200, None)];
        let (result, requests) = delete_with(RetryPolicy::default(), answers).await;
        assert!(result.unwrap());
        assert_eq!(requests, 2);
        assert_eq!(started.elapsed().as_secs(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_reads_a_retry_after_date_against_the_injected_clock() {
        let started = Instant::now();
        let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352); // 18:09:12
        let answers = vec![answer(503, Some("Wed, 13 Apr 2022 18:09:19 GMT")), answer(200, None)];
        let (result, requests) = delete_with_clock(RetryPolicy::default(), SharedClock::new(move || at), answers).await;
        assert!(result.unwrap());
        assert_eq!(requests, 2);
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }
}
