//! Endpoints: `network connect` / `disconnect`, and bringing endpoints back after a
//! restart. A veth endpoint's container end is created straight inside its namespace;
//! a TAP endpoint is a persistent TAP (so a Docker macvlan network using it as parent
//! survives a daemon crash; a clean stop deletes it, see `lifecycle.rs`); an `--iface`
//! endpoint is an existing interface that the switch only attaches to.

use std::net::Ipv4Addr;
use std::time::Instant;

use fdb::MacAddr;
use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::api::{Attach, NetworkConnect};
use super::error::ControlError;
use super::ids;
use super::ipam;
use super::links::{self, LinkError, VethSpec};
use super::manager::{Manager, validate_name};
use super::router::published_ports;
use super::state::{Endpoint, Network};
use crate::datapath::counters::DropReason;
use crate::datapath::worker::Queues;
use crate::port::af_packet::PacketPort;
use crate::port::tap::TapPort;
use crate::port::{Port, PortKind, steer};

/// Interface name inside a container unless `--ifname` says otherwise.
const DEFAULT_IFNAME: &str = "eth0";

impl Manager {
    pub(super) fn connect(&mut self, c: NetworkConnect) -> Result<Value, ControlError> {
        let net = self.network(&c.network)?.clone();
        let (default_name, kind) = match &c.attach {
            Attach::Netns(ns) => (ns.clone(), PortKind::Veth),
            Attach::Tap(n) => (n.clone(), PortKind::Tap),
            Attach::Iface(n) => (n.clone(), PortKind::Iface),
        };
        let name = c.name.clone().unwrap_or(default_name);
        validate_name("endpoint", &name)?;
        if net.endpoints.contains_key(&name) {
            return Err(ControlError::EndpointExists {
                network: net.name.clone(),
                endpoint: name,
            });
        }
        for a in &c.aliases {
            validate_name("alias", a)?;
        }
        let (endpoint, port) = match &c.attach {
            Attach::Netns(ns) => self.connect_netns(&net, &c, ns, &name)?,
            Attach::Tap(ifname) => self.connect_tap(&net, &c, ifname, &name)?,
            Attach::Iface(ifname) => self.connect_iface(&c, ifname, &name)?,
        };
        let mut next = self.state.clone();
        if let Some(n) = next.networks.get_mut(&net.name) {
            n.endpoints.insert(name.clone(), endpoint.clone());
        }
        if let Err(e) = self.commit(next) {
            drop(port);
            remove_interface(kind, &endpoint.port);
            return Err(e);
        }
        self.attach(&net.name, &name, port);
        Ok(json!({
            "endpoint": name,
            "port": endpoint.port,
            "mac": endpoint.mac,
            "ipv4": endpoint.ipv4.map(|ip| Ipv4Net::new(ip, net.ipam.subnet.prefix_len()).map(|n| n.to_string()).unwrap_or_default()),
        }))
    }

    fn connect_netns(
        &self,
        net: &Network,
        c: &NetworkConnect,
        ns: &str,
        name: &str,
    ) -> Result<(Endpoint, Queues), ControlError> {
        links::open_netns(ns)?;
        let ifname = c
            .ifname
            .clone()
            .unwrap_or_else(|| DEFAULT_IFNAME.to_string());
        validate_ifname(&ifname)?;
        let ip = ipam::allocate(net, c.ip)?;
        let mac = c.mac.unwrap_or_else(|| mac_from_ip(ip));
        check_mac(net, mac)?;
        let host = self.fresh_port_name();
        let address = Ipv4Net::new(ip, net.ipam.subnet.prefix_len())
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        links::create_veth(&VethSpec {
            host_ifname: host.clone(),
            netns: ns.to_string(),
            ifname: ifname.clone(),
            mac,
            mtu: net.mtu,
            address: Some(address),
            gateway: Some(net.ipam.gateway),
        })?;
        let port = match open_port(PortKind::Veth, &host, self.workers.len()) {
            Ok(p) => p,
            Err(e) => {
                let _ = links::delete(&host);
                return Err(e);
            }
        };
        let ep = Endpoint {
            name: name.to_string(),
            kind: PortKind::Veth,
            port: host,
            mac: Some(mac),
            ipv4: Some(ip),
            netns: Some(ns.to_string()),
            ifname: Some(ifname),
            aliases: c.aliases.clone(),
        };
        Ok((ep, port))
    }

    fn connect_tap(
        &self,
        net: &Network,
        c: &NetworkConnect,
        ifname: &str,
        name: &str,
    ) -> Result<(Endpoint, Queues), ControlError> {
        if c.ifname.is_some() {
            return Err(ControlError::Invalid(
                "--ifname applies to --netns endpoints only".into(),
            ));
        }
        validate_ifname(ifname)?;
        self.check_not_a_port(ifname)?;
        if links::exists(ifname) {
            return Err(LinkError::Exists(ifname.to_string(), String::new()).into());
        }
        // A TAP endpoint's address is what the VM or macvlan child behind it will use:
        // reserved in IPAM only when asked for.
        let ip = c.ip.map(|ip| ipam::allocate(net, Some(ip))).transpose()?;
        if let Some(mac) = c.mac {
            check_mac(net, mac)?;
        }
        let port = open_port(PortKind::Tap, ifname, self.workers.len())?;
        if let Err(e) = links::set_up(ifname, Some(net.mtu)) {
            drop(port);
            remove_interface(PortKind::Tap, ifname);
            return Err(e.into());
        }
        let ep = Endpoint {
            name: name.to_string(),
            kind: PortKind::Tap,
            port: ifname.to_string(),
            mac: c.mac,
            ipv4: ip,
            netns: None,
            ifname: None,
            aliases: c.aliases.clone(),
        };
        Ok((ep, port))
    }

    fn connect_iface(
        &self,
        c: &NetworkConnect,
        ifname: &str,
        name: &str,
    ) -> Result<(Endpoint, Queues), ControlError> {
        if c.ip.is_some() || c.mac.is_some() || c.ifname.is_some() {
            return Err(ControlError::Invalid(
                "--ip, --mac and --ifname do not apply to --iface: the interface keeps its own configuration".into(),
            ));
        }
        validate_ifname(ifname)?;
        self.check_not_a_port(ifname)?;
        if !links::exists(ifname) {
            return Err(LinkError::NotFound(ifname.to_string()).into());
        }
        let port = open_port(PortKind::Iface, ifname, self.workers.len())?;
        links::set_up(ifname, None)?;
        let ep = Endpoint {
            name: name.to_string(),
            kind: PortKind::Iface,
            port: ifname.to_string(),
            mac: None,
            ipv4: None,
            netns: None,
            ifname: None,
            aliases: c.aliases.clone(),
        };
        Ok((ep, port))
    }

    pub(super) fn disconnect(
        &mut self,
        network: &str,
        endpoint: &str,
    ) -> Result<Value, ControlError> {
        let net = self.network(network)?;
        let ep =
            net.endpoints
                .get(endpoint)
                .cloned()
                .ok_or_else(|| ControlError::NoSuchEndpoint {
                    network: network.to_string(),
                    endpoint: endpoint.to_string(),
                })?;
        let mut next = self.state.clone();
        if let Some(n) = next.networks.get_mut(network) {
            n.endpoints.remove(endpoint);
        }
        Self::forget_published(&mut next, network, endpoint);
        self.commit(next)?;
        if let Some(nat) = &self.nat {
            nat.set_published(published_ports(&self.state));
            if let Some(ip) = ep.ipv4 {
                nat.remove_endpoint(ip);
            }
        }
        if let Some(id) = self.port_of(network, endpoint) {
            drop(self.detach(id)?);
        }
        remove_interface(ep.kind, &ep.port);
        Ok(json!(endpoint))
    }

    /// Attaches every endpoint of the state whose interface is there (after a restart),
    /// and those whose interface came back (called periodically). TAPs are recreated.
    pub fn reattach(&mut self) {
        if self.stopped {
            return;
        }
        let detached: Vec<(String, Endpoint)> = self
            .state
            .endpoints()
            .filter(|(n, e)| self.port_of(&n.name, &e.name).is_none())
            .map(|(n, e)| (n.name.clone(), e.clone()))
            .collect();
        for (network, ep) in detached {
            if ep.kind != PortKind::Tap && !links::exists(&ep.port) {
                continue;
            }
            match open_port(ep.kind, &ep.port, self.workers.len()) {
                Ok(port) => {
                    if ep.kind == PortKind::Tap {
                        let mtu = self.state.networks.get(&network).map(|n| n.mtu);
                        if let Err(e) = links::set_up(&ep.port, mtu) {
                            tracing::warn!("endpoint '{}': {e}", ep.name);
                        }
                    }
                    // A veth that outlived the daemon may come from a version that left
                    // the container's tunnel offloads on.
                    if let (PortKind::Veth, Some(ns), Some(ifname)) =
                        (ep.kind, &ep.netns, &ep.ifname)
                    {
                        let off = links::limit_container_offloads(ns, ifname);
                        if !off.is_empty() {
                            tracing::info!(
                                "endpoint '{}': turned {} off in its container",
                                ep.name,
                                off.join(", ")
                            );
                        }
                    }
                    tracing::info!(
                        "endpoint '{}' of network '{network}' attached on {}",
                        ep.name,
                        ep.port
                    );
                    self.attach(&network, &ep.name, port);
                }
                Err(e) => tracing::warn!("endpoint '{}' of network '{network}': {e}", ep.name),
            }
        }
    }

    /// Turns a container's tunnel offloads off again once its port has dropped frames as
    /// `bad_vnet_hdr` since the last look (called periodically): someone turned them back
    /// on inside the container, and until they are off its tunnelled TCP is lost. Only
    /// veth endpoints are touched, whose container end the switch made; for an interface
    /// attached by name the log says what to turn off, and where. The check reads
    /// counters the workers keep anyway, so a quiet port costs nothing.
    pub fn recheck_offloads(&mut self) {
        let now = Instant::now();
        for a in self.ports.values_mut() {
            let dropped = a.counters.drops(DropReason::BadVnetHdr);
            let Some(new) = a.offloads.due(dropped, now) else {
                continue;
            };
            let ep = self.state.networks.get(&a.network);
            let Some(ep) = ep.and_then(|n| n.endpoints.get(&a.endpoint)) else {
                continue;
            };
            if ep.kind == PortKind::Iface {
                // Someone else's interface: say what to turn off where, and back off
                // as after a fruitless look.
                tracing::warn!(
                    "endpoint '{}' of network '{}' (interface {}): {new} frame(s) dropped as \
                     bad_vnet_hdr; if what sends into it runs tunnels, turn their \
                     segmentation offloads off there (ethtool -K <dev> \
                     tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off)",
                    a.endpoint,
                    a.network,
                    ep.port
                );
                a.offloads.looked(false, now);
                continue;
            }
            let (PortKind::Veth, Some(ns), Some(ifname)) = (ep.kind, &ep.netns, &ep.ifname) else {
                continue;
            };
            let off = links::limit_container_offloads(ns, ifname);
            a.offloads.looked(!off.is_empty(), now);
            if !off.is_empty() {
                tracing::warn!(
                    "endpoint '{}' of network '{}': {new} frame(s) dropped as bad_vnet_hdr; \
                     someone turned tunnel offloads back on in its container; turned off \
                     again: {}",
                    a.endpoint,
                    a.network,
                    off.join(", ")
                );
            }
        }
    }

    fn check_not_a_port(&self, ifname: &str) -> Result<(), ControlError> {
        if self.state.endpoints().any(|(_, e)| e.port == ifname) {
            return Err(ControlError::AlreadyAttached(ifname.to_string()));
        }
        Ok(())
    }

    fn fresh_port_name(&self) -> String {
        loop {
            let n = ids::port_ifname();
            if !self.state.endpoints().any(|(_, e)| e.port == n) && !links::exists(&n) {
                return n;
            }
        }
    }
}

/// Opens `queues` queues of a port, one per worker. The queues share flows by a hash
/// that is the same both ways ([`crate::port::steer::flow_lanes`], and
/// [`crate::port::steer::tap_lanes`] for a TAP): one worker reads a flow's requests
/// and its answers, from a local port or a peer.
fn open_port(kind: PortKind, ifname: &str, queues: usize) -> Result<Queues, ControlError> {
    let err = |msg: String| ControlError::Port {
        port: ifname.to_string(),
        msg,
    };
    Ok(match kind {
        PortKind::Tap => TapPort::open_queues(ifname, true, queues, Some(&steer::tap_lanes()))
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .map(|p| Box::new(p) as Box<dyn Port>)
            .collect(),
        PortKind::Veth | PortKind::Iface => {
            PacketPort::open_queues_steered(ifname, queues, Some(&steer::flow_lanes()))
                .map_err(|e| err(e.to_string()))?
                .into_iter()
                .map(|p| Box::new(p) as Box<dyn Port>)
                .collect()
        }
    })
}

/// Removes what `connect` created: the veth pair, or the TAP. An attached `--iface`
/// belongs to someone else and stays.
pub(super) fn remove_interface(kind: PortKind, ifname: &str) {
    if kind == PortKind::Iface || !links::exists(ifname) {
        return;
    }
    if let Err(e) = links::delete(ifname) {
        tracing::warn!("could not delete {ifname}: {e}");
    }
}

/// Docker's rule: 02:42 followed by the IPv4 address, so MACs are unique wherever
/// addresses are.
pub fn mac_from_ip(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x42, o[0], o[1], o[2], o[3]])
}

fn check_mac(net: &Network, mac: MacAddr) -> Result<(), ControlError> {
    if mac.is_multicast() || mac.is_zero() {
        return Err(ControlError::Invalid(format!(
            "--mac {mac} is not a unicast address (the first byte must be even, and not all zero)"
        )));
    }
    if let Some(e) = net.endpoints.values().find(|e| e.mac == Some(mac)) {
        return Err(ControlError::MacInUse {
            mac,
            endpoint: e.name.clone(),
            network: net.name.clone(),
        });
    }
    Ok(())
}

fn validate_ifname(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid interface name '{name}': 1 to 15 characters, no '/', ':' or spaces"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_follow_addresses_and_names_are_checked() {
        assert_eq!(
            mac_from_ip(Ipv4Addr::new(172, 17, 0, 2)).to_string(),
            "02:42:ac:11:00:02"
        );
        assert!(validate_ifname("eth0").is_ok());
        for bad in ["", "a/b", "sixteen-chars-xx", "a b", "a:1", ".."] {
            assert!(validate_ifname(bad).is_err(), "{bad}");
        }
    }
}
