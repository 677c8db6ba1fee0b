//! A real Docker engine for topology tests: Debian's `docker.io` (dockerd 20.10 and
//! containerd 1.6), started by the test inside a host namespace with every path of its
//! own under one temporary directory, and an image made without any registry from
//! Debian's `busybox-static`.
//!
//! What it takes to run a private engine beside whatever else runs on the machine:
//!
//! - **`nsenter --net`, not `ip netns exec`.** `ip netns exec` gives the command a mount
//!   namespace with a fresh `/sys`, which hides `/sys/fs/cgroup`; dockerd then refuses
//!   to start ("Devices cgroup isn't mounted"). Entering only the network namespace
//!   keeps the host's mounts; dockerd's own mounts (overlay2 layers, the bind mount of
//!   its data root, the containers' network namespace files) land in the host's mount
//!   namespace, all under our directory, and [`DockerEngine`]'s drop unmounts any left.
//! - **Our own containerd.** Without `--containerd`, dockerd 20.10 uses the system's
//!   containerd whenever `/run/containerd/containerd.sock` exists, and would then share
//!   it (and its `moby` namespace) with the machine's own Docker. So the test starts a
//!   containerd of its own (root, state and socket under our directory) and points
//!   dockerd at it.
//! - **Flags.** `--iptables=false --ip6tables=false --ip-forward=false --bridge=none`:
//!   dockerd leaves the namespace's firewall, sysctls and bridges alone (the switch is
//!   the only thing forwarding); `--config-file` points at an empty file so the host's
//!   `/etc/docker/daemon.json` is not read; `--shutdown-timeout 2` keeps a stop short.
//!   The storage driver is dockerd's own choice (overlay2 on this machine's ext4 `/tmp`;
//!   dockerd falls back by itself where overlay is unavailable).
//! - **The CLI** is the one from the same package (`/usr/bin/docker`), with
//!   `DOCKER_CONFIG` under our directory and `-H unix://<our socket>`: it never talks to
//!   any other daemon.

#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Netns, unique, wait_until};

/// Where Debian puts what `docker.io` installs: searched first, so that a different
/// Docker CLI earlier on the caller's PATH (e.g. in /usr/local/bin) is not picked up.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";

/// The busybox that `busybox-static` installs.
const BUSYBOX: &str = "/bin/busybox";

/// The applets linked in the test image.
const APPLETS: &[&str] = &[
    "sh", "ping", "ip", "nc", "wget", "sleep", "cat", "echo", "ls", "timeout",
];

/// Finds `name` on [`PATH`].
pub fn which(name: &str) -> Option<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The Docker CLI to use: the one `docker.io` ships.
pub fn docker_cli() -> PathBuf {
    which("docker").unwrap_or_else(|| PathBuf::from("docker"))
}

/// What is missing for a Docker test, or `None` when nothing is.
fn missing() -> Option<String> {
    let mut miss = Vec::new();
    for tool in ["dockerd", "containerd", "runc", "docker"] {
        if which(tool).is_none() {
            miss.push(format!("{tool} not found"));
        }
    }
    if !Path::new(BUSYBOX).is_file() {
        miss.push(format!("{BUSYBOX} not found"));
    } else if !busybox_is_static() {
        miss.push(format!("{BUSYBOX} is not statically linked"));
    }
    (!miss.is_empty()).then(|| miss.join(", "))
}

/// A scratch image has no libc: the busybox copied into it must be static.
fn busybox_is_static() -> bool {
    // An ELF executable is dynamically linked exactly when it has a PT_INTERP header.
    let Ok(b) = std::fs::read(BUSYBOX) else {
        return false;
    };
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
    };
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    !(0..usize::from(phnum)).any(|i| {
        let o = usize::try_from(phoff).unwrap_or(usize::MAX) + i * usize::from(phentsize);
        b.get(o..o + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

/// Makes sure `docker.io` and `busybox-static` are installed, installing them with
/// apt-get when they are not. `Err` says why they cannot be had here: the one reason a
/// Docker test may skip.
pub fn ensure_installed() -> Result<(), String> {
    let Some(first) = missing() else {
        return Ok(());
    };
    let Some(apt) = which("apt-get") else {
        return Err(format!(
            "{first}, and there is no apt-get to install docker.io"
        ));
    };
    let install = || {
        run_timeout(
            Command::new(&apt)
                .args(["install", "-y", "-q", "docker.io", "busybox-static"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()),
            Duration::from_secs(600),
        )
    };
    let mut out = install();
    if !out.status.success() {
        // The package lists may be missing or stale: refresh them once and try again.
        let _ = run_timeout(
            Command::new(&apt)
                .args(["update", "-q"])
                .stdin(Stdio::null()),
            Duration::from_secs(300),
        );
        out = install();
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = why[why.len().saturating_sub(3)..].join(" / ");
        return Err(format!(
            "{first}; `apt-get install docker.io busybox-static` failed ({}): {tail}",
            out.status
        ));
    }
    match missing() {
        None => Ok(()),
        Some(still) => Err(format!("installed docker.io, yet {still}")),
    }
}

/// Runs a command with a time limit: killed when it is exceeded (then the status is a
/// failure and stderr says so). Stdin is the caller's to set (inherited otherwise).
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            // Report "cannot start" like a failed run, through a command that fails.
            let mut out = Command::new("false").output().expect("run false");
            out.stderr = format!("cannot start {:?}: {e}", cmd.get_program()).into_bytes();
            return out;
        }
    };
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let so = reader(Box::new(child.stdout.take().expect("stdout")));
    let se = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed child");
            }
        }
    };
    let stdout = so.join().unwrap_or_default();
    let mut stderr = se.join().unwrap_or_default();
    if timed_out {
        let _ = write!(
            stderr,
            "\n(killed after {timeout:?}: {:?} did not finish)",
            cmd.get_program()
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A Docker engine (containerd + dockerd) running in a host's network namespace, with
/// its own data root, exec root, socket and pid file under `dir`. Dropping it removes
/// every container, stops both daemons, kills whatever they left, unmounts what they
/// mounted and deletes `dir`.
#[derive(Debug)]
pub struct DockerEngine {
    pub netns: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    containerd: Option<Child>,
    dockerd: Option<Child>,
}

impl DockerEngine {
    /// Starts containerd and dockerd in `host`'s namespace and waits until dockerd
    /// answers (30 s at most; panics with both logs otherwise).
    pub fn start(host: &Netns) -> DockerEngine {
        let dir = std::env::temp_dir().join(format!("vswitch-docker-{}", unique("k")));
        std::fs::create_dir_all(dir.join("cli")).expect("create the engine's directory");
        let d = dir.display();
        let ctd_sock = dir.join("containerd").join("containerd.sock");
        std::fs::write(
            dir.join("containerd.toml"),
            format!(
                "version = 2\nroot = \"{d}/containerd/root\"\nstate = \"{d}/containerd/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{}\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                ctd_sock.display()
            ),
        )
        .expect("write containerd.toml");
        std::fs::write(dir.join("daemon.json"), "{}\n").expect("write daemon.json");
        let mut e = DockerEngine {
            netns: host.name.clone(),
            socket: dir.join("docker.sock"),
            pidfile: dir.join("dockerd.pid"),
            dir,
            containerd: None,
            dockerd: None,
        };
        let ctd_cfg = e.dir.join("containerd.toml").display().to_string();
        e.containerd =
            Some(e.spawn_in_netns("containerd", &["--config", &ctd_cfg], "containerd.log"));
        let up = wait_until(Duration::from_secs(15), || ctd_sock.exists());
        assert!(up, "containerd did not come up\n{}", e.logs());
        let args = [
            "--config-file".to_string(),
            e.dir.join("daemon.json").display().to_string(),
            "--containerd".into(),
            ctd_sock.display().to_string(),
            "--data-root".into(),
            e.dir.join("data").display().to_string(),
            "--exec-root".into(),
            e.dir.join("exec").display().to_string(),
            "-H".into(),
            format!("unix://{}", e.socket.display()),
            "--pidfile".into(),
            e.pidfile.display().to_string(),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--ip-forward=false".into(),
            "--bridge=none".into(),
            "--shutdown-timeout".into(),
            "2".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        e.dockerd = Some(e.spawn_in_netns("dockerd", &args, "dockerd.log"));
        let up = wait_until(Duration::from_secs(30), || {
            e.cli(&["version"], Duration::from_secs(5)).status.success()
        });
        assert!(up, "dockerd did not come up\n{}", e.logs());
        e
    }

    fn spawn_in_netns(&self, tool: &str, args: &[&str], log: &str) -> Child {
        let bin = which(tool).unwrap_or_else(|| panic!("{tool} not found on {PATH}"));
        let log = std::fs::File::create(self.dir.join(log)).expect("create log file");
        let log2 = log.try_clone().expect("clone log file");
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(bin)
            .args(args)
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tool} with nsenter: {e}"))
    }

    /// Runs the Docker CLI against this engine, killed after `timeout`.
    pub fn cli(&self, args: &[&str], timeout: Duration) -> Output {
        run_timeout(
            Command::new(docker_cli())
                .arg("-H")
                .arg(format!("unix://{}", self.socket.display()))
                .args(args)
                .env("DOCKER_CONFIG", self.dir.join("cli"))
                .stdin(Stdio::null()),
            timeout,
        )
    }

    /// Runs the Docker CLI (60 s at most); it must succeed. Returns stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.cli(args, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "docker {} failed ({}): {}{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker exec CONTAINER ARGS...` (30 s at most), output whatever the status.
    pub fn exec(&self, container: &str, args: &[&str]) -> Output {
        let mut full = vec!["exec", container];
        full.extend_from_slice(args);
        self.cli(&full, Duration::from_secs(30))
    }

    /// Imports an image `tag` holding only a static busybox and its applets
    /// ([`APPLETS`]), with `sh` as its command: no registry involved.
    pub fn import_busybox(&self, tag: &str) {
        let root = self.dir.join("image");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).expect("create image dir");
        std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(a)).expect("applet link");
        }
        // `tar -C DIR -c . | docker import - TAG`
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run tar");
        let out = run_timeout(
            Command::new(docker_cli())
                .arg("-H")
                .arg(format!("unix://{}", self.socket.display()))
                .args(["import", "--change", "CMD [\"/bin/sh\"]", "-", tag])
                .env("DOCKER_CONFIG", self.dir.join("cli"))
                .stdin(tar.stdout.take().expect("tar's stdout")),
            Duration::from_secs(60),
        );
        let tar_ok = tar.wait().is_ok_and(|s| s.success());
        assert!(tar_ok, "tar -C {} -c . failed", root.display());
        assert!(
            out.status.success(),
            "docker import failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// The last lines of dockerd's and containerd's logs, for failure messages.
    pub fn logs(&self) -> String {
        let tail = |f: &str| {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- dockerd.log (last 40 lines) ---\n{}\n--- containerd.log (last 40 lines) ---\n{}",
            tail("dockerd.log"),
            tail("containerd.log")
        )
    }

    /// Stops everything this engine started; idempotent.
    fn shutdown(&mut self) {
        // Containers first, killed (SIGKILL): a `sleep` as PID 1 ignores SIGTERM, and
        // dockerd would otherwise wait for it on shutdown.
        if self.dockerd.is_some() {
            let ids = self.cli(&["ps", "-aq"], Duration::from_secs(10));
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.cli(&args, Duration::from_secs(30));
            }
        }
        // dockerd by its pid file (the pid `nsenter` exec'd into), then containerd.
        let pid = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(mut c) = self.dockerd.take() {
            let pid = pid.unwrap_or(c.id());
            stop(&mut c, pid);
        }
        if let Some(mut c) = self.containerd.take() {
            let pid = c.id();
            stop(&mut c, pid);
        }
        // Whatever is left that belongs to this engine: shims (their command line names
        // our containerd's socket) and everything under them.
        let dir = self.dir.display().to_string();
        let leftovers = descendants_of(|cmdline| cmdline.contains(&dir));
        for pid in &leftovers {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // Mounts under our directory, deepest first.
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// SIGTERM, 10 s to exit, then SIGKILL; reaps the child.
fn stop(c: &mut Child, pid: u32) {
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

/// Pids of the processes whose command line matches, and all their descendants.
fn descendants_of(matches: impl Fn(&str) -> bool) -> Vec<u32> {
    let mut procs: Vec<(u32, u32, String)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        procs.push((pid, ppid, cmdline));
    }
    let me = std::process::id();
    let mut found: Vec<u32> = procs
        .iter()
        .filter(|(pid, _, cmd)| *pid != me && matches(cmd))
        .map(|(pid, _, _)| *pid)
        .collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (pid, ppid, _) in &procs {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found
}

/// Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as
/// `\NNN` (octal).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
