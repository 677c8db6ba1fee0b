//! Watching the packet path decide, for `vswitch trace`: the pipeline and the router take
//! an [`Observer`]. On the hot path it is [`Live`], a zero-sized no-op whose `DRY_RUN` is
//! `false`: every `step` call compiles to nothing and every `if O::DRY_RUN` is removed at
//! compile time. A trace passes a [`Recorder`]: it collects each decision as a [`Step`],
//! and its `DRY_RUN` makes the same code change nothing — no FDB learning, no counters,
//! no conntrack entry, no neighbour entry or queued frame.
//!
//! So there is one decision code, run for real or traced; the tracer never re-implements
//! forwarding.

use std::net::{IpAddr, Ipv4Addr};

use fdb::{Location, MacAddr, NetworkId, PortId};
use vtep::Vni;

use super::counters::DropReason;
use super::router::RouterDrop;
use crate::nat::{NatDrop, Preview};

/// Receives the decisions made about one frame.
pub trait Observer {
    /// Tracing only: the frame may change nothing outside its own buffers.
    const DRY_RUN: bool;
    /// Records a step; `make` runs only when someone records.
    fn step(&mut self, make: impl FnOnce() -> Step);
}

/// The hot path's observer: sees nothing, costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live;

impl Observer for Live {
    const DRY_RUN: bool = false;
    #[inline(always)]
    fn step(&mut self, _make: impl FnOnce() -> Step) {}
}

/// The tracer's observer: keeps every step, changes nothing.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub steps: Vec<Step>,
}

impl Observer for Recorder {
    const DRY_RUN: bool = true;
    fn step(&mut self, make: impl FnOnce() -> Step) {
        self.steps.push(make());
    }
}

/// What the switch does with a neighbour's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Known(MacAddr),
    /// Unknown: the packet would wait while an ARP request asks (`request`: one would be
    /// sent now; else one is already out).
    Resolving {
        request: bool,
    },
    /// ARP failed recently: the packet would be dropped.
    Failed,
}

/// Where a frame leaves the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Port(PortId),
    Vtep { ip: IpAddr, vni: Vni },
    Uplink,
}

/// The tunnel's size verdict for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuVerdict {
    Fits,
    /// IPv4 without DF: cut into this many fragments.
    Fragmented {
        pieces: usize,
    },
    /// An ICMP error (frag-needed, or packet-too-big) goes back to the sender.
    IcmpTooBig,
    /// A GSO super-frame is cut into segments that fit.
    Split,
    Dropped,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The frame entered at this port, of this network.
    Ingress {
        port: PortId,
        network: NetworkId,
    },
    /// The frame arrived on the uplink (to the router and the NAT).
    FromUplink,
    /// The frame came out of a VXLAN datagram of this peer, on this network's VNI;
    /// `known`: whether the peer carries that VNI. When it does not, decapsulation drops
    /// the datagram (`vxlan_not_a_peer` in the underlay's counters) and this is the
    /// trace's last step.
    FromPeer {
        ip: IpAddr,
        vni: Vni,
        network: NetworkId,
        known: bool,
    },
    /// The source would be learned here (`before`: where the FDB has it now).
    Learn {
        mac: MacAddr,
        at: Location,
        before: Option<Location>,
    },
    /// For the router: to the router MAC, or an ARP request for the gateway.
    ToRouter {
        network: NetworkId,
    },
    /// A group address: flooded.
    Multicast {
        mac: MacAddr,
    },
    /// The destination's FDB entry.
    FdbHit {
        mac: MacAddr,
        at: Location,
    },
    /// Not in the FDB: flooded.
    FdbMiss {
        mac: MacAddr,
    },
    /// Flooded to these local ports and peers.
    Flood {
        network: NetworkId,
        ports: Vec<PortId>,
        peers: Vec<IpAddr>,
    },
    /// The router's route for the destination.
    Route {
        dst: Ipv4Addr,
        /// `gateway`, `network`, `external`, `denied`, `none`.
        kind: &'static str,
        to: Option<NetworkId>,
    },
    /// An ARP request for a router address would be answered.
    ArpAnswer {
        ip: Ipv4Addr,
    },
    /// An echo request to the gateway would be answered.
    EchoReply,
    /// The next hop's MAC, on a network (`None`: on the uplink).
    Neighbour {
        ip: Ipv4Addr,
        network: Option<NetworkId>,
        resolution: Resolution,
    },
    Nat(Preview),
    NatRefused(NatDrop),
    /// Size against an MTU (the overlay's or the uplink's).
    Mtu {
        len: usize,
        mtu: u32,
        verdict: MtuVerdict,
    },
    /// Leaves here.
    Egress(Exit),
    /// A frame the switch itself sends back (ARP reply, echo reply, ICMP error).
    Reply {
        port: PortId,
        what: &'static str,
    },
    Drop(DropReason),
    RouterDrop(RouterDrop),
}
