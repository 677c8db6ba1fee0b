//! NAT for the uplink: masquerade, published ports, connection tracking (being
//! built; this commit has the flow keys, drop reasons, configuration and port pools).

mod config;
mod drop;
mod icmp_error;
mod packet;
mod ports;
mod published;
mod tuple;

pub use config::{NatConfig, NatConfigError, Timeouts, parse_port_range};
pub use drop::{NatDrop, NatDropCounts};
pub use published::{
    PortProto, PortSpec, PublishError, PublishedPort, PublishedPorts, check_conflict,
};
pub use tuple::{FlowTuple, Proto, Tuple};
pub use vtep::ChecksumState;
