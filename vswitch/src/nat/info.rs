//! What the engine reports to the control plane: the tracked connections for
//! `vswitch nat ls [--format json]`, and the table counters for `vswitch stats`.
//! Durations serialize as whole seconds.

use std::time::Duration;

use serde::Serialize;

use super::conn::NatKind;
use super::state::ConnState;
use super::tuple::{FlowTuple, Proto};

/// One tracked connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnInfo {
    /// The protocol.
    pub proto: Proto,
    /// Masquerade, published port or hairpin.
    pub kind: NatKind,
    /// The first packet as it arrived (for ICMP echo the "port" is the identifier).
    pub original: FlowTuple,
    /// The first packet as it left.
    pub translated: FlowTuple,
    /// The state.
    pub state: ConnState,
    /// Time since the first packet.
    #[serde(serialize_with = "secs")]
    pub age: Duration,
    /// Time since the last packet.
    #[serde(serialize_with = "secs")]
    pub idle: Duration,
    /// Time left before the entry may expire, if no packet comes.
    #[serde(serialize_with = "secs")]
    pub expires_in: Duration,
}

/// Ports (or ICMP identifiers) of one protocol in use out of the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PortUsage {
    /// The protocol.
    pub proto: Proto,
    /// Ports held by live masqueraded or hairpin flows.
    pub used: usize,
    /// Ports in the range.
    pub capacity: usize,
}

/// Table counters. Flow refusals are counted here, once per refused creation attempt
/// (each also returns a [`super::NatDrop`] that the worker counts per packet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatCounters {
    /// Connections tracked now.
    pub entries: usize,
    /// `max_entries`.
    pub limit: usize,
    /// Connections created since start.
    pub created: u64,
    /// Connections removed since start (by expiry or [`super::Nat::remove_endpoint`]).
    pub removed: u64,
    /// New flows refused because the table was full.
    pub refused_table_full: u64,
    /// New flows refused because no port was free.
    pub refused_ports_exhausted: u64,
    /// New flows refused because their translated tuple was taken.
    pub refused_tuple_in_use: u64,
    /// Port use per protocol (TCP, UDP, ICMP).
    pub ports: [PortUsage; 3],
    /// Fragmented datagrams whose later fragments are expected.
    pub fragmented_datagrams: usize,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}
