//! The internal parsers, for the fuzz targets in `fuzz/` only: compiled when cargo fuzz sets `--cfg fuzzing`, never
//! in a normal build, and not part of the API.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// `Content-Range` as the download reads it: `(first, last, total)`.
pub fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    crate::download::header::parse_content_range(value)
}

/// `Content-Length` as the download reads it.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    crate::download::header::content_length(headers)
}

/// A base64 MD5 as the download reads it.
pub fn decode_md5(value: &str) -> Option<[u8; 16]> {
    crate::download::header::decode_md5(value)
}

/// `Retry-After` as the download reads it, relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    crate::download::retry::retry_after(headers, now)
}

/// The wait before the next attempt after `failures` failures, given the server's `Retry-After`.
pub fn retry_delay(policy: &crate::download::RetryPolicy, failures: u32, asked: Option<Duration>) -> Duration {
    policy.delay(failures, asked)
}

/// The ranges still to fetch of `from..total`, given the `done` extents, in parts of at most `part_size`.
pub fn missing(total: u64, from: u64, done: &[(u64, u64)], part_size: u64) -> impl Iterator<Item = (u64, u64)> {
    crate::download::parallel::missing(total, from, done, part_size)
}

/// A URL as errors and logs show it.
pub fn redact_url(text: &str) -> String {
    crate::redact::redact_url(text)
}
