//! A real Docker engine on a vswitch network: Debian's docker.io, started by the test in
//! a lab host's namespace with its own data root and socket, a `docker run` container on
//! a macvlan network whose parent is a vswitch TAP, reaching a container on a second
//! host across the overlay and the outside through the switch's NAT.
//!
//! The one allowed skip: `.ci/run` could not install docker.io (and busybox-static, for
//! the image) and said so in `VSWITCH_DOCKER_UNAVAILABLE`. Missing tools without that
//! explanation, and everything else that goes wrong, fail, with the switches' and the
//! Docker engine's logs.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::docker::DockerEngine;
use common::docker_tools::availability;
use common::nat::{EXTERNAL, OUTSIDE, tcp_echo_server};
use common::overlay::{Underlay, VsHost};
use common::{Daemon, Netns, require_root, wait_until};
use serde_json::Value;

const VNI: u32 = 42;
const SUBNET: &str = "10.60.0.0/24";
const GATEWAY: &str = "10.60.0.1";
/// vswitch's IPAM hands out h1's and h2's ranges; Docker's IPAM gets a range of its own
/// that neither switch uses.
const H1_RANGE: &str = "10.60.0.16/28";
const H2_RANGE: &str = "10.60.0.32/28";
const DOCKER_RANGE: &str = "10.60.0.64/27";
const DOCKER_IP: &str = "10.60.0.70";
const C2_IP: &str = "10.60.0.33";
const IMAGE: &str = "vsbusybox:test";

/// A vswitch host on the underlay whose daemon also owns an uplink (`ext0`) to an
/// external namespace at 203.0.113.1, as in `common::nat`.
fn host_with_uplink(ul: &mut Underlay) -> (VsHost, Netns) {
    let ns = Netns::new("h");
    let addr = ul.join(&ns);
    let ext = Netns::new("x");
    ns.ip(&[
        "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", &ext.name,
    ]);
    ext.ip(&["link", "set", "eth0", "up"]);
    ext.ip(&["addr", "add", &format!("{OUTSIDE}/24"), "dev", "eth0"]);
    let cfg = format!(
        "[underlay]\nlocal = \"{addr}\"\ninterface = \"ul0\"\n\n\
         [uplink]\ninterface = \"ext0\"\naddress = \"{EXTERNAL}/24\"\ngateway = \"{OUTSIDE}\"\n"
    );
    let d = Daemon::start_with_config(&ns, Some(&cfg));
    (VsHost { ns, addr, d }, ext)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// ```text
///  docker container k1 10.60.0.70                          c2 10.60.0.33 (veth) on h2
///  (macvlan child of the TAP, made by dockerd in h1)            |
///         |                                                     |
///    [h1: vswitch, TAP parent] ===== underlay (VXLAN VNI 42) ===== [h2: vswitch]
///         | uplink ext0, 203.0.113.2                 192.168.77.0/24
///    ext 203.0.113.1 (outside)
/// ```
/// Overlay network `blue` (10.60.0.0/24, gateway 10.60.0.1) on both hosts; h1's switch
/// owns a TAP on it, the parent of a Docker macvlan network (`--ip-range 10.60.0.64/27`,
/// which neither switch's IPAM hands out). A `docker run` container on it pings and
/// talks TCP to c2 across the overlay, and to the outside through the switch's gateway
/// and NAT (the outside sees the uplink's address); c2 pings it back; h2 learned its
/// MAC behind h1's VTEP. After a restart of h1's switch it reaches c2 again.
#[test]
fn docker_container_on_a_switch_tap_reaches_the_overlay_and_the_outside() {
    require_root();
    let t0 = Instant::now();
    match availability() {
        Ok(None) => {}
        Ok(Some(why)) => {
            // Not through eprintln!: the test harness captures that, and a skip must show.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: docker.io cannot be installed here: {why}"
            );
            return;
        }
        Err(what) => panic!("the Docker test cannot run: {what}"),
    }

    // The lab: two switches on an underlay, h1 with an uplink too.
    let t = Instant::now();
    let mut ul = Underlay::new(1500);
    let (mut h1, ext) = host_with_uplink(&mut ul);
    let h2 = VsHost::new(&mut ul, "");
    h1.peer(&h2.addr);
    h2.peer(&h1.addr);
    h1.network("blue", VNI, SUBNET, H1_RANGE);
    h2.network("blue", VNI, SUBNET, H2_RANGE);
    let tap = common::unique("vsd");
    h1.d.must(&["network", "connect", "blue", "--tap", &tap]);
    let c2 = h2.container("blue", C2_IP);
    let t_lab = t.elapsed();

    // The engine, in h1's namespace (where the TAP is), and its image.
    let t = Instant::now();
    let engine = DockerEngine::start(&h1.ns);
    let t_engine = t.elapsed();
    let t = Instant::now();
    engine.import_busybox(IMAGE);
    engine.must(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        &format!("parent={tap}"),
        "--subnet",
        SUBNET,
        "--gateway",
        GATEWAY,
        "--ip-range",
        DOCKER_RANGE,
        "vsnet",
    ]);
    engine.must(&[
        "run",
        "-d",
        "--name",
        "k1",
        "--network",
        "vsnet",
        "--ip",
        DOCKER_IP,
        IMAGE,
        "sleep",
        "300",
    ]);
    let t_docker = t.elapsed();
    let diag = |h1: &VsHost| {
        format!(
            "--- h1 vswitch log ---\n{}\n--- h2 vswitch log ---\n{}\n{}",
            h1.d.log(),
            h2.d.log(),
            engine.logs()
        )
    };
    let in_k1 = |args: &[&str]| engine.exec("k1", args);

    // Docker put the macvlan child in the container, on the TAP, with the overlay's MTU.
    let link = text(&in_k1(&["ip", "-o", "link", "show", "eth0"]).stdout);
    let mtu = h1.d.json(&["network", "inspect", "blue"])[0]["Options"]["mtu"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        link.contains(&format!("mtu {mtu} ")),
        "the container's eth0 does not have the TAP's MTU {mtu}: {link}"
    );
    let mac = engine
        .must(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.vsnet.MacAddress}}",
            "k1",
        ])
        .trim()
        .to_string();

    // Across the overlay, to c2 on h2.
    let t = Instant::now();
    let first = wait_until(Duration::from_secs(15), || {
        in_k1(&["ping", "-c", "1", "-W", "1", C2_IP])
            .status
            .success()
    });
    assert!(
        first,
        "the docker container cannot ping c2 across the overlay\n{}",
        diag(&h1)
    );
    let t_first_ping = t.elapsed();
    for size in ["56", "1400"] {
        let out = in_k1(&["ping", "-c", "3", "-W", "2", "-s", size, C2_IP]);
        assert!(
            out.status.success(),
            "ping -s {size} to c2 failed: {}{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            diag(&h1)
        );
    }
    assert!(
        c2.ping(DOCKER_IP, 3, 56),
        "c2 cannot ping the docker container back\n{}",
        diag(&h1)
    );
    let seen_by_c2 = tcp_echo_server(&c2.name, 7001);
    let out = in_k1(&["sh", "-c", &format!("echo across | nc {C2_IP} 7001")]);
    assert!(
        text(&out.stdout).contains("across"),
        "no TCP echo from c2: {}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        diag(&h1)
    );
    let peer = seen_by_c2.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(
        peer.ip().to_string(),
        DOCKER_IP,
        "c2 saw {peer}: not the container's own address"
    );
    let fdb = h2.d.json(&["fdb", "show", "blue", "--format", "json"]);
    let entry = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == mac.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        entry["vtep"],
        h1.addr.as_str(),
        "h2 did not learn the container's MAC {mac} behind h1's VTEP: {fdb}"
    );

    // The outside, through the gateway 10.60.0.1 and h1's NAT.
    let t = Instant::now();
    let out_ok = wait_until(Duration::from_secs(15), || {
        in_k1(&["ping", "-c", "1", "-W", "1", OUTSIDE])
            .status
            .success()
    });
    assert!(
        out_ok,
        "the docker container cannot ping the outside through the NAT\n{}",
        diag(&h1)
    );
    let t_first_out = t.elapsed();
    let out = in_k1(&["ping", "-c", "3", "-W", "2", OUTSIDE]);
    assert!(
        out.status.success(),
        "ping to the outside failed: {}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        diag(&h1)
    );
    let seen_outside = tcp_echo_server(&ext.name, 7000);
    let out = in_k1(&[
        "sh",
        "-c",
        &format!("echo through-the-nat | nc {OUTSIDE} 7000"),
    ]);
    assert!(
        text(&out.stdout).contains("through-the-nat"),
        "no TCP echo from the outside: {}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        diag(&h1)
    );
    let peer = seen_outside.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(
        peer.ip().to_string(),
        EXTERNAL,
        "the outside saw {peer}, not the uplink's address: no masquerade"
    );
    let conns = h1.d.json(&["nat", "ls", "--format", "json"]);
    let from_k1 = conns.as_array().unwrap().iter().any(|c| {
        c["kind"] == "snat"
            && c["original"]["src"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{DOCKER_IP}:")))
    });
    assert!(
        from_k1,
        "`nat ls` on h1 shows no translation for the container: {conns}"
    );

    // The switch's TAP is persistent: after a restart of h1's daemon the Docker network
    // on it works again, without anything done on Docker's side.
    let t = Instant::now();
    h1.d.stop();
    h1.d.spawn();
    let back = wait_until(Duration::from_secs(15), || {
        in_k1(&["ping", "-c", "1", "-W", "1", C2_IP])
            .status
            .success()
    });
    assert!(
        back,
        "after a restart of h1's switch the docker container cannot reach c2\n{}",
        diag(&h1)
    );
    let t_restart = t.elapsed();

    let t = Instant::now();
    drop(engine);
    let t_stop = t.elapsed();
    eprintln!(
        "timings: lab {t_lab:?}, dockerd up {t_engine:?}, \
         image + network + run {t_docker:?}, first ping across {t_first_ping:?}, \
         first ping out {t_first_out:?}, back after a switch restart {t_restart:?}, engine stop {t_stop:?}, total {:?}",
        t0.elapsed()
    );
}
