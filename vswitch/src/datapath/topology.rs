//! The switch's topology as the packet path sees it: which network each port belongs to,
//! the ports of each network (its flood list), MTUs, VNIs, the VXLAN peers and the
//! router MAC. An immutable snapshot: the control plane builds a new one on every change
//! and publishes it through `arc-swap`; a worker loads it once per batch.

use std::collections::HashMap;

use super::id_hash::IdMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use fdb::{MacAddr, NetworkId, PortId};
use ipnet::Ipv4Net;

use crate::l3::RouteTable;
use vtep::{PeerTable, PortRange, Vni};

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub ports: IdMap<PortId, PortInfo>,
    pub networks: IdMap<NetworkId, NetworkInfo>,
    /// Overlay networks by VNI.
    pub vnis: IdMap<Vni, NetworkId>,
    /// VXLAN peers and the VNIs each carries (head-end replication lists inside).
    pub peers: PeerTable,
    /// The gateway's MAC, source of the ICMP errors the switch sends.
    pub router_mac: MacAddr,
    /// How this host speaks VXLAN; `None` when no `[underlay]` is configured.
    pub overlay: Option<OverlayParams>,
    /// Where a packet sent to the router goes (isolation, `--route-to`, the uplink).
    pub routes: Arc<RouteTable>,
    /// The uplink; `None` when no `[uplink]` is configured.
    pub uplink: Option<UplinkParams>,
    /// Address-to-MAC bindings the control plane made (endpoint addresses it gave out),
    /// by network: the router needs no ARP for them.
    pub hosts: HashMap<NetworkId, Vec<(Ipv4Addr, MacAddr)>>,
    /// Changes with every snapshot, so a worker can tell that bindings changed; 0 only
    /// for the empty one a worker starts on.
    pub generation: u64,
}

/// The uplink as the packet path needs it.
#[derive(Debug, Clone)]
pub struct UplinkParams {
    /// The switch's own addresses there; the first is the NAT's external address.
    pub addresses: Vec<Ipv4Addr>,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The uplink interface's MAC.
    pub mac: MacAddr,
    pub mtu: u32,
}

impl UplinkParams {
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addresses.contains(&ip)
    }
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub network: NetworkId,
    /// The endpoint name, for logs and stats.
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub name: String,
    /// IP MTU of the network (what its endpoints are configured with).
    pub mtu: u32,
    /// Every local port of the network, in a fixed order: the flood list.
    pub ports: Vec<PortId>,
    /// Set for overlay networks.
    pub vni: Option<Vni>,
    pub gateway: Ipv4Addr,
    pub subnet: Ipv4Net,
    /// No way out through the uplink, no published ports.
    pub internal: bool,
}

/// The underlay settings the packet path needs.
#[derive(Debug, Clone, Copy)]
pub struct OverlayParams {
    pub local: IpAddr,
    /// The UDP port VXLAN is received on (and sent to).
    pub vxlan_port: u16,
    pub src_ports: PortRange,
    /// Clamp the MSS of TCP SYNs that cross the overlay.
    pub mss_clamp: bool,
}

impl Topology {
    pub fn network_of(&self, port: PortId) -> Option<(NetworkId, &NetworkInfo)> {
        let net = self.ports.get(&port)?.network;
        Some((net, self.networks.get(&net)?))
    }

    /// Whether any overlay network is known at all (cheap test for the packet path).
    pub fn has_overlay(&self) -> bool {
        !self.vnis.is_empty()
    }
}
