//! The recorder's HTTP client: the caller's client behind the signing layer its [`Credential`] calls for, boxed
//! once, so that the recorder's type does not change with the credential.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;
use tower_layer::Layer;

use crate::clock::SharedClock;
use crate::credential::Credential;
#[cfg(feature = "entra")]
use crate::signing::BearerTokenLayer;
use crate::signing::{AllowList, HmacSigningLayer};
use crate::{BoxError, HttpClient};

/// The body of the signed client's responses: the client's own, boxed once per response.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// The signed client the downloader sends its requests through.
pub(crate) type SignedClient = BoxCloneSyncService<Request<Empty<Bytes>>, Response<ResponseBody>, BoxError>;

/// Builds the signed client once the allow-list is known; from [`connector`].
pub(crate) type Connect = Box<dyn FnOnce(&Credential, AllowList, Option<SharedClock>) -> SignedClient + Send + Sync>;

/// Keeps `client` until the recorder is built, then wraps it in the signing layer of the credential.
pub(crate) fn connector(client: impl HttpClient) -> Connect {
    Box::new(move |credential, allow, clock| sign(client, credential, allow, clock))
}

/// `client` behind the signing layer of `credential`, sending only to its endpoint and the hosts of `allow`;
/// `clock` (default the system's) dates signatures and reads token expiries.
fn sign(
    client: impl HttpClient,
    credential: &Credential,
    allow: AllowList,
    clock: Option<SharedClock>,
) -> SignedClient {
    match credential {
        Credential::AccessKey { endpoint, key } => {
            let mut layer = HmacSigningLayer::new(endpoint.clone(), key.clone()).allow_list(allow);
            if let Some(clock) = clock {
                layer = layer.with_clock(clock);
            }
            boxed(layer.layer(client))
        }
        #[cfg(feature = "entra")]
        Credential::Entra { endpoint, credential, scope, refresh_before } => {
            let mut layer = BearerTokenLayer::new(endpoint.clone(), credential.clone()).allow_list(allow);
            if let Some(scope) = scope {
                layer = layer.scope(scope.clone());
            }
            if let Some(early) = refresh_before {
                layer = layer.refresh_before(*early);
            }
            if let Some(clock) = clock {
                layer = layer.with_clock(clock);
            }
            boxed(layer.layer(client))
        }
    }
}

fn boxed(client: impl HttpClient) -> SignedClient {
    BoxCloneSyncService::new(
        client
            .map_response(|response| response.map(|body| body.map_err(Into::into).boxed_unsync()))
            .map_err(Into::into),
    )
}

#[cfg(all(test, feature = "entra"))]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
    use azure_core::time::{Duration as TimeDuration, OffsetDateTime};
    use http_body_util::Full;
    use tower::service_fn;

    use super::*;
    use crate::credential::Endpoint;

    /// Hands out one token, recording the scopes it was asked for.
    #[derive(Debug, Default)]
    struct Scopes(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl TokenCredential for Scopes {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.0.lock().unwrap().extend(scopes.iter().map(|s| (*s).to_owned()));
            Ok(AccessToken::new("entra-token", OffsetDateTime::now_utc() + TimeDuration::hours(1)))
        }
    }

    #[tokio::test]
    async fn an_entra_credential_with_its_own_scope_asks_for_that_scope_and_sends_its_token() {
        let scopes = Arc::new(Scopes::default());
        let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
        let credential = Credential::Entra {
            endpoint: endpoint.clone(),
            credential: scopes.clone(),
            scope: Some("api://recordings/.default".to_owned()),
            refresh_before: None,
        };
        let seen = Arc::new(Mutex::new(None));
        let capture = seen.clone();
        let client = service_fn(move |request: Request<Empty<Bytes>>| {
            *capture.lock().unwrap() = request.headers().get(http::header::AUTHORIZATION).cloned();
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
        let signed = connector(client)(&credential, AllowList::azure_defaults(), None);
        let request = Request::get("https://contoso.communication.azure.com/recording/x").body(Empty::new()).unwrap();
        let response = signed.oneshot(request).await.unwrap();

        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(*scopes.0.lock().unwrap(), ["api://recordings/.default"]);
        assert_eq!(seen.lock().unwrap().as_ref().unwrap(), "Bearer entra-token");
    }
}
