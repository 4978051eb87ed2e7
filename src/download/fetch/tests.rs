use super::*;
use crate::clock::SharedClock;
use crate::download::error::{chain_line, Location};
use crate::download::RetryPolicy;
use crate::signing::AllowList;
use base64::Engine as _;
use http::{Request, Response};
use http_body::Body;
use http_body::Frame;
use http_body_util::Empty;
use std::convert::Infallible;
use std::sync::Mutex;
use std::task::{Context, Poll};
use tokio::time::Instant;

type Script = Arc<Mutex<(VecDeque<Response<Scripted>>, Vec<http::HeaderMap>)>>;

/// How a scripted body ends once its bytes are out.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Clean,
    Reset,
    Stall,
}

/// A response body: its bytes in one frame, then `end`.
struct Scripted {
    data: Option<Bytes>,
    end: End,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match std::mem::replace(&mut self.end, End::Clean) {
            End::Clean => Poll::Ready(None),
            End::Reset => Poll::Ready(Some(Err(std::io::ErrorKind::ConnectionReset.into()))),
            End::Stall => {
                self.end = End::Stall;
                Poll::Pending // never woken: only the read timeout ends it
            }
        }
    }
}

fn ending(status: u16, headers: &[(&str, &str)], body: &[u8], end: End) -> Response<Scripted> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let data = (!body.is_empty()).then(|| Bytes::copy_from_slice(body));
    builder.body(Scripted { data, end }).unwrap()
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response<Scripted> {
    ending(status, headers, body, End::Clean)
}

/// Fetches with a client that answers the scripted responses in order; returns the bytes (restarts applied),
/// the result and the request headers seen.
async fn run(responses: Vec<Response<Scripted>>) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
    run_with(RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1)), responses).await
}

async fn run_with(
    policy: RetryPolicy,
    responses: Vec<Response<Scripted>>,
) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
    run_with_clock(policy, SharedClock::system(), responses).await
}

async fn run_with_clock(
    policy: RetryPolicy,
    clock: SharedClock,
    responses: Vec<Response<Scripted>>,
) -> (Vec<u8>, Result<(), Error>, Vec<http::HeaderMap>) {
    let script: Script = Arc::new(Mutex::new((responses.into(), Vec::new())));
    let seen = script.clone();
    let client = tower::service_fn(move |request: Request<Empty<Bytes>>| {
        let script = seen.clone();
        async move {
            let mut script = script.lock().unwrap();
            script.1.push(request.headers().clone());
            Ok::<_, Infallible>(script.0.pop_front().unwrap_or_else(|| response(500, &[], b"")))
        }
    });
    let destinations = Arc::new(Destinations { endpoint: None, allow: AllowList::azure_defaults() });
    let uri: Uri = "https://eu.asm.skype.com/v1/objects/d/content/audio".parse().unwrap();
    let retry = RetryState::new(policy, clock);
    let mut fetch = Fetch::new(client, destinations, retry, Scope::chunk(0, "d").at(Location::Content), uri);
    let mut bytes = Vec::new();
    let result = loop {
        match fetch.next().await {
            Ok(Some(Event::Data(data))) => bytes.extend_from_slice(&data),
            Ok(Some(Event::Restart)) => bytes.clear(),
            Ok(Some(Event::Pinned(_))) => {}
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    let headers = script.lock().unwrap().1.clone();
    (bytes, result, headers)
}

fn ranges(headers: &[http::HeaderMap]) -> Vec<Option<&str>> {
    headers.iter().map(|h| h.get("range").map(|v| v.to_str().unwrap())).collect()
}

#[tokio::test]
async fn a_206_that_does_not_start_where_asked_is_retried() {
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 2-4/5"), ("etag", "\"a\"")], b"cde"),
        response(206, &[("content-range", "bytes 0-4/5"), ("etag", "\"a\"")], b"abcde"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcde");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-")]);
}

#[tokio::test]
async fn a_different_total_on_resume_restarts_the_object() {
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"),
        response(206, &[("content-range", "bytes 2-5/6"), ("etag", "\"a\"")], b"CDEF"),
        response(206, &[("content-range", "bytes 0-5/6"), ("etag", "\"b\"")], b"ABCDEF"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"ABCDEF");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
    assert_eq!(headers[1]["if-match"], "\"a\"");
    assert!(!headers[2].contains_key("if-match"));
}

#[tokio::test]
async fn a_content_length_that_contradicts_content_range_is_rejected() {
    let (_, result, _) = run(vec![
        response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
        response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
        response(206, &[("content-range", "bytes 0-4/5"), ("content-length", "4")], b"abcd"),
    ])
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    assert_eq!(
        chain_line(&error),
        "chunk 0 (`d`) content: gave up after 3 failed attempts: \
         Content-Length does not match Content-Range `bytes 0-4/5`"
    );
}

#[tokio::test]
async fn a_body_longer_than_announced_is_never_handed_out() {
    let (bytes, result, _) = run(vec![
        response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abcdef"),
        response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abc"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abc");
}

#[tokio::test]
async fn a_wrong_content_md5_restarts_and_then_fails() {
    let md5 = [("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="), ("etag", "\"a\"")];
    let (_, result, _) =
        run(vec![response(200, &md5, b"abc"), response(200, &md5, b"abc"), response(200, &md5, b"abc")]).await;
    let error = result.unwrap_err();
    assert!(chain_line(&error).ends_with(": body does not match its Content-MD5"), "{error}");
}

fn md5_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

#[tokio::test]
async fn a_whole_object_md5_is_checked_across_a_resume() {
    let md5 = md5_of(b"abcde");
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)], b"ab"),
        response(206, &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)], b"cde"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcde");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-")]);
}

#[tokio::test]
async fn a_wrong_whole_object_md5_restarts_and_then_fails() {
    let wrong = md5_of(b"abcdX");
    let answer = || {
        response(
            206,
            &[("content-range", "bytes 0-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &wrong)],
            b"abcde",
        )
    };
    let (bytes, result, headers) = run(vec![answer(), answer(), answer()]).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    assert_eq!(
        chain_line(&error),
        "chunk 0 (`d`) content: gave up after 3 failed attempts: \
         object does not match its x-ms-blob-content-md5"
    );
    // Every attempt started over from byte 0: the bytes of the earlier ones were taken back, never appended.
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-"), Some("bytes=0-")]);
    assert_eq!(bytes, b"abcde");
}

#[tokio::test]
async fn a_different_whole_object_md5_on_resume_restarts_the_object() {
    let (old, new) = (md5_of(b"abcde"), md5_of(b"vwxyz"));
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &old)], b"ab"),
        response(206, &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &new)], b"xyz"),
        response(
            206,
            &[("content-range", "bytes 0-4/5"), ("etag", "\"b\""), ("x-ms-blob-content-md5", &new)],
            b"vwxyz",
        ),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"vwxyz");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
}

#[tokio::test]
async fn a_whole_object_md5_first_announced_on_resume_restarts_from_byte_zero() {
    let md5 = md5_of(b"abcde");
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"),
        response(206, &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)], b"cde"),
        response(
            206,
            &[("content-range", "bytes 0-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
            b"abcde",
        ),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcde");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=2-"), Some("bytes=0-")]);
}

#[tokio::test]
async fn a_whole_object_md5_announced_only_after_byte_zero_fails_after_one_free_restart() {
    let md5 = md5_of(b"abcde");
    let mut script = Vec::new();
    for _ in 0..4 {
        script.push(response(206, &[("content-range", "bytes 0-1/5"), ("etag", "\"a\"")], b"ab"));
        script.push(response(
            206,
            &[("content-range", "bytes 2-4/5"), ("etag", "\"a\""), ("x-ms-blob-content-md5", &md5)],
            b"cde",
        ));
    }
    let (_, result, headers) = run(script).await;
    assert_eq!(
        chain_line(&result.unwrap_err()),
        "chunk 0 (`d`) content: gave up after 3 failed attempts: \
         object changed (x-ms-blob-content-md5 announced only after byte 0)"
    );
    // One free restart, then three counted ones.
    assert_eq!(headers.len(), 8);
}

#[tokio::test]
async fn a_200_with_another_etag_on_resume_restarts_cleanly() {
    let (bytes, result, _) = run(vec![
        response(206, &[("content-range", "bytes 0-1/4"), ("etag", "\"a\"")], b"ab"),
        response(200, &[("etag", "\"b\"")], b"WXYZ"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"WXYZ");
}

#[tokio::test]
async fn a_content_range_ending_at_u64_max_is_a_failed_attempt() {
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-18446744073709551615/*"), ("etag", "\"a\"")], b"abc"),
        response(206, &[("content-range", "bytes 0-2/3"), ("etag", "\"a\"")], b"abc"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abc");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=0-")]);

    let hostile = || response(206, &[("content-range", "bytes 0-18446744073709551615/*")], b"abc");
    let (_, result, _) = run(vec![hostile(), hostile(), hostile()]).await;
    assert_eq!(
        chain_line(&result.unwrap_err()),
        "chunk 0 (`d`) content: gave up after 3 failed attempts: \
         206 with an invalid Content-Range `bytes 0-18446744073709551615/*`"
    );
}

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_is_a_bounded_wait() {
    let started = Instant::now();
    let (bytes, result, headers) = run(vec![
        response(503, &[("retry-after", "18446744073709551615")], b""),
        response(200, &[("etag", "\"a\""), ("content-length", "5")], b"abcde"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcde");
    assert_eq!(headers.len(), 2);
    // The default policy's `max_backoff`.
    assert_eq!(started.elapsed().as_secs(), 30);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_is_read_against_the_injected_clock() {
    let started = Instant::now();
    // 18:09:12 by the injected clock; the server asks for 18:09:22.
    let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_649_873_352);
    let clock = SharedClock::new(move || at);
    let policy = RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
    let (bytes, result, headers) = run_with_clock(
        policy,
        clock,
        vec![
            response(503, &[("retry-after", "Wed, 13 Apr 2022 18:09:22 GMT")], b""),
            response(200, &[("etag", "\"a\""), ("content-length", "3")], b"abc"),
        ],
    )
    .await;
    result.unwrap();
    assert_eq!((bytes.as_slice(), headers.len()), (&b"abc"[..], 2));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn a_refused_or_invalid_redirect_never_shows_its_query() {
    let table = [
        ("https://evil.example/b?sig=SECRET", "refused to follow a redirect to host `evil.example`"),
        ("https://eu.asm.skype.com/b c?sig=SECRET", "redirect to `https://eu.asm.skype.com/b c?…` is not a valid URL"),
    ];
    for (location, message) in table {
        let (_, result, _) = run(vec![response(307, &[("location", location)], b"")]).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Redirect);
        assert_eq!(error.to_string(), format!("chunk 0 (`d`) content: {message}"));
        chain_line(&error);
        let text = crate::download::error::chain_text(&error);
        assert!(!text.contains("SECRET"), "{text}");
    }
}

const OBJECT: &[u8; 21] = b"abcdefghijklmnopqrstu";

/// One 206 per byte of [`OBJECT`] from `first` on, each ending with `end` after its byte, the last one clean.
fn byte_by_byte(first: usize, end: End) -> Vec<Response<Scripted>> {
    (first..OBJECT.len())
        .map(|at| {
            let range = format!("bytes {at}-20/21");
            let headers = [("content-range", range.as_str()), ("etag", "\"a\"")];
            let end = if at + 1 == OBJECT.len() { End::Clean } else { end };
            ending(206, &headers, &OBJECT[at..at + 1], end)
        })
        .collect()
}

fn expected_ranges(first: usize) -> Vec<String> {
    (first..OBJECT.len()).map(|at| format!("bytes={at}-")).collect()
}

fn sent_ranges(headers: &[http::HeaderMap]) -> Vec<String> {
    ranges(headers).into_iter().map(|r| r.unwrap_or_default().to_owned()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_keeps_receiving_bytes_never_runs_out_of_attempts() {
    let policy = RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1));
    let (bytes, result, headers) = run_with(policy, byte_by_byte(0, End::Reset)).await;
    result.unwrap();
    assert_eq!(bytes, OBJECT);
    // 20 resets, each after a new byte, against a limit of 3 failed attempts.
    assert_eq!(sent_ranges(&headers), expected_ranges(0));
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_keeps_receiving_bytes_never_runs_out_of_time() {
    let started = Instant::now();
    let policy = RetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(1))
        .read_timeout(Duration::from_secs(4))
        .max_total(Duration::from_secs(10));
    let (bytes, result, headers) = run_with(policy, byte_by_byte(0, End::Stall)).await;
    result.unwrap();
    assert_eq!(bytes, OBJECT);
    assert_eq!(sent_ranges(&headers), expected_ranges(0));
    // 20 read timeouts of 4 s each: eight times the budget, which starts again after each new byte.
    assert!(started.elapsed() >= Duration::from_secs(80), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_fetch_without_progress_gives_up_after_max_attempts() {
    let reset = || ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"", End::Reset);
    let (bytes, result, headers) = run(vec![reset(), reset(), reset(), reset()]).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RetriesExhausted);
    assert_eq!(
        chain_line(&error),
        "chunk 0 (`d`) content: gave up after 3 failed attempts: response body failed: \
         connection reset"
    );
    assert_eq!(error.to_string(), "chunk 0 (`d`) content: gave up after 3 failed attempts");
    assert_eq!((error.attempts(), error.chunk_index(), error.document_id()), (Some(3), Some(0), Some("d")));
    assert_eq!((bytes.len(), headers.len()), (0, 3));
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_stops_progressing_gives_up_max_attempts_after_its_last_new_byte() {
    // One byte, then resets that bring nothing new: the reset after the new byte is the first of three.
    let first = ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"a", End::Reset);
    let reset = || ending(206, &[("content-range", "bytes 1-20/21"), ("etag", "\"a\"")], b"", End::Reset);
    let (bytes, result, headers) = run(vec![first, reset(), reset(), reset(), reset()]).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::RetriesExhausted);
    assert_eq!(bytes, b"a");
    assert_eq!(sent_ranges(&headers), ["bytes=0-", "bytes=1-", "bytes=1-"]);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_without_progress_still_runs_out_of_time() {
    let started = Instant::now();
    let policy = RetryPolicy::default()
        .max_attempts(100)
        .initial_backoff(Duration::from_millis(1))
        .read_timeout(Duration::from_secs(4))
        .max_total(Duration::from_secs(10));
    let stall = || ending(206, &[("content-range", "bytes 0-20/21"), ("etag", "\"a\"")], b"", End::Stall);
    let (_, result, headers) = run_with(policy, vec![stall(), stall(), stall(), stall()]).await;
    assert_eq!(
        chain_line(&result.unwrap_err()),
        "chunk 0 (`d`) content: retry time budget of 10 s exhausted: no response or bytes within \
         4000 ms"
    );
    // Timeouts at 4 s and 8 s are retried; after the one at 12 s no wait fits in 10 s.
    assert_eq!(headers.len(), 3);
    assert_eq!(started.elapsed().as_secs(), 12);
}

#[tokio::test]
async fn permanent_statuses_are_not_retried() {
    for status in [400u16, 404, 410] {
        let (_, result, headers) = run(vec![response(status, &[], b"{}")]).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Status);
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert_eq!((error.host(), error.location()), (Some("eu.asm.skype.com"), Some(Location::Content)));
        assert_eq!(error.attempts(), None);
        let reason = error.status().unwrap();
        assert_eq!(
            error.to_string(),
            format!("chunk 0 (`d`) content: permanent status {reason} from `eu.asm.skype.com`")
        );
        assert_eq!(headers.len(), 1);
    }
}

#[tokio::test]
async fn ranges_of_unknown_total_are_followed_until_a_416() {
    let etag = ("etag", "\"a\"");
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-3/*"), etag], b"abcd"),
        response(206, &[("content-range", "bytes 4-5/*"), etag], b"ef"),
        response(416, &[etag], b""),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcdef");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=4-"), Some("bytes=6-")]);
}

#[tokio::test]
async fn a_size_told_after_a_range_of_unknown_total_is_where_the_object_ends() {
    let etag = ("etag", "\"a\"");
    let (bytes, result, headers) = run(vec![
        response(206, &[("content-range", "bytes 0-3/*"), etag], b"abcd"),
        response(206, &[("content-range", "bytes 4-5/10"), etag], b"ef"),
        response(206, &[("content-range", "bytes 6-9/10"), etag], b"ghij"),
    ])
    .await;
    result.unwrap();
    assert_eq!(bytes, b"abcdefghij");
    assert_eq!(ranges(&headers), [Some("bytes=0-"), Some("bytes=4-"), Some("bytes=6-")]);
}

#[tokio::test]
async fn refused_credentials_are_not_retried_per_request_but_retryable_later() {
    for (status, reason) in [(401u16, "401 Unauthorized"), (403, "403 Forbidden")] {
        let (_, result, headers) = run(vec![response(status, &[], b"{}")]).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AccessDenied);
        assert!(error.is_retryable(), "{status}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(
            error.to_string(),
            format!("chunk 0 (`d`) content: access refused with status {reason} by `eu.asm.skype.com`")
        );
        assert_eq!(headers.len(), 1, "one request: a key being rotated is waited for by the caller, not here");
    }
}
