//! The Storage queue source against Azurite's queue service.

#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
