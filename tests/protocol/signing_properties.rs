//! Sign → verify round trips over arbitrary methods, paths, queries and bodies: what the signing layer sends, the
//! verifying layer accepts, byte for byte; and any change to the body, the path or the query is refused.

use std::convert::Infallible;

use acs_recording::credential::{AccessKey, Endpoint};
use acs_recording::signing::{HmacSigningLayer, HmacVerifyLayer};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{service_fn, ServiceBuilder, ServiceExt};

use crate::support;

/// Signs `request` for `endpoint`, then hands it to a verifier as a server sees it (origin-form URI) after `tamper`.
async fn round_trip(
    key: &AccessKey,
    endpoint: &Endpoint,
    request: Request<Full<Bytes>>,
    tamper: impl FnOnce(&mut http::request::Parts, &mut Bytes),
) -> (StatusCode, Bytes) {
    let echo = service_fn(|request: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(request) });
    let signed = ServiceBuilder::new()
        .layer(HmacSigningLayer::new(endpoint.clone(), key.clone()))
        .service(echo)
        .oneshot(request)
        .await
        .unwrap();
    let (mut parts, body) = signed.into_parts();
    let mut body = body.collect().await.unwrap().to_bytes();
    parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
    tamper(&mut parts, &mut body);
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(body)))
    });
    let response = ServiceBuilder::new()
        .layer(HmacVerifyLayer::new(key.clone(), endpoint.authority()))
        .service(inner)
        .oneshot(Request::from_parts(parts, Full::new(body)))
        .await
        .unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PUT), Just(Method::DELETE), Just(Method::PATCH)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64, failure_persistence: support::regressions_beside_the_test(), .. ProptestConfig::default()
    })]

    #[test]
    fn what_the_signer_sends_the_verifier_accepts_and_a_change_is_refused(
        method in method(),
        segments in proptest::collection::vec("[A-Za-z0-9._~-]{1,12}", 0..4),
        query in proptest::option::of("[a-z]{1,8}=[A-Za-z0-9%._-]{0,16}(&[a-z]{1,8}=[A-Za-z0-9]{0,8}){0,2}"),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        key in proptest::collection::vec(any::<u8>(), 1..64),
        flip in any::<prop::sample::Index>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let key = AccessKey::from_bytes(key);
            let endpoint = Endpoint::parse("https://contoso.communication.azure.com/").unwrap();
            let mut uri = format!("https://contoso.communication.azure.com/{}", segments.join("/"));
            if let Some(query) = &query {
                uri.push('?');
                uri.push_str(query);
            }
            let request = || Request::builder().method(method.clone()).uri(&uri).body(Full::new(Bytes::from(body.clone()))).unwrap();

            let (status, echoed) = round_trip(&key, &endpoint, request(), |_, _| {}).await;
            assert_eq!(status, StatusCode::OK, "{method} {uri}");
            assert_eq!(echoed, Bytes::from(body.clone()), "the inner service gets the body intact");

            if !body.is_empty() {
                let at = flip.index(body.len());
                let (status, _) = round_trip(&key, &endpoint, request(), |_, bytes| {
                    let mut changed = bytes.to_vec();
                    changed[at] ^= 0x01;
                    *bytes = Bytes::from(changed);
                })
                .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "a changed body byte");
            }
            let (status, _) = round_trip(&key, &endpoint, request(), |parts, _| {
                let changed = format!("{}x", parts.uri.path_and_query().unwrap().as_str());
                parts.uri = changed.parse().unwrap();
            })
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "a changed path or query");
        });
    }
}
