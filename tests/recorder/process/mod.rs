//! The recorder example as a separate process in its real mode (a connection string given), pointed at the
//! emulator: crashes and restarts, hostile clients, and a soak of continuous deliveries with faults.

mod abuse;
mod lifecycle;
mod pull;
mod record;
mod soak;
