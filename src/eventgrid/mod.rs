//! placeholder for the `eventgrid` component.
