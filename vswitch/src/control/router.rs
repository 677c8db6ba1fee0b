//! The router's control side: the uplink as configured, published ports (`vswitch port
//! publish|ls|unpublish`), the NAT's connection list (`vswitch nat ls`), and the rules
//! for `--route-to` between networks.

use std::net::Ipv4Addr;
use std::sync::Arc;

use fdb::MacAddr;
use serde_json::{Value, json};

use super::error::ControlError;
use super::manager::Manager;
use super::state::{Published, State};
use crate::config::UplinkSection;
use crate::nat::{Nat, PortSpec, PublishedPorts};

/// The uplink as the control plane sees it.
#[derive(Debug, Clone)]
pub struct UplinkInfo {
    pub config: UplinkSection,
    /// The uplink interface's MAC: the source of every frame the switch sends there.
    pub mac: MacAddr,
    pub mtu: u32,
}

impl UplinkInfo {
    /// Every address the switch owns on the uplink.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        std::iter::once(self.config.address.addr())
            .chain(self.config.extra_addresses.iter().copied())
    }
}

/// The published ports of the state, as the NAT takes them. Entries whose endpoint has
/// no address are skipped (they cannot be reached).
pub fn published_ports(state: &State) -> PublishedPorts {
    let mut set = PublishedPorts::new();
    for p in &state.published {
        let ip = state
            .networks
            .get(&p.network)
            .and_then(|n| n.endpoints.get(&p.endpoint))
            .and_then(|e| e.ipv4);
        if let Some(ip) = ip
            && let Err(e) = set.insert(p.spec.to(ip))
        {
            tracing::warn!("state: published port skipped: {e}");
        }
    }
    set
}

impl Manager {
    pub(super) fn nat(&self) -> Result<&Arc<Nat>, ControlError> {
        self.nat.as_ref().ok_or_else(|| {
            ControlError::Invalid(
                "this daemon has no [uplink] in its config: nothing is routed out, no port can be published".into(),
            )
        })
    }

    pub(super) fn port_publish(
        &mut self,
        network: &str,
        endpoint: &str,
        spec: &str,
    ) -> Result<Value, ControlError> {
        let nat = self.nat()?.clone();
        let net = self.network(network)?;
        if net.internal {
            return Err(ControlError::Invalid(format!(
                "network '{network}' is internal: its endpoints cannot publish ports"
            )));
        }
        let ep = net
            .endpoints
            .get(endpoint)
            .ok_or_else(|| ControlError::NoSuchEndpoint {
                network: network.to_string(),
                endpoint: endpoint.to_string(),
            })?;
        let ip = ep.ipv4.ok_or_else(|| {
            ControlError::Invalid(format!(
                "endpoint '{endpoint}' has no IPv4 address to publish to"
            ))
        })?;
        let spec: PortSpec = spec
            .parse()
            .map_err(|e: crate::nat::PublishError| ControlError::Invalid(e.to_string()))?;
        if let (Some(host_ip), Some(u)) = (spec.host_ip, &self.uplink)
            && !u.addresses().any(|a| a == host_ip)
        {
            return Err(ControlError::Invalid(format!(
                "{host_ip} is not an address of the uplink ({}): publish on one of those, or on all of them by leaving it out",
                u.addresses()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut set = published_ports(&self.state);
        set.insert(spec.to(ip))
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let mut next = self.state.clone();
        next.published.push(Published {
            network: network.to_string(),
            endpoint: endpoint.to_string(),
            spec,
        });
        self.commit(next)?;
        nat.set_published(set);
        Ok(json!(spec.to(ip).to_string()))
    }

    pub(super) fn port_unpublish(
        &mut self,
        network: &str,
        endpoint: &str,
        spec: &str,
    ) -> Result<Value, ControlError> {
        let spec: PortSpec = spec
            .parse()
            .map_err(|e: crate::nat::PublishError| ControlError::Invalid(e.to_string()))?;
        let pos = self
            .state
            .published
            .iter()
            .position(|p| p.network == network && p.endpoint == endpoint && p.spec == spec)
            .ok_or_else(|| {
                ControlError::Invalid("no such published port (see `vswitch port ls`)".into())
            })?;
        let mut next = self.state.clone();
        next.published.remove(pos);
        self.commit(next)?;
        if let Some(nat) = &self.nat {
            nat.set_published(published_ports(&self.state));
        }
        Ok(json!("unpublished"))
    }

    pub(super) fn port_ls(&self) -> Value {
        let rows: Vec<Value> = self
            .state
            .published
            .iter()
            .map(|p| {
                let ip = self
                    .state
                    .networks
                    .get(&p.network)
                    .and_then(|n| n.endpoints.get(&p.endpoint))
                    .and_then(|e| e.ipv4);
                json!({
                    "network": p.network,
                    "endpoint": p.endpoint,
                    "proto": p.spec.proto,
                    "host_ip": p.spec.host_ip.map_or("*".to_string(), |a| a.to_string()),
                    "host_port": p.spec.host_port,
                    "target": ip.map(|ip| format!("{ip}:{}", p.spec.port)),
                })
            })
            .collect();
        Value::Array(rows)
    }

    pub(super) fn nat_ls(&self) -> Result<Value, ControlError> {
        let nat = self.nat()?;
        serde_json::to_value(nat.entries(self.epoch.elapsed()))
            .map_err(|e| ControlError::Invalid(e.to_string()))
    }

    /// Drops published ports of an endpoint that is going away.
    pub(super) fn forget_published(next: &mut State, network: &str, endpoint: &str) {
        next.published
            .retain(|p| !(p.network == network && p.endpoint == endpoint));
    }

    /// Checks the `--route-to` names of a network being created.
    pub(super) fn check_route_to(
        &self,
        name: &str,
        route_to: &[String],
    ) -> Result<(), ControlError> {
        for other in route_to {
            if other == name {
                return Err(ControlError::Invalid(
                    "--route-to names the network itself".into(),
                ));
            }
            self.network(other)?;
        }
        Ok(())
    }
}
