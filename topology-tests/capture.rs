//! `vswitch capture` and `vswitch trace` against real namespaces: captures are read back
//! by tcpdump (the oracle for the pcap format and the frames in it), traces are checked
//! against what the switch really knows (FDB, peers, NAT, MTU).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::nat::{EXTERNAL, NatLab, OUTSIDE};
use common::overlay::two_peered_hosts;
use common::{Daemon, Netns, require_root, unique, vswitch_bin, wait_until};

/// A `vswitch capture` running in the background; killed on drop.
struct Capture {
    child: Option<Child>,
}

impl Capture {
    /// Starts `vswitch capture ARGS` and waits until the daemon says the session began.
    fn start(d: &Daemon, args: &[&str]) -> Capture {
        let before = d.log().matches("capture of").count();
        let child = Command::new(vswitch_bin())
            .arg("--socket")
            .arg(&d.socket)
            .arg("capture")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = wait_until(Duration::from_secs(5), || {
            d.log().matches("capture of").count() > before
        });
        assert!(started, "capture did not start; log:\n{}", d.log());
        Capture { child: Some(child) }
    }

    /// Waits for the capture to end by itself (within `timeout`).
    fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        let done = wait_until(timeout, || child.try_wait().unwrap().is_some());
        if !done {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "capture did not end; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.wait_with_output().unwrap()
    }

    /// Reads the printed lines as they come until `enough` says the lines so far are,
    /// or `timeout` passes; then ends the capture with Ctrl-C. Returns the lines. For
    /// links where frames the test does not care about may come in any number (ARP,
    /// the outside's IPv6), so no frame count can say when the interesting ones are in.
    fn lines_until(mut self, timeout: Duration, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
        let stdout = self.take_stdout();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while !enough(&lines) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        assert!(self.interrupt().status.success());
        lines
    }

    /// The capture's stdout, to read or to pipe into another command.
    fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.as_mut().unwrap().stdout.take().unwrap()
    }

    /// Sends SIGINT (Ctrl-C) and waits for the capture to end.
    fn interrupt(self) -> Output {
        let pid = self.child.as_ref().unwrap().id().to_string();
        common::must("kill", &["-INT", &pid]);
        self.wait(Duration::from_secs(5))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The daemon logs `needle` (how a capture session ended) within two seconds.
fn assert_session_ended(d: &Daemon, needle: &str) {
    assert!(
        wait_until(Duration::from_secs(2), || d.log().contains(needle)),
        "the daemon did not end the session ({needle}); log:\n{}",
        d.log()
    );
}

fn pcap_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.pcap", unique(tag)))
}

/// `tcpdump -r` of a pcap file: the lines it prints (it must read the file cleanly).
fn tcpdump(path: &Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .expect("tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(path);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet_ipv6(ns: &Netns) {
    for key in ["all", "default"] {
        ns.must(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")],
        );
    }
}

/// A host with a bridge network `blue` (10.41.0.0/24) and two containers on it.
fn bridge_pair() -> (Netns, Daemon, Netns, Netns) {
    let host = Netns::new("h");
    let (c1, c2) = (Netns::new("c"), Netns::new("c"));
    let d = Daemon::start(&host);
    d.must(&["network", "create", "blue", "--subnet", "10.41.0.0/24"]);
    for (c, ip) in [(&c1, "10.41.0.11"), (&c2, "10.41.0.12")] {
        // No IPv6 neighbour discovery in the middle of a counted capture.
        quiet_ipv6(c);
        d.must(&["network", "connect", "blue", "--netns", &c.name, "--ip", ip]);
    }
    // ARP is settled before any capture starts: the captures below expect ICMP only.
    assert!(c1.ping_until("10.41.0.12", Duration::from_secs(5)));
    (host, d, c1, c2)
}

/// ```text
///   c1 10.41.0.11 --[capture here]-- vswitch "blue" -- c2 10.41.0.12
/// ```
/// A capture of c1's port during two pings holds exactly the two requests (rx) and two
/// replies (tx); tcpdump reads the file; `-c 4` ends the capture and the daemon's session.
#[test]
fn capture_of_a_port_during_ping_is_a_pcap_tcpdump_reads() {
    require_root();
    let (_host, d, c1, _c2) = bridge_pair();
    let file = pcap_path("cap");
    let file_arg = file.display().to_string();
    let cap = Capture::start(&d, &[&c1.name, "-w", &file_arg, "-c", "4"]);
    assert!(c1.ping("10.41.0.12", 2, 56));
    let out = cap.wait(Duration::from_secs(10));
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("4 frames captured"), "{summary}");
    let lines = tcpdump(&file);
    let requests = lines
        .lines()
        .filter(|l| l.contains("10.41.0.11 > 10.41.0.12: ICMP echo request"))
        .count();
    let replies = lines
        .lines()
        .filter(|l| l.contains("10.41.0.12 > 10.41.0.11: ICMP echo reply"))
        .count();
    assert_eq!((requests, replies), (2, 2), "tcpdump:\n{lines}");
    assert_session_ended(&d, "ended: 4 frames");
}

/// Without `-w`: one line per frame, with the port, the direction and the ICMP summary;
/// Ctrl-C ends it cleanly, and the daemon stops copying.
#[test]
fn capture_of_a_network_prints_lines_and_stops_on_ctrl_c() {
    require_root();
    let (_host, d, c1, c2) = bridge_pair();
    let cap = Capture::start(&d, &["blue"]);
    assert!(c1.ping("10.41.0.12", 1, 56));
    std::thread::sleep(Duration::from_millis(300));
    let out = cap.interrupt();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let has = |port: &str, dir: &str, what: &str| {
        text.lines()
            .any(|l| l.contains(&format!(" {port} {dir} ")) && l.contains(what))
    };
    // The request enters at c1's port and leaves at c2's; the reply the other way.
    assert!(
        has(&c1.name, "rx", "10.41.0.11 > 10.41.0.12 ICMP echo request"),
        "{text}"
    );
    assert!(
        has(&c2.name, "tx", "10.41.0.11 > 10.41.0.12 ICMP echo request"),
        "{text}"
    );
    assert!(
        has(&c2.name, "rx", "10.41.0.12 > 10.41.0.11 ICMP echo reply"),
        "{text}"
    );
    assert!(
        has(&c1.name, "tx", "10.41.0.12 > 10.41.0.11 ICMP echo reply"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("(interrupted)"));
    assert_session_ended(&d, "capture of 'blue' ended");
    // Mistakes are one clear line and a non-zero exit.
    let bad = d.cli(&["capture", "nosuch"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nothing named 'nosuch'"));
    let bad = d.cli(&["capture", "blue", "--outer"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an overlay network"));
}

/// `-w -` writes the pcap to stdout, so tcpdump's filters apply (`| tcpdump -r - FILTER`).
/// When the reader exits (`tcpdump -c 2`, `head -n 1`), the capture ends at its next
/// frame by SIGPIPE, quietly, as any command in a pipe does, and the daemon stops
/// copying.
#[test]
fn capture_to_a_pipe_feeds_tcpdumps_filter_and_ends_with_its_reader() {
    require_root();
    let (_host, d, c1, _c2) = bridge_pair();

    let mut cap = Capture::start(&d, &["blue", "-w", "-"]);
    let pcap = cap.take_stdout();
    // A network capture sees each reply twice: in at c2's port, out at c1's.
    let filter = Command::new("tcpdump")
        .args([
            "-n",
            "-l",
            "-c",
            "2",
            "-r",
            "-",
            "icmp[icmptype] == icmp-echoreply",
        ])
        .stdin(pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(c1.ping("10.41.0.12", 1, 56));
    let filtered = filter.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&filtered.stdout);
    assert!(filtered.status.success(), "tcpdump: {filtered:?}");
    let replies = text
        .lines()
        .filter(|l| l.contains("ICMP echo reply"))
        .count();
    assert_eq!(replies, 2, "tcpdump printed:\n{text}");
    assert!(
        !text.contains("echo request"),
        "the filter let requests through:\n{text}"
    );
    // The next frame finds the pipe closed.
    assert!(c1.ping("10.41.0.12", 1, 56));
    let out = cap.wait(Duration::from_secs(10));
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_session_ended(&d, "capture of 'blue' ended");

    // The same for lines under `| head -n 1`.
    let mut cap = Capture::start(&d, &[&c1.name]);
    let lines = cap.take_stdout();
    let head = Command::new("head")
        .args(["-n", "1"])
        .stdin(lines)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(c1.ping("10.41.0.12", 1, 56));
    let first = head.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&first.stdout).contains("ICMP echo"));
    assert!(c1.ping("10.41.0.12", 1, 56));
    let out = cap.wait(Duration::from_secs(10));
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
    assert_session_ended(&d, &format!("capture of '{}' ended", c1.name));
}

/// ```text
///   c1 10.89.0.17 -- [h1 vswitch]==underlay (UDP 4789, VNI 43)==[h2 vswitch] -- c2 10.89.0.33
/// ```
/// `--outer` on the underlay shows the VXLAN datagrams with their outer headers (tcpdump
/// decodes UDP 4789 as VXLAN, VNI 43, and the ICMP inside); `--inner` on the network
/// shows the inner frames at the peer.
#[test]
fn capture_of_the_underlay_shows_vxlan_outer_and_inner() {
    require_root();
    let (_ul, a, b) = two_peered_hosts("", "green", 43, "10.89.0");
    let (c1, c2) = (Netns::new("c"), Netns::new("c"));
    quiet_ipv6(&c1);
    quiet_ipv6(&c2);
    for (h, c, ip) in [(&a, &c1, "10.89.0.17"), (&b, &c2, "10.89.0.33")] {
        h.d.must(&[
            "network", "connect", "green", "--netns", &c.name, "--ip", ip,
        ]);
    }
    assert!(c1.ping_until("10.89.0.33", Duration::from_secs(5)));

    let file = pcap_path("vx");
    let file_arg = file.display().to_string();
    let cap = Capture::start(&a.d, &["underlay", "--outer", "-w", &file_arg, "-c", "4"]);
    assert!(c1.ping("10.89.0.33", 2, 56));
    assert!(cap.wait(Duration::from_secs(10)).status.success());
    let lines = tcpdump(&file);
    let out = (
        format!("IP {}.", a.addr),
        format!("> {}.4789: VXLAN", b.addr),
    );
    let back = (
        format!("IP {}.", b.addr),
        format!("> {}.4789: VXLAN", a.addr),
    );
    // tcpdump prints the outer headers on one line and the inner packet on the next.
    let all: Vec<&str> = lines.lines().collect();
    let vxlan = |(from, to): &(String, String), what: &str| {
        all.windows(2).any(|w| {
            w[0].contains(from.as_str())
                && w[0].contains(to.as_str())
                && w[0].contains("vni 43")
                && w[1].contains(what)
        })
    };
    assert!(vxlan(&out, "ICMP echo request"), "tcpdump:\n{lines}");
    assert!(vxlan(&back, "ICMP echo reply"), "tcpdump:\n{lines}");

    let cap = Capture::start(&a.d, &["green", "--inner", "-c", "2"]);
    assert!(c1.ping("10.89.0.33", 1, 56));
    let out = cap.wait(Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out.stdout);
    let peer = format!(" vtep:{} ", b.addr);
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("{peer}tx")) && l.contains("ICMP echo request")),
        "{text}"
    );
}

/// ```text
///   c1 -- vswitch "red" -- [uplink ext0 203.0.113.2] -- outside 203.0.113.1
/// ```
/// The uplink capture sees the ping after masquerade (from the uplink's address), both
/// ways.
#[test]
fn capture_of_the_uplink_shows_masqueraded_traffic() {
    require_root();
    let lab = NatLab::new("");
    let c1 = lab.container_reaching_outside("red", "10.44.0.0/24");
    // Not a frame count: other frames cross the uplink too, as many as they like. Each
    // worker announces the uplink's address once when it first ticks (with two, the
    // second announcement may fall after the setup above), a worker that has not yet
    // routed to the gateway may ask for its MAC, and the outside sends IPv6 multicast.
    let cap = Capture::start(&lab.d, &["uplink"]);
    assert!(c1.ping(OUTSIDE, 1, 56));
    let request = |l: &String| {
        l.contains("uplink tx ") && l.contains(&format!("{EXTERNAL} > {OUTSIDE} ICMP echo request"))
    };
    let reply = |l: &String| {
        l.contains("uplink rx ") && l.contains(&format!("{OUTSIDE} > {EXTERNAL} ICMP echo reply"))
    };
    // The ping got its answer, so both crossed the uplink: the capture shows them soon.
    let lines = cap.lines_until(Duration::from_secs(10), |ls| {
        ls.iter().any(request) && ls.iter().any(reply)
    });
    assert!(lines.iter().any(request), "{lines:#?}");
    assert!(lines.iter().any(reply), "{lines:#?}");
}
