//! Several workers: every port gets one queue per worker (PACKET_FANOUT on veth ends and
//! the uplink, SO_REUSEPORT on the underlay), flows spread over them with both directions
//! of a flow on one worker, and what one worker learns (FDB entries, ARP answers, NAT
//! connections) serves the others.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::nat::{EXTERNAL, NatLab, OUTSIDE, in_ns, tcp_client, tcp_echo_server, udp_echo_server};
use common::overlay::two_peered_hosts;
use common::{Daemon, Netns, iperf3_tcp, require_root};

const TWO_WORKERS: &str = "[datapath]\nworkers = 2\n";
/// Streams per iperf3 run: with 16 flows hashed over 2 queues, all of them landing on
/// one queue has a chance of 2 in 65536.
const STREAMS: u32 = 16;

/// Frames each worker read, from `stats --format json`.
fn received_per_worker(d: &Daemon) -> Vec<u64> {
    let v = d.json(&["stats", "--format", "json"]);
    v["workers"]
        .as_array()
        .expect("workers in stats")
        .iter()
        .map(|w| w["received"].as_u64().unwrap())
        .collect()
}

/// ```text
///   c1 --+                                       +-- c3
///   c2 --+-- [a: vswitch, 2 workers] ==VXLAN== [b: vswitch, 2 workers]
/// ```
/// Same-host and cross-host traffic work with two workers, and both workers of each
/// host carry part of 16 TCP streams.
#[test]
fn two_workers_switch_and_tunnel_and_share_the_load() {
    require_root();
    let (_ul, a, b) = two_peered_hosts(TWO_WORKERS, "blue", 42, "10.91.0");
    let c1 = a.container("blue", "10.91.0.17");
    let c2 = a.container("blue", "10.91.0.18");
    let c3 = b.container("blue", "10.91.0.33");
    assert!(
        c1.ping_until("10.91.0.18", Duration::from_secs(5)),
        "same host"
    );
    assert!(
        c1.ping_until("10.91.0.33", Duration::from_secs(5)),
        "across"
    );
    assert_eq!(received_per_worker(&a.d).len(), 2);

    assert!(iperf3_tcp(&c1, &c2, "10.91.0.18", 2, STREAMS) > 0.0);
    assert!(iperf3_tcp(&c1, &c3, "10.91.0.33", 2, STREAMS) > 0.0);
    for (host, d) in [("a", &a.d), ("b", &b.d)] {
        let per = received_per_worker(d);
        assert!(
            per.iter().all(|&n| n > 100),
            "host {host}: a worker carried (almost) nothing: {per:?}"
        );
    }
    assert!(
        c3.ping("10.91.0.17", 3, 56),
        "still switching after the load"
    );
}

/// ```text
///   c1 -- [h: vswitch, 2 workers] --uplink-- ext (203.0.113.1)
/// ```
/// With two workers, the answer to the switch's ARP for the uplink gateway may reach the
/// worker that did not ask: it is passed on, and masquerade works from every worker.
#[test]
fn two_workers_resolve_the_uplink_and_masquerade() {
    require_root();
    let lab = NatLab::new(TWO_WORKERS);
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.92.0.0/24"]);
    let c1 = lab.container("blue");
    let c2 = lab.container("blue");
    for c in [&c1, &c2] {
        assert!(
            c.ping_until(OUTSIDE, Duration::from_secs(5)),
            "no ping out\n{}",
            lab.d.log()
        );
    }
    let peers = tcp_echo_server(&lab.ext.name, 7000);
    for c in [&c1, &c2] {
        let client = tcp_client(&c.name, OUTSIDE, 7000).expect("TCP out");
        assert!(client.echo(b"through either worker"));
        let seen = peers.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(seen.ip().to_string(), EXTERNAL);
    }
    assert!(iperf3_tcp(&c1, &lab.ext, OUTSIDE, 2, STREAMS) > 0.0);
    let per = received_per_worker(&lab.d);
    assert!(per.iter().all(|&n| n > 100), "{per:?}");
}

/// ```text
///   c1 -- [h: vswitch, 2 workers] --uplink-- ext (UDP echo on 7100)
/// ```
/// With two workers, the answers of a masqueraded flow come back to the worker that
/// sent it out (its NAT port is in that worker's lane, and the uplink steers by it):
/// for each of 8 flows, one worker reads both the requests and the answers. With the
/// kernel's flow hash on the uplink the answers of about half the flows went to the
/// other worker (all 8 by chance: 1 in 256).
#[test]
fn two_workers_read_the_answers_of_the_flows_they_masqueraded() {
    require_root();
    let lab = NatLab::new(TWO_WORKERS);
    let c1 = lab.container_reaching_outside("blue", "10.93.0.0/24");
    udp_echo_server(&lab.ext.name, 7100);
    for flow in 0..8u16 {
        one_worker_per_flow(&c1, 46000 + flow, OUTSIDE, &[&lab.d]);
    }
}

/// Round trips of one UDP flow from `c` (source port `sport`) to the echo server at
/// `to`:7100; asserts that on each daemon one worker read both the requests and the
/// answers (and the other a stray frame, such as ARP, at most).
fn one_worker_per_flow(c: &Netns, sport: u16, to: &'static str, daemons: &[&Daemon]) {
    const ROUND_TRIPS: u64 = 20;
    let before: Vec<Vec<u64>> = daemons.iter().map(|d| received_per_worker(d)).collect();
    let answered = in_ns(&c.name, move || {
        let s = std::net::UdpSocket::bind(("0.0.0.0", sport)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        (0..ROUND_TRIPS)
            .filter(|_| s.send_to(b"which worker", (to, 7100)).is_ok() && s.recv(&mut buf).is_ok())
            .count() as u64
    });
    assert_eq!(answered, ROUND_TRIPS, "flow from port {sport}");
    for (d, before) in daemons.iter().zip(before) {
        let after = received_per_worker(d);
        let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let (most, least) = (delta.iter().max().unwrap(), delta.iter().min().unwrap());
        assert!(
            *most >= 2 * ROUND_TRIPS && *least <= 4,
            "flow from port {sport}: frames read per worker {delta:?}\n{}",
            d.log()
        );
    }
}

/// ```text
///   c1 -- [a: vswitch, 2 workers] ==VXLAN== [b: vswitch, 2 workers] -- c3 (UDP echo)
/// ```
/// With two workers on each host, both directions of a flow are read by one worker on
/// each host: local ports share flows by a hash that is the same both ways, and the
/// underlay gives a datagram to the worker of its inner flow. With the kernel's hashes
/// (the outer 4-tuple on the underlay) the answers of about half the flows went to the
/// other worker.
#[test]
fn two_workers_read_both_directions_of_a_flow_on_each_host() {
    require_root();
    let (_ul, a, b) = two_peered_hosts(TWO_WORKERS, "blue", 42, "10.94.0");
    let c1 = a.container("blue", "10.94.0.17");
    let c3 = b.container("blue", "10.94.0.33");
    assert!(
        c1.ping_until("10.94.0.33", Duration::from_secs(5)),
        "across"
    );
    udp_echo_server(&c3.name, 7100);
    for flow in 0..8u16 {
        one_worker_per_flow(&c1, 47000 + flow, "10.94.0.33", &[&a.d, &b.d]);
    }
}

/// ```text
///   m1 (macvlan child of the TAP) -- tap (2 queues) -- [h: vswitch, 2 workers] -- c1
/// ```
/// A TAP the switch creates with two workers is multi-queue and steered by the
/// switch's flow hash: the kernel spreads the flows it sends us over both queues, and a
/// restarted daemon attaches both again.
#[test]
fn two_workers_read_both_queues_of_a_multi_queue_tap() {
    require_root();
    let host = Netns::new("h");
    let (m1, c1) = (Netns::new("m"), Netns::new("c"));
    let mut d = Daemon::start_with_config(&host, Some(TWO_WORKERS));
    let tap = common::unique("tp");
    d.must(&[
        "network",
        "create",
        "blue",
        "--subnet",
        "10.93.0.0/24",
        "--aux-address",
        "mv=10.93.0.200",
    ]);
    d.must(&["network", "connect", "blue", "--tap", &tap]);
    d.must(&["network", "connect", "blue", "--netns", &c1.name]);
    let flags = host.must("cat", &[&format!("/sys/class/net/{tap}/tun_flags")]);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_ne!(
        flags & 0x0100,
        0,
        "TAP is not multi-queue: tun_flags {flags:#x}"
    );
    host.ip(&[
        "link", "add", "mv0", "link", &tap, "type", "macvlan", "mode", "bridge",
    ]);
    host.ip(&["link", "set", "mv0", "netns", &m1.name]);
    m1.ip(&["addr", "add", "10.93.0.200/24", "dev", "mv0"]);
    m1.ip(&["link", "set", "mv0", "up"]);
    assert!(
        m1.ping_until("10.93.0.2", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    assert!(iperf3_tcp(&m1, &c1, "10.93.0.2", 2, STREAMS) > 0.0);
    let per = received_per_worker(&d);
    assert!(per.iter().all(|&n| n > 100), "{per:?}");
    assert!(!d.log().contains("cannot steer"), "{}", d.log());
    d.kill9();
    d.spawn();
    assert!(
        m1.ping_until("10.93.0.2", Duration::from_secs(10)),
        "{}",
        d.log()
    );
}

/// `--workers` out of range is refused before anything is opened.
#[test]
fn a_worker_count_of_zero_is_refused() {
    let out = std::process::Command::new(common::vswitch_bin())
        .args(["run", "--workers", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("workers"), "{err}");
}
