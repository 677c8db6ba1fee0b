//! `vswitch trace` against real switches: its steps must match what the switch knows (the
//! FDB the pings taught it, its peers, the NAT, the overlay MTU) and leave no trace
//! behind (no FDB entry, no counter, no conntrack entry).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::nat::{EXTERNAL, NatLab, OUTSIDE, udp_source_seen};
use common::overlay::two_peered_hosts;
use common::{Daemon, Netns, require_root, step, wait_until};
use serde_json::Value;

/// The FDB's learning counters: a trace must not move them.
fn fdb_learning(d: &Daemon) -> (Value, Value, Value) {
    let v = d.json(&["stats", "--format", "json"]);
    let f = &v["fdb"];
    (
        f["entries"].clone(),
        f["learned"].clone(),
        f["moved"].clone(),
    )
}

/// ```text
///   c1 .11   c2 .12   c3 .13
///     \        |        /
///      vswitch "blue" 10.42.0.0/24
/// ```
/// A known destination MAC: the FDB hit names c2's port and it leaves there. An unknown
/// one floods to every other port. The trace learns nothing and counts nothing.
#[test]
fn trace_shows_fdb_hit_and_flood_and_changes_nothing() {
    require_root();
    let host = Netns::new("h");
    let d = Daemon::start(&host);
    d.must(&["network", "create", "blue", "--subnet", "10.42.0.0/24"]);
    let cs: Vec<Netns> = (0..3).map(|_| Netns::new("c")).collect();
    for (c, ip) in cs.iter().zip(["10.42.0.11", "10.42.0.12", "10.42.0.13"]) {
        // No IPv6 neighbour discovery teaching the FDB while the test compares it.
        for key in ["all", "default"] {
            c.must(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")],
            );
        }
        d.must(&["network", "connect", "blue", "--netns", &c.name, "--ip", ip]);
    }
    assert!(cs[0].ping_until("10.42.0.12", Duration::from_secs(5)));
    let (c1, c2, c3) = (&cs[0].name, &cs[1].name, &cs[2].name);

    let learning = fdb_learning(&d);
    let (steps, text) = d.trace(&["blue", "--in", c1, "--dst-ip", "10.42.0.12"]);
    let hit = step(&steps, "fdb");
    assert_eq!(hit.len(), 1, "{text}");
    assert_eq!(hit[0]["result"], "hit", "{text}");
    assert_eq!(hit[0]["at"], format!("port {c2}"), "{text}");
    let egress = step(&steps, "egress");
    assert_eq!(egress.len(), 1, "{text}");
    assert_eq!(egress[0]["port"], c2.as_str(), "{text}");
    assert_eq!(step(&steps, "ingress")[0]["port"], c1.as_str());
    assert!(text.contains(&format!("egress   port {c2}")), "{text}");

    // Unknown destination, from a source the switch has never seen.
    let stranger = "02:00:00:00:99:01";
    let (steps, text) = d.trace(&[
        "blue",
        "--in",
        c1,
        "--src-mac",
        stranger,
        "--dst-mac",
        "02:00:00:00:99:02",
    ]);
    assert_eq!(step(&steps, "learn")[0]["before"], Value::Null, "{text}");
    assert_eq!(step(&steps, "fdb")[0]["result"], "miss", "{text}");
    let flood = step(&steps, "flood");
    assert_eq!(flood.len(), 1, "{text}");
    let mut ports: Vec<&str> = flood[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    ports.sort();
    let mut want = vec![c2.as_str(), c3.as_str()];
    want.sort();
    assert_eq!(ports, want, "{text}");

    // Nothing learned.
    let fdb = d.must(&["fdb", "show", "blue"]);
    assert!(!fdb.contains(stranger), "the trace taught the FDB:\n{fdb}");
    assert_eq!(
        fdb_learning(&d),
        learning,
        "the trace moved the FDB's counters"
    );

    // Mistakes: one line, non-zero exit.
    let bad = d.cli(&["trace", "blue", "--in", "nosuch"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("endpoint 'nosuch' not found"));
    let bad = d.cli(&["trace", "blue", "--in", c1, "--size", "10"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--size 10"));
}

/// ```text
///   c1 -- vswitch "red" 10.43.0.0/24 -- [uplink ext0 203.0.113.2] -- outside 203.0.113.1
/// ```
/// An off-subnet destination goes to the gateway, is routed to the outside and
/// masqueraded behind the uplink's address; the trace creates no conntrack entry.
#[test]
fn trace_off_subnet_shows_gateway_route_and_nat_without_tracking() {
    require_root();
    let lab = NatLab::new("");
    lab.d
        .must(&["network", "create", "red", "--subnet", "10.43.0.0/24"]);
    let c1 = lab.container("red");
    let (steps, text) = lab.d.trace(&[
        "red",
        "--in",
        &c1.name,
        "--dst-ip",
        "198.51.100.7",
        "--proto",
        "udp",
        "--dport",
        "53",
    ]);
    // Sent to the router's MAC (the gateway), routed outside, masqueraded.
    assert_eq!(step(&steps, "router").len(), 1, "{text}");
    let route = step(&steps, "route");
    assert_eq!(route[0]["kind"], "external", "{text}");
    let nat = step(&steps, "nat");
    assert_eq!(nat.len(), 1, "{text}");
    assert_eq!(nat[0]["rule"], "snat", "{text}");
    assert_eq!(nat[0]["translated"]["dst"], "198.51.100.7:53", "{text}");
    let src = nat[0]["translated"]["src"].as_str().unwrap();
    assert!(src.starts_with(&format!("{EXTERNAL}:")), "{text}");
    assert_eq!(nat[0]["existing"], false);
    assert!(text.contains("snat udp"), "{text}");
    let arp = step(&steps, "arp");
    assert_eq!(arp[0]["on"], "uplink", "{text}");
    let conns = lab.d.json(&["nat", "ls", "--format", "json"]);
    assert_eq!(
        conns.as_array().unwrap().len(),
        0,
        "the trace made a connection"
    );
}

/// ```text
///   c1 -- vswitch "teal" 10.46.0.0/24, 2 workers -- [uplink] -- outside (UDP on 7300)
/// ```
/// With two workers, the trace runs on the worker the flow's frames reach, so the
/// external port it shows is the one the flow gets: for 8 UDP flows from even source
/// ports, the trace's port is what the outside host sees (the worker of the odd lane
/// gives the port after the source port). Traced on the first worker, as before, the
/// flows of the second one showed their own port.
#[test]
fn trace_with_two_workers_shows_the_port_the_flow_gets() {
    require_root();
    let lab = NatLab::new("[datapath]\nworkers = 2\n");
    let c1 = lab.container_reaching_outside("teal", "10.46.0.0/24");
    let mut lanes = std::collections::BTreeSet::new();
    for k in 0..8u16 {
        let sport = 46200 + 2 * k;
        let sport_arg = sport.to_string();
        let args = [
            "teal", "--in", &c1.name, "--dst-ip", OUTSIDE, "--proto", "udp", "--sport", &sport_arg,
            "--dport", "7300",
        ];
        let (steps, text) = lab.d.trace(&args);
        let traced = step(&steps, "nat")[0]["translated"]["src"]
            .as_str()
            .and_then(|s| s.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no NAT port in the trace: {text}"));
        let seen = udp_source_seen(&c1.name, sport, &lab.ext.name, OUTSIDE, 7300)
            .unwrap_or_else(|| panic!("flow from {sport} not seen outside"));
        assert_eq!(traced, seen.port(), "flow from {sport}: {text}");
        lanes.insert(seen.port() % 2);
    }
    assert_eq!(lanes.len(), 2, "the 8 flows should reach both workers");
}

/// ```text
///   outside 203.0.113.1 --> [uplink 203.0.113.2:8080] --> c1:80 on vswitch "gold"
/// ```
/// A frame from outside: a SYN to the published port is translated to c1:80 and leaves
/// at c1's port; a port that is not published is refused by the NAT; a ping to the
/// uplink's address is answered. The trace creates no conntrack entry.
#[test]
fn trace_from_the_uplink_follows_a_published_port_to_its_container() {
    require_root();
    let lab = NatLab::new("");
    lab.d
        .must(&["network", "create", "gold", "--subnet", "10.44.0.0/24"]);
    let c1 = lab.container("gold");
    lab.d
        .must(&["port", "publish", "gold", &c1.name, "8080:80"]);
    let c1_ip = lab.d.endpoint_ipv4("gold", &c1.name);
    // c1 is heard once, so the FDB knows its port (else the frame would flood).
    assert!(c1.ping_until("10.44.0.1", Duration::from_secs(5)));

    let args = ["--from-uplink", "--proto", "tcp", "--dport", "8080"];
    let (steps, text) = lab.d.trace(&args);
    assert_eq!(step(&steps, "ingress")[0]["uplink"], true, "{text}");
    let nat = step(&steps, "nat");
    assert_eq!(nat[0]["rule"], "dnat", "{text}");
    assert_eq!(
        nat[0]["original"]["dst"],
        format!("{EXTERNAL}:8080"),
        "{text}"
    );
    assert_eq!(nat[0]["translated"]["dst"], format!("{c1_ip}:80"), "{text}");
    assert_eq!(
        step(&steps, "egress")[0]["port"],
        c1.name.as_str(),
        "{text}"
    );

    let (steps, text) = lab
        .d
        .trace(&["--from-uplink", "--proto", "tcp", "--dport", "9090"]);
    assert!(step(&steps, "egress").is_empty(), "{text}");
    // Ours, but nothing published there: what `inbound` answers too.
    assert_eq!(step(&steps, "nat")[0]["refused"], "no_flow", "{text}");

    let (steps, text) = lab.d.trace(&["--from-uplink"]);
    assert_eq!(step(&steps, "icmp").len(), 1, "{text}");
    assert_eq!(step(&steps, "egress")[0]["uplink"], true, "{text}");

    let conns = lab.d.json(&["nat", "ls", "--format", "json"]);
    assert_eq!(conns, serde_json::json!([]), "the trace made a connection");
    // A network makes no sense from the uplink: refused, nothing traced.
    let bad = lab.d.cli(&["trace", "gold", "--from-uplink"]);
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
}

/// ```text
///   outside 203.0.113.1 --> [uplink 203.0.113.2:9000/udp] --> c1:9000 on "narrow" (MTU 1400)
/// ```
/// A datagram from outside too big for the container's network: with DF, the router's
/// "fragmentation needed" is shown going back out of the uplink to the sender (through
/// the NAT); without DF it is fragmented and the pieces leave at c1's port. From a
/// container hairpinned through the external address, the answer goes back in to it.
#[test]
fn trace_from_the_uplink_shows_where_fragmentation_needed_goes() {
    require_root();
    let lab = NatLab::new("");
    lab.network("narrow", "10.45.0.0/24", &["--mtu", "1400"]);
    let c1 = lab.container("narrow");
    lab.d
        .must(&["port", "publish", "narrow", &c1.name, "9000:9000/udp"]);
    // c1 and the outside host are heard once: the FDB and the uplink's ARP know them.
    assert!(c1.ping_until("10.45.0.1", Duration::from_secs(5)));
    assert!(lab.ext.ping_until(EXTERNAL, Duration::from_secs(5)));

    let base = [
        "--from-uplink",
        "--src-ip",
        OUTSIDE,
        "--proto",
        "udp",
        "--dport",
        "9000",
        "--size",
        "1500",
    ];
    // The trace runs on the first worker; with several, what another one heard by ARP
    // reaches it on its next turn: ask again until it knows the outside host.
    let (mut steps, mut text) = (Vec::new(), String::new());
    wait_until(Duration::from_secs(3), || {
        (steps, text) = lab.d.trace(&base);
        !step(&steps, "egress").is_empty()
    });
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "icmp_too_big", "{text}");
    let egress = step(&steps, "egress");
    assert_eq!(egress.len(), 1, "{text}");
    assert_eq!(egress[0]["uplink"], true, "{text}");
    assert_eq!(step(&steps, "arp").last().unwrap()["ip"], OUTSIDE, "{text}");

    let mut no_df = base.to_vec();
    no_df.push("--no-df");
    let (steps, text) = lab.d.trace(&no_df);
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "fragment", "{text}");
    let egress = step(&steps, "egress");
    assert!(
        !egress.is_empty() && egress.iter().all(|e| e["port"] == c1.name.as_str()),
        "{text}"
    );

    // From a container of another network, hairpinned through the external address:
    // the answer goes back in to it.
    lab.d
        .must(&["network", "create", "wide", "--subnet", "10.46.0.0/24"]);
    let c0 = lab.container("wide");
    assert!(c0.ping_until("10.46.0.1", Duration::from_secs(5)));
    let (steps, text) = lab.d.trace(&[
        "wide", "--in", &c0.name, "--dst-ip", EXTERNAL, "--proto", "udp", "--dport", "9000",
        "--size", "1500",
    ]);
    // The uplink's MTU first (the NAT decides after it), then the network's.
    let mtu = step(&steps, "mtu");
    assert_eq!(mtu.last().unwrap()["verdict"], "icmp_too_big", "{text}");
    let egress = step(&steps, "egress");
    assert_eq!(egress.len(), 1, "{text}");
    assert_eq!(egress[0]["port"], c0.name.as_str(), "{text}");
    let conns = lab.d.json(&["nat", "ls", "--format", "json"]);
    assert_eq!(conns, serde_json::json!([]), "the trace made a connection");
}

/// ```text
///   c1 10.90.0.17 -- [h1]==underlay MTU 1500 (overlay 1450), VNI 44==[h2] -- c2 10.90.0.33
/// ```
/// To a MAC behind the peer: encapsulated to that VTEP when it fits; too big with DF, an
/// ICMP frag-needed goes back; without DF it is fragmented and still goes to the VTEP.
#[test]
fn trace_through_the_overlay_shows_the_vtep_and_the_mtu_verdict() {
    require_root();
    let (_ul, a, b) = two_peered_hosts("", "teal", 44, "10.90.0");
    let c1 = a.container("teal", "10.90.0.17");
    let c2 = b.container("teal", "10.90.0.33");
    assert!(c1.ping_until("10.90.0.33", Duration::from_secs(5)));
    let mac = c2.ip(&["-br", "link", "show", "eth0"]);
    let mac = mac.split_whitespace().nth(2).unwrap().to_string();
    let base = ["teal", "--in", &c1.name, "--dst-mac", &mac];

    let (steps, text) = a.d.trace(&base);
    assert_eq!(
        step(&steps, "fdb")[0]["at"],
        format!("vtep {}", b.addr),
        "{text}"
    );
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "fits", "{text}");
    let egress = step(&steps, "egress");
    assert_eq!(egress[0]["vtep"], b.addr.as_str(), "{text}");
    assert_eq!(egress[0]["vni"], 44, "{text}");

    let mut big = base.to_vec();
    big.extend_from_slice(&["--size", "1600"]);
    let (steps, text) = a.d.trace(&big);
    let mtu = step(&steps, "mtu");
    assert_eq!(
        (mtu[0]["mtu"].as_u64(), mtu[0]["verdict"].as_str()),
        (Some(1450), Some("icmp_too_big")),
        "{text}"
    );
    assert!(step(&steps, "egress").is_empty(), "{text}");
    assert_eq!(
        step(&steps, "reply")[0]["what"],
        "ICMP fragmentation needed",
        "{text}"
    );

    big.push("--no-df");
    let (steps, text) = a.d.trace(&big);
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "fragment", "{text}");
    assert!(text.contains("fragmented into 2"), "{text}");
    assert_eq!(step(&steps, "egress")[0]["vtep"], b.addr.as_str(), "{text}");
}

/// ```text
///   c1 10.91.0.17 -- [h1]==underlay, VNI 45==[h2 traces here] -- c2 10.91.0.33
/// ```
/// A frame out of a peer's VXLAN datagram: decapsulation's peer check first (h1 passes,
/// an address that is not a peer is dropped there), then the pipeline. To c2 it leaves
/// at c2's port; an unknown MAC floods to the local ports only; one behind the peer it
/// came from never goes back into the tunnel. The traces learn and count nothing.
#[test]
fn trace_from_a_peer_checks_the_peer_then_switches_locally() {
    require_root();
    let (_ul, a, b) = two_peered_hosts("", "jade", 45, "10.91.0");
    let c1 = a.container("jade", "10.91.0.17");
    let c2 = b.container("jade", "10.91.0.33");
    assert!(c1.ping_until("10.91.0.33", Duration::from_secs(5)));
    let mac_of = |c: &Netns| {
        let line = c.ip(&["-br", "link", "show", "eth0"]);
        line.split_whitespace().nth(2).unwrap().to_string()
    };
    let (mac1, mac2) = (mac_of(&c1), mac_of(&c2));
    let before = fdb_learning(&b.d);

    let (steps, text) =
        b.d.trace(&["jade", "--from-peer", &a.addr, "--dst-mac", &mac2]);
    let ingress = step(&steps, "ingress");
    assert_eq!(ingress[0]["vtep"], a.addr.as_str(), "{text}");
    assert_eq!(
        (
            ingress[0]["vni"].as_u64(),
            ingress[0]["known_peer"].as_bool()
        ),
        (Some(45), Some(true)),
        "{text}"
    );
    assert_eq!(
        step(&steps, "learn")[0]["at"],
        format!("vtep {}", a.addr),
        "{text}"
    );
    assert_eq!(
        step(&steps, "egress")[0]["port"],
        c2.name.as_str(),
        "{text}"
    );

    let stranger = "10.250.0.9";
    let (steps, text) =
        b.d.trace(&["jade", "--from-peer", stranger, "--dst-mac", &mac2]);
    assert_eq!(step(&steps, "ingress")[0]["known_peer"], false, "{text}");
    assert_eq!(steps.len(), 1, "nothing after the peer check: {text}");
    assert!(text.contains("vxlan_not_a_peer"), "{text}");

    let unknown = "02:00:00:00:99:99";
    let (steps, text) =
        b.d.trace(&["jade", "--from-peer", &a.addr, "--dst-mac", unknown]);
    let flood = step(&steps, "flood");
    assert_eq!(flood[0]["ports"], serde_json::json!([c2.name]), "{text}");
    assert_eq!(flood[0]["peers"], serde_json::json!([]), "{text}");
    assert!(step(&steps, "egress").is_empty(), "{text}");

    // c1 is learned at h1's VTEP, where the frame came from.
    let (steps, text) =
        b.d.trace(&["jade", "--from-peer", &a.addr, "--dst-mac", &mac1]);
    assert!(
        step(&steps, "egress").is_empty(),
        "back into the tunnel: {text}"
    );
    assert_eq!(step(&steps, "drop")[0]["reason"], "same_segment", "{text}");

    assert_eq!(fdb_learning(&b.d), before, "a trace changed the FDB");
    // Mistakes are one line: a network that is not an overlay, and both entry points.
    b.d.must(&["network", "create", "plain", "--subnet", "10.92.0.0/24"]);
    let bad = b.d.cli(&["trace", "plain", "--from-peer", &a.addr]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("not an overlay network"), "{err}");
    let bad =
        b.d.cli(&["trace", "jade", "--in", &c2.name, "--from-peer", &a.addr]);
    assert!(!bad.status.success());
}
