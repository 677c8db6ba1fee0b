//! Pipeline seeds about switching within a network: learning and forwarding, VLAN tags,
//! runts and jumbo frames, link-local multicast, aging and MAC moves.

use super::{B, NET2_HOST, Talk, a4, port};
use crate::harness::pipeline::HOST_A;
use crate::seeds::frames::{self, BROADCAST, L4, eth, eth4, ip4, v4};

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let a = a4("10.1.0.2");
    let gw1 = a4("10.1.0.1");
    let n2 = a4("10.2.0.5");
    vec![
        (
            "l2_learn_forward".to_string(),
            Talk::default()
                .at(
                    port(1, 0),
                    &frames::arp(
                        HOST_A.0,
                        BROADCAST,
                        1,
                        (HOST_A.0, a),
                        ([0; 6], a4("10.1.0.3")),
                    ),
                )
                .at(
                    port(2, 0),
                    &frames::arp(B, HOST_A.0, 2, (B, a4("10.1.0.3")), (HOST_A.0, a)),
                )
                .at(
                    port(1, 3),
                    &eth4(
                        HOST_A.0,
                        B,
                        &ip4(v4(a, a4("10.1.0.3"), 64, true), L4::Udp(1, 2), b"hi"),
                    ),
                )
                .at(port(1, 0), &eth(HOST_A.0, B, &[9], 0x0800, b"tagged"))
                .at(port(1, 0), &HOST_A.0[..5])
                .at(
                    port(0, 0),
                    &frames::arp(B, BROADCAST, 1, (B, a), ([0; 6], gw1)),
                )
                .done(),
        ),
        (
            "vlan_runts_and_jumbo".into(),
            Talk::default()
                .at(
                    port(2, 0),
                    &eth(
                        B,
                        HOST_A.0,
                        &[5],
                        0x0800,
                        &ip4(v4(a4("10.1.0.3"), a, 64, true), L4::Udp(1, 2), b"vlan 5"),
                    ),
                )
                .at(port(2, 0), &eth(B, BROADCAST, &[5, 6], 0x0806, &[0; 28]))
                .at(port(3, 0), &[0xff; 13])
                .at(port(3, 0), &[])
                .at(
                    port(1, 0),
                    &eth4(
                        HOST_A.0,
                        BROADCAST,
                        &ip4(
                            v4(a, a4("10.1.0.255"), 64, false),
                            L4::Udp(9, 9),
                            &frames::pattern(8986, 11),
                        ),
                    ),
                )
                .at(
                    port(1, 0),
                    &eth(HOST_A.0, [1, 0x80, 0xc2, 0, 0, 0x0e], &[], 0x88cc, &[0; 46]),
                )
                .done(),
        ),
        (
            "aging_and_moves".into(),
            Talk::default()
                .at(
                    port(1, 0),
                    &eth4(
                        HOST_A.0,
                        B,
                        &ip4(v4(a, a4("10.1.0.3"), 64, true), L4::Udp(1, 2), b"learn a"),
                    ),
                )
                .at(
                    port(2, 0),
                    &eth4(
                        B,
                        HOST_A.0,
                        &ip4(v4(a4("10.1.0.3"), a, 64, true), L4::Udp(2, 1), b"to a"),
                    ),
                )
                .at(
                    port(3, 0),
                    &eth4(
                        HOST_A.0,
                        B,
                        &ip4(v4(a, a4("10.1.0.3"), 64, true), L4::Udp(1, 2), b"a moved"),
                    ),
                )
                .at(
                    port(2, 7),
                    &eth4(
                        B,
                        HOST_A.0,
                        &ip4(
                            v4(a4("10.1.0.3"), a, 64, true),
                            L4::Udp(2, 1),
                            b"a aged out",
                        ),
                    ),
                )
                .at(
                    port(1, 6),
                    &eth4(
                        B,
                        HOST_A.0,
                        &ip4(v4(a4("10.1.0.3"), a, 64, true), L4::Udp(2, 1), b"spoofed b"),
                    ),
                )
                .at(
                    port(4, 0),
                    &eth4(
                        NET2_HOST,
                        HOST_A.0,
                        &ip4(v4(n2, a, 64, true), L4::Udp(2, 1), b"other net"),
                    ),
                )
                .done(),
        ),
    ]
}
