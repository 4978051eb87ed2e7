//! Tower layers and services to receive and download Azure Communication Services (ACS) call recordings.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod clock;
pub mod credential;
pub mod download;
pub mod eventgrid;
pub mod queue;
pub mod recording;
pub mod signing;

#[cfg(feature = "emulator")]
pub mod emulator;

/// A boxed error, as tower uses for errors of unknown type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
