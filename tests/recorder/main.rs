//! The library `Recorder` in-process against the emulator: the webhook journals before answering, the workers
//! download every job, and nothing accepted is lost when the storage, the journal or the process fails.

#[path = "../common/mod.rs"]
mod common;
mod intake;
mod recordings;
mod reliability;
mod retries;
mod support;
