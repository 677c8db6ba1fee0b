//! The router on its own: frames in, [`Out`]s and counters out, checked with etherparse
//! (which shares no code with it). Two networks joined by `--route-to`, "wide" (MTU
//! 1500, port 1) and "narrow" (MTU 1400, port 2), whose hosts' MACs the control plane
//! gave (no ARP needed), and an uplink with a published port into "narrow".

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use etherparse::{IpNumber, Ipv4Header, Ipv4HeaderSlice, PacketBuilder};
use fdb::{MacAddr, NetworkId, PortId};

use super::super::counters::PerWorker;
use super::super::neigh_share::NeighShare;
use super::super::offload::{GsoType, VnetHdr};
use super::super::pool::Pool;
use super::super::topology::{NetworkInfo, Topology, UplinkParams};
use super::{Ctx, Out, Router, RouterCounters, RouterDrop};
use crate::l3::{RouteNetwork, RouteTable};
use crate::nat::{Nat, NatConfig, PortProto, PublishedPort, PublishedPorts};

const WIDE: NetworkId = NetworkId(1);
const NARROW: NetworkId = NetworkId(2);
const P1: PortId = PortId(1);
const ROUTER_MAC: MacAddr = MacAddr([0x02, 0x56, 0x53, 0, 0, 1]);
const UPLINK_MAC: MacAddr = MacAddr([0x02, 0x56, 0x53, 0, 0, 2]);
const GW_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 1]);
const A_MAC: MacAddr = MacAddr([0x02, 0x42, 0x0a, 0x38, 0, 2]);
const B_MAC: MacAddr = MacAddr([0x02, 0x42, 0x0a, 0x39, 0, 2]);
const A: Ipv4Addr = Ipv4Addr::new(10, 56, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(10, 57, 0, 2);
const WIDE_GW: Ipv4Addr = Ipv4Addr::new(10, 56, 0, 1);
const EXT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const UPLINK_GW: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn network(name: &str, mtu: u32, port: u32, third: u8) -> NetworkInfo {
    NetworkInfo {
        name: name.into(),
        mtu,
        ports: vec![PortId(port)],
        vni: None,
        gateway: Ipv4Addr::new(10, third, 0, 1),
        subnet: format!("10.{third}.0.0/24").parse().unwrap(),
        internal: false,
    }
}

fn topology() -> Topology {
    let mut t = Topology {
        router_mac: ROUTER_MAC,
        ..Topology::default()
    };
    t.networks.insert(WIDE, network("wide", 1500, 1, 56));
    t.networks.insert(NARROW, network("narrow", 1400, 2, 57));
    let routes = t.networks.iter().map(|(id, n)| RouteNetwork {
        id: *id,
        subnet: n.subnet,
        gateway: n.gateway,
        internal: false,
    });
    t.routes = Arc::new(RouteTable::new(routes, [(WIDE, NARROW)], true).unwrap());
    t.hosts.insert(WIDE, vec![(A, A_MAC)]);
    t.hosts.insert(NARROW, vec![(B, B_MAC)]);
    t.uplink = Some(UplinkParams {
        addresses: vec![EXT],
        subnet: "203.0.113.0/24".parse().unwrap(),
        gateway: UPLINK_GW,
        mac: UPLINK_MAC,
        mtu: 1500,
    });
    t
}

struct Bench {
    topo: Topology,
    router: Router,
    nat: Arc<Nat>,
    counters: Arc<PerWorker<RouterCounters>>,
    pool: Pool,
    out: Vec<Out>,
}

impl Bench {
    fn new() -> Bench {
        let nat = Arc::new(
            Nat::new(NatConfig {
                external: EXT,
                ..NatConfig::default()
            })
            .unwrap(),
        );
        nat.set_published(
            PublishedPorts::from_ports([PortProto::Tcp, PortProto::Udp].map(|proto| {
                PublishedPort {
                    proto,
                    host_ip: None,
                    host_port: 8080,
                    target: SocketAddrV4::new(B, 80),
                }
            }))
            .unwrap(),
        );
        let counters = PerWorker::<RouterCounters>::new(1);
        Bench {
            topo: topology(),
            router: Router::new(Some(nat.clone()), counters.mine(0), NeighShare::alone()),
            nat,
            counters,
            pool: Pool::new(4, 16),
            out: Vec::new(),
        }
    }

    fn load(&mut self, frame: &[u8], vnet: VnetHdr) -> u32 {
        self.pool.release_scratch();
        self.out.clear();
        let b = &mut self.pool.rx()[0];
        b.set_frame(frame);
        b.vnet = vnet.to_bytes();
        0
    }

    /// `frame` from `in_port` (a local port) or a peer (`None`) of `network`.
    fn routed_from(
        &mut self,
        frame: &[u8],
        vnet: VnetHdr,
        network: NetworkId,
        in_port: Option<PortId>,
    ) {
        let i = self.load(frame, vnet);
        let cx = Ctx {
            now: Duration::from_secs(1),
            topo: &self.topo,
        };
        self.router
            .from_network(cx, &mut self.pool, i, network, in_port, &mut self.out);
    }

    fn arrived_on_uplink(&mut self, frame: &[u8]) {
        let i = self.load(frame, VnetHdr::NONE);
        let cx = Ctx {
            now: Duration::from_secs(1),
            topo: &self.topo,
        };
        self.router
            .from_uplink(cx, &mut self.pool, i, &mut self.out);
    }

    fn frame(&self, i: u32) -> &[u8] {
        self.pool.get(i).frame()
    }

    fn drops(&self, r: RouterDrop) -> u64 {
        self.counters.snapshot()["drops"][r.name()]
            .as_u64()
            .unwrap_or(0)
    }

    /// The uplink's router learns its gateway's MAC from an ARP request for its address.
    fn learn_uplink_gateway(&mut self) {
        let mut arp = Vec::new();
        PacketBuilder::ethernet2(GW_MAC.0, [0xff; 6])
            .arp(
                etherparse::ArpPacket::new(
                    etherparse::ArpHardwareId::ETHERNET,
                    etherparse::EtherType::IPV4,
                    etherparse::ArpOperation::REQUEST,
                    &GW_MAC.0,
                    &UPLINK_GW.octets(),
                    &[0; 6],
                    &EXT.octets(),
                )
                .unwrap(),
            )
            .write(&mut arp)
            .unwrap();
        self.arrived_on_uplink(&arp);
        assert!(
            matches!(self.out[..], [Out::Uplink(_)]),
            "no ARP reply: {:?}",
            self.out
        );
    }
}

/// An Ethernet + IPv4 + UDP frame whose IP packet is `ip_len` bytes.
fn udp(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    ip_len: usize,
    df: bool,
) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, src.octets(), dst.octets()).unwrap();
    ip.dont_fragment = df;
    ip.identification = 0x1234;
    let payload: Vec<u8> = (0..ip_len - 28).map(|k| k as u8).collect();
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src_mac.0, dst_mac.0)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(40000, dport)
        .write(&mut f, &payload)
        .unwrap();
    f
}

fn ip(frame: &[u8]) -> Ipv4HeaderSlice<'_> {
    Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap()
}

/// The ICMP error in `frame`: (type, code, next-hop MTU, the quoted IPv4 header).
fn icmp(frame: &[u8]) -> (u8, u8, u16, Ipv4Header) {
    let l4 = 14 + ip(frame).slice().len();
    let (quote, _) = Ipv4Header::from_slice(&frame[l4 + 8..]).unwrap();
    let mtu = u16::from_be_bytes([frame[l4 + 6], frame[l4 + 7]]);
    (frame[l4], frame[l4 + 1], mtu, quote)
}

/// `g` is "fragmentation needed" naming 1400, about a UDP packet from `src` to
/// `dst:dport` (a quote the NAT translated back to what the sender sent).
fn frag_needed_about(g: &[u8], src: Ipv4Addr, dst: Ipv4Addr, dport: u16) {
    let (ty, code, mtu, quote) = icmp(g);
    assert_eq!((ty, code, mtu), (3, 4, 1400));
    assert_eq!(
        (quote.source, quote.destination),
        (src.octets(), dst.octets())
    );
    let l4 = 14 + ip(g).slice().len() + 8 + 20;
    assert_eq!(
        u16::from_be_bytes([g[l4 + 2], g[l4 + 3]]),
        dport,
        "quoted port"
    );
}

#[test]
fn a_packet_that_fits_is_routed_with_its_ttl_lowered_and_new_macs() {
    let mut b = Bench::new();
    let f = udp(A_MAC, ROUTER_MAC, A, B, 53, 1400, true);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Network(NARROW, i)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let g = b.frame(i);
    assert_eq!((&g[..6], &g[6..12]), (&B_MAC.0[..], &ROUTER_MAC.0[..]));
    assert_eq!(ip(g).ttl(), 63);
    assert_eq!(g.len(), f.len());
    assert_eq!(b.counters.snapshot()["routed"], 1);
}

#[test]
fn a_df_packet_too_big_for_the_next_network_gets_fragmentation_needed_from_its_gateway() {
    let mut b = Bench::new();
    let f = udp(A_MAC, ROUTER_MAC, A, B, 53, 1500, true);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Port(P1, s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let g = b.frame(s);
    assert_eq!((&g[..6], &g[6..12]), (&A_MAC.0[..], &ROUTER_MAC.0[..]));
    assert_eq!(ip(g).source_addr(), WIDE_GW);
    assert_eq!(ip(g).destination_addr(), A);
    let (ty, code, mtu, quote) = icmp(g);
    assert_eq!((ty, code, mtu), (3, 4, 1400));
    assert_eq!(quote.destination, B.octets());
    assert_eq!(b.drops(RouterDrop::TooBigForNetwork), 1);
    assert_eq!(b.counters.snapshot()["routed"], 0);
    // From behind a peer, the answer goes into the sender's network, to be switched
    // back through the tunnel.
    b.routed_from(&f, VnetHdr::NONE, WIDE, None);
    assert!(matches!(b.out[..], [Out::Network(WIDE, _)]), "{:?}", b.out);
}

#[test]
fn a_packet_without_df_is_cut_into_fragments_that_fit_the_next_network() {
    let mut b = Bench::new();
    let f = udp(A_MAC, ROUTER_MAC, A, B, 53, 3000, false);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    assert_eq!(b.out.len(), 3, "{:?}", b.out);
    let mut payload = Vec::new();
    for (k, o) in b.out.iter().enumerate() {
        let Out::Network(NARROW, s) = *o else {
            panic!("{o:?}")
        };
        let g = b.frame(s);
        assert!(g.len() <= 1400 + 14, "fragment {k} is {} bytes", g.len());
        assert_eq!(&g[..6], &B_MAC.0[..]);
        let h = ip(g);
        assert_eq!(h.ttl(), 63);
        assert_eq!(h.identification(), 0x1234);
        assert_eq!(usize::from(h.fragments_offset().value()) * 8, payload.len());
        assert_eq!(h.more_fragments(), k < 2);
        assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
        payload.extend_from_slice(&g[14 + h.slice().len()..14 + usize::from(h.total_len())]);
    }
    assert_eq!(
        payload,
        f[14 + 20..],
        "the fragments do not add up to the packet"
    );
    assert_eq!(b.counters.snapshot()["routed"], 1);
}

#[test]
fn a_partial_checksum_is_finished_before_the_packet_is_cut() {
    let mut b = Bench::new();
    let mut f = udp(A_MAC, ROUTER_MAC, A, B, 53, 1500, false);
    let right = u16::from_be_bytes([f[40], f[41]]);
    let vnet = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::NONE
    };
    // As a veth with checksum offload hands it over: the field holds the pseudo-header
    // sum only; finished, it must be the one etherparse wrote.
    let ps = {
        let udp_len = (f.len() - 34) as u32;
        let mut s: u32 = 17 + udp_len;
        for w in f[26..34].chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    };
    f[40..42].copy_from_slice(&ps.to_be_bytes());
    b.routed_from(&f, vnet, WIDE, Some(P1));
    let [Out::Network(_, first), Out::Network(_, _)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let g = b.frame(first);
    assert_eq!(u16::from_be_bytes([g[40], g[41]]), right);
    assert_eq!(VnetHdr::parse(&b.pool.get(first).vnet), VnetHdr::NONE);
}

#[test]
fn a_tcp_super_frame_gets_a_segment_size_that_fits_and_a_udp_one_keeps_its_own() {
    let mut b = Bench::new();
    let mut f = Vec::new();
    let mut ih = Ipv4Header::new(0, 64, IpNumber::TCP, A.octets(), B.octets()).unwrap();
    ih.dont_fragment = true;
    PacketBuilder::ethernet2(A_MAC.0, ROUTER_MAC.0)
        .ip(etherparse::IpHeaders::Ipv4(ih, Default::default()))
        .tcp(40000, 80, 1, 512)
        .write(&mut f, &[7u8; 20_000])
        .unwrap();
    let tso = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        gso_type: GsoType::TcpV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
        ..VnetHdr::NONE
    };
    b.routed_from(&f, tso, WIDE, Some(P1));
    let [Out::Network(NARROW, i)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    assert_eq!(VnetHdr::parse(&b.pool.get(i).vnet).gso_size, 1400 - 40);
    let udp_gso = VnetHdr {
        gso_type: GsoType::UdpL4,
        gso_size: 1472,
        csum_offset: 6,
        ..tso
    };
    let f = udp(A_MAC, ROUTER_MAC, A, B, 53, 20_000, false);
    b.routed_from(&f, udp_gso, WIDE, Some(P1));
    let [Out::Network(NARROW, i)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    assert_eq!(VnetHdr::parse(&b.pool.get(i).vnet).gso_size, 1472);
}

#[test]
fn a_df_packet_from_outside_too_big_for_its_network_is_answered_through_the_nat() {
    let mut b = Bench::new();
    b.learn_uplink_gateway();
    let f = udp(GW_MAC, UPLINK_MAC, OUTSIDE, EXT, 8080, 1500, true);
    b.arrived_on_uplink(&f);
    let [Out::Uplink(s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let g = b.frame(s);
    assert_eq!((&g[..6], &g[6..12]), (&GW_MAC.0[..], &UPLINK_MAC.0[..]));
    // From the external address, about the packet as the outside host sent it.
    assert_eq!(ip(g).source_addr(), EXT);
    assert_eq!(ip(g).destination_addr(), OUTSIDE);
    frag_needed_about(g, OUTSIDE, EXT, 8080);
    assert_eq!(b.drops(RouterDrop::TooBigForNetwork), 1);
    // Without DF it is cut into fragments for the container.
    let f = udp(GW_MAC, UPLINK_MAC, OUTSIDE, EXT, 8080, 1500, false);
    b.arrived_on_uplink(&f);
    assert!(
        matches!(
            b.out[..],
            [Out::Network(NARROW, _), Out::Network(NARROW, _)]
        ),
        "{:?}",
        b.out
    );
    assert_eq!(
        ip(b.frame(match b.out[0] {
            Out::Network(_, s) => s,
            _ => unreachable!(),
        }))
        .destination_addr(),
        B
    );
    assert_eq!(
        b.nat.counters().entries,
        1,
        "one flow, to the published port"
    );
}

#[test]
fn to_a_narrower_uplink_a_packet_without_df_is_cut_after_the_nat_and_one_with_df_answered() {
    let mut b = Bench::new();
    b.topo.uplink.as_mut().unwrap().mtu = 1400;
    b.learn_uplink_gateway();
    let f = udp(A_MAC, ROUTER_MAC, A, OUTSIDE, 53, 1500, false);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Uplink(s1), Out::Uplink(s2)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let (g1, g2) = (b.frame(s1), b.frame(s2));
    for g in [g1, g2] {
        assert!(g.len() <= 14 + 1400, "{}", g.len());
        assert_eq!(&g[..6], &GW_MAC.0[..]);
        assert_eq!(
            (ip(g).source_addr(), ip(g).destination_addr()),
            (EXT, OUTSIDE)
        );
        assert_eq!(ip(g).identification(), 0x1234);
        assert_eq!(ip(g).ttl(), 63);
    }
    assert!(ip(g1).more_fragments() && !ip(g2).more_fragments());
    // The NAT translated the whole datagram before it was cut: put back together, its
    // UDP checksum holds for the new addresses, and one connection was made.
    let mut datagram = Vec::new();
    for g in [g1, g2] {
        let h = ip(g);
        datagram.extend_from_slice(&g[14 + h.slice().len()..14 + usize::from(h.total_len())]);
    }
    assert_eq!(datagram[8..], f[42..], "the payload");
    let (hdr, payload) = etherparse::UdpHeader::from_slice(&datagram).unwrap();
    let sum = hdr
        .calc_checksum_ipv4_raw(EXT.octets(), OUTSIDE.octets(), payload)
        .unwrap();
    assert_eq!(hdr.checksum, sum, "UDP checksum after the NAT");
    assert_eq!(b.nat.counters().entries, 1);
    assert_eq!(b.counters.snapshot()["masqueraded"], 1);
    // With DF, from behind a peer: "fragmentation needed" into the sender's network.
    let f = udp(A_MAC, ROUTER_MAC, A, OUTSIDE, 53, 1500, true);
    b.routed_from(&f, VnetHdr::NONE, WIDE, None);
    let [Out::Network(WIDE, s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let (ty, code, mtu, _) = icmp(b.frame(s));
    assert_eq!((ty, code, mtu), (3, 4, 1400));
    assert_eq!(b.drops(RouterDrop::UplinkTooBig), 1);
}

#[test]
fn a_hairpinned_df_packet_too_big_is_answered_back_through_the_nat() {
    let mut b = Bench::new();
    // From a container of "wide" to the published port on the external address: the
    // NAT sends it inward to "narrow"; the answer goes back through the NAT to A.
    let f = udp(A_MAC, ROUTER_MAC, A, EXT, 8080, 1500, true);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Network(WIDE, s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    let g = b.frame(s);
    assert_eq!(&g[..6], &A_MAC.0[..]);
    assert_eq!(ip(g).destination_addr(), A);
    // About the packet as A sent it: to the published port on the external address.
    frag_needed_about(g, A, EXT, 8080);
    assert_eq!(b.drops(RouterDrop::TooBigForNetwork), 1);
    let f = udp(A_MAC, ROUTER_MAC, A, EXT, 8080, 1400, true);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    assert!(
        matches!(b.out[..], [Out::Network(NARROW, _)]),
        "{:?}",
        b.out
    );
}

#[test]
fn ttl_is_checked_before_the_size_and_trailing_bytes_are_cut() {
    let mut b = Bench::new();
    // Too big with DF and TTL 1: time exceeded (Linux's order), not frag-needed.
    let mut f = udp(A_MAC, ROUTER_MAC, A, B, 53, 1500, true);
    set_ttl(&mut f, 1);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Port(P1, s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    assert_eq!(icmp(b.frame(s)).0, 11);
    // A packet that fits, carried in a frame with junk after it: sent without the junk.
    let mut f = udp(A_MAC, ROUTER_MAC, A, B, 53, 1400, true);
    f.extend_from_slice(&[0xee; 200]);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Network(NARROW, i)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    assert_eq!(b.frame(i).len(), 14 + 1400);
}

fn set_ttl(f: &mut [u8], ttl: u8) {
    f[22] = ttl;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = Ipv4HeaderSlice::from_slice(&f[14..])
        .unwrap()
        .to_header()
        .calc_header_checksum();
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn ttl_expiry_answers_time_exceeded_and_isolation_denies() {
    let mut b = Bench::new();
    let mut f = udp(A_MAC, ROUTER_MAC, A, B, 53, 100, true);
    set_ttl(&mut f, 1);
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    let [Out::Port(P1, s)] = b.out[..] else {
        panic!("{:?}", b.out)
    };
    assert_eq!(icmp(b.frame(s)).0, 11);
    assert_eq!(b.drops(RouterDrop::TtlExpired), 1);
    // A third network, not joined to "wide".
    b.topo
        .networks
        .insert(NetworkId(3), network("other", 1500, 3, 58));
    let routes = b.topo.networks.iter().map(|(id, n)| RouteNetwork {
        id: *id,
        subnet: n.subnet,
        gateway: n.gateway,
        internal: false,
    });
    b.topo.routes = Arc::new(RouteTable::new(routes, [(WIDE, NARROW)], true).unwrap());
    b.topo.generation += 1;
    let f = udp(
        A_MAC,
        ROUTER_MAC,
        A,
        Ipv4Addr::new(10, 58, 0, 2),
        53,
        100,
        true,
    );
    b.routed_from(&f, VnetHdr::NONE, WIDE, Some(P1));
    assert!(b.out.is_empty(), "{:?}", b.out);
    assert_eq!(b.drops(RouterDrop::Denied), 1);
}
