//! Pipeline seeds about the router: the gateway (ARP, echo), routing between networks,
//! TTL expiry, NAT to the uplink and back, super-frames and MTU cases on routed paths,
//! frames the router sends into each network.

use std::net::Ipv4Addr;

use super::{NET2_HOST, OUTSIDE_GW, Talk, a4, port, tcp};
use crate::harness::pipeline::{EXTERNAL, HOST_A, REMOTE_MAC, ROUTER_MAC, UPLINK_MAC, op};
use crate::seeds::frames::{self, BROADCAST, L4, Tcp, eth4, ip4, v4};

/// A frame from HOST_A (10.1.0.2, port 1) to the router MAC, for `dst`, TTL 64.
fn from_a(dst: Ipv4Addr, df: bool, l4: L4, payload: &[u8]) -> Vec<u8> {
    eth4(
        HOST_A.0,
        ROUTER_MAC.0,
        &ip4(v4(a4("10.1.0.2"), dst, 64, df), l4, payload),
    )
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let a = a4("10.1.0.2");
    let gw1 = a4("10.1.0.1");
    let n2 = a4("10.2.0.5");
    let n4 = a4("10.4.0.5");
    let ov_far = a4("10.3.0.9");
    let outside = a4("198.51.100.7");
    let up_gw = a4("203.0.113.1");
    let mut out = Vec::new();
    out.push((
        "gateway_and_routing".into(),
        Talk::default()
            .at(
                port(1, 0),
                &frames::arp(HOST_A.0, BROADCAST, 1, (HOST_A.0, a), ([0; 6], gw1)),
            )
            .at(
                port(1, 0),
                &from_a(gw1, true, L4::EchoRequest(3, 1), &frames::pattern(56, 1)),
            )
            .at(
                port(1, 0),
                &from_a(n2, true, L4::Tcp(tcp(40000, 80, true, Some(1460))), &[]),
            )
            .at(
                port(4, 4),
                &frames::arp(
                    NET2_HOST,
                    ROUTER_MAC.0,
                    2,
                    (NET2_HOST, n2),
                    (ROUTER_MAC.0, a4("10.2.0.1")),
                ),
            )
            .at(
                port(4, 0),
                &eth4(
                    NET2_HOST,
                    ROUTER_MAC.0,
                    &ip4(
                        v4(n2, a, 64, true),
                        L4::Tcp(tcp(80, 40000, false, None)),
                        b"reply",
                    ),
                ),
            )
            .at(
                port(1, 0),
                &eth4(
                    HOST_A.0,
                    ROUTER_MAC.0,
                    &ip4(v4(a, n2, 1, true), L4::Udp(33434, 33434), b"trace"),
                ),
            )
            .at(
                port(4, 0),
                &eth4(
                    NET2_HOST,
                    ROUTER_MAC.0,
                    &ip4(v4(n2, n4, 64, true), L4::Udp(1, 2), b"denied"),
                ),
            )
            .at(
                port(8, 0),
                &eth4(
                    [2, 0, 0, 0, 4, 5],
                    ROUTER_MAC.0,
                    &ip4(v4(n4, outside, 64, true), L4::Udp(1, 2), b"internal"),
                ),
            )
            .at(port(1, 6), &from_a(gw1, true, L4::Udp(1, 2), b"not echo"))
            .done(),
    ));
    let dns = ip4(v4(a, outside, 64, false), L4::Udp(40002, 53), b"query");
    let answer = ip4(
        v4(outside, EXTERNAL, 60, false),
        L4::Udp(53, 40002),
        b"answer",
    );
    out.push((
        "nat_out_and_back".into(),
        Talk::default()
            .at(port(1, 0), &eth4(HOST_A.0, ROUTER_MAC.0, &dns))
            .at(
                op::UPLINK | 3 << 5,
                &frames::arp(
                    OUTSIDE_GW,
                    UPLINK_MAC.0,
                    2,
                    (OUTSIDE_GW, up_gw),
                    (UPLINK_MAC.0, EXTERNAL),
                ),
            )
            .at(op::UPLINK, &eth4(OUTSIDE_GW, UPLINK_MAC.0, &answer))
            .at(
                op::UPLINK,
                &frames::icmp4_error(
                    (OUTSIDE_GW, UPLINK_MAC.0),
                    outside,
                    EXTERNAL,
                    (3, 3, [0; 4]),
                    &ip4(
                        v4(EXTERNAL, outside, 64, false),
                        L4::Udp(40002, 53),
                        b"query",
                    ),
                    36,
                ),
            )
            .at(
                op::UPLINK,
                &eth4(
                    OUTSIDE_GW,
                    UPLINK_MAC.0,
                    &ip4(
                        v4(outside, EXTERNAL, 60, true),
                        L4::Tcp(tcp(50000, 8080, true, Some(1460))),
                        &[],
                    ),
                ),
            )
            .at(
                op::UPLINK,
                &eth4(
                    OUTSIDE_GW,
                    UPLINK_MAC.0,
                    &ip4(
                        v4(outside, EXTERNAL, 60, false),
                        L4::EchoRequest(5, 1),
                        b"ping",
                    ),
                ),
            )
            .at(
                op::UPLINK,
                &frames::arp(
                    OUTSIDE_GW,
                    BROADCAST,
                    1,
                    (OUTSIDE_GW, up_gw),
                    ([0; 6], a4("203.0.113.3")),
                ),
            )
            .at(op::UPLINK, &eth4(OUTSIDE_GW, [2, 9, 9, 9, 9, 9], &answer))
            .at(
                port(1, 0),
                &from_a(outside, true, L4::Udp(40003, 9), &frames::pattern(1600, 2)),
            )
            .at(
                port(1, 0),
                &from_a(
                    EXTERNAL,
                    true,
                    L4::Tcp(tcp(40004, 8080, true, Some(1460))),
                    &[],
                ),
            )
            .done(),
    ));
    // A TSO super-frame from network 1 routed into network 2 (MTU 1400), and big
    // datagrams with and without DF on the same path.
    let mut routed_tso = eth4(
        HOST_A.0,
        ROUTER_MAC.0,
        &ip4(
            v4(a, n2, 64, true),
            L4::Tcp(Tcp {
                ack: Some(1),
                ..tcp(40200, 80, false, None)
            }),
            &frames::pattern(5000, 12),
        ),
    );
    frames::make_partial(&mut routed_tso, 14);
    out.push((
        "routed_gso_and_mtu".into(),
        Talk::default()
            .at(
                port(4, 0),
                &frames::arp(
                    NET2_HOST,
                    ROUTER_MAC.0,
                    2,
                    (NET2_HOST, n2),
                    (ROUTER_MAC.0, a4("10.2.0.1")),
                ),
            )
            .vnet(
                port(1, 0),
                frames::vnet(1, 1, 54, 1448, 34, 16),
                &routed_tso,
            )
            .vnet(
                port(1, 0),
                frames::vnet(1, 0, 0, 0, 34, 16),
                &routed_tso[..14 + 20 + 20 + 700],
            )
            .at(
                port(1, 0),
                &from_a(n2, true, L4::Udp(3, 4), &frames::pattern(1450, 13)),
            )
            // The same without DF: the router cuts it into fragments for network 2.
            .at(
                port(1, 0),
                &from_a(n2, false, L4::Udp(3, 4), &frames::pattern(1450, 16)),
            )
            // The answer to the router's ARP request sends the waiting fragments on.
            .at(
                port(4, 0),
                &frames::arp(
                    NET2_HOST,
                    ROUTER_MAC.0,
                    2,
                    (NET2_HOST, n2),
                    (ROUTER_MAC.0, a4("10.2.0.1")),
                ),
            )
            .at(
                port(1, 0),
                &from_a(n2, false, L4::Udp(3, 4), &frames::pattern(3000, 14)),
            )
            .at(
                port(1, 0),
                &from_a(outside, false, L4::Udp(3, 4), &frames::pattern(3000, 15)),
            )
            .done(),
    ));
    out.push((
        "routed_into_networks".into(),
        Talk::default()
            .at(
                op::ROUTED | 2 << 5,
                &eth4(
                    ROUTER_MAC.0,
                    REMOTE_MAC.0,
                    &ip4(
                        v4(a, ov_far, 63, true),
                        L4::Udp(1, 2),
                        &frames::pattern(1500, 10),
                    ),
                ),
            )
            .at(
                op::ROUTED,
                &eth4(
                    ROUTER_MAC.0,
                    BROADCAST,
                    &ip4(v4(a, a4("10.1.0.255"), 63, true), L4::Udp(1, 2), b"x"),
                ),
            )
            .at(
                op::ROUTED | 1 << 5,
                &eth4(
                    ROUTER_MAC.0,
                    NET2_HOST,
                    &ip4(v4(a, n2, 63, true), L4::Udp(1, 2), b"y"),
                ),
            )
            .done(),
    ));
    out
}
