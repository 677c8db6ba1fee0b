//! Running as a service: SIGHUP reloads what can change at run time and nothing when the
//! file is broken; SIGTERM leaves nothing of the switch in the kernel and a restart brings
//! every endpoint back; the log has the shape journald keeps.

mod common;

use std::time::Duration;

use common::nat::NatLab;
use common::{Daemon, Netns, require_root, wait_until};

fn signal(d: &Daemon, sig: &str) {
    common::must("kill", &[&format!("-{sig}"), &d.pid().to_string()]);
}

fn write_config(d: &Daemon, text: &str) {
    let path = d.config.as_ref().expect("daemon has a config file");
    std::fs::write(path, text).expect("write config");
}

fn aging(d: &Daemon) -> Option<u64> {
    d.json(&["stats", "--format", "json"])["fdb"]["aging_secs"].as_u64()
}

fn learned(d: &Daemon) -> usize {
    d.json(&["fdb", "show", "--format", "json"])
        .as_array()
        .map(|a| a.iter().filter(|e| e["static"] != true).count())
        .unwrap_or(0)
}

/// ```text
///   c1 ---- host: vswitch (config: aging 300 s, log info) ---- c2
///             SIGHUP: aging 2 s, log debug, [datapath] batch 32   -> applied / restart
///             SIGHUP: a broken file                               -> nothing changes
/// ```
#[test]
fn sighup_applies_run_time_settings_and_a_broken_file_changes_nothing() {
    require_root();
    let host = Netns::new("h");
    let (c1, c2) = (Netns::new("c"), Netns::new("c"));
    let mut d = Daemon::start_with_config(
        &host,
        Some("[fdb]\naging_secs = 300\n[log]\nlevel = \"info\"\n"),
    );
    // Run it the way systemd does, to see the journal's line format too.
    d.kill9();
    d.spawn_as_if_under_journald();
    d.must(&["network", "create", "blue", "--subnet", "10.61.0.0/24"]);
    d.must(&["network", "connect", "blue", "--netns", &c1.name]);
    d.must(&["network", "connect", "blue", "--netns", &c2.name]);
    assert!(c1.ping("10.61.0.3", 2, 56));
    assert_eq!(aging(&d), Some(300));
    assert_eq!(learned(&d), 2);
    assert!(
        !d.log().contains("request: NetworkLs"),
        "debug lines at level info:\n{}",
        d.log()
    );

    write_config(
        &d,
        "[fdb]\naging_secs = 2\n[log]\nlevel = \"debug\"\n[datapath]\nbatch = 32\n",
    );
    signal(&d, "HUP");
    assert!(
        wait_until(Duration::from_secs(5), || aging(&d) == Some(2)),
        "aging time not applied\n{}",
        d.log()
    );
    // The learned MACs of the now idle containers age out in seconds, not 300 s (the
    // bound is loose: a busy machine delays the expiry sweep and the containers' own
    // stray frames refresh entries now and then).
    assert!(
        wait_until(Duration::from_secs(30), || learned(&d) == 0),
        "learned MACs did not age out with the new aging time\n{}",
        d.log()
    );
    d.must(&["network", "ls"]);
    assert!(
        wait_until(Duration::from_secs(3), || d
            .log()
            .contains("request: NetworkLs")),
        "log level debug not applied\n{}",
        d.log()
    );
    let log = d.log();
    assert!(log.contains("reload: [fdb] aging_secs 300 -> 2"), "{log}");
    assert!(
        log.contains("<4>WARN vswitch::daemon::reload: reload: [datapath] changed; it takes effect at the next start"),
        "restart-only change not logged as a warning\n{log}"
    );

    // A broken file: logged as an error, nothing changes.
    write_config(&d, "[fdb]\naging_secs = 0\n[log]\nlevel = \"warn\"\n");
    signal(&d, "HUP");
    assert!(
        wait_until(Duration::from_secs(5), || d
            .log()
            .contains("reload refused, nothing changed")),
        "broken config not reported\n{}",
        d.log()
    );
    assert_eq!(aging(&d), Some(2));
    let before = d.log().matches("request: Stats").count();
    d.must(&["stats"]);
    assert!(
        wait_until(Duration::from_secs(3), || d
            .log()
            .matches("request: Stats")
            .count()
            > before),
        "the broken file changed the log level\n{}",
        d.log()
    );
    assert!(c1.ping("10.61.0.3", 2, 56), "traffic stopped after reloads");

    // Journal form: a priority prefix on every line, no timestamps, no colours.
    let log = d.log();
    assert!(
        log.contains("<3>ERROR vswitch::daemon::reload: reload refused"),
        "{log}"
    );
    for line in log.lines() {
        assert!(
            line.starts_with('<') && line.as_bytes().get(2) == Some(&b'>'),
            "not a journal line: {line}"
        );
        assert!(!line.contains('\u{1b}'), "colour codes in: {line}");
        assert!(
            !line[3..].starts_with(|c: char| c.is_ascii_digit()),
            "timestamp in: {line}"
        );
    }
}

/// ```text
///   c1 (veth) ---- host: vswitch ---- c2 (veth)
///                    |
///                   tap0 (TAP)
///   SIGTERM: no veth left in host, no eth0 left in c1/c2, the (persistent) TAP kept;
///   start again: all back, ping works, inspect as before.
/// ```
#[test]
fn sigterm_removes_the_veths_keeps_the_taps_and_a_restart_brings_all_back() {
    require_root();
    let host = Netns::new("h");
    let (c1, c2) = (Netns::new("c"), Netns::new("c"));
    let mut d = Daemon::start(&host);
    // Restart it the way systemd would run it (Type=notify), to hear READY=1 and
    // STOPPING=1.
    let notify_path = d.dir.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    d.kill9();
    d.spawn_with(false, &[("NOTIFY_SOCKET", notify_path.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("no READY=1 from the daemon");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("READY=1\n"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let tap = common::unique("tp");
    d.must(&["network", "create", "blue", "--subnet", "10.62.0.0/24"]);
    d.must(&["network", "connect", "blue", "--netns", &c1.name]);
    d.must(&[
        "network",
        "connect",
        "blue",
        "--netns",
        &c2.name,
        "--ip",
        "10.62.0.20",
    ]);
    d.must(&["network", "connect", "blue", "--tap", &tap]);
    assert!(c1.ping("10.62.0.20", 2, 56));
    let before = d.json(&["network", "inspect", "blue"]);
    let links = |ns: &Netns| -> Vec<String> {
        ns.ip(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(links(&host).len(), 4, "lo, two veth ends, the TAP");

    d.stop();
    let n = notify
        .recv(&mut buf)
        .expect("no STOPPING=1 from the daemon");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1\n"));
    assert_eq!(
        links(&host),
        vec!["lo".to_string(), tap.clone()],
        "veths left behind, or the TAP (a macvlan network's parent) deleted"
    );
    for c in [&c1, &c2] {
        assert_eq!(links(c), vec!["lo"], "container end left in {}", c.name);
    }
    assert!(d.log().contains("stopped; state kept in"), "{}", d.log());
    let state = common::read(&d.state_file());
    assert!(state.contains(&c1.name) && state.contains(&tap), "{state}");

    d.spawn();
    assert!(
        c1.ping_until("10.62.0.20", Duration::from_secs(10)),
        "traffic did not come back\n{}",
        d.log()
    );
    assert!(c2.ping("10.62.0.2", 2, 56));
    assert!(links(&host).contains(&tap), "TAP gone");
    assert!(
        c2.ip(&["-4", "-o", "addr", "show", "eth0"])
            .contains("10.62.0.20/24"),
        "address not restored"
    );
    assert!(
        c1.ip(&["route", "show", "default"])
            .contains("via 10.62.0.1"),
        "default route not restored"
    );
    assert_eq!(d.json(&["network", "inspect", "blue"]), before);
    d.must(&["network", "disconnect", "blue", &tap]);
}

/// ```text
///   host: vswitch (uplink, [nat] max_entries 100, udp 30 s) ---- external
///     SIGHUP: max_entries 7, udp 5 s -> the NAT's limit and timeouts change at once
/// ```
#[test]
fn sighup_changes_the_nat_limit_and_timeouts() {
    require_root();
    let lab = NatLab::new("[nat]\nmax_entries = 100\n[nat.timeouts]\nudp = 30\n");
    let d = &lab.d;
    d.must(&["network", "create", "blue", "--subnet", "10.63.0.0/24"]);
    let c = lab.container("blue");
    assert_eq!(lab.stats()["nat"]["limit"], 100);
    let path = d.config.clone().expect("config");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("max_entries = 100", "max_entries = 7")
        .replace("udp = 30", "udp = 5");
    std::fs::write(&path, text).unwrap();
    signal(d, "HUP");
    assert!(
        wait_until(Duration::from_secs(5), || lab.stats()["nat"]["limit"] == 7),
        "NAT limit not applied\n{}",
        d.log()
    );
    // A UDP flow now expires after 5 s idle instead of 30.
    c.must("bash", &["-c", "echo x > /dev/udp/203.0.113.1/9"]);
    assert!(
        d.json(&["nat", "ls", "--format", "json"])
            .as_array()
            .is_some_and(|a| a.len() == 1)
    );
    assert!(
        wait_until(Duration::from_secs(9), || d
            .json(&["nat", "ls", "--format", "json"])
            .as_array()
            .is_some_and(|a| a.is_empty())),
        "UDP flow not expired with the new timeout\n{}",
        d.log()
    );
    assert!(
        !d.log().contains("next start"),
        "NAT tunables wrongly need a restart"
    );
}
