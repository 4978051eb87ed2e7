//! How the storage answers a request: routing, the JSON problems, and a document's `GET`/`HEAD` with its
//! faults, preconditions and Range (RFC 9110 §13, §14).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
    RANGE, RETRY_AFTER,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use md5::{Digest as _, Md5};
use percent_encoding::percent_decode_str;

use crate::emulator::media::Content;

use super::body::StorageBody;
use super::fault::{Cut, Fault};
use super::link::Latency;
use super::{Document, Storage};

pub(super) enum Route {
    Content(String),
    Metadata(String),
    Object(String),
}

/// `/v1/objects/{id}/content/{audio|video|acsmetadata}`, `/v1/objects/{id}`, and the legacy
/// `/recording/download/{id}[/metadata]` that chunks without locations are fetched from.
pub(super) fn route(path: &str) -> Option<Route> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "objects", id] => Some(Route::Object(decode(id)?)),
        ["v1", "objects", id, "content", "acsmetadata"] => Some(Route::Metadata(decode(id)?)),
        ["v1", "objects", id, "content", "audio" | "video"] => Some(Route::Content(decode(id)?)),
        ["recording", "download", id] => Some(Route::Content(decode(id)?)),
        ["recording", "download", id, "metadata"] => Some(Route::Metadata(decode(id)?)),
        _ => None,
    }
}

pub(super) fn problem(status: StatusCode, code: &str, message: &str) -> Response<StorageBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(StorageBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// GET/HEAD of a document: faults, preconditions, Range (RFC 9110 §13, §14).
pub(super) fn serve(
    document: &mut Document,
    headers: &http::HeaderMap,
    fault: Option<Fault>,
    head: bool,
    epoch: SystemTime,
) -> Response<StorageBody> {
    let mut ignore_range = false;
    let mut unknown_total = false;
    let mut cut = Cut::None;
    match fault {
        Some(Fault::Status { status, retry_after }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = problem(status, "injected", "injected fault");
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, seconds.into());
            }
            return response;
        }
        Some(Fault::Redirect(location)) => {
            let mut response = problem(StatusCode::TEMPORARY_REDIRECT, "moved", "temporarily elsewhere");
            if let Ok(value) = http::HeaderValue::from_str(&location) {
                response.headers_mut().insert(http::header::LOCATION, value);
            }
            return response;
        }
        Some(Fault::ChangeObject) => {
            document.content = document.content.changed();
            document.version += 1;
        }
        Some(Fault::IgnoreRange) => ignore_range = true,
        Some(Fault::DropAfter(n)) => cut = Cut::Drop(n),
        Some(Fault::ShortBody(n)) => cut = Cut::Short(n),
        Some(Fault::StallAfter(n)) => cut = Cut::Stall(n),
        Some(Fault::UnknownTotal) => unknown_total = true,
        None => {}
    }
    let etag = document.etag();
    let last_modified = epoch - Duration::from_secs(3600) + Duration::from_secs(document.version);
    let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
    if let Some(expected) = header(IF_MATCH) {
        if !expected.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate == etag) {
            return problem(StatusCode::PRECONDITION_FAILED, "condition_not_met", "the object changed");
        }
    } else if let Some(since) = header(IF_UNMODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok()) {
        if last_modified > since + Duration::from_millis(999) {
            return problem(StatusCode::PRECONDITION_FAILED, "condition_not_met", "the object changed");
        }
    }
    let len = document.content.len();
    let range = if ignore_range { None } else { header(RANGE).and_then(|r| parse_range(r, len)) };
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Err(())) => {
            let mut response = problem(StatusCode::RANGE_NOT_SATISFIABLE, "invalid_range", "range not satisfiable");
            response.headers_mut().insert(CONTENT_RANGE, format!("bytes */{len}").parse().expect("ascii"));
            return response;
        }
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let blob_md5 = document.blob_content_md5.then(|| document.blob_md5());
    let mut response = Response::new(StorageBody::empty());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, http::HeaderValue::from_static(document.content_type));
    if document.send_etag {
        h.insert(ETAG, etag.parse().expect("ascii"));
    }
    h.insert(LAST_MODIFIED, httpdate::fmt_http_date(last_modified).parse().expect("ascii"));
    h.insert(ACCEPT_RANGES, http::HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, (end - start).into());
    if status == StatusCode::PARTIAL_CONTENT {
        let total = if unknown_total { "*".to_owned() } else { len.to_string() };
        h.insert(CONTENT_RANGE, format!("bytes {start}-{}/{total}", end - 1).parse().expect("ascii"));
    }
    if let Some(md5) = blob_md5 {
        h.insert("x-ms-blob-content-md5", md5.parse().expect("base64 is ascii"));
    }
    if document.content_md5 {
        if let Content::Bytes(bytes) = &document.content {
            let digest = Md5::digest(&bytes[start as usize..end as usize]);
            let value = base64::engine::general_purpose::STANDARD.encode(digest);
            h.insert("content-md5", value.parse().expect("ascii"));
        }
    }
    if !head {
        *response.body_mut() = StorageBody::content(document.content.clone(), start, end, cut);
    }
    response
}

/// `Some(Ok((start, end_exclusive)))`, `Some(Err(()))` for an unsatisfiable range, `None` to ignore the header
/// (malformed or several ranges: RFC 9110 §14.2 lets a server answer 200).
pub(super) fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(suffix), len)));
    }
    let start: u64 = first.parse().ok()?;
    let end = if last.is_empty() { len } else { last.parse::<u64>().ok()?.saturating_add(1).min(len) };
    if last.parse::<u64>().is_ok_and(|l| l < start) {
        return None;
    }
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

/// The storage as a `tower::Service` over verified requests.
#[derive(Clone, Debug)]
pub(crate) struct StorageService(pub(crate) Storage);

impl tower::Service<Request<Full<Bytes>>> for StorageService {
    type Response = Response<StorageBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<StorageBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let response = self.0.handle(request);
        let latency = response.extensions().get::<Latency>().map(|latency| latency.0);
        Box::pin(async move {
            if let Some(latency) = latency {
                tokio::time::sleep(latency).await;
            }
            Ok(response)
        })
    }
}
