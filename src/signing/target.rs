//! Where a request to ACS goes and what it says about its host: the rules the HMAC and bearer layers share
//! (`SPEC.md` §2, §5, §6).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;

use super::allow::{AllowList, Refused};
use crate::credential::Endpoint;

pub(crate) const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
pub(crate) const X_MS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-ms-content-sha256");
pub(crate) const X_MS_HOST: HeaderName = HeaderName::from_static("x-ms-host");

/// Whether a request to `uri` goes to another host than `endpoint` (recording storage), or is refused.
///
/// The endpoint itself is always allowed; any other destination must pass the allow-list (SSRF guard, SPEC §5).
pub(crate) fn cross_host(endpoint: &Endpoint, allow: &AllowList, uri: &Uri) -> Result<bool, Refused> {
    if AllowList::is_endpoint(endpoint, uri) {
        return Ok(false);
    }
    allow.check(uri).map(|()| true)
}

/// Sends `x-ms-host: <endpoint authority>` on a request for another host, and no `x-ms-host` otherwise: the
/// service authorises the request as one for its own resource (SPEC §2 for HMAC, §6 for Entra tokens).
pub(crate) fn set_x_ms_host(headers: &mut HeaderMap, endpoint: &Endpoint, cross_host: bool) {
    if cross_host {
        headers.insert(X_MS_HOST, HeaderValue::from_str(endpoint.authority()).expect("authority is ascii"));
    } else {
        headers.remove(X_MS_HOST);
    }
}

/// The host and path that are signed for a request to `uri`, given the endpoint's `authority` (`SPEC.md` §2).
///
/// For the endpoint itself: its authority and the path with the query (the query only when non-empty). For a
/// location on another host (recording storage): still the endpoint's authority, and the location's path only, as
/// the .NET and JS SDKs do; the request then carries `x-ms-host`.
pub(crate) fn signing_target<'a>(authority: &'a str, uri: &'a Uri, cross_host: bool) -> (&'a str, &'a str) {
    let path = match uri.path() {
        "" => "/",
        path => path,
    };
    let path_and_query = match (cross_host, uri.path_and_query(), uri.query()) {
        (false, Some(pq), Some(query)) if !query.is_empty() => pq.as_str(),
        _ => path,
    };
    (authority, path_and_query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_ms_host_names_the_endpoint_only_for_other_hosts() {
        let endpoint = Endpoint::parse("http://127.0.0.1:4000/").unwrap();
        let allow = AllowList::empty().allow_host("127.0.0.1:9000").unwrap();
        let table = [
            ("http://127.0.0.1:4000/recording/download/doc", Ok(false)),
            ("http://127.0.0.1:9000/v1/objects/doc/content/audio", Ok(true)),
            ("http://127.0.0.1:9001/v1/objects/doc", Err(())),
            ("https://attacker.example/", Err(())),
        ];
        for (uri, expected) in table {
            let uri: Uri = uri.parse().unwrap();
            let decided = cross_host(&endpoint, &allow, &uri);
            assert_eq!(decided.as_ref().copied().map_err(|_| ()), expected, "{uri}");
            if let Ok(cross_host) = decided {
                let mut headers = HeaderMap::new();
                headers.insert(X_MS_HOST, HeaderValue::from_static("stale"));
                set_x_ms_host(&mut headers, &endpoint, cross_host);
                let sent = headers.get(X_MS_HOST).map(|value| value.to_str().unwrap());
                assert_eq!(sent, cross_host.then_some("127.0.0.1:4000"), "{uri}");
            }
        }
    }

    #[test]
    fn signing_target_follows_the_cross_host_rule() {
        let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
        let table = [
            ("https://contoso.communication.azure.com/", false, "/"),
            ("https://contoso.communication.azure.com", false, "/"),
            ("https://contoso.communication.azure.com/a/b?x=1&y=%20", false, "/a/b?x=1&y=%20"),
            ("https://contoso.communication.azure.com/a?", false, "/a"),
            (
                "https://eu.asm.skype.com/v1/objects/0-eu/content/acsmetadata?sig=abc",
                true,
                "/v1/objects/0-eu/content/acsmetadata",
            ),
            ("https://eu.asm.skype.com/v1/objects/%2F", true, "/v1/objects/%2F"),
        ];
        for (uri, cross_host, expected) in table {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(
                signing_target(endpoint.authority(), &uri, cross_host),
                ("contoso.communication.azure.com", expected),
                "{uri}"
            );
        }
    }
}
