//! The HMAC signing middleware: [`HmacSigningLayer`] builds [`HmacSigning`], whose [`ResponseFuture`] hashes a
//! body when it must and signs with an [`HmacSigner`](super::HmacSigner).

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::HmacSigningLayer;
pub use service::HmacSigning;
