//! The manager's start and stop, and the settings a running daemon may change.
//!
//! A clean stop (SIGTERM, SIGINT) closes every port and deletes the veth pairs the switch
//! made (the switch ends, taking the container ends with them); the state on disk keeps
//! every endpoint. The next start makes them again ([`Manager::restore`]): a veth
//! endpoint whose namespace still exists gets its pair back with the same names, MAC,
//! address and default route. TAPs are closed but stay, persistent: they are what others
//! build on (a Docker macvlan network's children live in namespaces the switch cannot see
//! and would die with their parent, for good), and the next start attaches them again
//! ([`Manager::reattach`]). An `--iface` endpoint belongs to someone else and is never
//! deleted. After a crash every interface is still there and is simply attached again.

use super::endpoints::remove_interface;
use super::ipam::PoolConfig;
use super::links::{self, VethSpec};
use super::manager::Manager;
use crate::port::PortKind;

impl Manager {
    /// Stops the datapath (the workers let go of every port and they are closed), then
    /// deletes the veth pairs the switch made; TAPs stay. The state stays as it is.
    pub fn stop(&mut self) {
        self.stopped = true;
        let ports = self.workers.shutdown();
        tracing::info!("closed {} ports", ports.len());
        drop(ports);
        self.ports.clear();
        let mut removed = 0;
        for (_, ep) in self.state.endpoints() {
            if ep.kind == PortKind::Iface || !links::exists(&ep.port) {
                continue;
            }
            if ep.kind == PortKind::Tap {
                // Others build on it (a Docker macvlan network's children, in namespaces
                // we cannot see into): deleting it would delete them for good.
                continue;
            }
            remove_interface(ep.kind, &ep.port);
            removed += 1;
        }
        tracing::info!("removed {removed} interfaces the switch made (kept in the state)");
    }

    /// Makes again the veth pairs a clean stop removed, for every veth endpoint whose
    /// switch end is missing and whose namespace still exists. Call once at start,
    /// before [`Manager::reattach`]. (Not called again later: a veth deleted under a
    /// running switch stays detached until someone puts it back or disconnects it.)
    pub fn restore(&mut self) {
        let missing: Vec<(String, VethSpec)> = self
            .state
            .endpoints()
            .filter(|(_, e)| e.kind == PortKind::Veth && !links::exists(&e.port))
            .filter_map(|(n, e)| {
                let spec = VethSpec {
                    host_ifname: e.port.clone(),
                    netns: e.netns.clone()?,
                    ifname: e.ifname.clone()?,
                    mac: e.mac?,
                    mtu: n.mtu,
                    address: e
                        .ipv4
                        .and_then(|ip| ipnet::Ipv4Net::new(ip, n.ipam.subnet.prefix_len()).ok()),
                    gateway: Some(n.ipam.gateway),
                };
                Some((format!("'{}' of network '{}'", e.name, n.name), spec))
            })
            .collect();
        for (what, spec) in missing {
            match links::exists_in(&spec.netns, &spec.ifname) {
                Ok(false) => match links::create_veth(&spec) {
                    Ok(()) => tracing::info!(
                        "endpoint {what}: veth {} <-> {} in {} made again",
                        spec.host_ifname,
                        spec.ifname,
                        spec.netns
                    ),
                    Err(e) => tracing::warn!("endpoint {what}: cannot make its veth again: {e}"),
                },
                Ok(true) => tracing::warn!(
                    "endpoint {what}: {} already has an interface {}; left detached",
                    spec.netns,
                    spec.ifname
                ),
                Err(e) => tracing::warn!("endpoint {what}: {e}; left detached"),
            }
        }
    }

    /// The pool networks created from now on without `--subnet` come from.
    pub fn set_ipam_pool(&mut self, pool: PoolConfig) {
        self.pool = pool;
    }
}
