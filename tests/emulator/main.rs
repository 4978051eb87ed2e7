//! The embedded emulator over HTTP: its storage (signatures, ranges, preconditions) and its Event Grid publisher,
//! against a loopback server and against the crate's own webhook layer.

mod call_recording;
mod calling;
mod namespace;
mod namespace_sdk;
mod official_sdk;
mod publisher;
mod storage;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
mod webhook;
