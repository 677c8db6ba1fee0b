//! Routing out and in through the switch's own NAT, with an "external" namespace behind
//! the uplink that has no route back to any container subnet: only the switch's
//! masquerade can make traffic work, and what the outside sees proves it.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::nat::{
    EXTERNAL, NatLab, OUTSIDE, SECOND, tcp_client, tcp_echo_server, udp_send_sized,
    udp_sizes_received, udp_source_seen,
};
use common::{Netns, iperf3_tcp, names_mtu, require_root, step, wait_until};

/// ```text
///   c1 (10.50.0.2) --- [h: vswitch, gateway 10.50.0.1] --ext0-- ext (203.0.113.1)
///                        uplink address 203.0.113.2 (+ .3)
/// ```
/// A container reaches the outside over TCP, UDP and ping; the outside sees the
/// switch's external address as the source; `nat ls` shows the translations.
#[test]
fn egress_is_masqueraded_for_tcp_udp_and_ping() {
    require_root();
    let lab = NatLab::new("");
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.50.0.0/24"]);
    let c1 = lab.container("blue");
    assert!(
        c1.ping("10.50.0.1", 2, 56),
        "the gateway does not answer ping"
    );
    assert!(
        c1.ping_until(OUTSIDE, Duration::from_secs(5)),
        "no ping out\n{}",
        lab.d.log()
    );
    let peers = tcp_echo_server(&lab.ext.name, 7000);
    let client = tcp_client(&c1.name, OUTSIDE, 7000).expect("TCP out");
    assert!(client.echo(b"out and back"));
    let seen = peers.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(seen.ip().to_string(), EXTERNAL, "the outside saw {seen}");
    let udp = udp_source_seen(&c1.name, 0, &lab.ext.name, OUTSIDE, 7001).expect("UDP out");
    assert_eq!(udp.ip().to_string(), EXTERNAL);
    assert!(iperf3_tcp(&c1, &lab.ext, OUTSIDE, 2, 1) > 0.0);
    let conns = lab.d.json(&["nat", "ls", "--format", "json"]);
    let kinds: Vec<&str> = conns
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"snat"), "{conns}");
    let tcp = conns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["proto"] == "tcp")
        .unwrap();
    assert!(
        tcp["original"]["src"]
            .as_str()
            .unwrap()
            .starts_with("10.50.0.2:"),
        "{tcp}"
    );
    assert!(
        tcp["translated"]["src"]
            .as_str()
            .unwrap()
            .starts_with(EXTERNAL),
        "{tcp}"
    );
    let s = lab.stats();
    assert!(s["nat"]["entries"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["router"]["masqueraded"].as_u64().unwrap() > 0, "{s}");
}

/// ```text
///   ext --> 203.0.113.2:8080 --> c1:80        (published on every uplink address)
///   ext --> 203.0.113.3:9090 --> c1:81        (bound to .3 only: .2:9090 stays shut)
///   c2  --> 203.0.113.2:8080 --> c1:80        (hairpin)
/// ```
/// Published ports are reached from outside, only on the address they are bound to,
/// from inside through the external address, and again after a restart.
#[test]
fn published_ports_answer_where_they_are_bound_and_survive_a_restart() {
    require_root();
    let mut lab = NatLab::new("");
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.51.0.0/24"]);
    let c1 = lab.container("blue");
    let c2 = lab.container("blue");
    let _s80 = tcp_echo_server(&c1.name, 80);
    let _s81 = tcp_echo_server(&c1.name, 81);
    lab.d
        .must(&["port", "publish", "blue", &c1.name, "8080:80"]);
    lab.d.must(&[
        "port",
        "publish",
        "blue",
        &c1.name,
        &format!("{SECOND}:9090:81"),
    ]);
    let out = lab.d.cli(&["port", "publish", "blue", &c2.name, "8080:80"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already published"),
        "{err}"
    );
    let out = lab
        .d
        .cli(&["port", "publish", "blue", &c2.name, "198.51.100.7:80:80"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address of the uplink"));

    let from_outside =
        |to: &str, port: u16| tcp_client(&lab.ext.name, to, port).is_some_and(|c| c.echo(b"in"));
    assert!(
        from_outside(EXTERNAL, 8080),
        "8080 on the external address\n{}",
        lab.d.log()
    );
    assert!(
        from_outside(SECOND, 8080),
        "8080 (unbound) on the second address"
    );
    assert!(
        from_outside(SECOND, 9090),
        "9090 on the address it is bound to"
    );
    assert!(
        !from_outside(EXTERNAL, 9090),
        "9090 answered on an address it is not bound to"
    );
    assert!(
        !from_outside(EXTERNAL, 8081),
        "an unpublished port answered"
    );
    let hairpin = tcp_client(&c2.name, EXTERNAL, 8080).expect("hairpin connect");
    assert!(hairpin.echo(b"hairpin"));

    let listed = lab.d.json(&["port", "ls", "--format", "json"]);
    lab.d.kill9();
    lab.d.spawn();
    assert_eq!(lab.d.json(&["port", "ls", "--format", "json"]), listed);
    assert!(
        wait_until(Duration::from_secs(5), || from_outside(EXTERNAL, 8080)),
        "the published port did not come back after a restart"
    );
    lab.d
        .must(&["port", "unpublish", "blue", &c1.name, "8080:80"]);
    assert!(
        !from_outside(EXTERNAL, 8080),
        "an unpublished port still answers"
    );
}

/// ```text
///   sealed (--internal) c3 -x-> outside        red (--route-to blue) r1 <--> blue c1
/// ```
/// An internal network cannot get out and cannot publish; networks are isolated unless
/// `--route-to` joins them.
#[test]
fn internal_networks_stay_in_and_route_to_joins_networks() {
    require_root();
    let lab = NatLab::new("");
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.52.0.0/24"]);
    lab.d.must(&[
        "network",
        "create",
        "sealed",
        "--internal",
        "--subnet",
        "10.53.0.0/24",
    ]);
    lab.d.must(&[
        "network",
        "create",
        "red",
        "--subnet",
        "10.54.0.0/24",
        "--route-to",
        "blue",
    ]);
    let c1 = lab.container("blue");
    let c3 = lab.container("sealed");
    let r1 = lab.container("red");
    assert!(
        c3.ping("10.53.0.1", 1, 56),
        "the internal network's gateway answers"
    );
    assert!(!c3.ping(OUTSIDE, 2, 56), "an internal network got out");
    let out = lab
        .d
        .cli(&["port", "publish", "sealed", &c3.name, "7070:80"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("internal"),
        "publishing from an internal network was not refused"
    );
    assert!(
        r1.ping("10.52.0.2", 2, 56),
        "route-to did not route red -> blue"
    );
    assert!(
        c1.ping("10.54.0.2", 2, 56),
        "route-to did not route blue -> red"
    );
    assert!(
        !c3.ping("10.52.0.2", 1, 56),
        "sealed reached blue without route-to"
    );
    let drops = &lab.stats()["router"]["drops"];
    assert!(
        drops["no_route"].as_u64().unwrap_or(0) >= 2
            && drops["route_denied"].as_u64().unwrap_or(0) >= 1,
        "{drops}"
    );
}

/// ```text
///   c1 -- [h: vswitch] --ext0(1500)-- rtr 203.0.113.1 | 198.51.100.1 --(MTU 1280)-- srv 198.51.100.2
/// ```
/// A router in the external path with a smaller MTU sends frag-needed to the switch's
/// external address; the NAT translates it (and the packet quoted inside) back to the
/// container, whose path MTU drops, and a large TCP transfer completes.
#[test]
fn path_mtu_discovery_works_through_the_nat() {
    require_root();
    let lab = NatLab::new("");
    let srv = Netns::new("s");
    // The narrow hop is the router's side of the link: the server itself has a 1500
    // MTU, announces MSS 1460, and the container sends segments the router must refuse.
    lab.ext.ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", &srv.name,
    ]);
    lab.ext.ip(&["link", "set", "eth1", "mtu", "1280", "up"]);
    lab.ext
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]);
    lab.ext.must("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    srv.ip(&["link", "set", "eth0", "up"]);
    srv.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
    srv.ip(&["route", "add", "default", "via", "198.51.100.1"]);
    lab.d
        .must(&["network", "create", "blue", "--subnet", "10.55.0.0/24"]);
    let c1 = lab.container("blue");
    assert!(
        c1.ping_until("198.51.100.2", Duration::from_secs(5)),
        "no route out\n{}",
        lab.d.log()
    );
    assert!(
        iperf3_tcp(&c1, &srv, "198.51.100.2", 3, 1) > 0.0,
        "TCP through a 1280 hop failed"
    );
    let route = c1.ip(&["route", "get", "198.51.100.2"]);
    assert!(
        route.contains("mtu 1280"),
        "the container never learned the path MTU:\n{route}"
    );
}

/// ```text
///   wide (MTU 1500) c1 --[router]-- narrow (MTU 1400) c2     (--route-to joins them)
/// ```
/// A packet routed into a network with a smaller MTU, too big for it and with DF set, is
/// answered as a router answers: "fragmentation needed" naming the next hop's MTU, from
/// the sender's gateway, delivered to the sender. Its path MTU drops, and TCP across
/// still works (c2's own MSS keeps segments within 1400, so that part passed before too).
#[test]
fn a_router_hop_to_a_smaller_mtu_answers_fragmentation_needed() {
    require_root();
    let lab = NatLab::new("");
    lab.network("narrow", "10.57.0.0/24", &["--mtu", "1400"]);
    lab.network("wide", "10.56.0.0/24", &["--route-to", "narrow"]);
    let c1 = lab.container("wide");
    let c2 = lab.container("narrow");
    assert!(c1.ping_until("10.57.0.2", Duration::from_secs(5)));
    // Without DF (and before c1 learns the path MTU below), the router cuts the packet
    // into fragments that fit; c2 reassembles them and answers.
    let out = c1.ping_no_df("10.57.0.2", 1472, 2);
    assert!(
        out.status.success(),
        "a 1500-byte packet without DF did not cross:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        lab.stats()
    );
    let to_c2 = [
        "wide",
        "--in",
        &c1.name,
        "--dst-ip",
        "10.57.0.2",
        "--size",
        "1500",
    ];
    let (steps, text) = lab.d.trace(&[&to_c2[..], &["--no-df"]].concat());
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "fragment", "{text}");
    assert_eq!(
        step(&steps, "egress").len(),
        2,
        "two fragments, each to c2's port: {text}"
    );
    let text = c1.ping_df("10.57.0.2", 1472, 2);
    assert!(
        names_mtu(&text, 1400),
        "no frag-needed naming 1400:\n{text}\n{}",
        lab.stats()
    );
    assert!(
        text.contains("10.56.0.1"),
        "not from the sender's gateway:\n{text}"
    );
    let drops = &lab.stats()["router"]["drops"];
    assert!(
        drops["too_big_for_network"].as_u64().unwrap_or(0) >= 1,
        "{drops}"
    );
    let route = c1.ip(&["route", "get", "10.57.0.2"]);
    assert!(route.contains("mtu 1400"), "no path MTU learned:\n{route}");
    // The trace shows the same decision.
    let (steps, text) = lab.d.trace(&to_c2);
    assert_eq!(step(&steps, "mtu")[0]["verdict"], "icmp_too_big", "{text}");
    assert_eq!(
        step(&steps, "reply")[0]["what"],
        "ICMP fragmentation needed",
        "{text}"
    );
    assert!(
        iperf3_tcp(&c1, &c2, "10.57.0.2", 2, 1) > 0.0,
        "TCP across the smaller hop failed"
    );
}

/// ```text
///   ext --> 203.0.113.2:9000/udp (published) --> c1:9000, in a network of MTU 1400
/// ```
/// A datagram from outside that is too big for the container's network: without DF the
/// router cuts it into fragments and c1 reassembles it; with DF the outside host gets
/// "fragmentation needed" naming 1400 through the NAT (from the external address, about
/// the packet it sent), learns the path MTU and refuses its next send itself. The same
/// holds for a container of another network that reaches the port hairpinned, through
/// the external address.
#[test]
fn a_published_port_into_a_smaller_mtu_fragments_or_answers_through_the_nat() {
    require_root();
    let lab = NatLab::new("");
    lab.network("narrow", "10.58.0.0/24", &["--mtu", "1400"]);
    let c1 = lab.container("narrow");
    lab.d
        .must(&["port", "publish", "narrow", &c1.name, "9000:9000/udp"]);
    arrives_whole(&lab, &lab.ext, EXTERNAL, 9000, &c1);
    learns_mtu_1400(&lab, &lab.ext, EXTERNAL, 9000);
    let drops = &lab.stats()["router"]["drops"];
    assert!(
        drops["too_big_for_network"].as_u64().unwrap_or(0) >= 1,
        "{drops}"
    );
    // From inside, hairpinned through the external address: the answer comes back in
    // through the NAT, and c0 learns the path MTU to the external address.
    lab.d
        .must(&["network", "create", "wide", "--subnet", "10.59.0.0/24"]);
    let c0 = lab.container("wide");
    learns_mtu_1400(&lab, &c0, EXTERNAL, 9000);
}

/// ```text
///   c1 (network MTU 1500) --> [router, NAT] --ext0, [uplink] mtu = 1400--> ext
/// ```
/// An uplink narrower than the network: a datagram without DF is masqueraded whole and
/// then cut into fragments, which the outside host puts back together; one with DF is
/// answered with "fragmentation needed" naming the uplink's MTU, so the container's
/// next send is refused by its own stack.
#[test]
fn a_narrower_uplink_gets_fragments_or_tells_the_sender() {
    require_root();
    let lab = NatLab::new("mtu = 1400");
    let c1 = lab.container_reaching_outside("blue", "10.60.0.0/24");
    arrives_whole(&lab, &c1, OUTSIDE, 9100, &lab.ext);
    learns_mtu_1400(&lab, &c1, OUTSIDE, 9100);
}

/// Three 1472-byte UDP datagrams without DF from `from` to `to:port` leave, and one
/// arrives whole (reassembled) at a socket on `port` in `rx`.
fn arrives_whole(lab: &NatLab, from: &Netns, to: &str, port: u16, rx: &Netns) {
    let sizes = udp_sizes_received(&rx.name, port, 10);
    let said = udp_send_sized(from, to, port, 1472, false);
    assert_eq!(said.matches("sent").count(), 3, "{said}");
    assert_eq!(
        sizes.recv_timeout(Duration::from_secs(5)).ok(),
        Some(1472),
        "the datagram without DF did not arrive whole\n{}",
        lab.stats()
    );
}

/// A 1472-byte UDP datagram with DF from `from` to `to:port` is answered with
/// "fragmentation needed" naming 1400: `from`'s stack refuses its next send itself
/// and its route to `to` carries the MTU.
fn learns_mtu_1400(lab: &NatLab, from: &Netns, to: &str, port: u16) {
    let said = udp_send_sized(from, to, port, 1472, true);
    assert!(
        said.contains("Message too long"),
        "{} never learned the smaller MTU:\n{said}\n{}",
        from.name,
        lab.stats()
    );
    let route = from.ip(&["route", "get", to]);
    assert!(route.contains("mtu 1400"), "no path MTU learned:\n{route}");
}

/// With a port range of 10, the 11th concurrent flow is refused and counted while the
/// first ten keep working.
#[test]
fn a_full_port_range_refuses_new_flows_and_keeps_the_old_ones() {
    require_root();
    let lab = NatLab::new("[nat]\nport_range = \"40000-40009\"\n");
    let c1 = lab.container_reaching_outside("blue", "10.56.0.0/24");
    let _server = tcp_echo_server(&lab.ext.name, 7100);
    let ten: Vec<_> = (0..10)
        .map(|i| {
            tcp_client(&c1.name, OUTSIDE, 7100)
                .unwrap_or_else(|| panic!("flow {i} refused\n{}", lab.d.log()))
        })
        .collect();
    assert!(
        tcp_client(&c1.name, OUTSIDE, 7100).is_none(),
        "an 11th flow got a port"
    );
    for (i, c) in ten.iter().enumerate() {
        assert!(
            c.echo(format!("flow {i}").as_bytes()),
            "flow {i} stopped working"
        );
    }
    let s = lab.stats();
    assert!(
        s["nat"]["refused_ports_exhausted"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert!(
        s["router"]["nat_drops"]["ports_exhausted"]
            .as_u64()
            .unwrap()
            >= 1,
        "{s}"
    );
    assert_eq!(s["nat"]["ports"][0]["used"], 10, "{s}");
}
