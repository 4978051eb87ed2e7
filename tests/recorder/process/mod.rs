//! The recorder example as a separate process in its real mode (a connection string given), pointed at the
//! emulator: crashes and restarts, hostile clients, and a soak of continuous deliveries with faults.
#![cfg(unix)]

mod abuse;
#[path = "../common/mod.rs"]
mod common;
mod lifecycle;
mod soak;
mod support;
