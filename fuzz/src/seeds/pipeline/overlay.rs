//! Pipeline seeds about the overlay: floods and encapsulation to peers, MTU cases and
//! super-frames into the tunnel, VXLAN from peers, peers of other VNIs and strangers.

use super::{B, OVL_HOST, Talk, a4, a6, port, tcp};
use crate::harness::pipeline::{REMOTE_MAC, ROUTER_MAC, VNI, op};
use crate::seeds::frames::{self, BROADCAST, L4, Tcp, eth4, eth6, ip4, ip6, v4, v6};

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let a = a4("10.1.0.2");
    let ov = a4("10.3.0.2");
    let ov_gw = a4("10.3.0.1");
    let ov_far = a4("10.3.0.9");
    let mut out = Vec::new();
    let big_df = eth4(
        OVL_HOST,
        REMOTE_MAC.0,
        &ip4(
            v4(ov, ov_far, 64, true),
            L4::Udp(1, 2),
            &frames::pattern(1572, 3),
        ),
    );
    let big_nodf = eth4(
        OVL_HOST,
        REMOTE_MAC.0,
        &ip4(
            v4(ov, ov_far, 64, false),
            L4::Udp(1, 2),
            &frames::pattern(2972, 4),
        ),
    );
    let big6 = eth6(
        OVL_HOST,
        REMOTE_MAC.0,
        &ip6(
            v6(a6("fd00::2"), a6("fd00::9"), 64),
            L4::Udp(1, 2),
            &frames::pattern(1552, 5),
        ),
    );
    let t = Tcp {
        sport: 40100,
        dport: 5201,
        seq: 1,
        ack: Some(1),
        ..Tcp::default()
    };
    let tso = frames::tso_frame(
        OVL_HOST,
        REMOTE_MAC.0,
        false,
        None,
        t,
        &frames::pattern(6000, 6),
    );
    let tso6 = frames::tso_frame(
        OVL_HOST,
        REMOTE_MAC.0,
        true,
        None,
        t,
        &frames::pattern(4000, 7),
    );
    out.push((
        "overlay_out".into(),
        Talk::default()
            .at(
                port(6, 0),
                &frames::arp(OVL_HOST, BROADCAST, 1, (OVL_HOST, ov), ([0; 6], ov_far)),
            )
            .at(
                port(6, 0),
                &eth4(
                    OVL_HOST,
                    REMOTE_MAC.0,
                    &ip4(
                        v4(ov, ov_far, 64, true),
                        L4::Tcp(tcp(40100, 5201, true, Some(1460))),
                        &[],
                    ),
                ),
            )
            .at(port(6, 0), &big_df)
            .at(port(6, 0), &big_nodf)
            .at(port(6, 0), &big6)
            .vnet(port(6, 0), frames::vnet(1, 1, 54, 1448, 34, 16), &tso)
            .vnet(port(6, 0), frames::vnet(1, 4, 74, 1428, 54, 16), &tso6)
            .vnet(
                port(7, 0),
                frames::vnet(1, 0, 0, 0, 34, 16),
                &tso[..14 + 20 + 20 + 500],
            )
            .at(
                port(6, 0),
                &eth4(
                    OVL_HOST,
                    BROADCAST,
                    &ip4(
                        v4(ov, ov_far, 64, false),
                        L4::Udp(1, 2),
                        &frames::pattern(2000, 8),
                    ),
                ),
            )
            .done(),
    ));
    let from_peer = |inner: &[u8]| frames::vxlan(8, VNI, inner);
    let mut partial = eth4(
        REMOTE_MAC.0,
        OVL_HOST,
        &ip4(
            v4(ov_far, ov, 64, true),
            L4::Tcp(tcp(5201, 40100, false, None)),
            &frames::pattern(900, 9),
        ),
    );
    frames::make_partial(&mut partial, 14);
    out.push((
        "overlay_in".into(),
        Talk::default()
            .at(
                port(6, 0),
                &frames::arp(OVL_HOST, BROADCAST, 1, (OVL_HOST, ov), ([0; 6], ov_far)),
            )
            .at(
                op::VXLAN_PEER,
                &from_peer(&frames::arp(
                    REMOTE_MAC.0,
                    OVL_HOST,
                    2,
                    (REMOTE_MAC.0, ov_far),
                    (OVL_HOST, ov),
                )),
            )
            .at(
                op::VXLAN_PEER,
                &from_peer(&frames::arp(
                    [2, 0, 0, 0, 0xee, 2],
                    BROADCAST,
                    1,
                    ([2, 0, 0, 0, 0xee, 2], a4("10.3.0.10")),
                    ([0; 6], ov_gw),
                )),
            )
            .at(
                op::VXLAN_PEER,
                &from_peer(&eth4(
                    REMOTE_MAC.0,
                    ROUTER_MAC.0,
                    &ip4(v4(ov_far, ov_gw, 64, true), L4::EchoRequest(1, 1), b"ping"),
                )),
            )
            .at(op::VXLAN_PEER, &from_peer(&partial))
            // Larger than the overlay's MTU (a peer configured with a larger one): not
            // switched to the local port; to the router, fitted where it is routed.
            .at(
                op::VXLAN_PEER,
                &from_peer(&eth4(
                    REMOTE_MAC.0,
                    OVL_HOST,
                    &ip4(
                        v4(ov_far, ov, 64, false),
                        L4::Udp(7, 7),
                        &frames::pattern(1500, 3),
                    ),
                )),
            )
            .at(
                op::VXLAN_PEER | 5 << 5,
                &from_peer(&eth4(
                    REMOTE_MAC.0,
                    ROUTER_MAC.0,
                    &ip4(
                        v4(ov_far, a, 64, false),
                        L4::Udp(1, 2),
                        &frames::pattern(1500, 4),
                    ),
                )),
            )
            .at(
                op::VXLAN_PEER6,
                &from_peer(&eth4(
                    [2, 0, 0, 0, 0xee, 3],
                    OVL_HOST,
                    &ip4(
                        v4(a4("10.3.0.11"), ov, 64, true),
                        L4::Udp(7, 7),
                        b"v6 underlay",
                    ),
                )),
            )
            .at(
                op::VXLAN_PEER,
                &from_peer(&eth4(
                    REMOTE_MAC.0,
                    [2, 0, 0, 0, 0xee, 3],
                    &ip4(
                        v4(ov_far, a4("10.3.0.11"), 64, true),
                        L4::Udp(7, 7),
                        b"peer to peer",
                    ),
                )),
            )
            .at(
                op::VXLAN_STRANGER,
                &from_peer(&frames::arp(B, BROADCAST, 1, (B, ov_far), ([0; 6], ov))),
            )
            .at(
                op::VXLAN_PEER,
                &frames::vxlan(
                    8,
                    43,
                    &frames::arp(B, BROADCAST, 1, (B, ov_far), ([0; 6], ov)),
                ),
            )
            .at(
                op::VXLAN_PEER | 5 << 5,
                &from_peer(&eth4(
                    REMOTE_MAC.0,
                    ROUTER_MAC.0,
                    &ip4(v4(ov_far, a, 64, true), L4::Udp(1, 2), b"route me"),
                )),
            )
            .done(),
    ));
    let ns = {
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&a6("fd00::1").octets());
        let mut p = frames::ip6(
            v6(a6("fd00::2"), a6("ff02::1:ff00:1"), 255),
            L4::Udp(0, 0),
            &[],
        );
        p.truncate(40);
        p[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
        p[6] = 58;
        p.extend_from_slice(&icmp);
        p
    };
    out.push((
        "overlay_flood_and_multicast".into(),
        Talk::default()
            .at(
                port(7, 0),
                &eth4(
                    OVL_HOST,
                    BROADCAST,
                    &ip4(
                        v4(ov, a4("10.3.0.255"), 64, false),
                        L4::Udp(67, 68),
                        b"flood",
                    ),
                ),
            )
            .at(
                port(7, 0),
                &eth4(
                    OVL_HOST,
                    [2, 0, 0, 0, 0x77, 1],
                    &ip4(v4(ov, ov_far, 64, true), L4::Udp(5, 5), b"unknown"),
                ),
            )
            .at(
                port(6, 0),
                &eth6(OVL_HOST, [0x33, 0x33, 0xff, 0, 0, 1], &ns),
            )
            .at(
                port(6, 0),
                &eth6(
                    OVL_HOST,
                    ROUTER_MAC.0,
                    &ip6(
                        v6(a6("fd00::2"), a6("2001:db8::9"), 64),
                        L4::Udp(1, 2),
                        b"v6 to router",
                    ),
                ),
            )
            .at(
                op::VXLAN_PEER6,
                &frames::vxlan(
                    8,
                    VNI,
                    &eth4(
                        REMOTE_MAC.0,
                        BROADCAST,
                        &ip4(
                            v4(ov_far, a4("10.3.0.255"), 64, false),
                            L4::Udp(67, 68),
                            b"peer flood",
                        ),
                    ),
                ),
            )
            .at(
                op::VXLAN_PEER,
                &frames::vxlan(
                    0x0c,
                    VNI,
                    &eth4(
                        REMOTE_MAC.0,
                        OVL_HOST,
                        &ip4(v4(ov_far, ov, 64, false), L4::Udp(1, 1), b"bad flags"),
                    ),
                ),
            )
            .done(),
    ));
    out
}
