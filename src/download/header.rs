//! What the download reads from response headers: lengths, ranges, MD5s and the object's version.

use base64::Engine as _;
use http::header::{CONTENT_LENGTH, ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue};
use md5::{Digest, Md5};

use super::sink::ObjectVersion;

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The response's own `Content-MD5`, with an MD5 state to hash its body into.
pub(crate) fn content_md5(headers: &HeaderMap) -> Option<(Md5, [u8; 16])> {
    Some((Md5::new(), decode_md5(headers.get("content-md5")?.to_str().ok()?)?))
}

/// The whole object's MD5, which Azure Blob storage announces on ranged answers.
pub(crate) fn blob_md5(headers: &HeaderMap) -> Option<[u8; 16]> {
    decode_md5(headers.get("x-ms-blob-content-md5")?.to_str().ok()?)
}

/// A base64 MD5; anything that does not decode to exactly 16 bytes is no MD5 at all.
pub(crate) fn decode_md5(value: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 18];
    let n = base64::engine::general_purpose::STANDARD.decode_slice(value.trim(), &mut out).ok()?;
    out.get(..n)?.try_into().ok()
}

/// `bytes first-last/total` (total may be `*`), with `first <= last < total` and `last < u64::MAX`, so that the
/// length `last - first + 1` and the end `last + 1` always fit.
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    if first > last || last == u64::MAX || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some((first, last, total))
}

impl ObjectVersion {
    pub(crate) fn from_headers(headers: &HeaderMap, total: Option<u64>) -> Self {
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        let content_md5 = blob_md5(headers).map(|md5| base64::engine::general_purpose::STANDARD.encode(md5));
        ObjectVersion::new(text(ETAG), text(LAST_MODIFIED), total).with_content_md5(content_md5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        let table = [
            ("bytes 0-9/10", Some((0, 9, Some(10)))),
            ("bytes 5-9/*", Some((5, 9, None))),
            (" bytes 1-1/2 ", Some((1, 1, Some(2)))),
            ("bytes 9-5/10", None),
            ("bytes 0-10/10", None),
            ("bytes */10", None),
            ("items 0-1/2", None),
            ("bytes a-b/c", None),
            ("", None),
            ("bytes 0-18446744073709551615/*", None),
            ("bytes 18446744073709551615-18446744073709551615/*", None),
            ("bytes 0-18446744073709551616/*", None),
            ("bytes 0-18446744073709551614/18446744073709551615", Some((0, u64::MAX - 1, Some(u64::MAX)))),
            ("bytes 18446744073709551614-18446744073709551614/*", Some((u64::MAX - 1, u64::MAX - 1, None))),
        ];
        for (value, expected) in table {
            assert_eq!(parse_content_range(value), expected, "{value:?}");
        }
    }

    #[test]
    fn content_md5_needs_sixteen_bytes() {
        let mut h = HeaderMap::new();
        h.insert("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".parse().unwrap());
        assert!(content_md5(&h).is_some());
        h.insert("content-md5", "AAAA".parse().unwrap());
        assert!(content_md5(&h).is_none());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_content_range_text_parses_to_a_range_whose_arithmetic_fits(text in "\\PC{0,60}") {
            if let Some((first, last, total)) = parse_content_range(&text) {
                prop_assert!(first <= last);
                prop_assert!(last.checked_add(1).is_some());
                prop_assert!(total.is_none_or(|total| last < total));
            }
        }

        #[test]
        fn every_valid_range_at_the_u64_edges_round_trips(
            first in prop_oneof![Just(0u64), Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()],
            length in prop_oneof![Just(0u64), Just(1u64), Just(u64::MAX), any::<u64>()],
            total in proptest::option::of(prop_oneof![Just(u64::MAX), any::<u64>()]),
        ) {
            let last = first.saturating_add(length);
            let text = match total {
                Some(total) => format!("bytes {first}-{last}/{total}"),
                None => format!("bytes {first}-{last}/*"),
            };
            let valid = last < u64::MAX && total.is_none_or(|total| last < total);
            prop_assert_eq!(parse_content_range(&text), valid.then_some((first, last, total)));
        }
    }
}
