//! The response-header arithmetic: `Content-Range`, `Content-Length`, `Content-MD5`, `Retry-After`, the retry wait
//! and the parts still missing, over arbitrary text and numbers including the u64 edges. Every accepted value has
//! arithmetic that fits, every wait is bounded, and the missing parts cover exactly what is not done.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acs_recording::download::RetryPolicy;
use acs_recording::fuzzing::{content_length, content_range, decode_md5, missing, redact_url, retry_after, retry_delay};
use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Case {
    text: String,
    total: u64,
    from: u64,
    done: Vec<(u64, u64)>,
    part_size: u64,
    failures: u32,
    max_backoff_ms: u32,
}

fuzz_target!(|case: Case| {
    let text = case.text.as_str();
    if let Some((first, last, total)) = content_range(text) {
        assert!(first <= last && last < u64::MAX, "{text:?}");
        assert!(total.is_none_or(|total| last < total), "{text:?}");
        let again = match total {
            Some(total) => format!("bytes {first}-{last}/{total}"),
            None => format!("bytes {first}-{last}/*"),
        };
        assert_eq!(content_range(&again), Some((first, last, total)));
    }
    if let Some(md5) = decode_md5(text) {
        assert_eq!(md5.len(), 16);
    }
    let shown = redact_url(text);
    if let Some((_, query)) = text.split_once('#').map_or(text, |(before, _)| before).split_once('?') {
        if !query.is_empty() && !query.starts_with('…') {
            assert!(!shown.contains(&format!("?{query}")), "the query of {text:?} shows in {shown:?}");
        }
    }

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(text) {
        headers.insert(http::header::CONTENT_LENGTH, value.clone());
        headers.insert(http::header::RETRY_AFTER, value);
    }
    if let Some(length) = content_length(&headers) {
        assert_eq!(text.trim().parse::<u64>().ok(), Some(length));
    }
    let now = UNIX_EPOCH + Duration::from_secs(case.total % (1 << 40));
    let asked = retry_after(&headers, now);
    let max_backoff = Duration::from_millis(u64::from(case.max_backoff_ms));
    let policy = RetryPolicy::default().initial_backoff(Duration::from_millis(case.from % 100_000)).max_backoff(max_backoff);
    let wait = retry_delay(&policy, case.failures, asked);
    assert!(wait <= max_backoff.max(policy.backoff.initial), "a wait of {wait:?} beyond the caps");
    let _ = now.checked_add(wait).expect("a wait fits a SystemTime");
    let _ = SystemTime::now().checked_add(wait).expect("a wait fits a SystemTime");

    let total = case.total;
    let from = case.from % total.saturating_add(2).max(1);
    let part_size = case.part_size;
    let done: Vec<(u64, u64)> = case.done.iter().take(64).copied().collect();
    // Lazy: only the first parts are looked at, however large the object.
    let parts: Vec<(u64, u64)> = missing(total, from, &done, part_size).take(4096).collect();
    let truncated = parts.len() == 4096;
    let mut at = 0;
    let covered = |offset: u64| done.iter().any(|&(start, end)| start <= offset && offset < end);
    for &(start, end) in &parts {
        assert!(start < end && start >= from && end <= total, "part {start}..{end} outside {from}..{total}");
        assert!(start >= at, "parts overlap or are out of order");
        assert!(end - start <= part_size.max(1), "a part longer than the part size");
        assert!(!covered(start) && !covered(end - 1), "a part fetches done bytes");
        at = end;
    }
    // Every offset of from..total is done or in a part: probe the edges of every range.
    let in_part = |offset: u64| {
        let after = parts.partition_point(|&(start, _)| start <= offset);
        after > 0 && offset < parts[after - 1].1
    };
    let mut probes = vec![from, total.saturating_sub(1)];
    for &(start, end) in done.iter().chain(parts.iter().take(256)) {
        probes.extend([start.saturating_sub(1), start, end.saturating_sub(1), end]);
    }
    let horizon = if truncated { parts.last().map_or(total, |p| p.1) } else { total };
    for offset in probes.into_iter().filter(|&o| o >= from && o < horizon) {
        assert!(covered(offset) || in_part(offset), "offset {offset} neither done nor missing");
    }
});
