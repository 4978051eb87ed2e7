//! The HMAC verifying middleware: [`HmacVerifyLayer`] builds [`HmacVerify`], which checks a request's head, then
//! its body, in [`VerifyFuture`], and answers a failure with a [`VerifyRejection`].

mod config;
mod future;
mod layer;
mod rejection;
mod service;

#[cfg(feature = "emulator")]
pub(crate) use config::DEFAULT_VERIFY_BODY_LIMIT;
pub use future::VerifyFuture;
pub use layer::HmacVerifyLayer;
pub use rejection::VerifyRejection;
pub use service::HmacVerify;
