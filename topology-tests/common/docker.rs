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
//!   the only thing forwarding); `--config-file` points at a file of ours, so the host's
//!   `/etc/docker/daemon.json` is not read, and it moves the trust key (otherwise
//!   `/etc/docker/key.json`) under our directory; `--cgroup-parent` with the cgroupfs
//!   driver puts the containers' cgroups under a parent named after the run, removed
//!   on drop; `--shutdown-timeout 2` keeps a stop short. The storage driver is dockerd's
//!   own choice (overlay2 on this machine's ext4 `/tmp`; dockerd falls back by itself
//!   where overlay is unavailable).
//! - **What still lands outside our directory**: dockerd 20.10 creates
//!   `/run/docker/plugins` and containerd 1.6's shims put their sockets in
//!   `/run/containerd/s/` (both paths are compiled in); the directories stay, empty.
//! - **The CLI** is the one from the same package (`/usr/bin/docker`), with
//!   `DOCKER_CONFIG` under our directory and `-H unix://<our socket>`: it never talks to
//!   any other daemon.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::docker_tools::{BUSYBOX, PATH, docker_cli, run_timeout, which};
use super::{Netns, terminate, unique, wait_until};

/// The applets linked in the test image.
const APPLETS: &[&str] = &[
    "sh", "ping", "ip", "nc", "wget", "sleep", "cat", "echo", "ls", "timeout",
];

/// A Docker engine (containerd + dockerd) running in a host's network namespace, with
/// its own data root, exec root, socket, pid file and trust key under `dir` and its
/// containers' cgroups under a parent of its own. Dropping it removes every container,
/// stops both daemons, kills whatever they left, unmounts what they mounted, removes
/// its cgroups and deletes `dir`.
#[derive(Debug)]
pub struct DockerEngine {
    pub netns: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// `--cgroup-parent`: the containers' cgroups are `/<this>/<id>` in every hierarchy.
    cgroup_parent: String,
    containerd: Option<Child>,
    dockerd: Option<Child>,
}

impl DockerEngine {
    /// Starts containerd and dockerd in `host`'s namespace and waits until dockerd
    /// answers (30 s at most; panics with both logs otherwise).
    pub fn start(host: &Netns) -> DockerEngine {
        let name = format!("vswitch-docker-{}", unique("k"));
        let dir = std::env::temp_dir().join(&name);
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
        // dockerd 20.10 keeps a trust key at /etc/docker/key.json unless told otherwise,
        // and only its config file can tell it.
        std::fs::write(
            dir.join("daemon.json"),
            format!("{{\"deprecated-key-path\": \"{d}/key.json\"}}\n"),
        )
        .expect("write daemon.json");
        let mut e = DockerEngine {
            netns: host.name.clone(),
            socket: dir.join("docker.sock"),
            pidfile: dir.join("dockerd.pid"),
            dir,
            cgroup_parent: name,
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
            // Named explicitly: the parent below is a cgroupfs path, and dockerd would
            // pick the systemd driver by itself on some cgroup v2 hosts.
            "--exec-opt".into(),
            "native.cgroupdriver=cgroupfs".into(),
            "--cgroup-parent".into(),
            format!("/{}", e.cgroup_parent),
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
            terminate(&mut c, pid);
        }
        if let Some(mut c) = self.containerd.take() {
            let pid = c.id();
            terminate(&mut c, pid);
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
        remove_cgroups(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes the cgroup `/<parent>` and the containers' cgroups under it, in every
/// hierarchy: `/sys/fs/cgroup/<parent>` (v2) and `/sys/fs/cgroup/<controller>/<parent>`
/// (v1). A cgroup is removed by `rmdir` of its directory once it has no processes and no
/// children; its files go with it.
fn remove_cgroups(parent: &str) {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut tops = vec![root.join(parent)];
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        tops.push(entry.path().join(parent));
    }
    for top in tops.iter().filter(|t| t.is_dir()) {
        for child in std::fs::read_dir(top).into_iter().flatten().flatten() {
            if child.path().is_dir() {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        let _ = std::fs::remove_dir(top);
    }
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
