//! TAP ports.
