//! The switch every pipeline run starts from: four networks (bridge, routed, overlay,
//! internal), two VXLAN peers, an uplink with NAT and one published port, and the op
//! codes that say where a record enters.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use fdb::{MacAddr, NetworkId, PortId};
use vswitch::datapath::topology::{NetworkInfo, OverlayParams, PortInfo, Topology, UplinkParams};
use vswitch::l3::{RouteNetwork, RouteTable};
use vswitch::nat::{Nat, NatConfig, PortProto, PortSpec, PublishedPorts};
use vtep::{PeerTable, PeerVnis, PortRange, Vni};

pub const ROUTER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
pub const UPLINK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
/// The endpoint behind port 1 (10.1.0.2), known to the router without ARP.
pub const HOST_A: MacAddr = MacAddr([2, 0x42, 10, 1, 0, 2]);
/// A MAC of network 3 statically behind peer 192.0.2.2.
pub const REMOTE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0xee, 1]);
pub const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const VNI: u32 = 42;

/// Where a record enters (the low four bits of its op byte).
pub mod op {
    /// Ports 1-3: network 1; 4-5: network 2 (routes to 1); 6-7: network 3 (overlay,
    /// VNI 42); 8: network 4 (internal); 0: no such port.
    pub const PORT_MAX: u8 = 8;
    /// A VXLAN datagram (UDP payload) from 192.0.2.2, a peer of VNI 42.
    pub const VXLAN_PEER: u8 = 9;
    /// ... from 2001:db8::2, a peer of every VNI.
    pub const VXLAN_PEER6: u8 = 10;
    /// ... from 203.0.113.77, not a peer.
    pub const VXLAN_STRANGER: u8 = 11;
    /// A frame from the uplink.
    pub const UPLINK: u8 = 12;
    /// 13-15: a frame the router sends into network (op >> 5 & 3) + 1:
    /// `Pipeline::routed`.
    pub const ROUTED: u8 = 13;
    /// Bit 4: a 10-byte virtio_net_hdr precedes the frame.
    pub const VNET: u8 = 0x10;
}

/// The networks: (id, subnet, gateway, MTU, ports, VNI, internal).
type Net = (
    u16,
    &'static str,
    [u8; 4],
    u32,
    &'static [u32],
    Option<u32>,
    bool,
);
const NETWORKS: [Net; 4] = [
    (
        1,
        "10.1.0.0/24",
        [10, 1, 0, 1],
        1500,
        &[1, 2, 3],
        None,
        false,
    ),
    (2, "10.2.0.0/24", [10, 2, 0, 1], 1400, &[4, 5], None, false),
    (
        3,
        "10.3.0.0/24",
        [10, 3, 0, 1],
        1450,
        &[6, 7],
        Some(VNI),
        false,
    ),
    (4, "10.4.0.0/24", [10, 4, 0, 1], 1500, &[8], None, true),
];

pub fn peer_v4() -> IpAddr {
    IpAddr::from([192, 0, 2, 2])
}

pub fn peer_v6() -> IpAddr {
    IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2])
}

fn vni(n: u32) -> Vni {
    Vni::new(n).expect("a 24-bit VNI")
}

/// The topology every run uses.
pub fn topology() -> &'static Topology {
    static TOPO: OnceLock<Topology> = OnceLock::new();
    TOPO.get_or_init(|| {
        let mut t = Topology {
            router_mac: ROUTER_MAC,
            generation: 1,
            ..Topology::default()
        };
        let mut routes = Vec::new();
        for (id, subnet, gw, mtu, ports, v, internal) in NETWORKS {
            let net = NetworkId(id);
            let subnet = subnet.parse().expect("a literal subnet");
            let ports: Vec<PortId> = ports.iter().map(|&p| PortId(p)).collect();
            for &p in &ports {
                let endpoint = format!("p{}", p.0);
                t.ports.insert(
                    p,
                    PortInfo {
                        network: net,
                        endpoint,
                    },
                );
            }
            let v = v.map(vni);
            if let Some(v) = v {
                t.vnis.insert(v, net);
            }
            let gateway = Ipv4Addr::from(gw);
            t.networks.insert(
                net,
                NetworkInfo {
                    name: format!("n{id}"),
                    mtu,
                    ports,
                    vni: v,
                    gateway,
                    subnet,
                    internal,
                },
            );
            routes.push(RouteNetwork {
                id: net,
                subnet,
                gateway,
                internal,
            });
        }
        t.routes = Arc::new(
            RouteTable::new(routes, [(NetworkId(1), NetworkId(2))], true)
                .expect("a consistent route table"),
        );
        t.hosts
            .insert(NetworkId(1), vec![(Ipv4Addr::new(10, 1, 0, 2), HOST_A)]);
        let mut peers = PeerTable::new();
        peers
            .add(peer_v4(), PeerVnis::only([vni(VNI)]))
            .expect("a new peer");
        peers.add(peer_v6(), PeerVnis::All).expect("a new peer");
        t.peers = peers;
        t.overlay = Some(OverlayParams {
            local: IpAddr::from([192, 0, 2, 1]),
            src_ports: PortRange::DEFAULT,
            mss_clamp: true,
            vxlan_port: 4789,
        });
        t.uplink = Some(UplinkParams {
            addresses: vec![EXTERNAL, Ipv4Addr::new(203, 0, 113, 3)],
            subnet: "203.0.113.0/24".parse().expect("a literal subnet"),
            gateway: Ipv4Addr::new(203, 0, 113, 1),
            mac: UPLINK_MAC,
            mtu: 1500,
        });
        t
    })
}

pub fn nat() -> Arc<Nat> {
    let nat = Nat::new(NatConfig {
        external: EXTERNAL,
        port_range: 40000..=40031,
        max_entries: 32,
        ..NatConfig::default()
    })
    .expect("a valid NAT config");
    let spec = PortSpec {
        host_ip: None,
        host_port: 8080,
        port: 80,
        proto: PortProto::Tcp,
    };
    let published =
        PublishedPorts::from_ports([spec.to(Ipv4Addr::new(10, 1, 0, 2))]).expect("one publish");
    nat.set_published(published);
    Arc::new(nat)
}
