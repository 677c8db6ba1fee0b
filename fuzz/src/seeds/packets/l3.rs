//! Seeds of the `l3` target: ARP, echo requests, TTL expiry, MTU cases (DF, no DF,
//! IPv6), MSS clamping.

use super::{HOST, ROUTER_MAC, a4, a6};
use crate::harness::input::Writer;
use crate::seeds::frames::{self, BROADCAST, L4, Tcp, eth, eth4, eth6, ip4, ip6, v4, v6};

/// `l3`: MTU, MSS, buffer size, flags, then the frame.
pub fn l3() -> Vec<(String, Vec<u8>)> {
    let gw = a4("10.1.0.1");
    let (h, far) = (a4("10.1.0.2"), a4("10.2.0.5"));
    let w = |mtu: u16, mss: u16, flags: u8, f: &[u8]| {
        Writer::new()
            .u16(mtu)
            .u16(mss)
            .u16(0)
            .u8(flags)
            .bytes(f)
            .done()
    };
    let syn = |mss| Tcp {
        sport: 40000,
        dport: 80,
        seq: 5,
        syn: true,
        mss: Some(mss),
        ..Tcp::default()
    };
    let opts = frames::v4_options(
        v4(h, far, 64, false),
        &[0x07, 7, 4, 0, 0, 0, 0, 0x01, 0x82, 4, 0, 0],
    );
    let mut out: Vec<(String, Vec<u8>)> = vec![
        (
            "arp_request".into(),
            w(
                1500,
                1460,
                0,
                &frames::arp(HOST, BROADCAST, 1, (HOST, h), ([0; 6], gw)),
            ),
        ),
        (
            "arp_reply".into(),
            w(
                1500,
                1460,
                0,
                &frames::arp(HOST, ROUTER_MAC, 2, (HOST, h), (ROUTER_MAC, gw)),
            ),
        ),
        (
            "arp_gratuitous".into(),
            w(
                1500,
                1460,
                0,
                &frames::arp(HOST, BROADCAST, 1, (HOST, h), ([0; 6], h)),
            ),
        ),
        (
            "arp_probe".into(),
            w(
                1500,
                1460,
                0,
                &frames::arp(HOST, BROADCAST, 1, (HOST, a4("0.0.0.0")), ([0; 6], h)),
            ),
        ),
        (
            "ping_gateway".into(),
            w(
                1500,
                1460,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(
                        v4(h, gw, 64, true),
                        L4::EchoRequest(9, 1),
                        &frames::pattern(56, 5),
                    ),
                ),
            ),
        ),
        (
            "ttl1_udp".into(),
            w(
                1500,
                1460,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(v4(h, far, 1, true), L4::Udp(33434, 33435), b"trace"),
                ),
            ),
        ),
        (
            "ttl1_icmp_error".into(),
            w(
                1500,
                1460,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(v4(h, far, 1, false), L4::Icmp4(3, 3, [0; 4]), &[0x45; 28]),
                ),
            ),
        ),
        (
            "df_1600".into(),
            w(
                1450,
                1410,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(
                        v4(h, far, 64, true),
                        L4::Udp(1, 2),
                        &frames::pattern(1572, 6),
                    ),
                ),
            ),
        ),
        (
            "df_1600_vlan".into(),
            w(
                1450,
                1410,
                0,
                &eth(
                    HOST,
                    ROUTER_MAC,
                    &[3],
                    0x0800,
                    &ip4(
                        v4(h, far, 64, true),
                        L4::Udp(1, 2),
                        &frames::pattern(1572, 6),
                    ),
                ),
            ),
        ),
        (
            "nodf_3000".into(),
            w(
                1450,
                1410,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(
                        v4(h, far, 64, false),
                        L4::Udp(1, 2),
                        &frames::pattern(2972, 7),
                    ),
                ),
            ),
        ),
        (
            "nodf_options".into(),
            w(
                576,
                536,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(opts, L4::Udp(1, 2), &frames::pattern(1400, 8)),
                ),
            ),
        ),
        (
            "v6_1600".into(),
            w(
                1430,
                1390,
                0,
                &eth6(
                    HOST,
                    ROUTER_MAC,
                    &ip6(
                        v6(a6("fd00::2"), a6("fd00::9"), 64),
                        L4::Udp(1, 2),
                        &frames::pattern(1552, 9),
                    ),
                ),
            ),
        ),
        (
            "syn_mss".into(),
            w(
                1450,
                1410,
                0,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(v4(h, far, 64, true), L4::Tcp(syn(1460)), &[]),
                ),
            ),
        ),
        (
            "syn_mss_partial".into(),
            w(
                1450,
                1410,
                1,
                &eth4(
                    HOST,
                    ROUTER_MAC,
                    &ip4(v4(h, far, 64, true), L4::Tcp(syn(1460)), &[]),
                ),
            ),
        ),
        (
            "syn6_mss".into(),
            w(
                1430,
                1370,
                0,
                &eth6(
                    HOST,
                    ROUTER_MAC,
                    &ip6(
                        v6(a6("fd00::2"), a6("fd00::9"), 64),
                        L4::Tcp(syn(1440)),
                        &[],
                    ),
                ),
            ),
        ),
    ];
    let mut bad = eth4(
        HOST,
        ROUTER_MAC,
        &ip4(v4(h, gw, 64, true), L4::EchoRequest(9, 2), b"bad"),
    );
    bad[24] ^= 0xff;
    out.push(("ping_bad_checksum".into(), w(1500, 1460, 0, &bad)));
    out
}
