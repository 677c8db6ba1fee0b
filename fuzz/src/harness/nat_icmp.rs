//! NAT, ICMP errors first: an engine with published ports and a few flows created from
//! valid packets (masqueraded TCP, UDP and ICMP echo, a published port, a hairpin, a
//! fragmented datagram), then arbitrary IPv4 packets through `outbound` / `inbound`,
//! with complete or partial checksums, the clock moving and entries expiring.
//!
//! Checks, beyond "no panic": a refused packet is left exactly as it was; a translated
//! one keeps its length, version, IHL, total length, TTL and protocol, and changes only
//! the addresses, the ports (or the echo identifier), the checksums and, for an ICMP
//! error, the quoted packet's header and first transport bytes. Checksums that were
//! right stay right: the IPv4 header's, the quoted header's, and with complete
//! checksums the TCP/UDP/ICMP one; with a partial one the field keeps holding the
//! pseudo-header sum of the new addresses. The reported destination is the one
//! written. The table never holds more than its limit, and `entries` agrees with the
//! counters.

use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::PacketBuilder;
use vswitch::nat::{ChecksumState, Egress, Nat, NatConfig, PortProto, PortSpec, PublishedPorts};
use vtep::checksum::{fold, pseudo_header_v4};

use super::check::{self, be16};
use super::input::Input;

pub const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const INSIDE_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const INSIDE_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
pub const TARGET: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
/// A router on the path that sends errors about packets to REMOTE.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const MAX_ENTRIES: usize = 24;
const MAX_RECORDS: usize = 32;

/// The engine every run starts with (before the setup packets).
pub fn engine() -> Nat {
    let nat = Nat::new(NatConfig {
        external: EXTERNAL,
        port_range: 40000..=40031,
        max_entries: MAX_ENTRIES,
        ..NatConfig::default()
    })
    .expect("a valid NAT config");
    let spec = |host_port, port, proto| PortSpec {
        host_ip: None,
        host_port,
        port,
        proto,
    };
    let published = PublishedPorts::from_ports([
        spec(8080, 80, PortProto::Tcp).to(TARGET),
        spec(5353, 53, PortProto::Udp).to(TARGET),
    ])
    .expect("distinct publishes");
    nat.set_published(published);
    nat
}

/// Which way a packet goes through the NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From a local network: `outbound`.
    Out,
    /// From the uplink: `inbound`.
    In,
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
}

/// Runs an etherparse builder into a fresh vector.
pub fn write<E: std::fmt::Debug>(b: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v).expect("etherparse builds the packet");
    v
}

/// The packets that create the flows every run starts with: IPv4 packets (no Ethernet)
/// and their direction. Source ports lie in the NAT's range, so they are kept.
pub fn setup_packets() -> Vec<(Dir, Vec<u8>)> {
    let syn = |src, sport, dst, dport| {
        write(|v| {
            ipv4(src, dst)
                .tcp(sport, dport, 1000, 64240)
                .syn()
                .write(v, &[])
        })
    };
    let mut first_fragment =
        write(|v| ipv4(INSIDE_A, REMOTE).udp(40005, 9999).write(v, &[7u8; 64]));
    // MF set, ID 77: the first fragment of a datagram whose rest comes later.
    first_fragment[4..6].copy_from_slice(&77u16.to_be_bytes());
    first_fragment[6] = 0x20;
    first_fragment[10..12].fill(0);
    let c = vtep::checksum::checksum(&first_fragment[..20]);
    first_fragment[10..12].copy_from_slice(&c.to_be_bytes());
    vec![
        (Dir::Out, syn(INSIDE_A, 40001, REMOTE, 443)),
        (
            Dir::Out,
            write(|v| ipv4(INSIDE_A, REMOTE).udp(40002, 53).write(v, b"query")),
        ),
        (
            Dir::Out,
            write(|v| {
                ipv4(INSIDE_A, REMOTE)
                    .icmpv4_echo_request(40003, 1)
                    .write(v, b"ping")
            }),
        ),
        (Dir::In, syn(CLIENT, 50000, EXTERNAL, 8080)),
        (Dir::Out, syn(INSIDE_B, 40004, EXTERNAL, 8080)),
        (Dir::Out, first_fragment),
    ]
}

/// A run's engine with its setup flows; returns the setup packets as translated.
pub fn prepared(now: Duration) -> (Nat, Vec<(Dir, Vec<u8>)>) {
    let nat = engine();
    let mut done = Vec::new();
    for (dir, mut p) in setup_packets() {
        translate(&nat, now, dir, &mut p, ChecksumState::Complete).expect("setup flow refused");
        done.push((dir, p));
    }
    (nat, done)
}

fn translate(
    nat: &Nat,
    now: Duration,
    dir: Dir,
    pkt: &mut [u8],
    csum: ChecksumState,
) -> Result<vswitch::nat::Translated, vswitch::nat::NatDrop> {
    match dir {
        Dir::Out => nat.outbound(now, pkt, csum),
        Dir::In => nat.inbound(now, pkt, csum),
    }
}

/// Input: records, each an op byte (bit 0: inbound; bit 1: partial checksum; bits 2-3:
/// how far the clock moves first, with an expiry when it does) and a packet.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut now = Duration::from_secs(1);
    let (nat, _) = prepared(now);
    let mut n = 0;
    while !input.is_empty() && n < MAX_RECORDS {
        n += 1;
        let op = input.u8();
        let pkt = input.record();
        let dir = if op & 1 == 0 { Dir::Out } else { Dir::In };
        let csum = if op & 2 == 0 {
            ChecksumState::Complete
        } else {
            ChecksumState::Partial
        };
        let step = [0, 1, 40, 8000][usize::from(op >> 2 & 3)];
        if step > 0 {
            now += Duration::from_secs(step);
            nat.expire(now);
        }
        checked(&nat, now, dir, csum, pkt);
    }
    let counters = nat.counters();
    assert!(counters.entries <= MAX_ENTRIES, "table over its limit");
    assert_eq!(nat.entries(now).len(), counters.entries);
}

/// One packet through the engine, and every check of the module doc.
pub fn checked(nat: &Nat, now: Duration, dir: Dir, csum: ChecksumState, before: &[u8]) {
    let mut after = before.to_vec();
    let t = match translate(nat, now, dir, &mut after, csum) {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(after, before, "refused ({e}) but changed");
            return;
        }
    };
    let ip = check::ipv4(before).expect("translated a packet without an IPv4 header");
    assert_eq!(
        check::ipv4(&after).map(|a| a.dst),
        Some(t.dst),
        "reported destination is not the one written"
    );
    if dir == Dir::In {
        assert_eq!(t.egress, Egress::Internal, "inbound traffic sent out again");
    }
    let ihl = ip.ihl;
    let icmp = ip.proto == 1 && ip.offset == 0;
    let quote = ihl + 8;
    let qihl = before.get(quote).map_or(0, |b| usize::from(b & 0x0f) * 4);
    let allowed = |at: usize| {
        (10..20).contains(&at)
            || (ip.offset == 0 && (ihl..ihl + 20).contains(&at))
            || (icmp && (quote + 10..quote + 20).contains(&at))
            || (icmp && (quote + qihl..quote + qihl + 20).contains(&at))
    };
    for at in check::diff(before, &after) {
        assert!(allowed(at), "translation changed byte {at}");
    }
    if check::ipv4_header_ok(before) {
        assert!(check::ipv4_header_ok(&after), "IPv4 header checksum broken");
    }
    if icmp && before.len() >= quote + 20 && check::ipv4_header_ok(&before[quote..]) {
        assert!(
            check::ipv4_header_ok(&after[quote..]),
            "quoted IPv4 checksum broken"
        );
    }
    match csum {
        ChecksumState::Complete => {
            if check::l4_ok_v4(before) == Some(true) {
                assert_eq!(check::l4_ok_v4(&after), Some(true), "L4 checksum broken");
            }
        }
        ChecksumState::Partial => partial_kept(before, &after),
    }
}

/// With a partial checksum, a field that held the pseudo-header sum still does.
fn partial_kept(before: &[u8], after: &[u8]) {
    let (Some(a), Some(b)) = (check::ipv4(before), check::ipv4(after)) else {
        return;
    };
    let field = match a.proto {
        6 => 16,
        17 => 6,
        _ => return,
    };
    if a.mf || a.offset != 0 || a.total < a.ihl {
        return;
    }
    let Ok(len) = u16::try_from(a.total - a.ihl) else {
        return;
    };
    let (Some(old), Some(new)) = (be16(before, a.ihl + field), be16(after, a.ihl + field)) else {
        return;
    };
    let same = |x: u16, y: u16| x == y || (x | y == 0xffff && (x == 0 || y == 0));
    if same(old, fold(pseudo_header_v4(a.src, a.dst, a.proto, len))) {
        let want = fold(pseudo_header_v4(b.src, b.dst, b.proto, len));
        assert!(
            same(new, want),
            "partial checksum no longer the pseudo-header sum"
        );
    }
}
