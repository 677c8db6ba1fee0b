//! NAT for the uplink: masquerade, published ports, connection tracking (being
//! built; this commit has the flow keys, drop reasons, configuration and port pools).

mod config;
mod conn;
mod drop;
mod icmp_error;
mod packet;
mod ports;
mod published;
mod state;
mod tuple;

pub use config::{NatConfig, NatConfigError, Timeouts, parse_port_range};
pub use conn::{Egress, NatKind};
pub use drop::{NatDrop, NatDropCounts};
pub use published::{
    PortProto, PortSpec, PublishError, PublishedPort, PublishedPorts, check_conflict,
};
pub use state::ConnState;
pub use tuple::{FlowTuple, Proto, Tuple};
pub use vtep::ChecksumState;
