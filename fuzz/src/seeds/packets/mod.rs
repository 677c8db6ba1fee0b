//! Seeds of the packet-level targets, one module each: VXLAN datagrams, offload cases,
//! the gateway's frames and MTU cases, NAT traffic and ICMP errors about it; here what
//! they share.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::frames::{self, BROADCAST, L4, Mac, Tcp, eth, eth4, eth6, ip4, ip6, v4, v6};

mod l3;
mod nat_icmp;
mod offload;
mod vxlan_decap;

pub use l3::l3;
pub use nat_icmp::nat_icmp;
pub use offload::offload;
pub use vxlan_decap::vxlan_decap;

const HOST: Mac = [2, 0, 0, 0, 0, 1];
const PEER: Mac = [2, 0, 0, 0, 0, 2];
const ROUTER_MAC: Mac = [2, 0, 0, 0, 0, 0xfe];

fn a4(s: &str) -> Ipv4Addr {
    s.parse().expect("literal address")
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().expect("literal address")
}

/// A few inner frames of every kind.
fn inner_frames() -> Vec<(&'static str, Vec<u8>)> {
    let (h, p) = (a4("10.3.0.2"), a4("10.3.0.9"));
    let syn = Tcp {
        sport: 40100,
        dport: 5201,
        seq: 1,
        syn: true,
        mss: Some(1460),
        ..Tcp::default()
    };
    let data = Tcp {
        sport: 5201,
        dport: 40100,
        seq: 9000,
        ack: Some(2),
        psh: true,
        ..Tcp::default()
    };
    let mut partial = eth4(
        PEER,
        HOST,
        &ip4(v4(p, h, 64, true), L4::Tcp(data), &frames::pattern(700, 1)),
    );
    frames::make_partial(&mut partial, 14);
    vec![
        (
            "arp",
            frames::arp(PEER, BROADCAST, 1, (PEER, p), ([0; 6], h)),
        ),
        (
            "syn",
            eth4(PEER, HOST, &ip4(v4(p, h, 64, true), L4::Tcp(syn), &[])),
        ),
        (
            "tcp_data",
            eth4(
                PEER,
                HOST,
                &ip4(v4(p, h, 64, true), L4::Tcp(data), &frames::pattern(1400, 2)),
            ),
        ),
        ("tcp_partial", partial),
        (
            "udp",
            eth4(
                PEER,
                HOST,
                &ip4(v4(p, h, 64, false), L4::Udp(5353, 53), b"dns?"),
            ),
        ),
        (
            "ping",
            eth4(
                PEER,
                HOST,
                &ip4(v4(p, h, 64, true), L4::EchoRequest(7, 1), b"abcdefgh"),
            ),
        ),
        (
            "udp6",
            eth6(
                PEER,
                HOST,
                &ip6(
                    v6(a6("fd00::9"), a6("fd00::2"), 64),
                    L4::Udp(1000, 2000),
                    b"v6",
                ),
            ),
        ),
        (
            "vlan",
            eth(
                PEER,
                HOST,
                &[5],
                0x0800,
                &ip4(v4(p, h, 64, true), L4::Udp(1, 2), b"x"),
            ),
        ),
    ]
}
