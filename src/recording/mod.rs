//! placeholder for the `recording` component.
