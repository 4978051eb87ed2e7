//! The webhook layer and the extractors behind a real axum server on loopback.
#![cfg(feature = "axum")]

use crate::support;
use crate::support::{fixture, post_json, send, TestServer};
use acs_recording::eventgrid::{DeliverySecret, EventData, EventGridWebhookLayer, Events};
use acs_recording::recording::RecordingEvents;
use axum::routing::{any, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};
use serde_json::{json, Value};

const SECRET: &str = "s3cret-current";
const PREVIOUS_SECRET: &str = "s3cret-previous";

/// Describes what the handler received, so tests can compare exact JSON.
async fn describe(events: RecordingEvents) -> Json<Value> {
    let recordings: Vec<Value> = events
        .iter()
        .map(|event| {
            let subject = event.recording_subject();
            let data = event.data();
            json!({
                "id": event.id(),
                "callId": subject.as_ref().map(|s| s.call_id()),
                "serverCallId": subject.as_ref().and_then(|s| s.server_call_id()),
                "recordingId": subject.as_ref().and_then(|s| s.recording_id()),
                "contentType": data.content_type().map(|t| t.as_str()),
                "channelType": data.channel_type().map(|t| t.as_str()),
                "formatType": data.format_type().map(|t| t.as_str()),
                "sessionEndReason": data.session_end_reason().map(|r| r.as_str()),
                "durationMs": data.recording_duration_ms(),
                "chunks": data.chunks().iter().map(|chunk| json!({
                    "documentId": chunk.document_id(),
                    "index": chunk.index(),
                    "endReason": chunk.end_reason().map(|r| r.as_str()),
                    "contentLocation": chunk.content_location(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let all: Vec<Value> = events
        .all()
        .iter()
        .map(|event| {
            let raw = match event.data() {
                EventData::Other(Some(raw)) | EventData::SubscriptionDeletion(Some(raw)) => Some(raw.get().to_owned()),
                _ => None,
            };
            json!({"id": event.id(), "type": event.event_type(), "raw": raw})
        })
        .collect();
    Json(json!({"recordings": recordings, "all": all}))
}

/// Echoes the body it was given and the number of events the layer parsed.
async fn echo_bytes(events: Events, body: Bytes) -> (StatusCode, [(HeaderName, String); 1], Bytes) {
    (StatusCode::OK, [(HeaderName::from_static("x-events"), events.len().to_string())], body)
}

fn app() -> Router {
    let secured = secured_layer();
    Router::new()
        .route("/events", post(describe).layer(secured))
        .route("/open", post(describe).layer(EventGridWebhookLayer::new()))
        .route("/bytes", post(echo_bytes).layer(EventGridWebhookLayer::new()))
        .route("/small", post(describe).layer(EventGridWebhookLayer::new().max_body_bytes(1024)))
        .route(
            "/header-secret",
            post(describe).layer(
                EventGridWebhookLayer::new()
                    .require_secret(DeliverySecret::header(HeaderName::from_static("x-eventgrid-secret"), SECRET)),
            ),
        )
        .route(
            "/bearer",
            post(describe).layer(EventGridWebhookLayer::new().require(|parts: &http::request::Parts| {
                parts.headers.get("authorization").is_some_and(|value| value == "Bearer token-1")
            })),
        )
        .route("/no-layer", post(describe))
        .route("/parts-without-layer", post(|events: Events| async move { events.len().to_string() }))
        // The layer around every method of a route, and the extractor alone behind every method.
        .route("/service", any(describe).layer(secured_layer()))
        .route("/any-no-layer", any(describe))
}

fn secured_layer() -> EventGridWebhookLayer {
    EventGridWebhookLayer::new().require_secret(DeliverySecret::query(SECRET).or_previous(PREVIOUS_SECRET))
}

fn problem(status: u16, detail: &str) -> Value {
    let title = StatusCode::from_u16(status).unwrap().canonical_reason().unwrap();
    json!({"status": status, "title": title, "detail": detail})
}

#[tokio::test]
async fn event_grid_validation_is_answered_by_the_layer_with_the_code() {
    let server = TestServer::axum(app()).await;
    support::assert_validation_handshake(&server.url(&format!("/events?code={SECRET}"))).await;
}

#[tokio::test]
async fn validation_is_detected_from_the_body_without_aeg_headers() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(
        &server.url("/open"),
        "application/json; charset=utf-8",
        fixture("subscription_validation.eventgrid.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}"#);
}

#[tokio::test]
async fn cloud_events_validation_with_string_data_is_answered() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(
        &server.url("/open"),
        "application/cloudevents+json",
        fixture("subscription_validation.cloudevents.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"validationResponse":"9d2f3c1e-5b6a-4c8d-9e0f-1a2b3c4d5e6f"}"#);
}

#[tokio::test]
async fn validation_header_without_a_validation_event_is_a_400() {
    let server = TestServer::axum(app()).await;
    let reply = send(
        Method::POST,
        &server.url("/open"),
        &[("content-type", "application/json"), ("aeg-event-type", "SubscriptionValidation")],
        fixture("recording_2021.eventgrid.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        reply.json(),
        problem(400, "a SubscriptionValidation delivery without a Microsoft.EventGrid.SubscriptionValidationEvent")
    );
}

#[tokio::test]
async fn cloud_events_options_handshake_grants_allowed_origins_exactly() {
    let server = TestServer::axum(app()).await;
    let url = server.url("/events");
    let reply = send(
        Method::OPTIONS,
        &url,
        &[("webhook-request-origin", "eventgrid.azure.net"), ("webhook-request-rate", "120")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("webhook-allowed-origin"), Some("eventgrid.azure.net"));
    assert_eq!(reply.header("webhook-allowed-rate"), Some("*"));
    assert_eq!(reply.header("allow"), Some("POST"));
    assert!(reply.body.is_empty());

    let reply = send(Method::OPTIONS, &url, &[("webhook-request-origin", "eventgrid.azure.us")], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("webhook-allowed-origin"), Some("eventgrid.azure.us"));
    assert_eq!(reply.header("webhook-allowed-rate"), None);

    let reply = send(Method::OPTIONS, &url, &[("webhook-request-origin", "attacker.example")], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.header("webhook-allowed-origin"), None);
    assert_eq!(reply.json(), problem(403, "webhook origin `attacker.example` is not allowed"));
}

#[tokio::test]
async fn configured_origins_and_rate_replace_the_defaults() {
    let layer = EventGridWebhookLayer::new().allowed_origins(["events.contoso.example"]).allowed_rate(60);
    let server = TestServer::axum(Router::new().route("/e", post(describe).layer(layer))).await;
    let headers = [("webhook-request-origin", "events.contoso.example"), ("webhook-request-rate", "600")];
    let reply = send(Method::OPTIONS, &server.url("/e"), &headers, Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("webhook-allowed-rate"), Some("60"));
    let reply =
        send(Method::OPTIONS, &server.url("/e"), &[("webhook-request-origin", "eventgrid.azure.net")], Bytes::new())
            .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

fn three_chunk_description() -> Value {
    json!({
        "id": "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01",
        "callId": "4f2ab6b1-2a49-4e4c-a0a4-0f8b2d3f5e61",
        "serverCallId": "aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29tL2FwaS92Mi9jcC9jb252LXVzd2UtMDEuY29udi5za3lwZS5jb20vY29udi9BYkNk",
        "recordingId": "eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZjJhYjZiMSJ9",
        "contentType": "AudioVideo",
        "channelType": "Mixed",
        "formatType": "Mp4",
        "sessionEndReason": "CallEnded",
        "durationMs": 5421000,
        "chunks": [
            {"documentId": "0-eus-d2-1b2a9e5f7c3d4e6f8a0b1c2d3e4f5a6b", "index": 0, "endReason": "ChunkMaximumSizeExceeded",
             "contentLocation": "https://storage.asm.skype.com/v1/objects/0-eus-d2-1b2a9e5f7c3d4e6f8a0b1c2d3e4f5a6b/content/video?sv=2026-01-01&sig=a%2Bb"},
            {"documentId": "0-eus-d2-3cca2175891f21c6c9a5975a12c0141c", "index": 1, "endReason": "ChunkMaximumSizeExceeded",
             "contentLocation": "https://storage.asm.skype.com/v1/objects/0-eus-d2-3cca2175891f21c6c9a5975a12c0141c/content/video"},
            {"documentId": "0-eus-d2-9f8e7d6c5b4a39281706f5e4d3c2b1a0", "index": 2, "endReason": "SessionEnded",
             "contentLocation": "https://storage.asm.skype.com/v1/objects/0-eus-d2-9f8e7d6c5b4a39281706f5e4d3c2b1a0/content/video"},
        ],
    })
}

#[tokio::test]
async fn recording_events_reach_the_handler_typed_with_chunks_in_index_order_in_both_schemas() {
    let server = TestServer::axum(app()).await;
    let url = server.url(&format!("/events?api-version=2018-01-01&code={SECRET}"));
    let cases = [
        ("application/json", "recording_three_chunks.eventgrid.json"),
        ("application/cloudevents-batch+json; charset=utf-8", "recording_three_chunks.cloudevents.json"),
    ];
    for (content_type, name) in cases {
        let reply = post_json(&url, content_type, fixture(name)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        let expected = json!({
            "recordings": [three_chunk_description()],
            "all": [{"id": "1f6cf0b4-4b4e-4a36-9d5e-0f6a0c9d1a01", "type": "Microsoft.Communication.RecordingFileStatusUpdated", "raw": null}],
        });
        assert_eq!(reply.json(), expected, "{name}");
    }
}

#[tokio::test]
async fn the_official_single_object_examples_parse_in_both_schemas() {
    let server = TestServer::axum(app()).await;
    let cases = [
        ("application/json", "official_recording_file_status_updated.eventgrid.json"),
        ("application/cloudevents+json", "official_recording_file_status_updated.cloudevents.json"),
    ];
    for (content_type, name) in cases {
        let reply = post_json(&server.url("/open"), content_type, fixture(name)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        let recording = &reply.json()["recordings"][0];
        assert_eq!(recording["id"], "7283825e-f8f1-4c61-a9ea-752c56890500", "{name}");
        assert_eq!(recording["callId"], "{call-id}", "{name}");
        assert_eq!(recording["recordingId"], "{recording-id}", "{name}");
        assert_eq!(recording["serverCallId"], Value::Null, "{name}");
        assert_eq!(recording["formatType"], "Mp3", "{name}");
        assert_eq!(recording["chunks"][0]["documentId"], "0-eus-d12-801b3f3fc462fe8a01e6810cbff729b8", "{name}");
    }
}

#[tokio::test]
async fn the_2021_payload_parses_without_locations_or_formats() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/open"), "application/json", fixture("recording_2021.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json()["recordings"],
        json!([{
            "id": "c4b5a6d7-e8f9-4a0b-8c1d-2e3f4a5b6c7d",
            "callId": "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "serverCallId": null,
            "recordingId": null,
            "contentType": null,
            "channelType": null,
            "formatType": null,
            "sessionEndReason": "CallEnded",
            "durationMs": 64000,
            "chunks": [{"documentId": "0-eus-d4-5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", "index": 0, "endReason": "SessionEnded", "contentLocation": null}],
        }])
    );
}

#[tokio::test]
async fn a_mixed_batch_keeps_other_events_with_their_raw_data() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/open"), "application/json", fixture("mixed_batch.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    let ids: Vec<&str> = body["recordings"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["8a1b2c3d-0000-4000-8000-000000000001", "8a1b2c3d-0000-4000-8000-000000000004"]);
    assert_eq!(body["recordings"][0]["channelType"], "Unmixed");
    assert_eq!(body["recordings"][0]["sessionEndReason"], "InitiatorLeft");
    let all = body["all"].as_array().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[1]["type"], "Microsoft.Communication.CallStarted");
    let raw: Value = serde_json::from_str(all[1]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["serverCallId"], "aHR0cHM6Ly9hcGk");
    assert_eq!(all[2]["type"], "Contoso.Recording.Annotated");
    assert_eq!(all[2]["raw"], r#"{ "state": "Active", "note": "a future event type with a recording subject" }"#);
}

#[tokio::test]
async fn subscription_deletion_reaches_the_handler_and_gets_200() {
    let server = TestServer::axum(app()).await;
    let reply = send(
        Method::POST,
        &server.url("/open"),
        &[("content-type", "application/json"), ("aeg-event-type", "SubscriptionDeletion")],
        fixture("subscription_deletion.eventgrid.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["recordings"], json!([]));
    assert_eq!(body["all"][0]["type"], "Microsoft.EventGrid.SubscriptionDeletedEvent");
    assert_eq!(body["all"][0]["id"], "6f9c0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
}

#[tokio::test]
async fn a_handler_reading_the_body_gets_the_original_bytes() {
    let server = TestServer::axum(app()).await;
    for name in ["recording_three_chunks.eventgrid.json", "mixed_batch.eventgrid.json"] {
        let original = fixture(name);
        let reply = post_json(&server.url("/bytes"), "application/json", original.clone()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, original, "{name}");
        let expected = if name.starts_with("mixed") { "4" } else { "1" };
        assert_eq!(reply.header("x-events"), Some(expected));
    }
}

#[tokio::test]
async fn without_the_layer_the_extractor_parses_the_body_itself() {
    let server = TestServer::axum(app()).await;
    let reply =
        post_json(&server.url("/no-layer"), "application/json", fixture("recording_three_chunks.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["recordings"], json!([three_chunk_description()]));

    let reply =
        post_json(&server.url("/no-layer"), "text/plain", fixture("recording_three_chunks.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = post_json(&server.url("/no-layer"), "application/json", "[{").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = post_json(&server.url("/no-layer"), "application/json", vec![b' '; 1024 * 1024 + 1]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_parts_extractor_without_the_layer_is_a_500_naming_the_missing_layer() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/parts-without-layer"), "application/json", "[]").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json(), problem(500, "no parsed events: the EventGridWebhookLayer is not in front of this route"));
}

#[tokio::test]
async fn malformed_json_is_a_400_with_line_and_column() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/open"), "application/json", "[\n  {\"id\": \"1\",,\n]").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        reply.json(),
        json!({"status": 400, "title": "Bad Request", "detail": "malformed JSON: key must be a string", "line": 2, "column": 14})
    );
}

#[tokio::test]
async fn a_missing_envelope_field_is_a_400_naming_it() {
    let server = TestServer::axum(app()).await;
    let body = r#"[{"id":"1","subject":"/x","data":{},"dataVersion":"1","eventTime":"2026-11-26T08:00:00Z"}]"#;
    let reply = post_json(&server.url("/open"), "application/json", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"status": 400, "title": "Bad Request", "detail": "not an event or a batch of events: missing field `eventType`", "line": 1, "column": 89})
    );
}

#[tokio::test]
async fn a_wrong_shape_is_a_400() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/open"), "application/json", r#"{"hello":"world"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["detail"], "not an event or a batch of events: missing field `id`");
    let reply = post_json(&server.url("/open"), "application/json", "42").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json()["detail"],
        "not an event or a batch of events: invalid type: integer `42`, expected an event object or an array of events"
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let server = TestServer::axum(app()).await;
    let reply = post_json(&server.url("/open"), "text/plain", fixture("recording_2021.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        reply.json(),
        problem(415, "unsupported content type `text/plain`: expected application/json, application/cloudevents+json or application/cloudevents-batch+json")
    );
    let reply = send(Method::POST, &server.url("/open"), &[], fixture("recording_2021.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_oversized_body_gets_413_from_content_length_and_while_streaming() {
    let server = TestServer::axum(app()).await;
    let oversized = vec![b' '; 1025];
    let reply = post_json(&server.url("/small"), "application/json", oversized).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json(), problem(413, "the body is over the limit of 1024 bytes"));

    // Without Content-Length (chunked), the limit holds while reading.
    let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
        (0..3).map(|_| Ok(http_body::Frame::data(Bytes::from(vec![b' '; 512])))).collect();
    let body = http_body_util::StreamBody::new(futures_stream(frames));
    let request =
        http::Request::post(server.url("/small")).header("content-type", "application/json").body(body).unwrap();
    let reply = support::send_request(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json(), problem(413, "the body is over the limit of 1024 bytes"));

    let reply = post_json(&server.url("/small"), "application/json", fixture("recording_2021.eventgrid.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "a body under the limit passes");
}

fn futures_stream<T: Unpin>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Unpin {
    struct Items<T>(std::vec::IntoIter<T>);
    impl<T: Unpin> futures_core::Stream for Items<T> {
        type Item = T;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Items(items.into_iter())
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_a_401_before_the_body_is_read() {
    let server = TestServer::axum(app()).await;
    // The body would be a 400 (or a 415) if it were read: the 401 shows it was not.
    for (path, content_type) in [
        ("/events?code=wrong", "application/json"),
        ("/events", "application/json"),
        ("/events?code=", "text/plain"),
        (&format!("/events?other={SECRET}") as &str, "application/json"),
    ] {
        let reply = post_json(&server.url(path), content_type, "{ this is not JSON").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        assert_eq!(reply.json(), problem(401, "the delivery is not authenticated"), "{path}");
    }
}

#[tokio::test]
async fn both_rotation_secrets_are_accepted() {
    let server = TestServer::axum(app()).await;
    for secret in [SECRET, PREVIOUS_SECRET] {
        let url = server.url(&format!("/events?code={secret}"));
        let reply = post_json(&url, "application/json", fixture("recording_2021.eventgrid.json")).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret}");
        assert_eq!(reply.json()["recordings"][0]["id"], "c4b5a6d7-e8f9-4a0b-8c1d-2e3f4a5b6c7d");
    }
}

#[tokio::test]
async fn header_secrets_and_custom_checks_guard_deliveries() {
    let server = TestServer::axum(app()).await;
    let body = fixture("recording_2021.eventgrid.json");
    let cases: [(&str, (&str, &str), StatusCode); 4] = [
        ("/header-secret", ("x-eventgrid-secret", SECRET), StatusCode::OK),
        ("/header-secret", ("x-eventgrid-secret", PREVIOUS_SECRET), StatusCode::UNAUTHORIZED),
        ("/bearer", ("authorization", "Bearer token-1"), StatusCode::OK),
        ("/bearer", ("authorization", "Bearer token-2"), StatusCode::UNAUTHORIZED),
    ];
    for (path, header, expected) in cases {
        let headers = [("content-type", "application/json"), header];
        let reply = send(Method::POST, &server.url(path), &headers, body.clone()).await;
        assert_eq!(reply.status, expected, "{path} {header:?}");
    }
}

#[tokio::test]
async fn other_methods_pass_through_to_the_router() {
    let server = TestServer::axum(app()).await;
    let reply = send(Method::GET, &server.url("/events"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_request_other_than_post_never_reaches_the_handler_authenticated_or_not() {
    let server = TestServer::axum(app()).await;
    let body = fixture("recording_three_chunks.eventgrid.json");
    let headers = [("content-type", "application/json")];
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        for uri in ["/service".to_owned(), format!("/service?code={SECRET}")] {
            let reply = send(method.clone(), &server.url(&uri), &headers, body.clone()).await;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(reply.headers["allow"], "POST, OPTIONS", "{method} {uri}");
            assert!(!reply.text().contains("recordings"), "{method} {uri}: {}", reply.text());
        }
        // Without the layer, the extractor reads no events from the body of such a request either.
        let reply = send(method.clone(), &server.url("/any-no-layer"), &headers, body.clone()).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let reply = send(Method::POST, &server.url(&format!("/service?code={SECRET}")), &headers, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn a_delivery_mixing_a_validation_event_with_recording_events_is_a_400_not_a_handshake() {
    let server = TestServer::axum(app()).await;
    let validation: Vec<Value> = serde_json::from_slice(&fixture("subscription_validation.eventgrid.json")).unwrap();
    let recordings: Vec<Value> = serde_json::from_slice(&fixture("recording_three_chunks.eventgrid.json")).unwrap();
    let mixed: Vec<Value> = validation.into_iter().chain(recordings).collect();
    let reply =
        post_json(&server.url("/open"), "application/json", Bytes::from(serde_json::to_vec(&mixed).unwrap())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let problem: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        problem["detail"],
        format!(
            "a delivery mixes a Microsoft.EventGrid.SubscriptionValidationEvent with {} other events",
            mixed.len() - 1
        )
    );
}
