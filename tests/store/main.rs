//! Object storage against Azurite and local files: the sink and the shared journal, their conditional writes under
//! network faults, and recorder replicas (processes) scaling out over one store. Without `AZURITE_BLOB_STORAGE_URL`
//! the tests install and start their own Azurite (see `support::azurite`).

#[cfg(unix)]
mod dead_letters;
mod faults;
mod object_store;
#[cfg(unix)]
mod phases;
#[cfg(unix)]
mod pull;
#[cfg(unix)]
mod scale_out;
mod shared_journal;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
