//! Bad frames from a container, alongside iperf3 between two others: each kind of bad
//! frame is dropped with its reason counted, the legitimate traffic keeps going, and a
//! second round of the same garbage costs the daemon no memory.

use std::time::Duration;

use serde_json::Value;

use crate::common::nat::{NatLab, OUTSIDE};
use crate::common::{Netns, require_root, wait_until};
use crate::wire::{self, ETHERTYPE_IPV4};
use crate::{Job, assert_alive, counter, heavy, inject, mac_of, neighbour_mac, port_row, rss_kb};

const GATEWAY: &str = "10.61.0.1";

/// Where a drop is counted in `vswitch stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// `ports[attacker].drops.<reason>`
    Port(&'static str),
    /// `router.drops.<reason>`
    Router(&'static str),
    /// `router.nat_drops.<reason>`
    Nat(&'static str),
}

/// One kind of bad frame: what the attacker sends each round, and the counter it must
/// move by exactly `per_round`.
struct Case {
    what: &'static str,
    jobs: Vec<Job>,
    counter: Counted,
    per_round: u64,
}

fn cases(attacker: &Netns, c2: &Netns, router: [u8; 6], attacker_ip: &str) -> Vec<Case> {
    let me = mac_of(attacker, "eth0");
    let victim = mac_of(c2, "eth0");
    let src = wire::ipv4_addr(attacker_ip);
    let out = wire::ipv4_addr(OUTSIDE);
    let good_tcp = |flags: u8| wire::ipv4(src, out, 6, &[], &wire::tcp(src, out, 40000, 9, flags));
    let to_router = |ip: Vec<u8>| wire::ethernet(router, me, ETHERTYPE_IPV4, &ip);

    // IPv4 header length 3 words (less than the fixed header).
    let mut short_ihl = good_tcp(wire::TCP_SYN);
    short_ihl[0] = 0x43;
    wire::refresh_ipv4_checksum(&mut short_ihl);
    // Header length 15 words in a 40-byte packet.
    let mut long_ihl = good_tcp(wire::TCP_SYN);
    long_ihl[0] = 0x4f;
    // Total length 1000 in a 40-byte packet: truncated on the way.
    let mut truncated = good_tcp(wire::TCP_SYN);
    truncated[2..4].copy_from_slice(&1000u16.to_be_bytes());
    wire::refresh_ipv4_checksum(&mut truncated);
    // An option whose length byte is 0 (it would never end) and one running past the header.
    let zero_len_option = wire::ipv4(
        src,
        out,
        6,
        &[0x07, 0x00, 0x00, 0x00],
        &wire::tcp(src, out, 40001, 9, wire::TCP_SYN),
    );
    let overrun_option = wire::ipv4(
        src,
        out,
        6,
        &[0x44, 0x28, 0x05, 0x00],
        &wire::tcp(src, out, 40002, 9, wire::TCP_SYN),
    );
    // Version 6 in an IPv4 EtherType; a wrong header checksum.
    let mut bad_version = good_tcp(wire::TCP_SYN);
    bad_version[0] = 0x65;
    wire::refresh_ipv4_checksum(&mut bad_version);
    let mut bad_checksum = good_tcp(wire::TCP_SYN);
    bad_checksum[10] ^= 0xff;

    let vlan = |tags: &[u16]| {
        let mut f = Vec::from(&victim[..]);
        f.extend_from_slice(&me);
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 10]);
        }
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f.extend_from_slice(&good_tcp(wire::TCP_SYN));
        f
    };

    use Counted::{Nat as nat_drops, Port as port_drops, Router as router_drops};
    const N: usize = 50;
    vec![
        Case {
            what: "header-only frame (14 bytes) to the router",
            jobs: vec![Job::new(N, wire::ethernet(router, me, ETHERTYPE_IPV4, &[]))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 header length < 5",
            jobs: vec![Job::new(N, to_router(short_ihl))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 header length past the packet",
            jobs: vec![Job::new(N, to_router(long_ihl))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 total length past the frame (truncated)",
            jobs: vec![Job::new(N, to_router(truncated))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 version 6 under EtherType 0x0800",
            jobs: vec![Job::new(N, to_router(bad_version))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 header checksum wrong",
            jobs: vec![Job::new(N, to_router(bad_checksum))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 option with length 0",
            jobs: vec![Job::new(N, to_router(zero_len_option))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "IPv4 option running past the header",
            jobs: vec![Job::new(N, to_router(overrun_option))],
            counter: router_drops("malformed"),
            per_round: N as u64,
        },
        Case {
            what: "unknown EtherType 0x88b5 to the router",
            jobs: vec![Job::new(N, wire::ethernet(router, me, 0x88b5, &[0; 46]))],
            counter: router_drops("not_ipv4"),
            per_round: N as u64,
        },
        Case {
            what: "802.3 length field instead of an EtherType, to the router",
            jobs: vec![Job::new(N, wire::ethernet(router, me, 46, &[0; 46]))],
            counter: router_drops("not_ipv4"),
            per_round: N as u64,
        },
        Case {
            what: "one 802.1Q tag and double tags (802.1ad + 802.1Q)",
            jobs: vec![
                Job::new(N, vlan(&[0x8100])),
                Job::new(N, vlan(&[0x88a8, 0x8100])),
            ],
            counter: port_drops("vlan_tagged"),
            per_round: 2 * N as u64,
        },
        Case {
            what: "multicast and all-zero source MACs",
            jobs: vec![
                Job::new(
                    N,
                    wire::ethernet(victim, [0x01, 0, 0x5e, 0, 0, 1], 0x88b5, &[0; 46]),
                ),
                Job::new(N, wire::ethernet(victim, [0; 6], 0x88b5, &[0; 46])),
            ],
            counter: port_drops("invalid_source"),
            per_round: 2 * N as u64,
        },
        Case {
            what: "frame over the network MTU (1514 bytes on a 1400 network)",
            jobs: vec![Job::new(N, wire::ethernet(victim, me, 0x88b5, &[0; 1500]))],
            counter: port_drops("over_mtu"),
            per_round: N as u64,
        },
        Case {
            what: "TCP SYN+FIN, SYN+RST, no flags, FIN+PSH+URG (xmas) as new flows through the NAT",
            jobs: [
                wire::TCP_SYN | wire::TCP_FIN,
                wire::TCP_SYN | wire::TCP_RST,
                0,
                wire::TCP_FIN | wire::TCP_PSH | wire::TCP_URG,
            ]
            .into_iter()
            .zip(41000u16..)
            .map(|(flags, sport)| {
                let seg = wire::tcp(src, out, sport, 9, flags);
                Job::new(N, to_router(wire::ipv4(src, out, 6, &[], &seg)))
            })
            .collect(),
            // A flow starts at a bare SYN only: these never create state.
            counter: nat_drops("no_flow"),
            per_round: 4 * N as u64,
        },
    ]
}

fn read(stats: &Value, attacker: &str, c: Counted) -> u64 {
    match c {
        Counted::Port(r) => counter(&port_row(stats, attacker), &["drops", r]),
        Counted::Router(r) => counter(stats, &["router", "drops", r]),
        Counted::Nat(r) => counter(stats, &["router", "nat_drops", r]),
    }
}

/// ```text
///   c1 ==iperf3==> c2          attacker (eth0 MTU 1500 on a 1400 network)
///    \             |             /
///     [h: vswitch, network blue 10.61.0.0/24 MTU 1400, uplink + NAT] -- ext
/// ```
#[test]
fn bad_frames_are_dropped_counted_and_traffic_flows() {
    require_root();
    let _turn = heavy();
    let lab = NatLab::new("");
    lab.d.must(&[
        "network",
        "create",
        "blue",
        "--subnet",
        "10.61.0.0/24",
        "--mtu",
        "1400",
    ]);
    let c1 = lab.container("blue");
    let c2 = lab.container("blue");
    let attacker = lab.container("blue");
    let inspect = lab.d.json(&["network", "inspect", "blue"]);
    let ep = &inspect[0]["Endpoints"][&attacker.name];
    let attacker_ip = lab.d.endpoint_ipv4("blue", &attacker.name);
    let c2_ip = lab.d.endpoint_ipv4("blue", &c2.name);
    // The attacker's link takes 1500-byte frames; the network's MTU is 1400.
    let host_end = ep["Port"].as_str().unwrap().to_string();
    lab.host.ip(&["link", "set", &host_end, "mtu", "1500"]);
    attacker.ip(&["link", "set", "eth0", "mtu", "1500"]);
    assert!(attacker.ping_until(GATEWAY, Duration::from_secs(5)));
    assert!(c1.ping_until(&c2_ip, Duration::from_secs(5)));
    let router = neighbour_mac(&attacker, GATEWAY);
    let cases = cases(&attacker, &c2, router, &attacker_ip);

    let server = c2.spawn("iperf3", &["-s", "-1"]);
    std::thread::sleep(Duration::from_millis(300));
    let client = c1.spawn("iperf3", &["-c", &c2_ip, "-t", "8", "-J"]);

    let mut rss = Vec::new();
    for round in 1..=3 {
        let before = lab.stats();
        for case in &cases {
            let sent = inject(&attacker, "eth0", &case.jobs);
            let total: usize = case.jobs.iter().map(|j| j.count).sum();
            assert_eq!(sent, total as u64, "{}: the kernel refused some", case.what);
        }
        // Everything counted, exactly, and nothing else that should not have moved.
        for case in &cases {
            let path = case.counter;
            let a = attacker.name.as_str();
            let want: u64 = cases
                .iter()
                .filter(|c| c.counter == case.counter)
                .map(|c| c.per_round)
                .sum();
            let ok = wait_until(Duration::from_secs(5), || {
                read(&lab.stats(), a, path) - read(&before, a, path) == want
            });
            assert!(
                ok,
                "round {round}: {}: counter {:?} moved by {} (want {want})\n{}",
                case.what,
                path,
                read(&lab.stats(), a, path) - read(&before, a, path),
                lab.stats()
            );
        }
        assert_alive(&lab.d);
        rss.push(rss_kb(&lab.d));
    }
    let out = client.wait_output();
    drop(server);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "iperf3 stopped: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    assert!(bps > 1e6, "iperf3 got {bps} bit/s");
    eprintln!(
        "RSS after each round: {rss:?} kB; iperf3 beside it: {:.2} Gbit/s",
        bps / 1e9
    );
    // The first round may touch buffers for the first time; later rounds must not grow.
    assert!(
        rss[2] <= rss[1] + 1024,
        "RSS grew from {} kB to {} kB between identical rounds",
        rss[1],
        rss[2]
    );
    let s = lab.stats();
    let row = port_row(&s, &attacker.name);
    eprintln!("attacker port: {row}\nrouter: {}", s["router"]);
}
