//! What the emulator's storage served, read from its request log.

use acs_recording::emulator::Emulator;
use http::Method;

/// Media bytes the storage sent for one chunk, over all its requests (metadata and failed answers left out).
pub(crate) fn served(emulator: &Emulator, document_id: &str) -> u64 {
    emulator
        .storage()
        .requests_for(document_id)
        .iter()
        .filter(|r| r.method == Method::GET && !r.path.ends_with("acsmetadata") && (r.status == 200 || r.status == 206))
        .map(|r| r.bytes_sent)
        .sum()
}
