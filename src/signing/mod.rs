//! HMAC-SHA256 request signing (`SPEC.md` §2).

mod allow;
mod sign;

pub use allow::{AllowList, InvalidHost, Refused, RefusedReason, DEFAULT_STORAGE_SUFFIXES};
pub use sign::{
    compute_signature, content_hash, format_date, string_to_sign, EMPTY_CONTENT_HASH, LEGACY_SIGNED_HEADERS,
    SIGNED_HEADERS,
};
