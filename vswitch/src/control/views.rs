//! What the daemon answers with: `network inspect` in Docker's shape, `network ls`
//! rows, FDB entries and statistics. Pure functions of the state.

use std::collections::HashMap;

use fdb::{EntryInfo, FdbCounters, Location, PortId};
use ipnet::Ipv4Net;
use serde_json::{Map, Value, json};

use super::api::NetworkSummary;
use super::manager::Attached;
use super::state::{Network, State};

pub fn summaries(state: &State) -> Vec<NetworkSummary> {
    state
        .networks
        .values()
        .map(|n| NetworkSummary {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver,
            subnet: n.ipam.subnet,
            gateway: n.ipam.gateway,
            vni: n.vni,
            mtu: n.mtu,
            internal: n.internal,
            endpoints: n.endpoints.len(),
            created: n.created.clone(),
        })
        .collect()
}

/// One network as `docker network inspect` shows it, plus our endpoint details.
pub fn inspect(net: &Network, attached: &HashMap<String, PortId>) -> Value {
    let mut options = Map::new();
    options.insert("mtu".into(), json!(net.mtu.to_string()));
    if let Some(vni) = net.vni {
        options.insert("vni".into(), json!(vni.to_string()));
    }
    let endpoints: Map<String, Value> = net
        .endpoints
        .values()
        .map(|e| {
            let v = json!({
                "Port": e.port,
                "Kind": e.kind,
                "MacAddress": e.mac.map(|m| m.to_string()).unwrap_or_default(),
                "IPv4Address": e.ipv4
                    .and_then(|ip| Ipv4Net::new(ip, net.ipam.subnet.prefix_len()).ok())
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                "Netns": e.netns,
                "Ifname": e.ifname,
                "Aliases": e.aliases,
                "State": if attached.contains_key(&e.name) { "attached" } else { "detached" },
            });
            (e.name.clone(), v)
        })
        .collect();
    json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{
                "Subnet": net.ipam.subnet.to_string(),
                "Gateway": net.ipam.gateway.to_string(),
                "IPRange": net.ipam.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                "AuxiliaryAddresses": net.ipam.aux_addresses,
            }],
        },
        "Internal": net.internal,
        "Attachable": true,
        "Labels": net.labels,
        "Options": options,
        "Endpoints": endpoints,
    })
}

pub fn fdb_entry(e: &EntryInfo, network: Option<&str>, ports: &HashMap<PortId, Attached>) -> Value {
    let (port, vtep) = match e.location {
        Location::Port(p) => (
            ports
                .get(&p)
                .map(|a| a.endpoint.clone())
                .unwrap_or_else(|| p.to_string()),
            None,
        ),
        Location::Vtep(ip) => (String::new(), Some(ip.to_string())),
    };
    json!({
        "network": network.unwrap_or("?"),
        "mac": e.mac.to_string(),
        "port": port,
        "vtep": vtep,
        "static": e.is_static,
        "age_secs": e.age.as_secs(),
    })
}

pub fn stats(ports: &HashMap<PortId, Attached>, fdb: &FdbCounters, ports_lost: u64) -> Value {
    let mut rows: Vec<(&PortId, &Attached)> = ports.iter().collect();
    rows.sort_by_key(|(id, _)| **id);
    let ports: Vec<Value> = rows
        .into_iter()
        .map(|(id, a)| {
            let mut v = serde_json::to_value(a.counters.snapshot()).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("port".into(), json!(id.0));
                m.insert("network".into(), json!(a.network));
                m.insert("endpoint".into(), json!(a.endpoint));
            }
            v
        })
        .collect();
    json!({
        "ports": ports,
        "ports_lost": ports_lost,
        "fdb": fdb,
    })
}
