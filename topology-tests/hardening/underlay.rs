//! Bad VXLAN on the underlay, from a real peer and from a stranger, while the overlay
//! carries a ping: each datagram is dropped under its reason, the ping never misses.

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::Value;

use crate::common::overlay::VsHost;
use crate::common::{Netns, require_root, wait_until};
use crate::wire::{self, BROADCAST};
use crate::{VNI, assert_alive, counter, heavy, mac_of, rss_kb, two_hosts};

/// Sends each datagram `n` times from `from` (an address of `ns`) to `to`:4789.
fn send_udp(ns: &Netns, from: &str, to: &str, datagrams: Vec<Vec<u8>>, n: usize) {
    let (from, to) = (from.to_string(), to.to_string());
    crate::common::nat::in_ns(&ns.name, move || {
        let s = UdpSocket::bind((from.as_str(), 0)).unwrap();
        for d in &datagrams {
            for _ in 0..n {
                s.send_to(d, (to.as_str(), 4789)).unwrap();
            }
        }
    });
}

fn underlay(h: &VsHost) -> Value {
    h.stats()["underlay"].clone()
}

/// ```text
///   c1 10.88.0.17 ==ping==> c2 10.88.0.33
///   [h1: vswitch .1]==underlay==[h2: vswitch .2, also .200 (not a peer)]
/// ```
#[test]
fn bad_vxlan_is_dropped_and_counted_by_reason() {
    require_root();
    let _turn = heavy();
    let (_ul, a, b) = two_hosts();
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    // A second address on the peer's host that is not a peer of anyone.
    b.ns.ip(&["addr", "add", "192.168.77.200/24", "dev", "ul0"]);

    let stranger_mac = [0x02, 0x99, 0, 0, 0, 1];
    let good_inner = wire::ethernet(BROADCAST, stranger_mac, 0x88b5, &[0; 46]);
    let c1_mac = mac_of(&c1, "eth0");
    let n = 40;
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "I flag missing",
            "drops",
            "vxlan_bad_flags",
            wire::vxlan(0x00, VNI, &good_inner),
        ),
        (
            "reserved flag bits set",
            "drops",
            "vxlan_bad_flags",
            wire::vxlan(0x0c, VNI, &good_inner),
        ),
        (
            "unknown VNI",
            "drops",
            "vxlan_unknown_vni",
            wire::vxlan(0x08, 999, &good_inner),
        ),
        (
            "VXLAN header only",
            "drops",
            "vxlan_truncated",
            wire::vxlan(0x08, VNI, &[]),
        ),
        (
            "inner frame of 10 bytes",
            "drops",
            "vxlan_truncated",
            wire::vxlan(0x08, VNI, &good_inner[..10]),
        ),
        (
            "4-byte datagram",
            "drops",
            "vxlan_truncated",
            vec![0x08, 0, 0, 0],
        ),
        (
            "inner multicast source",
            "inner_drops",
            "invalid_source",
            wire::vxlan(
                0x08,
                VNI,
                &wire::ethernet(c1_mac, [0x01, 0, 0x5e, 0, 0, 9], 0x88b5, &[0; 46]),
            ),
        ),
        (
            "inner 802.1Q tag",
            "inner_drops",
            "vlan_tagged",
            wire::vxlan(
                0x08,
                VNI,
                &wire::ethernet(c1_mac, stranger_mac, 0x8100, &[0; 46]),
            ),
        ),
    ];
    let ping = c1.spawn("ping", &["-c", "50", "-i", "0.1", "-W", "2", "10.88.0.33"]);
    let mut rss = Vec::new();
    for round in 1..=3 {
        let before = underlay(&a);
        for (_, _, _, d) in &cases {
            send_udp(&b.ns, &b.addr, &a.addr, vec![d.clone()], n);
        }
        // A well-formed datagram, but from an address that is not a peer.
        send_udp(
            &b.ns,
            "192.168.77.200",
            &a.addr,
            vec![wire::vxlan(0x08, VNI, &good_inner)],
            n,
        );
        let mut expected: Vec<(&str, &str, u64)> = vec![("drops", "vxlan_not_a_peer", n as u64)];
        for (_, map, reason, _) in &cases {
            match expected
                .iter_mut()
                .find(|(m, r, _)| m == map && r == reason)
            {
                Some(e) => e.2 += n as u64,
                None => expected.push((map, reason, n as u64)),
            }
        }
        for (map, reason, want) in &expected {
            let moved =
                || counter(&underlay(&a), &[map, reason]) - counter(&before, &[map, reason]);
            assert!(
                wait_until(Duration::from_secs(5), || moved() == *want),
                "round {round}: {map}.{reason} moved by {} (want {want})\n{}",
                moved(),
                underlay(&a)
            );
        }
        assert_alive(&a.d);
        rss.push(rss_kb(&a.d));
    }
    for (what, map, reason, _) in &cases {
        eprintln!("{what}: {map}.{reason}");
    }
    // A flood of well-formed datagrams from the stranger: each one is refused or, when
    // the switch falls behind, counted as lost in its receive queue; none goes missing.
    let flood = 50_000u64;
    let before = underlay(&a);
    let refused = |u: &Value| {
        counter(u, &["drops", "vxlan_not_a_peer"]) + counter(u, &["drops", "rx_overrun"])
    };
    send_udp(
        &b.ns,
        "192.168.77.200",
        &a.addr,
        vec![wire::vxlan(0x08, VNI, &good_inner)],
        flood as usize,
    );
    let accounted = wait_until(Duration::from_secs(5), || {
        refused(&underlay(&a)) - refused(&before) == flood
    });
    let after = underlay(&a);
    eprintln!(
        "stranger flood of {flood}: not_a_peer +{}, rx_overrun +{}",
        counter(&after, &["drops", "vxlan_not_a_peer"])
            - counter(&before, &["drops", "vxlan_not_a_peer"]),
        counter(&after, &["drops", "rx_overrun"]) - counter(&before, &["drops", "rx_overrun"]),
    );
    assert!(
        accounted,
        "flood of {flood}: {} accounted for\n{after}",
        refused(&after) - refused(&before)
    );
    assert_alive(&a.d);
    let out = ping.wait_output();
    assert!(
        out.status.success(),
        "ping across the overlay missed while the garbage arrived: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!("RSS after each round: {rss:?} kB");
    assert!(
        rss[2] <= rss[1] + 1024,
        "RSS grew between identical rounds: {rss:?}"
    );
    // The stranger's MAC from the bad datagrams was never learned.
    let fdb = a.d.json(&["fdb", "show", "--format", "json"]);
    assert!(
        !fdb.to_string().contains("02:99:00:00:00:01"),
        "a dropped datagram taught the FDB: {fdb}"
    );
    let _ = c2;
}
