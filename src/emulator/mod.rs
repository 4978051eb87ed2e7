//! placeholder for the `emulator` component.
