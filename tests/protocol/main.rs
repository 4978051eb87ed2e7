//! The protocol pieces behind real servers on loopback: request signing and its verifier, the Event Grid webhook
//! layer (axum, tonic, tracing, Entra-secured deliveries), the recording events and Call Automation callbacks, the
//! Call Automation recording client, and the cloud presets.

mod call_automation;
mod calling;
mod clouds;
mod recording_formats;
mod signing;
mod signing_properties;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
mod webhook_axum;
mod webhook_entra;
mod webhook_properties;
mod webhook_tonic;
mod webhook_tracing;
