//! The overlay's control side: VXLAN peers (`vswitch peer`), static FDB entries
//! (`vswitch fdb add|del`), and the rules overlay networks are created by (a VNI of their
//! own, an MTU that fits the underlay).

use std::collections::BTreeSet;
use std::net::IpAddr;

use fdb::{Location, MacAddr};
use serde_json::{Value, json};
use vtep::{IpFamily, OverlayMtu, PeerTable, PeerVnis, Vni};

use super::api::FdbTarget;
use super::error::ControlError;
use super::manager::Manager;
use super::state::{Driver, State, StaticTarget};
use crate::config::UnderlaySection;

/// The underlay as the control plane sees it: the configuration and the MTU it has.
#[derive(Debug, Clone)]
pub struct UnderlayInfo {
    pub config: UnderlaySection,
    /// MTU of the underlay path (the interface's, the configured one, or 1500).
    pub mtu: u32,
}

impl UnderlayInfo {
    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.config.local)
    }
}

/// The peer table the datapath reads, from the saved state.
pub fn peer_table(state: &State) -> PeerTable {
    let mut t = PeerTable::new();
    for (ip, vnis) in &state.peers {
        let v = if vnis.is_empty() {
            PeerVnis::All
        } else {
            PeerVnis::only(vnis.iter().filter_map(|v| Vni::new(*v)))
        };
        // Entries were validated when added; a hand-edited bad one is skipped, logged.
        if let Err(e) = t.set(*ip, v) {
            tracing::warn!("state: peer {ip} skipped: {e}");
        }
    }
    t
}

/// Checks an overlay network's VNI and works out its MTU.
pub fn overlay_network(
    state: &State,
    underlay: Option<&UnderlayInfo>,
    vni: Option<u32>,
    mtu: Option<u32>,
) -> Result<(u32, u32), ControlError> {
    let u = underlay.ok_or_else(|| {
        ControlError::Invalid(
            "overlay networks need an [underlay] table (local = \"<this host's VTEP address>\") in the daemon's config".into(),
        )
    })?;
    let vni = vni.ok_or_else(|| {
        ControlError::Invalid("--driver overlay needs --vni N (1 to 16777215)".into())
    })?;
    Vni::new(vni).filter(|v| v.get() != 0).ok_or_else(|| {
        ControlError::Invalid(format!("--vni {vni} is out of range: use 1 to 16777215"))
    })?;
    if let Some(other) = state.networks.values().find(|n| n.vni == Some(vni)) {
        return Err(ControlError::Invalid(format!(
            "VNI {vni} is already used by network '{}'",
            other.name
        )));
    }
    let mtu = OverlayMtu::new(mtu, u.mtu, u.family())
        .map_err(|e| ControlError::Invalid(format!("--mtu: {e}")))?
        .get();
    Ok((vni, mtu))
}

impl Manager {
    pub(super) fn peer_add(&mut self, ip: IpAddr, vnis: Vec<u32>) -> Result<Value, ControlError> {
        let ip = ip.to_canonical();
        if let Some(u) = &self.underlay
            && u.config.local == ip
        {
            return Err(ControlError::Invalid(format!(
                "{ip} is this host's own VTEP address"
            )));
        }
        let mut set = BTreeSet::new();
        for v in &vnis {
            match Vni::new(*v).filter(|x| x.get() != 0) {
                Some(_) => set.insert(*v),
                None => {
                    return Err(ControlError::Invalid(format!(
                        "--vni {v} is out of range: use 1 to 16777215"
                    )));
                }
            };
        }
        let mut next = self.state.clone();
        // Adding to an existing peer widens its VNI list; no --vni means every VNI.
        let merged: Vec<u32> = match next.peers.get(&ip) {
            _ if set.is_empty() => Vec::new(),
            Some(old) if old.is_empty() => Vec::new(),
            Some(old) => old
                .iter()
                .copied()
                .chain(set)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            None => set.into_iter().collect(),
        };
        next.peers.insert(ip, merged);
        // Validates the address the way the datapath will use it.
        peer_table(&next).vnis_of(ip).ok_or_else(|| {
            ControlError::Invalid(format!(
                "{ip} cannot be a peer: a VXLAN peer is one unicast underlay address"
            ))
        })?;
        self.commit(next)?;
        self.publish();
        Ok(json!(ip))
    }

    pub(super) fn peer_rm(&mut self, ip: IpAddr) -> Result<Value, ControlError> {
        let ip = ip.to_canonical();
        if !self.state.peers.contains_key(&ip) {
            return Err(ControlError::Invalid(format!(
                "{ip} is not a peer (see `vswitch peer ls`)"
            )));
        }
        let mut next = self.state.clone();
        next.peers.remove(&ip);
        self.commit(next)?;
        self.publish();
        // What was learned behind it is unreachable now; statics stay (the user made them).
        self.fdb.flush_location(Location::Vtep(ip), false);
        Ok(json!(ip))
    }

    pub(super) fn peer_ls(&self) -> Value {
        let rows: Vec<Value> = self
            .state
            .peers
            .iter()
            .map(|(ip, vnis)| {
                json!({
                    "ip": ip,
                    "vnis": if vnis.is_empty() { json!("all") } else { json!(vnis) },
                })
            })
            .collect();
        Value::Array(rows)
    }

    pub(super) fn fdb_add(
        &mut self,
        network: &str,
        mac: MacAddr,
        target: FdbTarget,
    ) -> Result<Value, ControlError> {
        let net = self.network(network)?;
        if mac.is_multicast() || mac.is_zero() {
            return Err(ControlError::Invalid(format!(
                "{mac} is not a unicast MAC address"
            )));
        }
        let target = match target {
            FdbTarget::Port(name) => {
                let ep = net
                    .endpoints
                    .values()
                    .find(|e| e.name == name || e.port == name)
                    .ok_or_else(|| ControlError::NoSuchEndpoint {
                        network: network.to_string(),
                        endpoint: name.clone(),
                    })?;
                StaticTarget::Endpoint(ep.name.clone())
            }
            FdbTarget::Vtep(ip) => {
                if net.driver != Driver::Overlay {
                    return Err(ControlError::Invalid(format!(
                        "network '{network}' is not an overlay network: --vtep needs one"
                    )));
                }
                StaticTarget::Vtep(ip.to_canonical())
            }
        };
        let mut next = self.state.clone();
        if let Some(n) = next.networks.get_mut(network) {
            n.static_macs.insert(mac, target);
        }
        self.commit(next)?;
        self.install_statics(network);
        Ok(json!(mac))
    }

    pub(super) fn fdb_del(&mut self, network: &str, mac: MacAddr) -> Result<Value, ControlError> {
        let net = self.network(network)?;
        let nid = self.net_ids[network];
        let is_static = net.static_macs.contains_key(&mac);
        if !is_static && self.fdb.lookup(nid, mac).is_none() {
            return Err(ControlError::Invalid(format!(
                "{mac} is not in the FDB of network '{network}' (see `vswitch fdb show {network}`)"
            )));
        }
        if is_static {
            let mut next = self.state.clone();
            if let Some(n) = next.networks.get_mut(network) {
                n.static_macs.remove(&mac);
            }
            self.commit(next)?;
        }
        self.fdb.remove(nid, mac);
        Ok(json!(mac))
    }

    /// Puts a network's static entries into the FDB, for the endpoints attached now.
    pub(super) fn install_statics(&self, network: &str) {
        let (Some(net), Some(&nid)) = (self.state.networks.get(network), self.net_ids.get(network))
        else {
            return;
        };
        for (mac, target) in &net.static_macs {
            let loc = match target {
                StaticTarget::Vtep(ip) => Some(Location::Vtep(*ip)),
                StaticTarget::Endpoint(ep) => self.port_of(network, ep).map(Location::Port),
            };
            match loc {
                Some(l) => self.fdb.add_static(nid, *mac, l),
                // Not attached: no entry (frames to it flood) until it is.
                None => {
                    self.fdb.remove(nid, *mac);
                }
            }
        }
    }
}
