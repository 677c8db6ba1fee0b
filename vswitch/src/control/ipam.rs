//! IP address management, as Docker does it for a user-defined network: a subnet (or
//! the next free one from a pool), a gateway (the first host address unless given), an
//! optional `ip-range` that automatic addresses come from, and auxiliary addresses that
//! are never handed out. Pure functions over the state; no I/O.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::state::{IpamConfig, Network, State};

/// Where default subnets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// The pool networks without `--subnet` are carved from.
    pub default_pool: Ipv4Net,
    /// Prefix length of each default subnet.
    pub default_prefix: u8,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            default_pool: Ipv4Net::new(Ipv4Addr::new(10, 89, 0, 0), 16).expect("valid prefix"),
            default_prefix: 24,
        }
    }
}

/// What `network create` asked for.
#[derive(Debug, Clone, Default)]
pub struct IpamRequest {
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error(
        "subnet {subnet} overlaps {other_subnet} of network '{other}': choose another --subnet"
    )]
    Overlap {
        subnet: Ipv4Net,
        other: String,
        other_subnet: Ipv4Net,
    },
    #[error("subnet {0} is not a network address (did you mean {1}?)")]
    NotNetworkAddress(Ipv4Net, Ipv4Net),
    #[error("subnet {0} is too small: use a prefix of /30 or shorter")]
    TooSmall(Ipv4Net),
    #[error("the default pool {pool} has no free /{prefix} left: pass --subnet")]
    PoolExhausted { pool: Ipv4Net, prefix: u8 },
    #[error("{what} {addr} is outside subnet {subnet}")]
    OutsideSubnet {
        what: &'static str,
        addr: Ipv4Addr,
        subnet: Ipv4Net,
    },
    #[error("--ip-range {range} is not inside subnet {subnet}")]
    RangeOutsideSubnet { range: Ipv4Net, subnet: Ipv4Net },
    #[error("{what} {addr} is the subnet's network or broadcast address")]
    Reserved { what: &'static str, addr: Ipv4Addr },
    #[error("address {addr} is already in use by {user}")]
    InUse { addr: Ipv4Addr, user: String },
    #[error("no free address left in {0} (add a larger --ip-range or disconnect endpoints)")]
    Exhausted(Ipv4Net),
}

/// Checks a network's address plan against the others and fills in the defaults.
pub fn plan(state: &State, req: &IpamRequest, pool: &PoolConfig) -> Result<IpamConfig, IpamError> {
    let subnet = match req.subnet {
        Some(s) => {
            if s.network() != s.addr() {
                return Err(IpamError::NotNetworkAddress(s, s.trunc()));
            }
            if s.prefix_len() > 30 {
                return Err(IpamError::TooSmall(s));
            }
            if let Some((other, os)) = overlapping(state, s) {
                return Err(IpamError::Overlap {
                    subnet: s,
                    other,
                    other_subnet: os,
                });
            }
            s
        }
        None => next_free_subnet(state, pool)?,
    };
    let gateway = match req.gateway {
        Some(g) => {
            check_host_address("gateway", g, subnet)?;
            g
        }
        None => first_host(subnet),
    };
    if let Some(range) = req.ip_range
        && !subnet.contains(&range)
    {
        return Err(IpamError::RangeOutsideSubnet { range, subnet });
    }
    for addr in req.aux_addresses.values() {
        check_host_address("auxiliary address", *addr, subnet)?;
    }
    Ok(IpamConfig {
        subnet,
        gateway,
        ip_range: req.ip_range,
        aux_addresses: req.aux_addresses.clone(),
    })
}

/// Picks an endpoint address: `requested` if given and free, else the lowest free one in
/// the network's ip-range (or subnet).
pub fn allocate(net: &Network, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
    let ipam = &net.ipam;
    if let Some(addr) = requested {
        check_host_address("--ip", addr, ipam.subnet)?;
        if let Some(user) = user_of(net, addr) {
            return Err(IpamError::InUse { addr, user });
        }
        return Ok(addr);
    }
    let range = ipam.ip_range.unwrap_or(ipam.subnet);
    let (net_addr, bcast) = (ipam.subnet.network(), ipam.subnet.broadcast());
    range
        .hosts()
        .chain(std::iter::once(range.broadcast()))
        .chain(std::iter::once(range.network()))
        .filter(|a| *a != net_addr && *a != bcast && ipam.subnet.contains(a))
        .find(|a| user_of(net, *a).is_none())
        .ok_or(IpamError::Exhausted(range))
}

/// Who holds `addr` in `net` (gateway, an auxiliary address or an endpoint), if anyone.
fn user_of(net: &Network, addr: Ipv4Addr) -> Option<String> {
    if addr == net.ipam.gateway {
        return Some("the gateway".into());
    }
    if let Some((name, _)) = net.ipam.aux_addresses.iter().find(|(_, a)| **a == addr) {
        return Some(format!("auxiliary address '{name}'"));
    }
    net.endpoints
        .values()
        .find(|e| e.ipv4 == Some(addr))
        .map(|e| format!("endpoint '{}'", e.name))
}

fn check_host_address(
    what: &'static str,
    addr: Ipv4Addr,
    subnet: Ipv4Net,
) -> Result<(), IpamError> {
    if !subnet.contains(&addr) {
        return Err(IpamError::OutsideSubnet { what, addr, subnet });
    }
    if addr == subnet.network() || addr == subnet.broadcast() {
        return Err(IpamError::Reserved { what, addr });
    }
    Ok(())
}

fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

fn overlapping(state: &State, s: Ipv4Net) -> Option<(String, Ipv4Net)> {
    state.networks.values().find_map(|n| {
        let o = n.ipam.subnet;
        (o.contains(&s) || s.contains(&o)).then(|| (n.name.clone(), o))
    })
}

fn next_free_subnet(state: &State, pool: &PoolConfig) -> Result<Ipv4Net, IpamError> {
    let exhausted = IpamError::PoolExhausted {
        pool: pool.default_pool,
        prefix: pool.default_prefix,
    };
    let mut subnets = pool
        .default_pool
        .subnets(pool.default_prefix)
        .map_err(|_| exhausted.clone())?;
    subnets
        .find(|s| overlapping(state, *s).is_none())
        .ok_or(exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::state::{Driver, Endpoint};
    use crate::port::PortKind;

    fn net(name: &str, ipam: IpamConfig) -> Network {
        Network {
            name: name.into(),
            id: String::new(),
            driver: Driver::Bridge,
            created: String::new(),
            internal: false,
            labels: BTreeMap::new(),
            mtu: 1500,
            vni: None,
            ipam,
            endpoints: BTreeMap::new(),
            static_macs: BTreeMap::new(),
            route_to: Default::default(),
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn with(state: &mut State, name: &str, req: IpamRequest) -> Result<(), IpamError> {
        let cfg = plan(state, &req, &PoolConfig::default())?;
        state.networks.insert(name.into(), net(name, cfg));
        Ok(())
    }

    #[test]
    fn defaults_come_from_the_pool_and_skip_used_subnets() {
        let mut st = State::default();
        with(&mut st, "a", IpamRequest::default()).unwrap();
        with(
            &mut st,
            "b",
            IpamRequest {
                subnet: Some("10.89.1.0/24".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        with(&mut st, "c", IpamRequest::default()).unwrap();
        assert_eq!(st.networks["a"].ipam.subnet.to_string(), "10.89.0.0/24");
        assert_eq!(st.networks["a"].ipam.gateway, ip("10.89.0.1"));
        assert_eq!(st.networks["c"].ipam.subnet.to_string(), "10.89.2.0/24");
    }

    #[test]
    fn overlaps_and_bad_addresses_are_refused() {
        let mut st = State::default();
        with(
            &mut st,
            "a",
            IpamRequest {
                subnet: Some("10.1.0.0/16".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        let e = with(
            &mut st,
            "b",
            IpamRequest {
                subnet: Some("10.1.2.0/24".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, IpamError::Overlap { .. }), "{e}");
        let e = with(
            &mut st,
            "b",
            IpamRequest {
                subnet: Some("10.2.0.5/24".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("10.2.0.0/24"), "{e}");
        let e = with(
            &mut st,
            "b",
            IpamRequest {
                subnet: Some("10.2.0.0/24".parse().unwrap()),
                gateway: Some(ip("10.3.0.1")),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, IpamError::OutsideSubnet { .. }), "{e}");
        let e = with(
            &mut st,
            "b",
            IpamRequest {
                subnet: Some("10.2.0.0/24".parse().unwrap()),
                ip_range: Some("10.2.1.0/28".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, IpamError::RangeOutsideSubnet { .. }), "{e}");
    }

    #[test]
    fn allocation_skips_gateway_aux_and_used_and_honours_the_range() {
        let mut aux = BTreeMap::new();
        aux.insert("router".to_string(), ip("10.5.0.2"));
        let cfg = plan(
            &State::default(),
            &IpamRequest {
                subnet: Some("10.5.0.0/29".parse().unwrap()),
                aux_addresses: aux,
                ..Default::default()
            },
            &PoolConfig::default(),
        )
        .unwrap();
        let mut n = net("n", cfg);
        let mut got = vec![];
        while let Ok(a) = allocate(&n, None) {
            got.push(a);
            n.endpoints.insert(
                a.to_string(),
                Endpoint {
                    name: a.to_string(),
                    kind: PortKind::Veth,
                    port: String::new(),
                    mac: None,
                    ipv4: Some(a),
                    netns: None,
                    ifname: None,
                    aliases: vec![],
                },
            );
        }
        assert_eq!(
            got,
            ["10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"].map(ip)
        );
        assert_eq!(
            allocate(&n, None),
            Err(IpamError::Exhausted("10.5.0.0/29".parse().unwrap()))
        );
        assert!(matches!(
            allocate(&n, Some(ip("10.5.0.4"))),
            Err(IpamError::InUse { .. })
        ));
        assert!(matches!(
            allocate(&n, Some(ip("10.5.0.1"))),
            Err(IpamError::InUse { .. })
        ));
        assert!(matches!(
            allocate(&n, Some(ip("10.5.0.7"))),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            allocate(&n, Some(ip("10.6.0.7"))),
            Err(IpamError::OutsideSubnet { .. })
        ));

        let cfg = plan(
            &State::default(),
            &IpamRequest {
                subnet: Some("10.7.0.0/24".parse().unwrap()),
                ip_range: Some("10.7.0.128/25".parse().unwrap()),
                ..Default::default()
            },
            &PoolConfig::default(),
        )
        .unwrap();
        let n = net("r", cfg);
        assert_eq!(allocate(&n, None).unwrap(), ip("10.7.0.129"));
        assert_eq!(allocate(&n, Some(ip("10.7.0.9"))).unwrap(), ip("10.7.0.9"));
    }
}
