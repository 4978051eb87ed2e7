//! The Microsoft Entra ID middleware: [`BearerTokenLayer`] builds [`BearerToken`], whose [`BearerFuture`] waits for
//! a token only when none is cached; the token cache keeps one token per layer.

mod future;
mod layer;
mod service;
mod token;

pub use future::BearerFuture;
pub use layer::{BearerTokenLayer, ACS_SCOPE};
pub use service::BearerToken;
#[cfg(feature = "storage-queue")]
pub(crate) use {layer::DEFAULT_REFRESH_BEFORE, token::TokenCache};
