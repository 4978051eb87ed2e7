//! Fetching the tenant's key set: its OpenID configuration names `jwks_uri`, which serves the keys. Each answer
//! is read under a size limit; the caller bounds the whole in time.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Limited};
use serde::Deserialize;
use tower::ServiceExt;
use tower_service::Service;

use super::keys::KeySet;
use crate::BoxError;

type GetFuture = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// A `GET` of a JSON document, whatever the HTTP client; erased so that the delivery check is one type.
pub(crate) trait Fetch: Send + Sync + 'static {
    /// The body of a `200` answer to `GET uri`, at most `max_bytes` long.
    fn get(&self, uri: Uri, max_bytes: usize) -> GetFuture;
}

/// [`Fetch`] over any client service, hyper-util's for instance.
pub(crate) struct ClientFetch<C>(pub(crate) C);

impl<C, RB> Fetch for ClientFetch<C>
where
    C: Service<Request<Empty<Bytes>>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    fn get(&self, uri: Uri, max_bytes: usize) -> GetFuture {
        let client = self.0.clone();
        Box::pin(async move {
            let mut request = Request::get(uri).body(Empty::new()).map_err(|error| error.to_string())?;
            request.headers_mut().insert(ACCEPT, HeaderValue::from_static("application/json"));
            let response = client.oneshot(request).await.map_err(|error| {
                let error: BoxError = error.into();
                format!("the request failed: {error}")
            })?;
            if response.status() != StatusCode::OK {
                return Err(format!("the answer was {}", response.status()));
            }
            let declared = response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
            if declared.is_some_and(|length: u64| length > max_bytes as u64) {
                return Err(format!("the answer is larger than {max_bytes} bytes"));
            }
            match Limited::new(response.into_body(), max_bytes).collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    Err(format!("the answer is larger than {max_bytes} bytes"))
                }
                Err(error) => Err(format!("reading the answer failed: {error}")),
            }
        })
    }
}

/// Fetches `{authority}/{tenant}/v2.0/.well-known/openid-configuration`, then the key set at its `jwks_uri`, which
/// must be on the authority's scheme, host and port: the configuration cannot send the check elsewhere.
pub(crate) async fn key_set(
    fetch: &dyn Fetch,
    authority: &Uri,
    tenant: &str,
    max_bytes: usize,
) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct OpenIdConfiguration {
        jwks_uri: String,
    }
    let base = authority.to_string();
    let configuration_uri: Uri =
        format!("{}/{tenant}/v2.0/.well-known/openid-configuration", base.trim_end_matches('/'))
            .parse()
            .map_err(|_| "the OpenID configuration address is not a URI".to_owned())?;
    let bytes = fetch
        .get(configuration_uri, max_bytes)
        .await
        .map_err(|error| format!("fetching the OpenID configuration: {error}"))?;
    let configuration: OpenIdConfiguration = serde_json::from_slice(&bytes)
        .map_err(|error| format!("the OpenID configuration has no `jwks_uri`: {error}"))?;
    let jwks_uri: Uri =
        configuration.jwks_uri.parse().map_err(|_| "the OpenID configuration's `jwks_uri` is not a URI".to_owned())?;
    if !same_origin(authority, &jwks_uri) {
        return Err("the OpenID configuration's `jwks_uri` is not on the authority's host".into());
    }
    let bytes = fetch.get(jwks_uri, max_bytes).await.map_err(|error| format!("fetching the key set: {error}"))?;
    KeySet::parse(&bytes)
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |uri: &Uri| {
        uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
    };
    let (Some(a_host), Some(b_host)) = (a.host(), b.host()) else { return false };
    a.scheme_str() == b.scheme_str()
        && a_host.eq_ignore_ascii_case(b_host)
        && port(a) == port(b)
        && !b.authority().is_some_and(|authority| authority.as_str().contains('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_set_must_be_on_the_authoritys_origin() {
        let authority: Uri = "https://login.microsoftonline.com".parse().unwrap();
        let table = [
            ("https://login.microsoftonline.com/t/discovery/v2.0/keys", true),
            ("https://LOGIN.microsoftonline.com:443/t/discovery/v2.0/keys", true),
            ("http://login.microsoftonline.com/t/discovery/v2.0/keys", false),
            ("https://login.microsoftonline.com:8443/keys", false),
            ("https://evil.example/keys", false),
            ("https://user@login.microsoftonline.com/keys", false),
            ("/relative/keys", false),
        ];
        for (uri, expected) in table {
            assert_eq!(same_origin(&authority, &uri.parse().unwrap()), expected, "{uri}");
        }
    }
}
