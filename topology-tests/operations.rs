//! Operating the switch: metrics scraped by a real HTTP client, signals.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::nat::NatLab;
use common::overlay::{Underlay, VsHost};
use common::{iperf3_tcp, require_root};

/// Parses a Prometheus text-format page strictly: every sample's family has a HELP and a
/// TYPE line before it, names and labels are well formed, values are numbers, counters
/// end in `_total`. Returns value by "name{labels}".
fn parse_prometheus(page: &str) -> BTreeMap<String, f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let (mut help, mut types) = (BTreeSet::new(), BTreeMap::new());
    let mut samples = BTreeMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(name_ok(name), "bad name in {line}");
            help.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            assert!(["counter", "gauge"].contains(&kind), "type {kind}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter {name} does not end in _total"
                );
            }
            assert!(help.contains(name), "TYPE before HELP for {name}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line: {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "bad sample name {name}");
        assert!(types.contains_key(name), "sample {name} without TYPE");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "labels {labels}"
            );
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once('=').unwrap();
                assert!(name_ok(k) && v.starts_with('"'), "label {pair}");
            }
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value {value} in {line}"));
        assert!(v >= 0.0);
        samples.insert(series.to_string(), v);
    }
    samples
}

fn scrape(host: &common::Netns, addr: &str) -> String {
    host.must(
        "curl",
        &["-sf", "--max-time", "5", &format!("http://{addr}/metrics")],
    )
}

fn family_sum(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| *v)
        .sum()
}

/// ```text
///   c1 -- [h1: vswitch, metrics 127.0.0.1:9477] ==VXLAN== [h2: vswitch] -- c2
///                 curl (inside h1's namespace)
/// ```
/// The metrics page of a switch carrying traffic parses as Prometheus text and has the
/// families an operator needs: ports, drops, FDB, VXLAN per peer, worker busy time.
#[test]
fn metrics_of_an_overlay_switch_scrape_cleanly() {
    require_root();
    let mut ul = Underlay::new(1500);
    let a = VsHost::new(&mut ul, "[metrics]\nlisten = \"127.0.0.1:9477\"\n");
    let b = VsHost::new(&mut ul, "");
    a.peer(&b.addr);
    b.peer(&a.addr);
    a.network("blue", 42, "10.88.0.0/24", "10.88.0.16/28");
    b.network("blue", 42, "10.88.0.0/24", "10.88.0.32/28");
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    assert!(iperf3_tcp(&c1, &c2, "10.88.0.33", 1, 1) > 0.0);
    let page = scrape(&a.ns, "127.0.0.1:9477");
    let s = parse_prometheus(&page);
    for family in [
        "vswitch_port_receive_packets_total",
        "vswitch_port_transmit_bytes_total",
        "vswitch_fdb_entries",
        "vswitch_fdb_learned_total",
        "vswitch_vxlan_transmit_datagrams_total",
        "vswitch_vxlan_peer_transmit_bytes_total",
        "vswitch_vxlan_peer_receive_datagrams_total",
        "vswitch_worker_busy_seconds_total",
    ] {
        assert!(
            family_sum(&s, family) > 0.0,
            "{family} missing or zero in:\n{page}"
        );
    }
    // Present even when nothing happened yet: a dashboard wants a zero, not a gap.
    assert_eq!(s.get("vswitch_fdb_refused_total"), Some(&0.0), "{page}");
    let peer = format!(
        "vswitch_vxlan_peer_transmit_datagrams_total{{peer=\"{}\"}}",
        b.addr
    );
    assert!(
        s.get(&peer).copied().unwrap_or(0.0) > 100.0,
        "{peer} in:\n{page}"
    );
    // Anything but GET /metrics is a 404, and the daemon keeps serving.
    let out = a.ns.exec(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9477/nope",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    assert!(!scrape(&a.ns, "127.0.0.1:9477").is_empty());
}

/// The NAT families: table size and limit, refusals, port use.
#[test]
fn metrics_show_the_nat() {
    require_root();
    let lab = NatLab::new("[metrics]\nlisten = \"127.0.0.1:9478\"\n");
    let _c1 = lab.container_reaching_outside("blue", "10.58.0.0/24");
    let s = parse_prometheus(&scrape(&lab.host, "127.0.0.1:9478"));
    assert!(s["vswitch_conntrack_entries"] >= 1.0);
    assert_eq!(s["vswitch_conntrack_limit"], 65536.0);
    assert!(s.contains_key("vswitch_conntrack_refused_total{reason=\"ports_exhausted\"}"));
    assert!(s["vswitch_nat_ports_used{proto=\"icmp\"}"] >= 1.0);
    assert!(s["vswitch_router_masqueraded_packets_total"] >= 1.0);
}

/// `vswitch ... | true`: the CLI ends quietly when its reader is gone, as `ls` does,
/// instead of panicking on the broken pipe. (`true` exits before the CLI has its
/// answer from the daemon, so every write meets a closed pipe.)
#[test]
fn cli_output_into_a_closed_pipe_ends_quietly() {
    require_root();
    let host = common::Netns::new("h");
    let d = common::Daemon::start(&host);
    d.must(&["network", "create", "blue", "--internal"]);
    let cmd = format!(
        "{} --socket {} network ls | true",
        common::vswitch_bin().display(),
        d.socket.display()
    );
    let out = common::run("sh", &["-c", &cmd]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{err}");
}
