//! Floods: random source MACs far past the FDB's limit, a broadcast storm, and new NAT
//! flows far past the conntrack limit. The tables stay within their limits, refusals are
//! counted, memory stays bounded, and the endpoints that were already talking keep
//! talking while it happens.

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::Value;

use crate::common::nat::{NatLab, OUTSIDE, in_ns, tcp_client, tcp_echo_server};
use crate::common::{ChildGuard, Daemon, Netns, require_root, wait_until};
use crate::wire::{self, BROADCAST, ETHERTYPE_IPV4};
use crate::{Job, assert_alive, counter, heavy, inject, mac_of, neighbour_mac, port_row, rss_kb};

const MAX_PER_PORT: u64 = 1000;

/// A network "blue" on a daemon with a small FDB, two endpoints that talk and an
/// attacker. Returns (daemon, c1, c2, c2's address, attacker).
fn switch_with_small_fdb(host: &Netns) -> (Daemon, Netns, Netns, String, Netns) {
    let cfg = format!("[fdb]\nmax_entries = 4096\nmax_per_port = {MAX_PER_PORT}\n");
    let d = Daemon::start_with_config(host, Some(&cfg));
    d.must(&["network", "create", "blue", "--subnet", "10.62.0.0/24"]);
    let (c1, c2, attacker) = (Netns::new("c"), Netns::new("c"), Netns::new("c"));
    for (c, ip) in [
        (&c1, "10.62.0.11"),
        (&c2, "10.62.0.12"),
        (&attacker, "10.62.0.66"),
    ] {
        d.must(&["network", "connect", "blue", "--netns", &c.name, "--ip", ip]);
    }
    assert!(c1.ping_until("10.62.0.12", Duration::from_secs(5)));
    assert!(attacker.ping_until("10.62.0.11", Duration::from_secs(5)));
    (d, c1, c2, "10.62.0.12".to_string(), attacker)
}

/// A ping of `count` echoes, 100 ms apart, running in the background.
fn background_ping(from: &Netns, to: &str, count: u32) -> ChildGuard {
    let c = count.to_string();
    from.spawn("ping", &["-c", &c, "-i", "0.1", "-W", "2", to])
}

/// How many echoes a finished background ping got back.
fn ping_received(p: ChildGuard) -> u32 {
    let out = p.wait_output();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.contains("received"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ping output without a summary: {text}"))
}

fn stats(d: &Daemon) -> Value {
    d.json(&["stats", "--format", "json"])
}

/// Frames the attacker's port took in (read by the switch, or lost to a full receive
/// queue and counted as such).
fn taken_in(s: &Value, endpoint: &str) -> u64 {
    let row = port_row(s, endpoint);
    counter(&row, &["rx_packets"]) + counter(&row, &["drops", "rx_overrun"])
}

/// ```text
///   c1 <==ping==> c2        attacker: 200,000 frames, each from a new random MAC
///     \           |           /
///      [h: vswitch, fdb max_per_port 1000, max_entries 4096]
/// ```
#[test]
fn a_mac_flood_is_refused_at_the_limit_and_known_stations_keep_talking() {
    require_root();
    let _turn = heavy();
    let host = Netns::new("h");
    let (d, c1, _c2, c2_ip, attacker) = switch_with_small_fdb(&host);
    let before = stats(&d);
    let rss_before = rss_kb(&d);
    let ping = background_ping(&c1, &c2_ip, 50);
    // To a unicast MAC nobody has: each frame is flooded, as an attacker's would be.
    let frame = wire::ethernet(
        [0x02, 0, 0xde, 0xad, 0xbe, 0xef],
        mac_of(&attacker, "eth0"),
        0x88b5,
        &[0; 46],
    );
    let sent = inject(
        &attacker,
        "eth0",
        &[Job {
            count: 200_000,
            frame,
            random_source: true,
        }],
    );
    assert_eq!(sent, 200_000);
    let received = ping_received(ping);
    // Every frame is accounted for: read by the switch or counted as a receive overrun.
    let accounted = wait_until(Duration::from_secs(5), || {
        taken_in(&stats(&d), &attacker.name) - taken_in(&before, &attacker.name) >= sent
    });
    let after = stats(&d);
    assert!(accounted, "frames vanished uncounted: {after}");
    assert_alive(&d);
    let learned = counter(&after, &["fdb", "learned"]) - counter(&before, &["fdb", "learned"]);
    let refused = counter(&after, &["fdb", "refused"]) - counter(&before, &["fdb", "refused"]);
    let row = |s: &Value| port_row(s, &attacker.name);
    let processed =
        counter(&row(&after), &["rx_packets"]) - counter(&row(&before), &["rx_packets"]);
    eprintln!(
        "mac flood: sent {sent}, switch read {processed}, learned {learned}, refused {refused}, ping {received}/50, fdb {}",
        after["fdb"]
    );
    // The attacker's port filled up to its limit (the attacker's own MAC was one of it)
    // and every other new MAC it showed was refused, counted.
    assert!(learned < MAX_PER_PORT, "learned {learned}");
    assert!(
        learned + refused + 10 >= processed,
        "read {processed} frames, learned {learned} and refused {refused}: learns vanished"
    );
    let behind_attacker = d
        .json(&["fdb", "show", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["port"] == attacker.name.as_str())
        .count() as u64;
    assert_eq!(
        behind_attacker, MAX_PER_PORT,
        "the attacker's port is not at its limit"
    );
    assert!(counter(&after, &["fdb", "entries"]) <= MAX_PER_PORT + 2);
    // Known stations were never pushed out: their traffic went on throughout.
    assert!(
        received >= 49,
        "ping c1 -> c2 got {received}/50 during the flood"
    );
    assert!(c1.ping(&c2_ip, 3, 56));
    let rss_after = rss_kb(&d);
    eprintln!("RSS {rss_before} -> {rss_after} kB");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
}

/// A broadcast storm from one port: the switch floods it (a switch has no business
/// dropping broadcasts) without falling over, every frame is accounted for, and the
/// others keep talking.
#[test]
fn a_broadcast_storm_is_forwarded_and_accounted_and_others_keep_talking() {
    require_root();
    let _turn = heavy();
    let host = Netns::new("h");
    let (d, c1, _c2, c2_ip, attacker) = switch_with_small_fdb(&host);
    let before = stats(&d);
    let rss_before = rss_kb(&d);
    let ping = background_ping(&c1, &c2_ip, 40);
    let frame = wire::ethernet(BROADCAST, mac_of(&attacker, "eth0"), 0x88b5, &[0; 46]);
    let sent = inject(&attacker, "eth0", &[Job::new(100_000, frame)]);
    let received = ping_received(ping);
    let accounted = wait_until(Duration::from_secs(5), || {
        taken_in(&stats(&d), &attacker.name) - taken_in(&before, &attacker.name) >= sent
    });
    let after = stats(&d);
    assert!(accounted, "frames vanished uncounted: {after}");
    assert_alive(&d);
    // Out of c1's port: what the attacker got in, each frame either sent or counted.
    let row = |s: &Value, n: &str| port_row(s, n);
    let read = counter(&row(&after, &attacker.name), &["rx_packets"])
        - counter(&row(&before, &attacker.name), &["rx_packets"]);
    let c1_out = |s: &Value| {
        let r = row(s, &c1.name);
        counter(&r, &["tx_packets"])
            + ["tx_busy", "tx_error", "no_buffer", "link_down"]
                .iter()
                .map(|k| counter(&r, &["drops", k]))
                .sum::<u64>()
    };
    let flooded = c1_out(&after) - c1_out(&before);
    eprintln!(
        "storm: sent {sent}, read {read}, out of c1 (sent or counted) {flooded}, ping {received}/40\n{after}"
    );
    assert!(
        flooded >= read,
        "read {read} broadcasts, c1's port accounts for {flooded}"
    );
    assert!(
        received >= 39,
        "ping c1 -> c2 got {received}/40 during the storm"
    );
    let rss_after = rss_kb(&d);
    eprintln!("RSS {rss_before} -> {rss_after} kB");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} -> {rss_after} kB"
    );
}

const NAT_LIMIT: u64 = 256;

/// ```text
///   c1: one TCP connection to ext, opened first
///   attacker: 4,000 UDP flows and 2,000 TCP SYNs, each a new 5-tuple
///      [h: vswitch, nat max_entries 256] --uplink-- ext (203.0.113.1)
/// ```
#[test]
fn a_connection_flood_fills_the_nat_table_and_the_old_connection_lives() {
    require_root();
    let _turn = heavy();
    let lab = NatLab::new(&format!("[nat]\nmax_entries = {NAT_LIMIT}\n"));
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.63.0.0/24"]);
    let c1 = lab.container("blue");
    let attacker = lab.container("blue");
    let _echo = tcp_echo_server(&lab.ext.name, 7000);
    let client = tcp_client(&c1.name, OUTSIDE, 7000).expect("TCP connection out");
    assert!(client.echo(b"before the flood"));
    assert!(attacker.ping_until(OUTSIDE, Duration::from_secs(5)));
    let before = lab.stats();
    let rss_before = rss_kb(&lab.d);

    // UDP: one socket, 4,000 destination ports, each datagram a new flow.
    in_ns(&attacker.name, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for port in 20_000u16..24_000 {
            let _ = s.send_to(b"flood", (OUTSIDE, port));
        }
    });
    assert!(client.echo(b"during the flood"), "the old connection died");
    // TCP: 2,000 SYNs from as many source ports, straight to the router.
    let ip = lab.d.endpoint_ipv4("blue", &attacker.name);
    let (src, dst) = (wire::ipv4_addr(&ip), wire::ipv4_addr(OUTSIDE));
    let router = neighbour_mac(&attacker, "10.63.0.1");
    let me = mac_of(&attacker, "eth0");
    let syns: Vec<Job> = (30_000u16..32_000)
        .map(|sport| {
            let seg = wire::tcp(src, dst, sport, 7001, wire::TCP_SYN);
            Job::new(
                1,
                wire::ethernet(
                    router,
                    me,
                    ETHERTYPE_IPV4,
                    &wire::ipv4(src, dst, 6, &[], &seg),
                ),
            )
        })
        .collect();
    assert_eq!(inject(&attacker, "eth0", &syns), 2_000);
    let new_flows = 6_000u64;

    let full = |s: &Value| counter(s, &["router", "nat_drops", "table_full"]);
    let counted = wait_until(Duration::from_secs(5), || {
        full(&lab.stats()) - full(&before) >= new_flows - NAT_LIMIT
    });
    let after = lab.stats();
    eprintln!("connection flood: nat {}", after["nat"]);
    assert!(counted, "refusals not counted: {after}");
    assert!(counter(&after, &["nat", "entries"]) <= NAT_LIMIT, "{after}");
    assert_eq!(
        counter(&after, &["nat", "refused_table_full"])
            - counter(&before, &["nat", "refused_table_full"]),
        full(&after) - full(&before),
        "the NAT and the router disagree on refusals"
    );
    let tracked = lab.d.json(&["nat", "ls", "--format", "json"]);
    assert!(tracked.as_array().unwrap().len() as u64 <= NAT_LIMIT);
    assert!(client.echo(b"after the flood"), "the old connection died");
    assert_alive(&lab.d);
    let rss_after = rss_kb(&lab.d);
    eprintln!("RSS {rss_before} -> {rss_after} kB");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} -> {rss_after} kB"
    );
}
