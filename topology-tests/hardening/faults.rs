//! Faults on a two-host overlay while traffic runs: an endpoint's veth deleted by hand,
//! the underlay link down and up, the peer's daemon and our own killed with `kill -9`
//! and restarted. Each time the rest keeps working, the state on disk parses, and
//! traffic comes back by itself within seconds of the fault's end.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::overlay::VsHost;
use crate::common::{Netns, require_root, vswitch_bin, wait_until};
use crate::{assert_alive, assert_state_intact, counter, heavy, two_hosts};

/// The longest a recovery may take once the fault is gone.
const RECOVERY: Duration = Duration::from_secs(10);

/// Pings until a reply comes back; returns how long it took since the fault ended at
/// `t`, or fails the test.
fn recovers(t: Instant, from: &Netns, to: &str, what: &str) -> Duration {
    assert!(
        from.ping_until(to, RECOVERY),
        "{what}: traffic did not come back within {RECOVERY:?}"
    );
    let took = t.elapsed();
    eprintln!("{what}: traffic back after {took:?}");
    took
}

/// ```text
///   c1 .17, c3 .18 (veth deleted)        c2 .33
///   [h1: vswitch]==underlay (ul0 down/up)==[h2: vswitch]
/// ```
#[test]
fn a_deleted_veth_and_a_flapping_underlay_are_survived() {
    require_root();
    let _turn = heavy();
    let (_ul, a, b) = two_hosts();
    let c1 = a.container("blue", "10.88.0.17");
    let c3 = a.container("blue", "10.88.0.18");
    let _c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    assert!(c3.ping("10.88.0.17", 1, 56));

    // 1. An endpoint's veth deleted by hand (from inside its namespace).
    c3.ip(&["link", "del", "eth0"]);
    let lost = wait_until(Duration::from_secs(5), || {
        counter(&a.stats(), &["ports_lost"]) == 1
    });
    assert!(lost, "port loss not noticed: {}", a.stats());
    assert!(c1.ping("10.88.0.33", 3, 56), "the rest stopped working");
    let state = assert_state_intact(&a.d);
    assert!(
        state.to_string().contains(&c3.name),
        "the endpoint's record was lost"
    );
    let inspect = a.d.json(&["network", "inspect", "blue"]);
    let ep = &inspect[0]["Endpoints"][&c3.name];
    assert_eq!(ep["State"], "detached");
    assert_alive(&a.d);
    // The fault ends: the operator puts the link back as it was (same names, MAC and
    // address); the switch attaches it again by itself.
    let (port, mac, addr) = (
        ep["Port"].as_str().unwrap(),
        ep["MacAddress"].as_str().unwrap(),
        ep["IPv4Address"].as_str().unwrap(),
    );
    let t = Instant::now();
    a.ns.ip(&[
        "link", "add", port, "type", "veth", "peer", "name", "eth0", "address", mac, "netns",
        &c3.name,
    ]);
    a.ns.ip(&["link", "set", port, "up"]);
    c3.ip(&["addr", "add", addr, "dev", "eth0"]);
    c3.ip(&["link", "set", "eth0", "up"]);
    recovers(t, &c3, "10.88.0.33", "veth put back");
    let inspect = a.d.json(&["network", "inspect", "blue"]);
    assert_eq!(inspect[0]["Endpoints"][&c3.name]["State"], "attached");

    // 2. The underlay link down, then up.
    let tx_dropped = |h: &VsHost| counter(&h.stats(), &["underlay", "tx_dropped"]);
    let dropped_before = tx_dropped(&a);
    a.ns.ip(&["link", "set", "ul0", "down"]);
    assert!(
        !c1.ping("10.88.0.33", 2, 56),
        "traffic crossed a down underlay"
    );
    assert!(
        tx_dropped(&a) > dropped_before,
        "sends on a down underlay not counted: {}",
        a.stats()["underlay"]
    );
    assert_alive(&a.d);
    let t = Instant::now();
    a.ns.ip(&["link", "set", "ul0", "up"]);
    recovers(t, &c1, "10.88.0.33", "underlay down/up");
    assert!(c1.ping("10.88.0.33", 5, 1400));
    assert_state_intact(&a.d);
    assert_state_intact(&b.d);
}

/// Keeps changing the daemon's stored state (create, remove a network) through the CLI
/// until told to stop, so that a `kill -9` lands while state is being written.
fn churn_state(socket: std::path::PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut writes = 0;
        while !stop.load(Ordering::Relaxed) {
            for args in [
                &["network", "create", "churn", "--subnet", "10.99.0.0/24"][..],
                &["network", "rm", "churn"][..],
            ] {
                let ok = Command::new(vswitch_bin())
                    .arg("--socket")
                    .arg(&socket)
                    .args(args)
                    .output()
                    .is_ok_and(|o| o.status.success());
                writes += u32::from(ok);
            }
        }
        writes
    })
}

/// ```text
///   c1 .17 ==iperf3==> c2 .33
///   [h1: vswitch, kill -9 + restart]==underlay==[h2: vswitch, kill -9 + restart]
/// ```
#[test]
fn daemons_killed_with_sigkill_come_back_and_traffic_recovers() {
    require_root();
    let _turn = heavy();
    let (_ul, mut a, mut b) = two_hosts();
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    let config = a.d.json(&["network", "inspect", "blue"]);

    // 1. The peer's daemon dies and comes back.
    b.d.kill9();
    assert!(
        !c1.ping("10.88.0.33", 1, 56),
        "traffic flowed with the peer's switch dead"
    );
    assert_state_intact(&b.d);
    assert_alive(&a.d);
    let t = Instant::now();
    b.d.spawn();
    recovers(t, &c1, "10.88.0.33", "peer daemon kill -9 and restart");

    // 2. Our own daemon dies in the middle of a TCP transfer and of state writes.
    let server = c2.spawn("iperf3", &["-s", "-1"]);
    std::thread::sleep(Duration::from_millis(300));
    let client = c1.spawn("iperf3", &["-c", "10.88.0.33", "-t", "8", "-J"]);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = churn_state(a.d.socket.clone(), stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    a.d.kill9();
    stop.store(true, Ordering::Relaxed);
    let writes = churn.join().unwrap();
    // Whatever the moment, the file is a whole state: the old one or the new one.
    let state = assert_state_intact(&a.d);
    assert!(state.to_string().contains(&c1.name));
    let t = Instant::now();
    a.d.spawn();
    let took = recovers(t, &c1, "10.88.0.33", "own daemon kill -9 and restart");
    assert!(took < RECOVERY);
    let out = client.wait_output();
    drop(server);
    assert!(
        out.status.success(),
        "the TCP transfer did not survive the restart: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!("state writes before the kill: {writes}");
    // The configuration is what it was (the churned network may or may not exist,
    // depending on where the kill landed; nothing else changed).
    let _ = a.d.cli(&["network", "rm", "churn"]);
    assert_eq!(a.d.json(&["network", "inspect", "blue"]), config);
    assert_alive(&a.d);
    assert_alive(&b.d);
}
