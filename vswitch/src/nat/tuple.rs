//! Flow identity: the protocol, the 4-tuple and the side of the switch a packet arrives
//! from, which together are the key of the connection table.
//!
//! ICMP echo has no ports; its identifier takes the place of the port on the side that
//! chose it: an echo request is `(src, id) -> (dst, 0)` and an echo reply is
//! `(src, 0) -> (dst, id)`, so that a reply's tuple is exactly the reverse of its
//! request's, as for TCP and UDP.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::Serialize;

/// The transport protocols the NAT translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP echo request/reply (1); the identifier is allocated like a port.
    Icmp,
}

impl Proto {
    /// All protocols, in the order of [`Proto::index`].
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Icmp];

    /// The IPv4 protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
        }
    }

    /// A dense index (0..3) for per-protocol arrays.
    pub const fn index(self) -> usize {
        match self {
            Proto::Tcp => 0,
            Proto::Udp => 1,
            Proto::Icmp => 2,
        }
    }

    /// The lower-case name, as the CLI prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    pub(crate) const fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            1 => Some(Proto::Icmp),
            _ => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Source and destination address and port of one direction of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port (ICMP echo request: the identifier).
    pub sport: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port (ICMP echo reply: the identifier).
    pub dport: u16,
}

impl Tuple {
    /// The tuple of a packet going the other way.
    pub const fn reversed(self) -> Tuple {
        Tuple {
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }

    /// The same tuple as a pair of socket addresses, for display and JSON.
    pub fn flow(self) -> FlowTuple {
        FlowTuple {
            src: SocketAddrV4::new(self.src, self.sport),
            dst: SocketAddrV4::new(self.dst, self.dport),
        }
    }
}

/// A tuple as `nat ls` shows it: `src -> dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FlowTuple {
    /// Source address and port (identifier for an ICMP echo request).
    pub src: SocketAddrV4,
    /// Destination address and port (identifier for an ICMP echo reply).
    pub dst: SocketAddrV4,
}

impl fmt::Display for FlowTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

/// Which side of the NAT a packet arrives from. Part of the table key, so that a
/// container spoofing a remote address cannot hit an entry meant for the uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Side {
    /// From a local network ([`super::Nat::outbound`]).
    Inside,
    /// From the uplink ([`super::Nat::inbound`]).
    Outside,
}

/// The connection table key: a packet's protocol and tuple as it arrives, and the side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub proto: Proto,
    pub side: Side,
    pub tuple: Tuple,
}

impl std::hash::Hash for Key {
    /// One 128-bit write (the fields packed without loss, so equal keys and only
    /// they pack equal): the derived impl made ten small writes, and with SipHash
    /// that was a quarter of the per-packet cost.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let t = &self.tuple;
        let packed = (u128::from(u32::from(t.src)) << 96)
            | (u128::from(u32::from(t.dst)) << 64)
            | (u128::from(t.sport) << 48)
            | (u128::from(t.dport) << 32)
            | ((self.proto.index() as u128) << 1)
            | (self.side as u128);
        state.write_u128(packed);
    }
}
