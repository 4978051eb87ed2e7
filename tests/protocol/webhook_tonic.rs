//! The webhook and a gRPC service on the same port of a real tonic server, with the plain extractor function.

#[path = "../../examples/support/grpc.rs"]
mod grpc;

use std::convert::Infallible;

use crate::support;
use crate::support::{fixture, send, TestServer};
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer, Events};
use acs_recording::recording::RecordingEvents;
use bytes::Bytes;
use grpc::{RawCodec, ReverseService, REVERSE_CALL};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder};

async fn start() -> TestServer {
    // The webhook handler is a plain tower service: it reads the layer's events with the plain function.
    let handler = service_fn(|request: Request<axum::body::Body>| async move {
        let response = match RecordingEvents::extract(request).await {
            Ok(events) => {
                let mut summary = String::new();
                for event in &events {
                    let subject = event.recording_subject().expect("recording subject");
                    let chunks: Vec<String> = event.data().chunks().iter().map(|c| format!("{}", c.index())).collect();
                    summary.push_str(&format!("{} {} {}\n", event.id(), subject.call_id(), chunks.join(",")));
                }
                Response::new(Full::new(Bytes::from(summary)))
            }
            Err(rejection) => rejection.to_response().map(Full::new),
        };
        Ok::<_, Infallible>(response)
    });
    let webhook = ServiceBuilder::new()
        .layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("tonic-secret")))
        .service(handler);
    // A handler that reads the body itself gets the original bytes.
    let raw = ServiceBuilder::new().layer(EventGridWebhookLayer::new()).service(service_fn(
        |request: Request<axum::body::Body>| async move {
            let events = request.extensions().get::<Events>().map_or(0, Events::len);
            let body = request.into_body().collect().await.expect("body").to_bytes();
            let mut response = Response::new(Full::new(body));
            response.headers_mut().insert("x-events", events.into());
            Ok::<_, Infallible>(response)
        },
    ));
    let router = axum::Router::new().route_service("/eventgrid/events", webhook).route_service("/eventgrid/raw", raw);
    let routes = tonic::service::Routes::from(router).add_service(ReverseService);

    TestServer::start(|listener, signal| async move {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async move {
                let _ = signal.await;
            })
            .await
            .expect("tonic server");
    })
    .await
}

#[tokio::test]
async fn grpc_and_the_webhook_share_one_tonic_port() {
    let server = start().await;

    let channel = tonic::transport::Channel::from_shared(server.url("")).unwrap().connect().await.unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let reply: tonic::Response<Bytes> = client
        .unary(tonic::Request::new(Bytes::from_static(b"abc")), PathAndQuery::from_static(REVERSE_CALL), RawCodec)
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), Bytes::from_static(b"cba"));

    let url = server.url("/eventgrid/events?code=tonic-secret");
    support::assert_validation_handshake(&url).await;

    let reply = send(Method::OPTIONS, &url, &[("webhook-request-origin", "eventgrid.azure.net")], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("webhook-allowed-origin"), Some("eventgrid.azure.net"));
    assert_eq!(reply.header("allow"), Some("POST"));

    let reply = send(
        Method::POST,
        &url,
        &[("content-type", "application/cloudevents-batch+json")],
        fixture("recording_three_chunks.cloudevents.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01 4f2ab6b1-2a49-4e4c-a0a4-0f8b2d3f5e61 0,1,2\n");

    let reply = send(
        Method::POST,
        &server.url("/eventgrid/events?code=nope"),
        &[("content-type", "application/json")],
        "not JSON",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let original = fixture("mixed_batch.eventgrid.json");
    let reply =
        send(Method::POST, &server.url("/eventgrid/raw"), &[("content-type", "application/json")], original.clone())
            .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-events"), Some("4"));
    assert_eq!(reply.body, original);

    // gRPC still works after the webhook traffic on the same server.
    let mut client = client.clone();
    client.ready().await.unwrap();
    let reply: tonic::Response<Bytes> = client
        .unary(tonic::Request::new(Bytes::from_static(b"xy")), PathAndQuery::from_static(REVERSE_CALL), RawCodec)
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), Bytes::from_static(b"yx"));
}
