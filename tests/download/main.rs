//! The chunk downloader against the emulator's storage: single and parallel ranged downloads, faults, resumes, and
//! properties over random fault schedules.

mod budget;
mod downloader;
mod parallel;
mod properties;
mod resume;
mod streams;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
