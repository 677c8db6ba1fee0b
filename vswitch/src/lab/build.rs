//! Building a lab from its file and taking it down again. Everything made is named
//! after the lab (`<lab>-<host>`, `<lab>-<container>`, `<lab>-ul` for a bridged
//! underlay), and every daemon runs inside its host namespace, so deleting the lab's
//! namespaces removes every link and stops every daemon. Daemon files (config, state,
//! socket, log) live under `/run/vswitch-lab/<lab>/<host>/`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::daemon::LabDaemon;
use super::ns::{LabError, Netns, delete_netns, sh};
use super::topology::{LabFile, UnderlayKind};
use crate::control::api::{Attach, NetworkConnect, NetworkCreate, Request};
use crate::control::state::Driver;

/// Where labs keep their daemons' files.
pub const LAB_RUN_DIR: &str = "/run/vswitch-lab";

/// A built lab. Dropping it tears everything down; `keep` leaves it running.
#[derive(Debug)]
pub struct Lab {
    pub file: LabFile,
    pub dir: PathBuf,
    /// Daemons by host, in file order (dropped before the namespaces).
    pub daemons: Vec<(String, LabDaemon)>,
    /// Container addresses as IPAM gave them, by container name.
    pub addresses: Vec<(String, Ipv4Addr)>,
    namespaces: Vec<Netns>,
    kept: bool,
}

impl Lab {
    pub fn dir_of(name: &str) -> PathBuf {
        PathBuf::from(LAB_RUN_DIR).join(name)
    }

    /// Builds the lab; on any failure, what was built so far is removed.
    pub fn build(file: &LabFile) -> Result<Lab, LabError> {
        let dir = Self::dir_of(&file.name);
        let first_host = file.ns(&file.hosts[0].name);
        if dir.exists()
            || sh("ip", &["netns", "list"])?
                .lines()
                .any(|l| l.split_whitespace().next() == Some(first_host.as_str()))
        {
            return Err(LabError::Other(format!(
                "lab '{}' seems to be up already (run `vswitch lab down` on its file first)",
                file.name
            )));
        }
        let mut lab = Lab {
            file: file.clone(),
            dir,
            daemons: Vec::new(),
            addresses: Vec::new(),
            namespaces: Vec::new(),
            kept: false,
        };
        lab.hosts_and_underlay()?;
        lab.daemons()?;
        lab.networks()?;
        lab.containers()?;
        Ok(lab)
    }

    fn hosts_and_underlay(&mut self) -> Result<(), LabError> {
        let f = self.file.clone();
        let mtu = f.underlay.mtu.to_string();
        let prefix = f.underlay.subnet.prefix_len();
        for h in &f.hosts {
            self.namespaces.push(Netns::create(&f.ns(&h.name))?);
        }
        match f.underlay.kind {
            UnderlayKind::Veth => {
                let (a, b) = (f.ns(&f.hosts[0].name), f.ns(&f.hosts[1].name));
                sh(
                    "ip",
                    &[
                        "-n", &a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0",
                        "netns", &b,
                    ],
                )?;
            }
            UnderlayKind::Bridge => {
                let ul = f.ns("ul");
                self.namespaces.push(Netns::create(&ul)?);
                sh("ip", &["-n", &ul, "link", "add", "br0", "type", "bridge"])?;
                sh("ip", &["-n", &ul, "link", "set", "br0", "up"])?;
                for h in &f.hosts {
                    let ns = f.ns(&h.name);
                    sh(
                        "ip",
                        &[
                            "-n", &ul, "link", "add", &h.name, "mtu", &mtu, "type", "veth", "peer",
                            "name", "ul0", "netns", &ns,
                        ],
                    )?;
                    sh(
                        "ip",
                        &["-n", &ul, "link", "set", &h.name, "master", "br0", "up"],
                    )?;
                }
            }
        }
        for (i, h) in f.hosts.iter().enumerate() {
            let ns = f.ns(&h.name);
            let addr = format!("{}/{prefix}", f.host_address(i));
            sh("ip", &["-n", &ns, "link", "set", "ul0", "mtu", &mtu, "up"])?;
            sh("ip", &["-n", &ns, "addr", "add", &addr, "dev", "ul0"])?;
        }
        Ok(())
    }

    fn daemons(&mut self) -> Result<(), LabError> {
        let f = self.file.clone();
        for (i, h) in f.hosts.iter().enumerate() {
            let dir = self.dir.join(&h.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| LabError::Other(format!("{}: {e}", dir.display())))?;
            let config = dir.join("vswitch.toml");
            let text = format!(
                "[underlay]\nlocal = \"{}\"\ninterface = \"ul0\"\n{}\n",
                f.host_address(i),
                h.config.as_deref().unwrap_or("")
            );
            std::fs::write(&config, text).map_err(|e| LabError::Other(e.to_string()))?;
            let d = LabDaemon::start(&f.ns(&h.name), &dir, Some(&config))?;
            for (j, _) in f.hosts.iter().enumerate().filter(|(j, _)| *j != i) {
                d.call(Request::PeerAdd {
                    ip: f.host_address(j).into(),
                    vnis: vec![],
                })?;
            }
            self.daemons.push((h.name.clone(), d));
        }
        Ok(())
    }

    fn networks(&mut self) -> Result<(), LabError> {
        for (host, d) in &self.daemons {
            for n in &self.file.networks {
                let overlay = n.driver == "overlay";
                d.call(Request::NetworkCreate(NetworkCreate {
                    name: n.name.clone(),
                    driver: if overlay {
                        Driver::Overlay
                    } else {
                        Driver::Bridge
                    },
                    vni: n.vni,
                    subnet: Some(n.subnet),
                    ip_range: n.ip_range.get(host).copied(),
                    mtu: n.mtu,
                    ..NetworkCreate::default()
                }))?;
            }
        }
        Ok(())
    }

    fn containers(&mut self) -> Result<(), LabError> {
        let f = self.file.clone();
        for c in &f.containers {
            let ns = Netns::create(&f.ns(&c.name))?;
            self.namespaces.push(ns);
            let d = self.daemon(&c.host)?;
            let v = d.call(Request::NetworkConnect(NetworkConnect {
                network: c.network.clone(),
                attach: Attach::Netns(f.ns(&c.name)),
                name: Some(c.name.clone()),
                ip: c.ip,
                mac: None,
                ifname: None,
                aliases: vec![],
            }))?;
            let ip = v["ipv4"]
                .as_str()
                .and_then(|s| s.split('/').next())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    LabError::Other(format!("container {}: no address in {v}", c.name))
                })?;
            self.addresses.push((c.name.clone(), ip));
        }
        Ok(())
    }

    pub fn daemon(&self, host: &str) -> Result<&LabDaemon, LabError> {
        self.daemons
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, d)| d)
            .ok_or_else(|| LabError::Other(format!("no host {host}")))
    }

    pub fn address(&self, container: &str) -> Option<Ipv4Addr> {
        self.addresses
            .iter()
            .find(|(c, _)| c == container)
            .map(|(_, a)| *a)
    }

    /// A container's (or host's) namespace guard.
    pub fn netns(&self, short: &str) -> Option<&Netns> {
        let name = self.file.ns(short);
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// What was built, for `lab up` to print.
    pub fn describe(&self) -> String {
        let f = &self.file;
        let mut s = format!(
            "lab {}: underlay {} ({:?}, MTU {})\n",
            f.name, f.underlay.subnet, f.underlay.kind, f.underlay.mtu
        );
        for (i, h) in f.hosts.iter().enumerate() {
            s += &format!(
                "  host {:<8} namespace {:<16} VTEP {:<15} socket {}\n",
                h.name,
                f.ns(&h.name),
                f.host_address(i),
                self.dir.join(&h.name).join("vswitch.sock").display()
            );
        }
        for n in &f.networks {
            s += &format!(
                "  network {:<6} {} vni {} subnet {}\n",
                n.name,
                n.driver,
                n.vni.map_or("-".into(), |v| v.to_string()),
                n.subnet
            );
        }
        for (c, ip) in &self.addresses {
            let spec = f.containers.iter().find(|x| &x.name == c);
            s += &format!(
                "  container {:<6} namespace {:<16} on {} in {}: eth0 {ip}\n",
                c,
                f.ns(c),
                spec.map_or("", |x| x.host.as_str()),
                spec.map_or("", |x| x.network.as_str())
            );
        }
        s
    }

    /// What [`Lab::describe`] says, as JSON (`lab up --format json`).
    pub fn describe_json(&self) -> serde_json::Value {
        use serde_json::json;
        let f = &self.file;
        let hosts: Vec<_> = f
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                json!({
                    "name": h.name,
                    "netns": f.ns(&h.name),
                    "vtep": f.host_address(i).to_string(),
                    "socket": self.dir.join(&h.name).join("vswitch.sock"),
                })
            })
            .collect();
        let networks: Vec<_> = f
            .networks
            .iter()
            .map(|n| json!({"name": n.name, "driver": n.driver, "vni": n.vni, "subnet": n.subnet}))
            .collect();
        let containers: Vec<_> = self
            .addresses
            .iter()
            .map(|(c, ip)| {
                let spec = f.containers.iter().find(|x| &x.name == c);
                json!({
                    "name": c,
                    "netns": f.ns(c),
                    "host": spec.map(|x| x.host.as_str()),
                    "network": spec.map(|x| x.network.as_str()),
                    "ipv4": ip,
                })
            })
            .collect();
        json!({
            "name": f.name,
            "underlay": {
                "subnet": f.underlay.subnet,
                "kind": format!("{:?}", f.underlay.kind).to_lowercase(),
                "mtu": f.underlay.mtu,
            },
            "hosts": hosts,
            "networks": networks,
            "containers": containers,
        })
    }

    /// Leaves the lab running (`lab up`).
    pub fn keep(mut self) {
        for (_, d) in self.daemons.drain(..) {
            d.keep();
        }
        for n in self.namespaces.drain(..) {
            n.keep();
        }
        self.kept = true;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // Daemons first (cleanly: SIGTERM), then the namespaces and the files.
        self.daemons.clear();
        self.namespaces.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes every namespace, link and daemon a lab file describes, and its files.
pub fn down(file: &LabFile) -> Result<Vec<String>, LabError> {
    let ours: Vec<String> = file
        .hosts
        .iter()
        .map(|h| file.ns(&h.name))
        .chain(file.containers.iter().map(|c| file.ns(&c.name)))
        .chain(std::iter::once(file.ns("ul")))
        .collect();
    let mut removed = Vec::new();
    for line in sh("ip", &["netns", "list"])?.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if ours.iter().any(|o| o == name) {
            delete_netns(name);
            removed.push(name.to_string());
        }
    }
    let _ = std::fs::remove_dir_all(Lab::dir_of(&file.name));
    Ok(removed)
}
