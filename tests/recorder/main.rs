//! The recorder against the emulator: the library `Recorder` in-process (the webhook journals before answering, the
//! workers download every job, and nothing accepted is lost when the storage, the journal or the process fails),
//! the recorder example as a process, the Entra bearer token, the cloud presets, and the whole path from a webhook
//! delivery to the downloaded files.

mod bearer_token;
mod cloud;
mod intake;
#[cfg(unix)]
mod process;
mod pull;
mod recordings;
mod reliability;
mod retries;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
mod tracking;
mod webhook_to_download;
