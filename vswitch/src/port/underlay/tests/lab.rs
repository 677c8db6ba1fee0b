//! Test lab for the underlay: throw-away namespaces joined by a veth, and an AF_PACKET
//! capture that reports what the outer headers of our datagrams looked like on the wire.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::packet::PacketBuf;
use crate::port::sys::ifname::if_nametoindex;
use crate::port::sys::mmsg::MmsgBatch;
use crate::port::sys::netns;
use crate::port::sys::packet_socket::PacketSocket;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace made for one test (`vsu<pid>x<n>`), deleted on drop even when
/// the test fails.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new() -> Ns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("vsu{}x{n}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME args...`, returning what it printed; panics with ip's message on
    /// failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut cmd = vec!["ip", "-n", &self.name];
        cmd.extend_from_slice(args);
        run(&cmd)
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result
    /// (panics propagate).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = netns::open_named(&self.name).expect("open test namespace");
        let thread = std::thread::spawn(move || {
            netns::enter(&ns).expect("enter test namespace");
            f()
        });
        match thread.join() {
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

/// Two namespaces joined by a veth `va` (in `a`) <-> `vb` (in `b`), MTU 1500, with
/// 192.0.2.1/24 and 2001:db8::1/64 on `va`, .2 and ::2 on `vb` (no DAD), both up, and
/// ready: `new` returns once the kernel has both ends operationally up.
pub struct Pair {
    pub a: Ns,
    pub b: Ns,
}

impl Pair {
    pub fn new() -> Pair {
        let (a, b) = (Ns::new(), Ns::new());
        a.ip(&[
            "link", "add", "va", "mtu", "1500", "type", "veth", "peer", "name", "vb", "mtu",
            "1500", "netns", &b.name,
        ]);
        for (ns, dev, v4, v6) in [
            (&a, "va", "192.0.2.1/24", "2001:db8::1/64"),
            (&b, "vb", "192.0.2.2/24", "2001:db8::2/64"),
        ] {
            ns.ip(&["addr", "add", v4, "dev", dev]);
            ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        // `ip link set up` returns before the kernel's link watch has marked the carrier
        // up and given the device its queue: a first datagram (or the neighbour
        // solicitation it waits on) sent in that window is dropped, and resolution
        // retries only a second later.
        let deadline = Instant::now() + Duration::from_secs(5);
        for (ns, dev) in [(&a, "va"), (&b, "vb")] {
            while !ns
                .ip(&["-o", "link", "show", "dev", dev])
                .contains("state UP")
            {
                assert!(Instant::now() < deadline, "{dev} never came up");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Pair { a, b }
    }
}

/// The outer headers of one captured IPv4 VXLAN datagram.
#[derive(Debug)]
pub struct Seen {
    pub len: usize,
    pub dont_fragment: bool,
    pub udp_checksum: u16,
    /// The virtio_net_hdr GSO type: 0 for a plain datagram, 5 (UDP_L4) for a GSO run.
    pub gso_type: u8,
}

/// An AF_PACKET socket on an interface, reading IPv4 UDP datagrams to port 4789.
pub struct Capture {
    sock: PacketSocket,
}

impl Capture {
    /// Starts capturing on `ifname` in `ns`: every frame from now on is queued.
    pub fn start(ns: &Ns, ifname: &str) -> Capture {
        let ifname = ifname.to_owned();
        let sock = ns.run(move || {
            let sock = PacketSocket::new().expect("AF_PACKET socket");
            sock.set_vnet_hdr(true).expect("PACKET_VNET_HDR");
            sock.bind(if_nametoindex(&ifname).expect("ifindex"))
                .expect("bind");
            sock
        });
        Capture { sock }
    }

    /// Reads until `want` VXLAN datagrams were seen or a second passed.
    pub fn finish(self, want: usize) -> Vec<Seen> {
        let mut batch = MmsgBatch::new(16);
        let mut bufs: Vec<PacketBuf> = (0..16).map(|_| PacketBuf::new()).collect();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while seen.len() < want && Instant::now() < deadline {
            use std::os::fd::AsFd;
            let n = batch.recv(self.sock.as_fd(), &mut bufs).unwrap_or(0);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            for (i, buf) in bufs[..n].iter_mut().enumerate() {
                let len = batch
                    .received_len(i)
                    .saturating_sub(crate::packet::VNET_HDR_LEN);
                buf.set_len(len);
                seen.extend(parse(buf));
            }
        }
        seen
    }
}

/// The outer headers, when `buf` is Ethernet + IPv4 + UDP to port 4789.
fn parse(buf: &PacketBuf) -> Option<Seen> {
    let f = buf.frame();
    let be16 = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
    if be16(12)? != 0x0800 || *f.get(23)? != 17 {
        return None;
    }
    let udp = 14 + usize::from(f[14] & 0x0f) * 4;
    if be16(udp + 2)? != vtep::VXLAN_PORT {
        return None;
    }
    Some(Seen {
        len: f.len(),
        dont_fragment: f[20] & 0x40 != 0,
        udp_checksum: be16(udp + 6)?,
        gso_type: buf.vnet[1],
    })
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
            "{} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
