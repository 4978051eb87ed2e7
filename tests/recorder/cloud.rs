//! `RecorderBuilder::cloud`: one switch for the allow-list and the webhook's origins, seen through a running
//! recorder.

use std::time::Duration;

use crate::support::{eventually, fixture, send, TestServer};
use acs_recording::cloud::AzureCloud;
use acs_recording::download::sink::DirectorySink;
use acs_recording::emulator::Emulator;
use acs_recording::journal::{FileJournal, JobId, JobState, Journal};
use acs_recording::recorder::Recorder;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test]
async fn a_china_recorder_refuses_public_storage_hosts_and_grants_only_the_china_origin() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let journal = FileJournal::open(out.path().join(".journal")).unwrap();
    let recorder = Recorder::builder(&emulator.connection_string(), client, DirectorySink::new(out.path()), journal)
        .cloud(AzureCloud::China)
        .build();
    let journal = recorder.journal().clone();
    let server = TestServer::axum(axum::Router::new().route_service("/api/events", recorder.webhook())).await;
    let workers = recorder.spawn();
    let url = server.url("/api/events");

    for (origin, status) in [("eventgrid.azure.cn", StatusCode::OK), ("eventgrid.azure.net", StatusCode::FORBIDDEN)] {
        let reply = send(Method::OPTIONS, &url, &[("webhook-request-origin", origin)], "").await;
        assert_eq!(reply.status, status, "{origin}");
    }

    // The failed-export fixture points at `us-storage.asm.skype.com`, public-cloud ACS storage.
    let body = fixture("recording_byos_export_failed.eventgrid.json");
    let reply = send(Method::POST, &url, &[("content-type", "application/json")], body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let id = JobId::for_event("9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d");
    let (journal, id) = (&journal, &id);
    let job = eventually(Duration::from_secs(30), "the job finishes", || async move {
        journal.get(id).await.unwrap().filter(|job| !job.state.is_open())
    })
    .await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(
        job.last_error.as_deref(),
        Some(
            "chunk 0 (`0-eus-d7-8f3c1a2b4d5e6f708192a3b4c5d6e7f8`) content: location on refused host \
             `us-storage.asm.skype.com`: host `us-storage.asm.skype.com` is not on the allow-list"
        )
    );
    workers.shutdown().await.unwrap();
    server.stop().await;
}
