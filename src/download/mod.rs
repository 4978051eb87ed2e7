//! placeholder for the `download` component.
