//! Where a request to ACS goes and what it says about its host: the SSRF guard and the `x-ms-host` rule that the
//! HMAC signer and the bearer layer share.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;

use super::allow::AllowList;
use super::error::Error;
use crate::credential::Endpoint;

pub(crate) const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
pub(crate) const X_MS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-ms-content-sha256");
pub(crate) const X_MS_HOST: HeaderName = HeaderName::from_static("x-ms-host");

/// The endpoint a key or token stands for, and the other hosts allowed to receive requests that carry it.
///
/// This is the one SSRF guard of the crate's clients: a recording location comes from an event, that is from the
/// network, so a credential goes only to the endpoint itself or to a host the [`AllowList`] admits.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    endpoint: Endpoint,
    allow: AllowList,
}

impl Target {
    pub(crate) fn new(endpoint: Endpoint, allow: AllowList) -> Self {
        Self { endpoint, allow }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn set_allow_list(&mut self, allow: AllowList) {
        self.allow = allow;
    }

    /// Whether a request to `uri` goes to another host than the endpoint (recording storage), or the refusal.
    ///
    /// The endpoint itself is always admitted; any other destination must pass the allow-list. Callers decide this
    /// before anything else, so that a refused host never gets a credential nor reaches the inner service.
    pub(crate) fn admit(&self, uri: &Uri) -> Result<bool, Error> {
        if AllowList::is_endpoint(&self.endpoint, uri) {
            return Ok(false);
        }
        self.allow.check(uri).map(|()| true).map_err(Error::refused)
    }

    /// Sends `x-ms-host: <endpoint authority>` on a request for another host, and no `x-ms-host` otherwise.
    ///
    /// A storage host authorises the request as one for the ACS resource named there, whether it carries an HMAC
    /// signature or an Entra token.
    pub(crate) fn set_x_ms_host(&self, headers: &mut HeaderMap, cross_host: bool) {
        if cross_host {
            headers.insert(X_MS_HOST, HeaderValue::from_str(self.endpoint.authority()).expect("authority is ascii"));
        } else {
            headers.remove(X_MS_HOST);
        }
    }
}

/// The host and path that are signed for a request to `uri`, given the endpoint's `authority`.
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
        let target = Target::new(endpoint, allow);
        let table = [
            ("http://127.0.0.1:4000/recording/download/doc", Ok(false)),
            ("http://127.0.0.1:9000/v1/objects/doc/content/audio", Ok(true)),
            ("http://127.0.0.1:9001/v1/objects/doc", Err(())),
            ("https://attacker.example/", Err(())),
        ];
        for (uri, expected) in table {
            let uri: Uri = uri.parse().unwrap();
            let decided = target.admit(&uri);
            assert_eq!(decided.as_ref().copied().map_err(|_| ()), expected, "{uri}");
            if let Ok(cross_host) = decided {
                let mut headers = HeaderMap::new();
                headers.insert(X_MS_HOST, HeaderValue::from_static("stale"));
                target.set_x_ms_host(&mut headers, cross_host);
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
