//! Shared pieces of the topology tests: network namespaces and daemons that clean up
//! after themselves (Drop guards, so a failing assertion still removes them), the CLI
//! runner, and waiting helpers. Every name carries the test process id and a counter, so
//! runs never collide; nothing is created in the root namespace except the daemons' state
//! directories under the system temp dir.

#![allow(dead_code)]

pub mod docker;
pub mod docker_tools;
pub mod nat;
pub mod overlay;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this run: `<tag><pid-suffix><n>`, at most 15 characters so it can
/// also serve as an interface name.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    let s = format!("{tag}{pid}x{n}");
    assert!(s.len() <= 15, "name {s} too long for an interface");
    s
}

/// Fails loudly when not root: these tests need namespaces, veth and TAP.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "topology tests need root (network namespaces, veth, TAP): run them as root, as CI does"
    );
}

/// The vswitch binary under test.
pub fn vswitch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vswitch"))
}

/// Runs a command and returns its output; panics when it cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop when this test made it.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    owned: bool,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        must("ip", &["netns", "add", &name]);
        let ns = Netns { name, owned: true };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A namespace something else made (and removes), e.g. `vswitch lab up`.
    pub fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            owned: false,
        }
    }

    /// `ip netns exec <ns> <cmd> <args>`, output returned whatever the status.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name, cmd];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Like `exec`, but the command must succeed; returns stdout.
    pub fn must(&self, cmd: &str, args: &[&str]) -> String {
        let out = self.exec(cmd, args);
        assert!(
            out.status.success(),
            "in {}: {cmd} {} failed: {}{}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip <args>` inside the namespace; must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        self.must("ip", args)
    }

    /// Spawns a long-running command inside the namespace.
    pub fn spawn(&self, cmd: &str, args: &[&str]) -> ChildGuard {
        let mut full = vec!["netns", "exec", &self.name, cmd];
        full.extend_from_slice(args);
        let child = Command::new("ip")
            .args(&full)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd}: {e}"));
        ChildGuard(Some(child))
    }

    /// Pings `addr` `count` times with payload `size`; true when all replies came back.
    pub fn ping(&self, addr: &str, count: u32, size: u32) -> bool {
        let c = count.to_string();
        let s = size.to_string();
        self.exec("ping", &["-c", &c, "-i", "0.2", "-W", "2", "-s", &s, addr])
            .status
            .success()
    }

    /// Pings `addr` `count` times with payload `size` and DF set (`-M do`); returns what
    /// ping printed, stdout and stderr together, where a "fragmentation needed" shows
    /// (see [`names_mtu`]).
    pub fn ping_df(&self, addr: &str, size: u32, count: u32) -> String {
        let (c, s) = (count.to_string(), size.to_string());
        let out = self.exec("ping", &["-c", &c, "-W", "2", "-M", "do", "-s", &s, addr]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Pings `addr` `count` times with payload `size` and DF clear (`-M dont`): the
    /// packet may be fragmented on the way. The ping's output and status.
    pub fn ping_no_df(&self, addr: &str, size: u32, count: u32) -> Output {
        let (c, s) = (count.to_string(), size.to_string());
        self.exec("ping", &["-c", &c, "-W", "2", "-M", "dont", "-s", &s, addr])
    }

    /// Pings until one reply comes back or `timeout` passes.
    pub fn ping_until(&self, addr: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.exec("ping", &["-c", "1", "-W", "1", addr])
                .status
                .success()
        })
    }

    /// An interface's rx packet counter inside the namespace.
    pub fn rx_packets(&self, ifname: &str) -> u64 {
        self.must(
            "cat",
            &[&format!("/sys/class/net/{ifname}/statistics/rx_packets")],
        )
        .trim()
        .parse()
        .unwrap_or(0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // Kill whatever still runs in it, then delete it.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process killed on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Waits for the process to end and returns its stdout.
    pub fn wait_output(mut self) -> Output {
        let child = self.0.take().expect("child already taken");
        child.wait_with_output().expect("wait for child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `vswitch run` daemon inside a namespace, with its own state dir and socket; killed on
/// drop.
#[derive(Debug)]
pub struct Daemon {
    pub netns: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: Option<PathBuf>,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon in `host`'s namespace and waits until it answers.
    pub fn start(host: &Netns) -> Daemon {
        Self::start_with_config(host, None)
    }

    pub fn start_with_config(host: &Netns, config: Option<&str>) -> Daemon {
        let dir = std::env::temp_dir().join(format!("vswitch-test-{}", unique("d")));
        std::fs::create_dir_all(&dir).expect("create daemon dir");
        let config = config.map(|text| {
            let p = dir.join("vswitch.toml");
            std::fs::write(&p, text).expect("write config");
            p
        });
        let mut d = Daemon {
            netns: host.name.clone(),
            socket: dir.join("vswitch.sock"),
            dir,
            config,
            child: None,
        };
        d.spawn();
        d
    }

    /// (Re)starts the daemon process with the same state dir and socket.
    pub fn spawn(&mut self) {
        self.spawn_with(false, &[])
    }

    /// Like `spawn`, with `JOURNAL_STREAM` naming the log file as systemd names the
    /// journal's stream: the daemon logs as it would under systemd.
    pub fn spawn_as_if_under_journald(&mut self) {
        self.spawn_with(true, &[])
    }

    /// Like `spawn`, with more environment variables, and `JOURNAL_STREAM` naming the log
    /// file when `journal`.
    pub fn spawn_with(&mut self, journal: bool, env: &[(&str, &str)]) {
        use std::os::unix::fs::MetadataExt;
        let bin = vswitch_bin();
        let state = self.dir.join("state");
        let log = std::fs::File::create(self.dir.join("daemon.log")).expect("log file");
        let meta = log.metadata().expect("log file metadata");
        let journal_stream = format!("{}:{}", meta.dev(), meta.ino());
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.netns.clone(),
            bin.display().to_string(),
            "run".into(),
            "--state-dir".into(),
            state.display().to_string(),
            "--socket".into(),
            self.socket.display().to_string(),
        ];
        if let Some(c) = &self.config {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        // VSWITCH_TEST_WORKERS=N runs every daemon with N workers (as on a machine with N
        // CPUs), except where a test's config sets its own.
        let config_sets_workers = self
            .config
            .as_ref()
            .and_then(|c| std::fs::read_to_string(c).ok())
            .is_some_and(|text| text.contains("workers"));
        if let Ok(n) = std::env::var("VSWITCH_TEST_WORKERS")
            && !config_sets_workers
        {
            args.push("--workers".into());
            args.push(n);
        }
        let mut cmd = Command::new("ip");
        cmd.args(&args).env("RUST_LOG", "info");
        if journal {
            cmd.env("JOURNAL_STREAM", journal_stream);
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vswitch run");
        self.child = Some(child);
        let ok = wait_until(Duration::from_secs(10), || {
            self.cli(&["network", "ls"]).status.success()
        });
        assert!(ok, "daemon did not come up; log:\n{}", self.log());
    }

    /// Runs the CLI against this daemon (from the root namespace: the socket is a file).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(vswitch_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run vswitch cli")
    }

    /// Runs the CLI; the command must succeed. Returns stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "vswitch {} failed: {}\ndaemon log:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI and parses its stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.must(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// `vswitch trace ARGS`: its steps as JSON, and the lines a person reads.
    pub fn trace(&self, args: &[&str]) -> (Vec<serde_json::Value>, String) {
        let mut json_args = vec!["trace"];
        json_args.extend_from_slice(args);
        let text = self.must(&json_args);
        json_args.extend_from_slice(&["--format", "json"]);
        let v = self.json(&json_args);
        let steps = v["steps"].as_array().expect("trace steps").clone();
        (steps, text)
    }

    /// The IPv4 address (without its prefix) of `endpoint` in `network`, from `network
    /// inspect`.
    pub fn endpoint_ipv4(&self, network: &str, endpoint: &str) -> String {
        let v = self.json(&["network", "inspect", network]);
        let addr = v[0]["Endpoints"][endpoint]["IPv4Address"]
            .as_str()
            .unwrap_or_else(|| panic!("no address for {endpoint} in {network}: {v}"));
        addr.split('/').next().unwrap_or(addr).to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `kill -9` and reap: the crash case.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the clean stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
            let pid = c.id();
            terminate(&mut c, pid);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state").join("state.json")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops child `c` cleanly: SIGTERM to `pid` (the child's own pid, or the process it
/// exec'd into when that differs), 10 s to exit, then SIGKILL; reaps the child.
pub fn terminate(c: &mut Child, pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Polls `f` every 100 ms until it holds or `timeout` passes.
/// Whether ping's output carries a "fragmentation needed" naming `mtu` (iputils prints
/// `mtu = N` for IPv4, `mtu=N` for IPv6).
pub fn names_mtu(ping_output: &str, mtu: u32) -> bool {
    ping_output.contains(&format!("mtu = {mtu}")) || ping_output.contains(&format!("mtu={mtu}"))
}

/// Sends UDP broadcasts to `broadcast` (port 9) from `ns` for `secs` seconds, as fast as
/// python3 can; returns how many left (sends the kernel refused are not counted).
pub fn broadcast_storm(ns: &Netns, broadcast: &str, secs: u32) -> u64 {
    const STORM: &str = "import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
end, n = time.time() + int(sys.argv[2]), 0
while time.time() < end:
    try:
        s.sendto(b'storm', (sys.argv[1], 9))
        n += 1
    except OSError:
        pass
print(n)";
    let out = ns.exec("python3", &["-c", STORM, broadcast, &secs.to_string()]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A 2 s broadcast storm of `sent` frames under `flood_limit_pps = 200`: the receiver
/// got about the limit's worth (`got`: 200 of burst, 400 over the 2 s, and a little
/// other traffic) and the switch counted most of the rest (`limited`). `stats` is shown
/// when it did not.
pub fn storm_held_to_200(sent: u64, got: u64, limited: u64, stats: &serde_json::Value) {
    eprintln!("storm: sent {sent} got {got} limited {limited}");
    assert!(
        sent > 5000,
        "the storm was too weak to show anything: {sent}"
    );
    assert!(
        (300..=800).contains(&got),
        "the receiver got {got} frames of a {sent}-frame storm (limit 200/s, burst 200)\n{stats}"
    );
    assert!(limited > 2000, "{stats}");
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs an iperf3 TCP test from `client` to `server_ip` (a server in `server`) for
/// `secs` seconds with `streams` streams; returns received bits per second.
pub fn iperf3_tcp(client: &Netns, server: &Netns, server_ip: &str, secs: u32, streams: u32) -> f64 {
    let t = secs.to_string();
    let p = streams.to_string();
    let out = with_iperf3_server(
        client,
        server,
        "iperf3",
        &["-c", server_ip, "-t", &t, "-P", &p, "-J"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
}

/// Runs `cmd args` in `client` (an iperf3 client, or one wrapped in `timeout`) while a
/// one-shot iperf3 server runs in `server`; returns the client's output. The server is
/// killed when the client is done, whether or not it connected.
pub fn with_iperf3_server(client: &Netns, server: &Netns, cmd: &str, args: &[&str]) -> Output {
    let srv = server.spawn("iperf3", &["-s", "-1"]);
    std::thread::sleep(Duration::from_millis(300));
    let out = client.exec(cmd, args);
    drop(srv);
    out
}

/// Reads a file in a directory; used to compare state files.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The steps of a trace ([`Daemon::trace`]) of one kind (`"mtu"`, `"egress"`, ...).
pub fn step<'a>(steps: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    steps.iter().filter(|s| s["step"] == kind).collect()
}
