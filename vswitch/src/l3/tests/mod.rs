//! Tests of `l3` on frames built with etherparse and parsed back with it: every field
//! checked, every checksum recomputed by etherparse and compared. Shared builders and
//! checkers live here; each file covers one module.

mod arp;
mod echo;
mod forward;
mod fuzz;
mod neigh;
mod route;

use std::net::Ipv4Addr;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, Icmpv4Header, Ipv4Header,
    PacketBuilder,
};
use fdb::MacAddr;

pub const ROUTER_MAC: MacAddr = MacAddr([0x02, 0x56, 0x53, 0x00, 0x00, 0x01]);
pub const A_MAC: MacAddr = MacAddr([0x02, 0x42, 0x0a, 0x00, 0x00, 0x02]);
pub const B_MAC: MacAddr = MacAddr([0x02, 0x42, 0x0a, 0x00, 0x01, 0x03]);
pub const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
pub const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// A broadcast ARP frame with arbitrary (even unsupported) types and address
/// lengths: `hw` serves as sender and target hardware address, `proto` as sender and
/// target protocol address.
pub fn arp_odd(
    htype: ArpHardwareId,
    ptype: EtherType,
    op: ArpOperation,
    hw: &[u8],
    proto: &[u8],
) -> Vec<u8> {
    let pkt = ArpPacket::new(htype, ptype, op, hw, proto, hw, proto).unwrap();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A_MAC.0, MacAddr::BROADCAST.0)
        .arp(pkt)
        .write(&mut v)
        .unwrap();
    v
}

/// A well-formed IPv4-over-Ethernet ARP frame, padded to 60 bytes as it would come
/// off the wire.
pub fn arp_frame(
    eth_dst: MacAddr,
    op: ArpOperation,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let pkt = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        op,
        &sha.0,
        &spa.octets(),
        &tha.0,
        &tpa.octets(),
    )
    .unwrap();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(sha.0, eth_dst.0)
        .arp(pkt)
        .write(&mut v)
        .unwrap();
    v.resize(60, 0);
    v
}

/// What an ARP frame says, decoded by etherparse.
#[derive(Debug, PartialEq, Eq)]
pub struct ArpSeen {
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub op: ArpOperation,
    pub sha: MacAddr,
    pub spa: Ipv4Addr,
    pub tha: MacAddr,
    pub tpa: Ipv4Addr,
}

pub fn parse_arp(frame: &[u8]) -> ArpSeen {
    let (eth, rest) = Ethernet2Header::from_slice(frame).unwrap();
    assert_eq!(eth.ether_type, EtherType::ARP);
    let arp = ArpPacket::from_slice(rest).unwrap().try_eth_ipv4().unwrap();
    ArpSeen {
        eth_src: MacAddr(eth.source),
        eth_dst: MacAddr(eth.destination),
        op: arp.operation,
        sha: MacAddr(arp.sender_mac),
        spa: arp.sender_ipv4_addr(),
        tha: MacAddr(arp.target_mac),
        tpa: arp.target_ipv4_addr(),
    }
}

/// An Ethernet + IPv4 echo request.
pub fn ping(
    eth_src: MacAddr,
    eth_dst: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(eth_src.0, eth_dst.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// An Ethernet + IPv4 + UDP frame.
pub fn udp(eth_src: MacAddr, eth_dst: MacAddr, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(eth_src.0, eth_dst.0)
        .ipv4(src.octets(), dst.octets(), ttl)
        .udp(40000, 53)
        .write(&mut v, b"query payload")
        .unwrap();
    v
}

/// An Ethernet + IPv4 frame carrying the ICMP message `icmp` (header and payload).
pub fn icmp_frame(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, icmp: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        icmp.len() as u16,
        ttl,
        etherparse::IpNumber::ICMP,
        src.octets(),
        dst.octets(),
    )
    .unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = Vec::new();
    Ethernet2Header {
        source: A_MAC.0,
        destination: ROUTER_MAC.0,
        ether_type: EtherType::IPV4,
    }
    .write(&mut v)
    .unwrap();
    ip.write(&mut v).unwrap();
    v.extend_from_slice(icmp);
    v
}

/// The Ethernet header, the IPv4 header (its checksum verified) and the ICMP header
/// and payload (its checksum verified) of a frame built by `l3`.
pub fn parse_icmp(frame: &[u8]) -> (Ethernet2Header, Ipv4Header, Icmpv4Header, Vec<u8>) {
    let (eth, rest) = Ethernet2Header::from_slice(frame).unwrap();
    assert_eq!(eth.ether_type, EtherType::IPV4);
    let (ip, rest) = Ipv4Header::from_slice(rest).unwrap();
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 header checksum"
    );
    assert_eq!(ip.protocol, etherparse::IpNumber::ICMP);
    let icmp_len = usize::from(ip.total_len) - ip.header_len();
    let (icmp, payload) = Icmpv4Header::from_slice(&rest[..icmp_len]).unwrap();
    let want = Icmpv4Header::with_checksum(icmp.icmp_type.clone(), payload);
    assert_eq!(icmp.checksum, want.checksum, "ICMP checksum");
    (eth, ip, icmp, payload.to_vec())
}
