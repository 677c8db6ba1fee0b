//! Hardening: the switch under bad input, floods and faults, with real traffic flowing
//! beside them. Each scenario checks that what is refused is counted under its reason in
//! `vswitch stats`, that the daemon's memory stays bounded, and that the traffic that
//! should keep going does. Frames are injected from inside the attacker's namespace by a
//! raw AF_PACKET socket (`common/inject.py`, run with `ip netns exec`); underlay
//! datagrams by a UDP socket on a thread inside the peer host's namespace.
//!
//! The scenarios flood a 2-core machine on purpose, so they take turns (`heavy()`).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

#[path = "hardening/faults.rs"]
mod faults;
#[path = "hardening/floods.rs"]
mod floods;
#[path = "hardening/frames.rs"]
mod frames;
#[path = "hardening/padded.rs"]
mod padded;
#[path = "hardening/underlay.rs"]
mod underlay;
#[path = "hardening/wire.rs"]
mod wire;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use common::overlay::{Underlay, VsHost};
use common::{Daemon, Netns};
use serde_json::Value;

static HEAVY: Mutex<()> = Mutex::new(());

/// The VNI of network "blue" in [`two_hosts`].
pub const VNI: u32 = 42;

/// Two hosts, peers of each other, with overlay network "blue" (VNI [`VNI`],
/// 10.88.0.0/24) on both: automatic addresses from .16/28 on the first, .32/28 on the
/// second.
pub fn two_hosts() -> (Underlay, VsHost, VsHost) {
    let mut ul = Underlay::new(1500);
    let a = VsHost::new(&mut ul, "");
    let b = VsHost::new(&mut ul, "");
    a.peer(&b.addr);
    b.peer(&a.addr);
    a.network("blue", VNI, "10.88.0.0/24", "10.88.0.16/28");
    b.network("blue", VNI, "10.88.0.0/24", "10.88.0.32/28");
    (ul, a, b)
}

/// Held for the length of a scenario that floods: one at a time.
pub fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// One injection job: `count` copies of `frame`, each with a fresh random source MAC
/// when `random_source`.
#[derive(Debug)]
pub struct Job {
    pub count: usize,
    pub frame: Vec<u8>,
    pub random_source: bool,
}

impl Job {
    pub fn new(count: usize, frame: Vec<u8>) -> Job {
        Job {
            count,
            frame,
            random_source: false,
        }
    }
}

/// Sends the jobs out of `iface` in `ns` through a raw AF_PACKET socket. Returns how many
/// frames the kernel accepted.
pub fn inject(ns: &Netns, iface: &str, jobs: &[Job]) -> u64 {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../topology-tests/common/inject.py"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", script, iface])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the hardening tests");
    {
        let mut stdin = child.stdin.take().unwrap();
        for j in jobs {
            let hex: String = j.frame.iter().map(|b| format!("{b:02x}")).collect();
            let flag = if j.random_source { " randsrc" } else { "" };
            writeln!(stdin, "{} {hex}{flag}", j.count).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inject.py failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("inject.py said: {text}"))
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM, ...).
pub fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The daemon's resident memory in kB.
pub fn rss_kb(d: &Daemon) -> u64 {
    proc_kb(d.pid(), "VmRSS:")
}

/// How many file descriptors the daemon holds.
pub fn fd_count(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

/// The daemon is alive (not crashed, not a zombie) and answers.
pub fn assert_alive(d: &Daemon) {
    let state = std::fs::read_to_string(format!("/proc/{}/stat", d.pid())).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z" && s != "X");
    assert!(running, "daemon died:\n{}", d.log());
    assert!(
        d.cli(&["network", "ls"]).status.success(),
        "daemon does not answer"
    );
    assert!(
        !d.log().contains("panicked"),
        "daemon panicked:\n{}",
        d.log()
    );
}

/// The state on disk parses as a whole (a crash may leave the temporary file that was
/// being written beside it: that is the point of write-then-rename).
pub fn assert_state_intact(d: &Daemon) -> Value {
    let text = std::fs::read_to_string(d.state_file()).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("state.json does not parse ({e}):\n{text}"))
}

/// The stats row of the endpoint named `endpoint`.
pub fn port_row(stats: &Value, endpoint: &str) -> Value {
    stats["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|r| r["endpoint"] == endpoint).cloned())
        .unwrap_or(Value::Null)
}

/// A counter at a JSON path (missing counters are zero: stats list non-zero drops only).
pub fn counter(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// A container's MAC address on `eth0`.
pub fn mac_of(ns: &Netns, ifname: &str) -> [u8; 6] {
    let text = ns.must("cat", &[&format!("/sys/class/net/{ifname}/address")]);
    wire::parse_mac(text.trim())
}

/// The MAC the container has resolved for `ip` (ping it first).
pub fn neighbour_mac(ns: &Netns, ip: &str) -> [u8; 6] {
    let text = ns.ip(&["neigh", "show", ip]);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no neighbour entry for {ip}: {text}"));
    wire::parse_mac(mac)
}
