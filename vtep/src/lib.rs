//! `vtep`: the VXLAN tunnel endpoint as pure functions over bytes.
//!
//! This crate owns what a VXLAN overlay needs between "an inner Ethernet frame" and "a
//! UDP datagram to a peer", and the MTU consequences of the overhead:
//! - [`header`]: the VXLAN header view (RFC 7348), the [`Vni`] type and the receive
//!   policy for flags;
//! - [`encap`]: pushing the VXLAN header, or the whole outer IPv4/IPv6 + UDP (+
//!   Ethernet) stack, into a buffer's headroom;
//! - [`flow`]: the inner-flow hash and the UDP source port range it maps into;
//! - [`decap`]: checking a received datagram (length, flags, known VNI, peer) and
//!   locating the inner frame, with a countable [`DecapError`];
//! - [`peers`]: the peer table, VNIs per peer, precomputed flood lists;
//! - [`mtu`]: overlay MTU and MSS arithmetic and its checked configuration;
//! - [`oversize`]: what to do with an inner frame too big for the overlay; [`icmp`]:
//!   building the "fragmentation needed" / "packet too big" replies; [`fragment`]:
//!   inner IPv4 fragmentation; [`mss`]: TCP MSS clamping;
//! - [`checksum`]: the Internet checksum and RFC 1624 incremental updates (also for NAT).
//!
//! It never does I/O, reads no clock, takes no lock and logs nothing; the per-packet
//! functions do not allocate (they write into buffers the caller provides). It knows
//! nothing of ports, sockets or the daemon; the daemon calls it. Packet parsing uses
//! etherparse where etherparse has the header (IP, UDP, TCP, ICMP); the VXLAN view and
//! the flow dissector are ours. Nothing here panics on any input bytes.
//!
//! The daemon's two paths, in miniature:
//!
//! ```
//! use vtep::{Headroom, PeerLookup, PeerTable, PeerVnis, SliceBuf, Vni};
//!
//! let vni = Vni::new(100).ok_or("bad VNI")?;
//! let mut peers = PeerTable::new();
//! peers.add("192.0.2.2".parse()?, PeerVnis::only([vni]))?;
//!
//! // Out: pick the source port from the inner flow, push the VXLAN header, and send
//! // the result through the UDP socket bound to that port, to each VTEP that wants it.
//! let frame = [0x02u8; 60];
//! let port = vtep::source_port(vtep::flow_hash(&frame), vtep::PortRange::DEFAULT);
//! let mut buf = [0u8; 8 + 60];
//! buf[8..].copy_from_slice(&frame);
//! let mut pkt = SliceBuf::new(&mut buf, 8).ok_or("no room")?;
//! vtep::push_vxlan(&mut pkt, vni)?;
//! assert_eq!(peers.flood_list(vni).len(), 1);
//!
//! // In: a datagram from 192.0.2.2 is checked and its inner frame located.
//! let known = [vni];
//! let d = vtep::decapsulate(pkt.frame(), "192.0.2.2".parse()?, &known[..], &peers)?;
//! assert_eq!(&pkt.frame()[d.inner], &frame[..]);
//! assert!(vtep::PortRange::DEFAULT.contains(port));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod checksum;
pub mod decap;
pub mod encap;
pub mod flow;
pub mod fragment;
pub mod header;
pub mod icmp;
mod l2;
pub mod mss;
pub mod mtu;
pub mod oversize;
pub mod peers;
#[cfg(test)]
mod test_frames;

pub use decap::{DecapDatagram, DecapError, Decapsulated, KnownVnis, decapsulate, decapsulate_ip};
pub use encap::{
    EncapError, Headroom, OVERHEAD_V4, OVERHEAD_V6, OuterParams, SliceBuf, VXLAN_HLEN, VXLAN_PORT,
    push_outer, push_outer_ethernet, push_vxlan,
};
pub use flow::{PortRange, PortRangeError, flow_hash, source_port};
pub use fragment::{FragmentError, Fragmenter, fragment_ipv4};
pub use header::{HeaderError, Vni, VniError, VxlanPacket, VxlanRepr};
pub use icmp::{IcmpError, build_frag_needed, build_packet_too_big};
pub use mss::{ChecksumState, clamp_mss};
pub use mtu::{IpFamily, MtuError, OverlayMtu, max_overlay_mtu, mss_for_mtu, overlay_mtu};
pub use oversize::{OversizeDrop, Verdict, needs_icmp, tunnel_ip_mtu};
pub use peers::{PeerError, PeerLookup, PeerTable, PeerVnis};
