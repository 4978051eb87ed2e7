//! `record start|pause|resume|stop|state`: a call's recording driven through Call Automation, with the library's
//! `RecordingClient` inside the same signing layer and allow-list as the downloads.
//!
//! Each command prints one JSON object on one line: `start` and `state` the service's answer
//! (`{"recordingId":..,"recordingState":..,"recordingKind":..}`), `pause`, `resume` and `stop` what was done
//! (`{"recordingId":..,"done":"paused"}`): the state after a stop cannot be read, the recording is gone.

use std::time::Duration;

use acs_recording::calling::{CallLocator, ExternalStorage, RecordingClient, StartRecording};
use acs_recording::credential::Credential;
use acs_recording::download::RetryPolicy;
use acs_recording::recording::{RecordingChannelType, RecordingContentType, RecordingFormatType};
use acs_recording::signing::{AllowList, BearerTokenLayer, HmacSigningLayer};
use acs_recording::{BoxError, HttpClient};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::Layer;

/// A recording operation.
#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Start recording a call, named by exactly one of --server-call-id, --group-call-id, --room-id and
    /// --call-connection-id.
    Start(StartArgs),
    /// Pause a recording.
    Pause(IdArgs),
    /// Resume a paused recording.
    Resume(IdArgs),
    /// Stop a recording; ACS then announces its files to the Event Grid subscription.
    Stop(IdArgs),
    /// Read a recording's state.
    State(IdArgs),
}

/// The recording id, as `start` prints it, and how long to keep trying.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The recording id.
    recording_id: String,
    #[command(flatten)]
    retry: RetryArgs,
}

/// How hard an operation is tried.
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// Requests sent at most for one operation (408, 429, 5xx and failed connections are retried).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Seconds the attempts of one operation may take in all.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_seconds: u64,
}

impl RetryArgs {
    fn policy(&self) -> RetryPolicy {
        let timeout = Duration::from_secs(self.timeout_seconds);
        RetryPolicy::default().max_attempts(self.max_attempts).max_total(timeout).read_timeout(timeout)
    }
}

/// `record start`'s options.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The call's server call id.
    #[arg(long)]
    server_call_id: Option<String>,
    /// The group call's id.
    #[arg(long)]
    group_call_id: Option<String>,
    /// The ACS room's id (the service may refuse a room: give the room call's server call id then).
    #[arg(long)]
    room_id: Option<String>,
    /// The call connection id of a call this application answered or placed.
    #[arg(long)]
    call_connection_id: Option<String>,
    /// What is recorded.
    #[arg(long, value_enum)]
    content: Option<Content>,
    /// One mixed channel, or one channel per participant.
    #[arg(long, value_enum)]
    channel: Option<Channel>,
    /// The file format.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Start the recording paused (inactive) until `record resume`.
    #[arg(long)]
    pause_on_start: bool,
    /// Where ACS posts the recording's state changes.
    #[arg(long, value_name = "URL")]
    callback_uri: Option<String>,
    /// Record into this Azure Blob container (`https://<account>.blob.core.windows.net/<container>`) instead of
    /// ACS storage.
    #[arg(long, value_name = "URL")]
    blob_container: Option<String>,
    #[command(flatten)]
    retry: RetryArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Content {
    Audio,
    AudioVideo,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Channel {
    Mixed,
    Unmixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Wav,
    Mp3,
    Mp4,
}

impl StartArgs {
    /// The start request; an error unless exactly one way of naming the call was given.
    fn request(&self) -> Result<StartRecording, BoxError> {
        let named = [
            self.server_call_id.as_deref().map(|id| StartRecording::call(CallLocator::server_call(id))),
            self.group_call_id.as_deref().map(|id| StartRecording::call(CallLocator::group_call(id))),
            self.room_id.as_deref().map(|id| StartRecording::call(CallLocator::room(id))),
            self.call_connection_id.as_deref().map(StartRecording::call_connection),
        ];
        let mut named = named.into_iter().flatten();
        let (Some(mut start), None) = (named.next(), named.next()) else {
            return Err("name the call with exactly one of --server-call-id, --group-call-id, --room-id and \
                        --call-connection-id"
                .into());
        };
        if let Some(content) = self.content {
            start = start.content(match content {
                Content::Audio => RecordingContentType::Audio,
                Content::AudioVideo => RecordingContentType::AudioVideo,
            });
        }
        if let Some(channel) = self.channel {
            start = start.channels(match channel {
                Channel::Mixed => RecordingChannelType::Mixed,
                Channel::Unmixed => RecordingChannelType::Unmixed,
            });
        }
        if let Some(format) = self.format {
            start = start.format(match format {
                Format::Wav => RecordingFormatType::Wav,
                Format::Mp3 => RecordingFormatType::Mp3,
                Format::Mp4 => RecordingFormatType::Mp4,
            });
        }
        if let Some(uri) = &self.callback_uri {
            start = start.state_callback(uri);
        }
        if let Some(container) = &self.blob_container {
            start = start.storage(ExternalStorage::azure_blob(container));
        }
        Ok(start.pause_on_start(self.pause_on_start))
    }
}

impl RecordCommand {
    fn retry(&self) -> &RetryArgs {
        match self {
            Self::Start(start) => &start.retry,
            Self::Pause(id) | Self::Resume(id) | Self::Stop(id) | Self::State(id) => &id.retry,
        }
    }
}

/// Runs `command` against the resource of `credential`, sending only to its endpoint and the hosts of `allow`;
/// prints the answer as one JSON line.
pub(crate) async fn run(command: &RecordCommand, credential: Credential, allow: AllowList) -> Result<(), BoxError> {
    // Checked before any credential is asked for a token.
    if let RecordCommand::Start(start) = command {
        start.request()?;
    }
    let endpoint = credential.endpoint().clone();
    let policy = command.retry().policy();
    let line = match credential {
        Credential::AccessKey { endpoint, key } => {
            let signed = HmacSigningLayer::new(endpoint.clone(), key).allow_list(allow).layer(https_client());
            send(command, RecordingClient::new(signed, endpoint).with_retry_policy(policy)).await?
        }
        Credential::Entra { credential, .. } => {
            let signed = BearerTokenLayer::new(endpoint.clone(), credential).allow_list(allow).layer(https_client());
            send(command, RecordingClient::new(signed, endpoint).with_retry_policy(policy)).await?
        }
        other => return Err(format!("no recording client for the credential {other:?}").into()),
    };
    println!("{line}");
    Ok(())
}

/// https for Azure; plain http only reaches loopback endpoints and the hosts of --allow-host.
fn https_client(
) -> Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>> {
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// Sends one operation; answers the JSON line to print.
async fn send<S: HttpClient<Full<Bytes>>>(
    command: &RecordCommand,
    client: RecordingClient<S>,
) -> Result<String, BoxError> {
    let done = |id: &str, done: &str| json!({ "recordingId": id, "done": done }).to_string();
    let result = match command {
        RecordCommand::Start(start) => client.start(&start.request()?).await.map(|status| json!(status).to_string()),
        RecordCommand::State(id) => client.state(&id.recording_id).await.map(|status| json!(status).to_string()),
        RecordCommand::Pause(id) => client.pause(&id.recording_id).await.map(|()| done(&id.recording_id, "paused")),
        RecordCommand::Resume(id) => client.resume(&id.recording_id).await.map(|()| done(&id.recording_id, "resumed")),
        RecordCommand::Stop(id) => client.stop(&id.recording_id).await.map(|()| done(&id.recording_id, "stopped")),
    };
    // The service's own message says what to change; the error's line names the operation, status and code.
    result.map_err(|error| match error.service_error().map(|service| service.message.clone()) {
        Some(message) if !message.is_empty() => format!("{error}: {message}").into(),
        _ => error.into(),
    })
}
