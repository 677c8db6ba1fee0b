//! Hosts for overlay tests: namespaces joined by an underlay bridge (in a namespace of
//! its own), each host with an address on it, and a vswitch daemon configured with that
//! address as its VTEP — or a kernel vxlan device, for interop.

#![allow(dead_code)]

use super::{Daemon, Netns};

/// The underlay: a bridge in its own namespace, hosts at 192.168.77.<n>.
#[derive(Debug)]
pub struct Underlay {
    pub ns: Netns,
    pub mtu: u32,
    next: u8,
}

impl Underlay {
    pub fn new(mtu: u32) -> Underlay {
        let ns = Netns::new("ul");
        ns.ip(&["link", "add", "br0", "type", "bridge"]);
        ns.ip(&["link", "set", "br0", "up"]);
        Underlay { ns, mtu, next: 1 }
    }

    /// Joins `host` with a veth `ul0` and gives it the next address; returns it.
    pub fn join(&mut self, host: &Netns) -> String {
        let n = self.next;
        self.next += 1;
        let end = format!("p{n}");
        let mtu = self.mtu.to_string();
        self.ns.ip(&[
            "link", "add", &end, "mtu", &mtu, "type", "veth", "peer", "name", "ul0", "netns",
            &host.name,
        ]);
        self.ns.ip(&["link", "set", &end, "master", "br0", "up"]);
        host.ip(&["link", "set", "ul0", "mtu", &mtu, "up"]);
        let addr = format!("192.168.77.{n}");
        host.ip(&["addr", "add", &format!("{addr}/24"), "dev", "ul0"]);
        addr
    }
}

/// Two vswitch hosts on a new underlay (MTU 1500), each the other's peer, sharing the
/// overlay network `name` with VNI `vni` on `{net}.0/24`: the first host hands out
/// `{net}.16/28`, the second `{net}.32/28` (so `{net}.17` and `{net}.33` are theirs).
pub fn two_peered_hosts(
    extra_config: &str,
    name: &str,
    vni: u32,
    net: &str,
) -> (Underlay, VsHost, VsHost) {
    let mut ul = Underlay::new(1500);
    let a = VsHost::new(&mut ul, extra_config);
    let b = VsHost::new(&mut ul, extra_config);
    a.peer(&b.addr);
    b.peer(&a.addr);
    let subnet = format!("{net}.0/24");
    a.network(name, vni, &subnet, &format!("{net}.16/28"));
    b.network(name, vni, &subnet, &format!("{net}.32/28"));
    (ul, a, b)
}

/// A host running vswitch with its VTEP on the underlay.
#[derive(Debug)]
pub struct VsHost {
    pub ns: Netns,
    pub addr: String,
    pub d: Daemon,
}

impl VsHost {
    pub fn new(ul: &mut Underlay, extra_config: &str) -> VsHost {
        let ns = Netns::new("h");
        let addr = ul.join(&ns);
        let cfg = format!("[underlay]\nlocal = \"{addr}\"\ninterface = \"ul0\"\n{extra_config}\n");
        let d = Daemon::start_with_config(&ns, Some(&cfg));
        VsHost { ns, addr, d }
    }

    /// Creates overlay network `name` (VNI, subnet, this host's ip-range).
    pub fn network(&self, name: &str, vni: u32, subnet: &str, range: &str) {
        self.d.must(&[
            "network",
            "create",
            name,
            "--driver",
            "overlay",
            "--vni",
            &vni.to_string(),
            "--subnet",
            subnet,
            "--ip-range",
            range,
        ]);
    }

    /// A container namespace connected to `network`, with `ip`.
    pub fn container(&self, network: &str, ip: &str) -> Netns {
        let c = Netns::new("c");
        self.d.must(&[
            "network", "connect", network, "--netns", &c.name, "--ip", ip,
        ]);
        c
    }

    pub fn peer(&self, other: &str) {
        self.d.must(&["peer", "add", other]);
    }

    pub fn stats(&self) -> serde_json::Value {
        self.d.json(&["stats", "--format", "json"])
    }

    /// The stats of the port that connects `container` (`Null` when there is none).
    pub fn port(&self, container: &Netns) -> serde_json::Value {
        let s = self.stats();
        s["ports"]
            .as_array()
            .and_then(|ports| {
                ports
                    .iter()
                    .find(|p| p["endpoint"] == container.name.as_str())
            })
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }
}

/// A host with the Linux kernel's own VXLAN: vxlan device + bridge + a container veth,
/// the flannel-style setup. The kernel is the oracle that we speak VXLAN right.
#[derive(Debug)]
pub struct KernelHost {
    pub ns: Netns,
    pub addr: String,
    pub ctr: Netns,
}

impl KernelHost {
    pub fn new(
        ul: &mut Underlay,
        vni: u32,
        remote: &str,
        ctr_ip: &str,
        ctr_mtu: u32,
    ) -> KernelHost {
        let ns = Netns::new("k");
        let addr = ul.join(&ns);
        let vx = format!("vxlan{vni}");
        ns.ip(&[
            "link",
            "add",
            &vx,
            "type",
            "vxlan",
            "id",
            &vni.to_string(),
            "local",
            &addr,
            "remote",
            remote,
            "dstport",
            "4789",
            "dev",
            "ul0",
        ]);
        ns.ip(&["link", "add", "br0", "type", "bridge"]);
        ns.ip(&["link", "set", &vx, "master", "br0", "up"]);
        ns.ip(&["link", "set", "br0", "up"]);
        let ctr = Netns::new("c");
        let mtu = ctr_mtu.to_string();
        ns.ip(&[
            "link", "add", "ve0", "mtu", &mtu, "type", "veth", "peer", "name", "eth0", "netns",
            &ctr.name,
        ]);
        ns.ip(&["link", "set", "ve0", "master", "br0", "up"]);
        ctr.ip(&["link", "set", "eth0", "mtu", &mtu, "up"]);
        ctr.ip(&["addr", "add", ctr_ip, "dev", "eth0"]);
        KernelHost { ns, addr, ctr }
    }
}
