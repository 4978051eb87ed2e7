//! Call Automation's recording callbacks through a real axum server: the `CallAutomationEvents` extractor on the
//! fixtures in `tests/fixtures/` (provenance in its README).

use crate::support::{fixture, send, TestServer};
use acs_recording::recording::{CallAutomationEvents, RecordingCallback, RecordingKind, RecordingState};
use axum::routing::post;
use axum::Router;
use http::{Method, StatusCode};

/// Answers one line per recording callback, then one per rejected one, so that the tests read what was typed.
async fn on_callbacks(callbacks: CallAutomationEvents) -> (StatusCode, String) {
    let mut lines = Vec::new();
    for event in callbacks.iter() {
        let line = match event.callback() {
            RecordingCallback::StateChanged(changed) => format!(
                "{} state-changed {} {} {} {}",
                event.id(),
                changed.recording_id.as_deref().unwrap_or("-"),
                changed.state.as_ref().map_or("-", RecordingState::as_str),
                changed.recording_kind.as_ref().map_or("-", RecordingKind::as_str),
                event.source().unwrap_or("-"),
            ),
            RecordingCallback::StartFailed(failed) => {
                let result = failed.result_information.as_ref();
                format!(
                    "{} start-failed {} {} {:?} {:?} {}",
                    event.id(),
                    failed.recording_id.as_deref().unwrap_or("-"),
                    failed.operation_context.as_deref().unwrap_or("-"),
                    result.and_then(|r| r.code),
                    result.and_then(|r| r.sub_code),
                    result.and_then(|r| r.message.as_deref()).unwrap_or("-"),
                )
            }
            other => format!("{} {other:?}", event.id()),
        };
        lines.push(line);
    }
    for (event, reason) in callbacks.rejected() {
        lines.push(format!("{} rejected: {reason}", event.id()));
    }
    lines.push(format!("{} events", callbacks.all().len()));
    (StatusCode::OK, lines.join("\n"))
}

async fn server() -> TestServer {
    TestServer::axum(Router::new().route("/api/callbacks", post(on_callbacks))).await
}

#[tokio::test]
async fn recording_state_changed_is_typed_whatever_json_content_type_it_comes_with() {
    let server = server().await;
    let url = server.url("/api/callbacks");
    for content_type in ["application/json", "application/json; charset=utf-8", "application/cloudevents-batch+json"] {
        let reply = send(
            Method::POST,
            &url,
            &[("content-type", content_type)],
            fixture("call_automation_recording_state_changed.json"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{content_type}: {}", reply.text());
        assert_eq!(
            reply.text(),
            "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b state-changed eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0 active \
             AzureCommunicationServices calling/recordings/eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0/recordingStateChanged\n\
             2 events",
            "{content_type}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn start_recording_failed_carries_its_result_information() {
    let server = server().await;
    let reply = send(
        Method::POST,
        &server.url("/api/callbacks"),
        &[("content-type", "application/json")],
        fixture("call_automation_start_recording_failed.json"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.text(),
        "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d start-failed eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI0ZTJmIn0 start-recording-1 \
         Some(400) Some(8583) Recording could not be started.\n1 events"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_callback_whose_data_does_not_fit_is_reported_and_the_rest_typed() {
    let server = server().await;
    let body = r#"[{"id":"a","source":"calling/callConnections/c","type":"Microsoft.Communication.RecordingStateChanged",
        "specversion":"1.0","data":{"recordingId":"r","state":"inactive","futureField":true}},
        {"id":"b","source":"calling/callConnections/c","type":"Microsoft.Communication.StartRecordingFailed",
        "specversion":"1.0","data":{"resultInformation":"not an object"}}]"#;
    let reply = send(Method::POST, &server.url("/api/callbacks"), &[("content-type", "application/json")], body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines: Vec<&str> = reply.text().lines().collect();
    assert_eq!(lines[0], "a state-changed r inactive - calling/callConnections/c");
    assert!(
        lines[1].starts_with("b rejected: invalid data for Microsoft.Communication.StartRecordingFailed: invalid type"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "2 events");
    server.stop().await;
}

#[tokio::test]
async fn other_content_types_and_bodies_get_the_exact_statuses() {
    let server = server().await;
    let url = server.url("/api/callbacks");
    let reply = send(Method::POST, &url, &[("content-type", "text/plain")], "[]").await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], "[{\"id\":1").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // An Event Grid schema body is not a CloudEvents one: it has `eventType`, not `type`.
    let reply =
        send(Method::POST, &url, &[("content-type", "application/json")], fixture("recording_2021.eventgrid.json"))
            .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("missing field `type`"), "{}", reply.text());
    let big = vec![b' '; 1024 * 1024 + 1];
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}
