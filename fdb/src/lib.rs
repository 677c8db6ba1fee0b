//! Forwarding database (stub; being written).
mod types;
pub use types::{Location, MacAddr, NetworkId, ParseMacError, PortId};
