//! Tests of the NAT engine on packets built with etherparse, checked by re-parsing and
//! recomputing every checksum with etherparse. Shared builders and checkers live here;
//! each file covers one concern.

mod expiry;
mod fragments;
mod fuzz;
mod icmp;
mod limits;
mod model;
mod preview;
mod translate;

use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use super::*;

pub const EXT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
pub const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn config(range: std::ops::RangeInclusive<u16>) -> NatConfig {
    NatConfig {
        external: EXT,
        port_range: range,
        ..NatConfig::default()
    }
}

pub fn nat() -> Nat {
    Nat::new(config(32768..=60999)).unwrap()
}

/// TCP flag sets for [`tcp`].
pub const SYN: u8 = 0x02;
pub const SYNACK: u8 = 0x12;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x11;
pub const RST: u8 = 0x04;

pub fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    tcp_with(src, sport, dst, dport, flags, b"hello")
}

pub fn tcp_with(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(sport, dport, 1000, 64240);
    if flags & 0x02 != 0 {
        b = b.syn();
    }
    if flags & 0x10 != 0 {
        b = b.ack(2000);
    }
    if flags & 0x01 != 0 {
        b = b.fin();
    }
    if flags & 0x04 != 0 {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    udp_with(src, sport, dst, dport, b"datagram!")
}

pub fn udp_with(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn ping(src: Ipv4Addr, dst: Ipv4Addr, id: u16, reply: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64);
    let b = if reply {
        b.icmpv4_echo_reply(id, 1)
    } else {
        b.icmpv4_echo_request(id, 1)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"pingpong").unwrap();
    v
}

/// An ICMP error from `src` to `dst` quoting `quote`.
pub fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, ty: Icmpv4Type, quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .icmpv4(ty)
        .write(&mut v, quote)
        .unwrap();
    v
}

pub fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(
        etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
    )
}

pub fn port_unreachable() -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
}

pub fn ttl_exceeded() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
}

/// `(src, sport, dst, dport)`; for ICMP echo the identifier is both ports.
pub fn tuple(pkt: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = SlicedPacket::from_ip(pkt).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let (s, d) = (ip.header().source_addr(), ip.header().destination_addr());
    match p.transport {
        Some(TransportSlice::Tcp(t)) => (s, t.source_port(), d, t.destination_port()),
        Some(TransportSlice::Udp(u)) => (s, u.source_port(), d, u.destination_port()),
        Some(TransportSlice::Icmpv4(i)) => {
            let id = u16::from_be_bytes([i.slice()[4], i.slice()[5]]);
            (s, id, d, id)
        }
        _ => panic!("no transport"),
    }
}

/// Asserts that every checksum of `pkt` is right per etherparse, including those of
/// a quoted packet if it is quoted whole. A UDP checksum of 0 passes.
pub fn verify(pkt: &[u8]) {
    let p = SlicedPacket::from_ip(pkt).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.calc_header_checksum(),
        h.header_checksum,
        "IPv4 header checksum"
    );
    let (s, d) = (h.source, h.destination);
    match p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t
                .to_header()
                .calc_checksum_ipv4_raw(s, d, t.payload())
                .unwrap();
            assert_eq!(want, t.checksum(), "TCP checksum");
        }
        Some(TransportSlice::Udp(u)) => {
            if u.checksum() != 0 {
                let want = u
                    .to_header()
                    .calc_checksum_ipv4_raw(s, d, u.payload())
                    .unwrap();
                assert_eq!(want, u.checksum(), "UDP checksum");
            }
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let want = i.icmp_type().calc_checksum(i.payload());
            assert_eq!(want, i.checksum(), "ICMP checksum");
            if matches!(
                i.icmp_type(),
                Icmpv4Type::DestinationUnreachable(_) | Icmpv4Type::TimeExceeded(_)
            ) && SlicedPacket::from_ip(i.payload()).is_ok()
            {
                verify(i.payload());
            }
        }
        _ => panic!("no transport"),
    }
}

/// The packet quoted inside an ICMP error (everything after the 8-byte ICMP header).
pub fn quote_of(pkt: &[u8]) -> &[u8] {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    &pkt[ihl + 8..]
}

/// Runs `pkt` through `f` and returns the translated copy, asserting checksums.
pub fn through(
    f: impl FnOnce(&mut [u8]) -> Result<Translated, NatDrop>,
    pkt: &[u8],
) -> (Vec<u8>, Translated) {
    let mut out = pkt.to_vec();
    let t = f(&mut out).unwrap_or_else(|e| panic!("dropped: {e}"));
    assert_eq!(out.len(), pkt.len());
    verify(&out);
    (out, t)
}

pub fn out(n: &Nat, now: Duration, pkt: &[u8]) -> (Vec<u8>, Translated) {
    through(|p| n.outbound(now, p, ChecksumState::Complete), pkt)
}

pub fn inb(n: &Nat, now: Duration, pkt: &[u8]) -> (Vec<u8>, Translated) {
    through(|p| n.inbound(now, p, ChecksumState::Complete), pkt)
}

pub fn out_err(n: &Nat, now: Duration, pkt: &[u8]) -> NatDrop {
    let mut p = pkt.to_vec();
    let e = n
        .outbound(now, &mut p, ChecksumState::Complete)
        .unwrap_err();
    assert_eq!(p, pkt, "a dropped packet is not modified");
    e
}

pub fn inb_err(n: &Nat, now: Duration, pkt: &[u8]) -> NatDrop {
    let mut p = pkt.to_vec();
    let e = n.inbound(now, &mut p, ChecksumState::Complete).unwrap_err();
    assert_eq!(p, pkt, "a dropped packet is not modified");
    e
}
