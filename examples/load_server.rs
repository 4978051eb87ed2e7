//! The server side of `scripts/load`: one webhook on a single-threaded runtime, in one of three forms, so that the
//! recorder's webhook can be measured against its floors in the same run.
//!
//! ```text
//! cargo run --release --example load_server -- recorder 127.0.0.1:8080 /dev/shm/journal   # the library
//! cargo run --release --example load_server -- serde 127.0.0.1:8080                        # axum + serde_json
//! cargo run --release --example load_server -- bare 127.0.0.1:8080                         # axum's 200
//! ```
//!
//! `recorder` is [`Recorder::webhook`] with a [`FileJournal`]: authenticated (`?code=load-secret`), parsed once,
//! deduplicated and journaled before its 200; its workers are not started, so only the intake is measured. `serde`
//! reads the body and parses it with serde_json into the same typed data ([`RecordingFileStatusUpdated`]) in a
//! minimal envelope. `bare` answers 200 without reading the body.

use std::net::SocketAddr;

use acs_recording::credential::ConnectionString;
use acs_recording::download::sink::DirectorySink;
use acs_recording::eventgrid::{DeliverySecret, EventGridWebhookLayer};
use acs_recording::journal::FileJournal;
use acs_recording::recorder::Recorder;
use acs_recording::recording::RecordingFileStatusUpdated;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// The Event Grid envelope, as small as serde makes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Envelope {
    id: String,
    event_type: String,
    subject: Option<String>,
    event_time: Option<String>,
    data: RecordingFileStatusUpdated,
}

/// The floor: the same body parsed into the same typed data, one event or a batch.
async fn parse(body: Bytes) -> StatusCode {
    let parsed = if body.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<Envelope>>(&body).map(|events| events.len())
    } else {
        serde_json::from_slice::<Envelope>(&body).map(|_| 1)
    };
    match parsed {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn main() -> Result<(), acs_recording::BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, address) = match args.as_slice() {
        [mode, address, ..] => (mode.as_str(), address.parse::<SocketAddr>()?),
        _ => return Err("usage: load_server recorder|serde|bare ADDRESS [JOURNAL DIR]".into()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let app = match mode {
            "bare" => Router::new().route("/api/events", post(|| async { StatusCode::OK })),
            "serde" => Router::new().route("/api/events", post(parse)),
            "recorder" => {
                let journal = args.get(2).ok_or("recorder needs a journal folder")?;
                let connection_string: ConnectionString =
                    "endpoint=https://load.communication.azure.com/;accesskey=bG9hZC10ZXN0LWtleS1ub3QtYS1zZWNyZXQ="
                        .parse()?;
                let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
                let recorder = Recorder::builder(
                    &connection_string,
                    client,
                    DirectorySink::new(std::env::temp_dir().join("load-recordings")),
                    FileJournal::open(journal)?,
                )
                .webhook_layer(EventGridWebhookLayer::new().require_secret(DeliverySecret::query("load-secret")))
                .max_pending(usize::MAX)
                .build();
                Router::new().route_service("/api/events", recorder.webhook())
            }
            other => return Err(format!("unknown mode {other}").into()),
        };
        let listener = tokio::net::TcpListener::bind(address).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
