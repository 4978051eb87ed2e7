//! The Storage queue source against Azurite's queue service: the client's signed calls, and the recorder example
//! reading a queue (one replica and two, a journal that fails, a replica killed while it holds messages). Without
//! `AZURITE_QUEUE_STORAGE_URL` the tests start their own Azurite queue service (see `support::azurite`).

// Unix only: the support for queues starts the recorder example as a process.
#[cfg(unix)]
mod client;
#[cfg(unix)]
mod entra;
#[cfg(unix)]
mod full;
#[cfg(unix)]
mod process;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
