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
        Credential::Entra { endpoint, credential } => {
            let mut layer = BearerTokenLayer::new(endpoint.clone(), credential.clone()).allow_list(allow);
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
