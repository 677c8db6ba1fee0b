//! Test lab: throw-away network namespaces, `ip` commands in them, and threads that run
//! inside them.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::port::sys::netns;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace made for one test (`ip netns add`), deleted on drop even when the
/// test fails. Interfaces in it go with it (a TAP moved into it is deleted too).
pub struct Ns {
    pub name: String,
}

impl Ns {
    /// A fresh namespace with loopback up. `role` ends its name, for reading `ip netns`.
    pub fn new(role: &str) -> Ns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("vst-{}-{n}-{role}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME args...`; panics with ip's message on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        try_ip_n(&self.name, args)
    }

    /// Runs `cmd` inside the namespace (`ip netns exec`).
    pub fn exec(&self, cmd: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        try_run(&full)
    }

    /// Whether interface `ifname` exists in this namespace.
    pub fn has_link(&self, ifname: &str) -> bool {
        self.try_ip(&["link", "show", "dev", ifname]).is_ok()
    }

    /// Writes a sysctl of this namespace the way the daemon would: from a thread that
    /// entered it (`/proc/sys/net` shows the namespace of the thread that opens it).
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_owned();
        self.run(move || std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}")));
    }

    /// Runs `f` on a new thread that has entered this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let ns = netns::open_named(&self.name).expect("open test namespace");
        std::thread::spawn(move || {
            netns::enter(&ns).expect("enter test namespace");
            f()
        })
    }

    /// Runs `f` inside this namespace and returns what it returns (panics propagate).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if let Err(e) = try_run(&["ip", "netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A veth pair `a` (in `a_ns`) <-> `b` (in `b_ns`), both up.
pub fn veth(a_ns: &Ns, a: &str, b_ns: &Ns, b: &str) {
    a_ns.ip(&[
        "link", "add", a, "type", "veth", "peer", "name", b, "netns", &b_ns.name,
    ]);
    a_ns.ip(&["link", "set", a, "up"]);
    b_ns.ip(&["link", "set", b, "up"]);
}

/// What the daemon does to the switch's end of a link: no IPv6 on it, so the switch's
/// own stack sends no router solicitations or DAD probes into the container.
pub fn quiet_switch_side(sw: &Ns, ifname: &str) {
    sw.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "1");
}

/// `ip -n NS args...` by namespace name, for closures running on a namespace thread
/// (which cannot borrow the `Ns`); panics with ip's message on failure.
pub fn ip_n(ns: &str, args: &[&str]) -> String {
    try_ip_n(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

fn try_ip_n(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["ip", "-n", ns];
    full.extend_from_slice(args);
    try_run(&full)
}

fn run(cmd: &[&str]) -> String {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn try_run(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}
