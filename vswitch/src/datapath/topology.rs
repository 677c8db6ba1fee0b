//! The switch's topology as the packet path sees it: which network each port belongs to,
//! the ports of each network (its flood list) and their MTUs. An immutable snapshot: the
//! control plane builds a new one on every change and publishes it through `arc-swap`;
//! a worker loads it once per batch.

use std::collections::HashMap;

use fdb::{NetworkId, PortId};

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub ports: HashMap<PortId, PortInfo>,
    pub networks: HashMap<NetworkId, NetworkInfo>,
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub network: NetworkId,
    /// The endpoint name, for logs and stats.
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub name: String,
    /// IP MTU of the network (what its endpoints are configured with).
    pub mtu: u32,
    /// Every local port of the network, in a fixed order: the flood list.
    pub ports: Vec<PortId>,
}

impl Topology {
    pub fn network_of(&self, port: PortId) -> Option<(NetworkId, &NetworkInfo)> {
        let net = self.ports.get(&port)?.network;
        Some((net, self.networks.get(&net)?))
    }
}
