//! placeholder for the `emulator` component.

pub mod eventgrid;
