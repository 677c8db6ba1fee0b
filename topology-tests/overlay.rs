//! The VXLAN overlay in real namespaces: vswitch hosts talking to each other, and to
//! the Linux kernel's own vxlan device, which is the oracle that we speak RFC 7348.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::overlay::{KernelHost, Underlay, VsHost, two_peered_hosts};
use common::{Netns, iperf3_tcp, names_mtu, require_root, storm_held_to_200, wait_until};
use serde_json::Value;

const VNI: u32 = 42;
const SUBNET: &str = "10.88.0.0/24";

fn two_hosts(extra_config: &str) -> (Underlay, VsHost, VsHost) {
    two_peered_hosts(extra_config, "blue", VNI, "10.88.0")
}

fn underlay_drops(h: &VsHost, reason: &str) -> u64 {
    h.stats()["underlay"]["drops"][reason].as_u64().unwrap_or(0)
}

/// ```text
///   c1 10.88.0.17                       c2 10.88.0.33
///     | veth (MTU 1450)                   | veth (MTU 1450)
///   [h1: vswitch VTEP .1]==underlay==[h2: vswitch VTEP .2]
///                  192.168.77.0/24, MTU 1500, VNI 42
/// ```
/// Pings of 56 to 3200 bytes (the large ones are fragmented by the sender to the
/// overlay MTU) and TCP both ways.
#[test]
fn two_vswitch_hosts_ping_and_tcp_both_ways() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    let inspect = a.d.json(&["network", "inspect", "blue"]);
    assert_eq!(
        inspect[0]["Options"]["mtu"], "1450",
        "overlay MTU = underlay 1500 - 50"
    );
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ip(&["link", "show", "eth0"]).contains("mtu 1450"));
    assert!(
        c1.ping_until("10.88.0.33", Duration::from_secs(5)),
        "no first ping\n{}",
        a.d.log()
    );
    for size in [56, 1400, 1600, 3200] {
        assert!(c1.ping("10.88.0.33", 3, size), "ping -s {size} failed");
        assert!(c2.ping("10.88.0.17", 3, size), "ping back -s {size} failed");
    }
    assert!(iperf3_tcp(&c1, &c2, "10.88.0.33", 2, 1) > 0.0);
    assert!(iperf3_tcp(&c2, &c1, "10.88.0.17", 2, 1) > 0.0);
    // IPv6 TCP (between link-local addresses): c1's TCPV6 super-frames are split into
    // the underlay and coalesced again for c2, which receives large frames, not 1450s.
    let port_tx = |h: &VsHost, c: &Netns| {
        let p = h.port(c);
        (
            p["tx_packets"].as_u64().unwrap(),
            p["tx_bytes"].as_u64().unwrap(),
        )
    };
    let before = port_tx(&b, &c2);
    let ll2 = link_local(&c2);
    assert!(iperf3_tcp(&c1, &c2, &format!("{ll2}%eth0"), 2, 1) > 0.0);
    let after = port_tx(&b, &c2);
    let (frames, bytes) = (after.0 - before.0, after.1 - before.1);
    assert!(
        bytes / frames.max(1) > 5000,
        "c2 got {frames} frames, {bytes} bytes over IPv6: not coalesced"
    );
    let ll1 = link_local(&c1);
    assert!(iperf3_tcp(&c2, &c1, &format!("{ll1}%eth0"), 2, 1) > 0.0);
    // Both learned the other side's container behind the peer's VTEP.
    let fdb = a.d.json(&["fdb", "show", "blue", "--format", "json"]);
    let remote = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:42:0a:58:00:21")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(remote["vtep"], b.addr.as_str(), "{fdb}");
    let s = a.stats();
    assert!(
        s["underlay"]["tx_datagrams"].as_u64().unwrap() > 1000,
        "{s}"
    );

    // Peers, static entries and MTU rules through the CLI.
    let peers = a.d.json(&["peer", "ls", "--format", "json"]);
    assert_eq!(peers[0]["ip"], b.addr.as_str(), "{peers}");
    assert_eq!(peers[0]["vnis"], "all", "{peers}");
    let ghost = "02:42:0a:58:00:63";
    a.d.must(&["fdb", "add", "blue", ghost, "--vtep", &b.addr]);
    let fdb = a.d.json(&["fdb", "show", "blue", "--format", "json"]);
    let e = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == ghost)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (e["vtep"].as_str(), e["static"].as_bool()),
        (Some(b.addr.as_str()), Some(true)),
        "{fdb}"
    );
    a.d.must(&["fdb", "del", "blue", ghost]);
    let fdb = a.d.json(&["fdb", "show", "blue", "--format", "json"]);
    assert!(
        !fdb.as_array().unwrap().iter().any(|e| e["mac"] == ghost),
        "{fdb}"
    );
    let out = a.d.cli(&[
        "network", "create", "big", "--driver", "overlay", "--vni", "7", "--mtu", "1500",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("1450"),
        "a too large overlay MTU: {err}"
    );
    let out = a.d.cli(&[
        "network", "create", "dup", "--driver", "overlay", "--vni", "42",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already used"),
        "duplicate VNI accepted"
    );
    a.d.must(&["peer", "rm", &b.addr]);
    assert_eq!(
        a.d.json(&["peer", "ls", "--format", "json"]),
        serde_json::json!([])
    );
    assert!(
        !c1.ping("10.88.0.33", 1, 56),
        "traffic crossed to a removed peer"
    );
}

/// ```text
///   c1 (vswitch endpoint)                     c2 (veth on a kernel bridge)
///     |                                          |
///   [h1: vswitch]======underlay=====[k2: kernel vxlan42 + br0]
/// ```
/// The kernel's VXLAN is the oracle: the same pings and TCP both ways.
#[test]
fn interop_with_the_kernel_vxlan() {
    require_root();
    let mut ul = Underlay::new(1500);
    let a = VsHost::new(&mut ul, "");
    let k = KernelHost::new(&mut ul, VNI, &a.addr, "10.88.0.33/24", 1450);
    a.peer(&k.addr);
    a.network("blue", VNI, SUBNET, "10.88.0.16/28");
    let c1 = a.container("blue", "10.88.0.17");
    assert!(
        c1.ping_until("10.88.0.33", Duration::from_secs(5)),
        "no first ping\n{}",
        a.d.log()
    );
    for size in [56, 1400, 1600, 3200] {
        assert!(
            c1.ping("10.88.0.33", 3, size),
            "ping -s {size} to the kernel side failed"
        );
        assert!(
            k.ctr.ping("10.88.0.17", 3, size),
            "ping -s {size} from the kernel side failed"
        );
    }
    assert!(iperf3_tcp(&c1, &k.ctr, "10.88.0.33", 2, 1) > 0.0);
    assert!(iperf3_tcp(&k.ctr, &c1, "10.88.0.17", 2, 1) > 0.0);
    // The kernel learned c1's MAC behind our VTEP address: it accepted our datagrams.
    let fdb = common::must(
        "bridge",
        &["-n", &k.ns.name, "fdb", "show", "dev", "vxlan42"],
    );
    assert!(
        fdb.contains("02:42:0a:58:00:11") && fdb.contains(&a.addr),
        "{fdb}"
    );
}

/// ```text
///   c1 (MTU 1450) -- [h1: vswitch, "blue" MTU 1450] ==underlay MTU 1600==
///                    [k: kernel vxlan42 MTU 1550 + bridge] -- ctr (MTU 1500)
/// ```
/// A peer configured with a larger overlay MTU than ours sends a frame that no port of
/// the network can take: dropped at decapsulation and counted as `over_mtu`, not handed
/// to the container's veth to refuse (`tx_busy`). Frames that fit go on.
#[test]
fn a_frame_from_a_peer_larger_than_the_network_mtu_is_dropped_as_over_mtu() {
    require_root();
    let mut ul = Underlay::new(1600);
    let a = VsHost::new(&mut ul, "");
    let k = KernelHost::new(&mut ul, VNI, &a.addr, "10.88.0.33/24", 1500);
    a.peer(&k.addr);
    a.d.must(&[
        "network",
        "create",
        "blue",
        "--driver",
        "overlay",
        "--vni",
        "42",
        "--subnet",
        SUBNET,
        "--ip-range",
        "10.88.0.16/28",
        "--mtu",
        "1450",
    ]);
    let c1 = a.container("blue", "10.88.0.17");
    assert!(
        k.ctr.ping_until("10.88.0.17", Duration::from_secs(5)),
        "no first ping\n{}",
        a.d.log()
    );
    assert!(
        k.ctr.ping("10.88.0.17", 2, 1422),
        "a 1450-byte packet must pass"
    );
    let text = k.ctr.ping_df("10.88.0.17", 1472, 3);
    assert!(
        text.contains("100% packet loss"),
        "a 1500-byte packet reached a 1450 port:\n{text}"
    );
    let s = a.stats();
    let over = s["underlay"]["inner_drops"]["over_mtu"]
        .as_u64()
        .unwrap_or(0);
    assert!(over >= 3, "not counted as over_mtu: {}", s["underlay"]);
    let port = a.port(&c1);
    assert_eq!(
        port["drops"]["tx_busy"].as_u64().unwrap_or(0),
        0,
        "handed to the veth to refuse: {port}"
    );
    // The log names the peer and the network, once (per worker), not per frame.
    let log = a.d.log();
    let said = format!("peer {} sent a 1500-byte packet in network blue", k.addr);
    let times = log.matches(&said).count();
    assert!((1..=4).contains(&times), "said {times} times:\n{log}");
}

/// ```text
///   c1 (eth0 MTU raised to 1500) -- h1 ==(overlay MTU 1450)== h2 -- c2
/// ```
/// `ping -M do -s 1472` gets a frag-needed naming 1450 from the gateway; a TCP transfer
/// with the default MSS completes (SYNs clamped, super-frames cut to fit).
#[test]
fn a_1500_sender_behind_a_1450_overlay() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    c1.ip(&["link", "set", "eth0", "mtu", "1500"]);
    c2.ip(&["link", "set", "eth0", "mtu", "1500"]);
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    // Without DF (and before any frag-needed taught c1 the path MTU) the switch fragments
    // the inner packet itself.
    let out = c1.ping_no_df("10.88.0.33", 1472, 2);
    assert!(
        out.status.success(),
        "a 1500-byte packet without DF did not arrive"
    );
    let fragmented = a.stats()["underlay"]["fragmented"].as_u64().unwrap_or(0);
    assert!(
        fragmented >= 2,
        "the switch did not fragment: {}",
        a.stats()
    );
    let text = c1.ping_df("10.88.0.33", 1472, 2);
    assert!(
        names_mtu(&text, 1450),
        "no frag-needed naming 1450:\n{text}"
    );
    assert!(
        text.contains("10.88.0.1"),
        "frag-needed not from the gateway:\n{text}"
    );
    let port = a.port(&c1);
    assert!(
        port["drops"]["too_big_icmp_sent"].as_u64().unwrap_or(0) >= 1,
        "{port}"
    );
    // IPv6 gets "packet too big" (between the containers' link-local addresses).
    let ll = link_local(&c2);
    let out = c1.exec(
        "ping",
        &[
            "-6",
            "-c",
            "2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1452",
            &format!("{ll}%eth0"),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("mtu=1450") || text.contains("mtu = 1450"),
        "no packet-too-big naming 1450:\n{text}"
    );
    // One ICMP error per family: after it, the sender knows the path MTU and refuses
    // larger packets itself ("local error: message too long").
    let sent = a.stats()["underlay"]["icmp_too_big_sent"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        sent >= 2,
        "frag-needed + packet-too-big not both sent: {}",
        a.stats()
    );
    assert!(iperf3_tcp(&c1, &c2, "10.88.0.33", 3, 1) > 0.0);
    assert!(iperf3_tcp(&c2, &c1, "10.88.0.17", 3, 1) > 0.0);
}

/// ```text
///   c1 on "plain" (MTU 1500, h1) --[h1's router, --route-to]--> "blue" (overlay 1450) -- c2 on h2
/// ```
/// A packet routed into the overlay and too big for it, with DF, gets "fragmentation
/// needed" naming 1450 from the sender's gateway (the router checks the target network's
/// MTU, as a router does), and the sender learns the path MTU.
#[test]
fn a_routed_packet_too_big_for_the_overlay_gets_fragmentation_needed() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    a.d.must(&[
        "network",
        "create",
        "plain",
        "--subnet",
        "10.58.0.0/24",
        "--route-to",
        "blue",
    ]);
    let c1 = a.container("plain", "10.58.0.2");
    let c2 = b.container("blue", "10.88.0.33");
    // c2 answers nothing routed (its host has no route back): what matters is h1.
    let _ = c1.exec("ping", &["-c", "1", "-W", "1", "10.88.0.33"]);
    let text = c1.ping_df("10.88.0.33", 1472, 2);
    assert!(
        names_mtu(&text, 1450),
        "no frag-needed naming 1450:\n{text}\n{}",
        a.stats()
    );
    assert!(
        text.contains("10.58.0.1"),
        "not from the sender's gateway:\n{text}"
    );
    let route = c1.ip(&["route", "get", "10.88.0.33"]);
    assert!(route.contains("mtu 1450"), "no path MTU learned:\n{route}");
    drop(c2);
}

/// ```text
///   c2 on h2 (overlay 1450) ==VXLAN==> [h1's router] --> "slim" (MTU 1400) c1 on h1
/// ```
/// A packet from behind a peer, routed by this host's router into a narrower network,
/// is answered through the tunnel: the frag-needed goes back into the overlay and
/// reaches the sender on the other host. (c2 is pointed at h1's router by a static
/// neighbour entry; left to itself it would use h2's router.)
#[test]
fn a_routed_packet_from_behind_a_peer_gets_fragmentation_needed_through_the_tunnel() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    a.d.must(&[
        "network",
        "create",
        "slim",
        "--subnet",
        "10.59.0.0/24",
        "--mtu",
        "1400",
        "--route-to",
        "blue",
    ]);
    let c1 = a.container("slim", "10.59.0.2");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.59.0.1", Duration::from_secs(5)));
    let neigh = c1.ip(&["neigh", "show", "10.59.0.1"]);
    let router_mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC for h1's router: {neigh}"))
        .to_string();
    c2.ip(&[
        "neigh",
        "replace",
        "10.88.0.1",
        "lladdr",
        &router_mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    let text = c2.ping_df("10.59.0.2", 1422, 3);
    assert!(
        names_mtu(&text, 1400),
        "no frag-needed naming 1400 came back through the tunnel:\n{text}\n{}",
        a.stats()
    );
    assert!(
        text.contains("10.88.0.1"),
        "not from the sender's gateway:\n{text}"
    );
    let drops = &a.stats()["router"]["drops"];
    assert!(
        drops["too_big_for_network"].as_u64().unwrap_or(0) >= 1,
        "{drops}"
    );
}

/// ```text
///   c1 --UDP_SEGMENT super-frames--> [h1] ==VXLAN== [h2] --> c2
/// ```
/// A container's UDP segmentation offload (QUIC servers use it): its super-frames of 40
/// datagrams reach the switch whole, and c2 receives every datagram at the size the
/// sender chose, each carried in a VXLAN datagram of its own.
#[test]
fn udp_gso_from_a_container_arrives_as_its_datagrams() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    let before = a.stats()["underlay"]["tx_datagrams"].as_u64().unwrap();

    let (sends, segs) = (200u64, 40u64);
    let (got, sizes) = udp_gso(&c1, &c2, "10.88.0.33", 1400, sends, segs);
    assert_eq!(sizes, "1400", "datagram sizes c2 received");
    // Paced sends on an idle machine lose nothing; a loaded CI machine may lose a few.
    assert!(
        got >= sends * segs * 9 / 10,
        "{got} of {} datagrams",
        sends * segs
    );

    let frames = a.port(&c1)["rx_packets"].as_u64().unwrap();
    assert!(
        frames < sends + 50,
        "{frames} frames from c1 for {sends} sends: the super-frames were cut before the switch"
    );
    let carried = a.stats()["underlay"]["tx_datagrams"].as_u64().unwrap() - before;
    assert!(
        carried >= got,
        "{carried} VXLAN datagrams for {got} UDP datagrams"
    );
}

/// Runs `common/udp_gso.py`: `sends` sends of `segs` datagrams of `size` bytes from
/// `from` to `to_ip` (in `to`). Returns how many datagrams arrived and their sizes.
fn udp_gso(
    from: &Netns,
    to: &Netns,
    to_ip: &str,
    size: u32,
    sends: u64,
    segs: u64,
) -> (u64, String) {
    use std::io::BufRead;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../topology-tests/common/udp_gso.py"
    );
    let mut rx = to.spawn("python3", &[script, "recv", to_ip]);
    let stderr = rx.0.as_mut().and_then(|c| c.stderr.take()).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "udp_gso.py recv did not start");
    let (size, sends, segs) = (size.to_string(), sends.to_string(), segs.to_string());
    from.must("python3", &[script, "send", to_ip, &size, &sends, &segs]);
    let out = rx.wait_output();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    let got = words.next().and_then(|w| w.parse().ok());
    let sizes = words.next().unwrap_or("").to_string();
    (
        got.unwrap_or_else(|| panic!("udp_gso.py recv said {text:?}")),
        sizes,
    )
}

/// The IPv6 link-local address of `eth0` in `ns`, once duplicate address detection is over.
fn link_local(ns: &Netns) -> String {
    let mut addr = String::new();
    let found = wait_until(Duration::from_secs(5), || {
        let out = ns.ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
        addr = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or("")
            .to_string();
        !addr.is_empty() && !out.contains("tentative")
    });
    assert!(found, "no link-local address in {}", ns.name);
    addr
}

/// A datagram from a non-peer and one with an unknown VNI are dropped and counted,
/// and traffic keeps flowing.
#[test]
fn non_peers_and_unknown_vnis_are_dropped_and_counted() {
    require_root();
    let (mut ul, a, b) = two_hosts("");
    let c1 = a.container("blue", "10.88.0.17");
    let _c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    let rogue = Netns::new("r");
    let rogue_addr = ul.join(&rogue);
    // A valid VXLAN datagram carrying a broadcast ARP, from the rogue (not a peer), and
    // with an unknown VNI from a real peer (b).
    send_vxlan(&rogue, &rogue_addr, &a.addr, VNI, 3);
    send_vxlan(&b.ns, &b.addr, &a.addr, 999, 3);
    let counted = wait_until(Duration::from_secs(5), || {
        underlay_drops(&a, "vxlan_not_a_peer") >= 3 && underlay_drops(&a, "vxlan_unknown_vni") >= 3
    });
    assert!(counted, "{}", a.stats());
    // Per-peer counters are for peers: the rogue gets none (else any address on the
    // underlay could grow the table).
    let peers = &a.stats()["underlay"]["peers"];
    assert!(
        peers.get(&rogue_addr).is_none() && peers.get(&b.addr).is_some(),
        "{peers}"
    );
    assert!(c1.ping("10.88.0.33", 3, 56), "traffic stopped");
    assert!(a.d.cli(&["network", "ls"]).status.success());
}

/// `peer rm` takes the peer out of `stats` (its counters go with it); added again, it
/// is counted from zero.
#[test]
fn a_removed_peer_leaves_the_stats() {
    require_root();
    let (_ul, a, b) = two_hosts("");
    let c1 = a.container("blue", "10.88.0.17");
    let _c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    let rx = |a: &VsHost| a.stats()["underlay"]["peers"][&b.addr]["rx_datagrams"].as_u64();
    let before = rx(&a).unwrap_or(0);
    assert!(before > 0, "{}", a.stats());
    a.d.must(&["peer", "rm", &b.addr]);
    let gone = wait_until(Duration::from_secs(2), || rx(&a).is_none());
    assert!(gone, "still listed: {}", a.stats()["underlay"]);
    a.peer(&b.addr);
    let back = wait_until(Duration::from_secs(2), || {
        rx(&a).is_some_and(|n| n < before)
    });
    assert!(back, "not back from zero: {}", a.stats()["underlay"]);
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    assert!(rx(&a).unwrap_or(0) > 0, "{}", a.stats()["underlay"]);
}

/// Sends `n` VXLAN datagrams (a broadcast ARP inside) from `from` in `ns` to `to`:4789.
fn send_vxlan(ns: &Netns, from: &str, to: &str, vni: u32, n: usize) {
    let file = vswitch::port::sys::netns::open_named(&ns.name).unwrap();
    let (from, to) = (from.to_string(), to.to_string());
    std::thread::spawn(move || {
        vswitch::port::sys::netns::enter(&file).unwrap();
        let sock = std::net::UdpSocket::bind((from.as_str(), 0)).unwrap();
        let mut d = vec![
            0x08,
            0,
            0,
            0,
            (vni >> 16) as u8,
            (vni >> 8) as u8,
            vni as u8,
            0,
        ];
        d.extend_from_slice(&[0xff; 6]);
        d.extend_from_slice(&[0x02, 0x99, 0, 0, 0, 1]);
        d.extend_from_slice(&[0x08, 0x06]);
        d.extend_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0x99, 0, 0, 0, 1, 10, 88, 0, 99, 0, 0, 0, 0, 0, 0, 10, 88,
            0, 17,
        ]);
        for _ in 0..n {
            sock.send_to(&d, (to.as_str(), 4789)).unwrap();
        }
    })
    .join()
    .unwrap();
}

/// ```text
///           [h1]           [h2]           [h3]      each with one container
///             \______ underlay bridge _____/
/// ```
/// Built with `vswitch lab up`: a broadcast reaches every host exactly once (head-end
/// replication, never relayed between peers), and a MAC that moves from h2 to h3 is
/// followed.
#[test]
fn three_hosts_broadcast_without_loops_and_a_moving_mac() {
    require_root();
    let name = format!("t{}", std::process::id() % 100_000);
    let file = std::env::temp_dir().join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"
name = "{name}"
[underlay]
subnet = "192.168.78.0/24"
[[host]]
name = "h1"
[[host]]
name = "h2"
[[host]]
name = "h3"
[[network]]
name = "blue"
driver = "overlay"
vni = 42
subnet = "10.88.0.0/24"
ip_range = {{ h1 = "10.88.0.16/28", h2 = "10.88.0.32/28", h3 = "10.88.0.48/28" }}
[[container]]
name = "c1"
host = "h1"
network = "blue"
[[container]]
name = "c2"
host = "h2"
network = "blue"
[[container]]
name = "c3"
host = "h3"
network = "blue"
"#
        ),
    )
    .unwrap();
    let _down = LabDown(file.clone());
    let f = file.to_str().unwrap();
    let out = common::must(common::vswitch_bin().to_str().unwrap(), &["lab", "up", f]);
    assert!(out.contains("container c3"), "{out}");
    let ns = |c: &str| format!("{name}-{c}");
    let sock = |h: &str| format!("/run/vswitch-lab/{name}/{h}/vswitch.sock");
    let vs = |h: &str, args: &[&str]| {
        let socket = sock(h);
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        let s = common::must(common::vswitch_bin().to_str().unwrap(), &full);
        serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)
    };
    let c1 = Netns::existing(&ns("c1"));
    // Quiet the containers' IPv6 housekeeping (router solicitations, MLD): those are
    // multicast and would be flooded to peers, blurring the count below.
    for c in ["c1", "c2", "c3"] {
        Netns::existing(&ns(c)).must("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    }
    // Everyone reaches everyone.
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    assert!(c1.ping_until("10.88.0.49", Duration::from_secs(5)));
    // One broadcast from c1 (an ARP for an address nobody has): each other host gets it
    // once, from h1 only; nobody sends it on to another peer.
    let rx = |h: &str| {
        vs(h, &["stats", "--format", "json"])["underlay"]["rx_datagrams"]
            .as_u64()
            .unwrap_or(0)
    };
    let tx = |h: &str| {
        vs(h, &["stats", "--format", "json"])["underlay"]["tx_datagrams"]
            .as_u64()
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(500));
    let (rx2, rx3, tx2, tx3) = (rx("h2"), rx("h3"), tx("h2"), tx("h3"));
    let _ = c1.exec("ping", &["-c", "1", "-W", "1", "10.88.0.250"]);
    std::thread::sleep(Duration::from_millis(300));
    let (drx2, drx3) = (rx("h2") - rx2, rx("h3") - rx3);
    assert!(
        (1..=4).contains(&drx2) && (1..=4).contains(&drx3),
        "broadcast copies: h2 {drx2}, h3 {drx3}"
    );
    assert_eq!(
        (tx("h2") - tx2, tx("h3") - tx3),
        (0, 0),
        "a peer relayed the broadcast"
    );
    // c2's MAC moves from h2 to h3: its namespace is reconnected on h3 with the same MAC.
    let mac = "02:42:0a:58:00:21";
    assert!(c1.ping("10.88.0.33", 1, 56));
    let fdb = vs("h1", &["fdb", "show", "blue", "--format", "json"]);
    let at = |fdb: &Value| {
        fdb.as_array()
            .unwrap()
            .iter()
            .find(|e| e["mac"] == mac)
            .map(|e| e["vtep"].clone())
    };
    assert_eq!(at(&fdb), Some(Value::from("192.168.78.2")), "{fdb}");
    common::must(
        common::vswitch_bin().to_str().unwrap(),
        &[
            "--socket",
            &sock("h2"),
            "network",
            "disconnect",
            "blue",
            "c2",
        ],
    );
    common::must(
        common::vswitch_bin().to_str().unwrap(),
        &[
            "--socket",
            &sock("h3"),
            "network",
            "connect",
            "blue",
            "--netns",
            &ns("c2"),
            "--name",
            "c2",
            "--ip",
            "10.88.0.33",
            "--mac",
            mac,
        ],
    );
    // The moved container speaks first (gratuitous traffic), then is reachable at h3.
    let c2 = Netns::existing(&ns("c2"));
    let _ = c2.exec("ping", &["-c", "1", "-W", "1", "10.88.0.17"]);
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    let fdb = vs("h1", &["fdb", "show", "blue", "--format", "json"]);
    assert_eq!(at(&fdb), Some(Value::from("192.168.78.3")), "{fdb}");
}

/// Runs `vswitch lab down` on drop, so a failing test leaves nothing behind.
struct LabDown(std::path::PathBuf);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = std::process::Command::new(common::vswitch_bin())
            .args(["lab", "down"])
            .arg(&self.0)
            .output();
        let _ = std::fs::remove_file(&self.0);
    }
}

/// ```text
///   c1 -- [h1: flood_limit_pps = 200] ==underlay== [h2: no limit] -- c2 (broadcast storm)
/// ```
/// Storm control on what a peer floods to us: c2's 2 s broadcast storm crosses h2 (which
/// has no limit) at full rate, and h1 lets about the limit of it reach c1, counting the
/// rest as the underlay's `inner_drops.flood_limited`; unicast across still works.
#[test]
fn a_peers_broadcast_storm_is_held_to_the_flood_limit() {
    require_root();
    let mut ul = Underlay::new(1500);
    let h1 = VsHost::new(&mut ul, "[datapath]\nflood_limit_pps = 200");
    let h2 = VsHost::new(&mut ul, "");
    h1.peer(&h2.addr);
    h2.peer(&h1.addr);
    h1.network("blue", VNI, SUBNET, "10.88.0.16/28");
    h2.network("blue", VNI, SUBNET, "10.88.0.32/28");
    let c1 = h1.container("blue", "10.88.0.17");
    let c2 = h2.container("blue", "10.88.0.33");
    assert!(
        c2.ping("10.88.0.17", 2, 56),
        "no path across\n{}",
        h1.d.log()
    );
    std::thread::sleep(Duration::from_millis(1200));
    let before = c1.rx_packets("eth0");
    let sent = common::broadcast_storm(&c2, "10.88.0.255", 2);
    std::thread::sleep(Duration::from_millis(300));
    let got = c1.rx_packets("eth0") - before;
    let limited = h1.stats()["underlay"]["inner_drops"]["flood_limited"]
        .as_u64()
        .unwrap_or(0);
    storm_held_to_200(sent, got, limited, &h1.stats()["underlay"]);
    assert!(
        c2.ping("10.88.0.17", 2, 56),
        "unicast across after the storm"
    );
}
