//! The routing decision for an IPv4 packet that a local endpoint sent to the router
//! MAC: to the gateway itself, into another local network, refused by isolation, out
//! through NAT and the uplink, or nowhere.
//!
//! The control plane builds a [`RouteTable`] from the networks, the pairs of networks
//! allowed to route to each other (`--route-to`, symmetric) and whether an uplink is
//! configured, and publishes it in the topology snapshot; the packet path only calls
//! [`RouteTable::route`]. Networks are isolated from each other by default, as Docker's
//! are. A host has a handful of networks, so the table is a `Vec` sorted by prefix
//! length (longest first) and a lookup is a linear scan that stops at the first
//! subnet containing the destination: longest-prefix match without a trie, robust to
//! nested subnets (which the control plane does not create). Lookups never allocate.
//!
//! Rules, in order, for a packet from network `S` to `dst`:
//! 1. `S` unknown -> [`Route::NoRoute`].
//! 2. `dst` is `S`'s gateway -> [`Route::ToGateway`].
//! 3. `dst` is not one host (multicast, limited broadcast, `0.0.0.0/8`, loopback,
//!    link-local, class E) -> [`Route::NoRoute`]: routers never forward those.
//! 4. `dst` in network `N`'s subnet (longest prefix):
//!    - `N` may not be reached from `S` (`N != S` and no route-to pair) ->
//!      [`Route::Denied`]`(N)`;
//!    - `dst` is `N`'s network or broadcast address -> [`Route::NoRoute`] (directed
//!      broadcasts are not forwarded, Linux's `bc_forwarding=0`);
//!    - `dst` is `N`'s gateway -> [`Route::ToGateway`] (a network may ping the gateway
//!      of a network it routes to, not of one it is isolated from);
//!    - else [`Route::Local`]`(N)`. `N == S` happens when an endpoint sends a packet for
//!      its own subnet to the router (a wrong netmask): it is routed back into `S`,
//!      as Linux forwards back out of the interface it came in on.
//! 5. Outside every subnet: [`Route::External`] if `S` is not internal and an uplink
//!    exists, else [`Route::NoRoute`]. `internal` only closes the way out: an explicit
//!    route-to pair still works.
//!
//! The uplink's own external address is outside every subnet, so a local packet to it
//! is `External`, and the NAT decides (hairpin to a published port, or refused).

use std::net::Ipv4Addr;

use fdb::NetworkId;
use ipnet::Ipv4Net;

/// One local network as routing sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteNetwork {
    pub id: NetworkId,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// No way out (Docker's `--internal`): external destinations get
    /// [`Route::NoRoute`].
    pub internal: bool,
}

/// Where a routed packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Addressed to the switch itself (a gateway address): ICMP echo and the like.
    ToGateway,
    /// Into this local network (resolve the destination there, forward).
    Local(NetworkId),
    /// In this local network, which the source network may not reach: drop and count
    /// (isolation).
    Denied(NetworkId),
    /// Outside every local subnet: through the NAT to the uplink.
    External,
    /// Nowhere: external with no uplink or from an internal network, a destination
    /// that is not one host, a directed broadcast, or an unknown source network.
    NoRoute,
}

impl Route {
    /// The snake_case name for counters (`local` and `denied` without the network).
    pub const fn name(self) -> &'static str {
        match self {
            Route::ToGateway => "to_gateway",
            Route::Local(_) => "local",
            Route::Denied(_) => "denied",
            Route::External => "external",
            Route::NoRoute => "no_route",
        }
    }
}

/// Why the control plane's description of the networks is inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error("network {0} is listed twice")]
    DuplicateNetwork(NetworkId),
    #[error("route-to names network {0}, which does not exist")]
    UnknownNetwork(NetworkId),
    #[error("route-to pairs network {0} with itself")]
    SelfPair(NetworkId),
    #[error("gateway {gateway} of network {network} is not a host address of its subnet")]
    GatewayOutsideSubnet {
        network: NetworkId,
        gateway: Ipv4Addr,
    },
}

/// The routing table: built by the control plane, read by the packet path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// Longest prefix first, then by address (a deterministic order).
    networks: Vec<RouteNetwork>,
    /// `(network address, netmask)` of `networks[i]` as integers: a containment test
    /// is one AND and one compare (`Ipv4Net::contains` costs several times that).
    masks: Vec<(u32, u32)>,
    /// Allowed pairs, each stored as (smaller id, larger id), sorted.
    pairs: Vec<(NetworkId, NetworkId)>,
    uplink: bool,
}

impl RouteTable {
    /// Builds the table. `route_to` pairs are symmetric (`(a, b)` also allows `b` to
    /// `a`); duplicates are fine. Every network must have a gateway inside its subnet
    /// that is neither the network nor the broadcast address.
    pub fn new(
        networks: impl IntoIterator<Item = RouteNetwork>,
        route_to: impl IntoIterator<Item = (NetworkId, NetworkId)>,
        uplink: bool,
    ) -> Result<RouteTable, RouteTableError> {
        let mut networks: Vec<RouteNetwork> = networks.into_iter().collect();
        for (i, n) in networks.iter().enumerate() {
            if networks[..i].iter().any(|m| m.id == n.id) {
                return Err(RouteTableError::DuplicateNetwork(n.id));
            }
            if !n.subnet.contains(&n.gateway) || is_subnet_edge(&n.subnet, n.gateway) {
                return Err(RouteTableError::GatewayOutsideSubnet {
                    network: n.id,
                    gateway: n.gateway,
                });
            }
        }
        networks.sort_by_key(|n| (std::cmp::Reverse(n.subnet.prefix_len()), n.subnet.network()));
        let mut pairs = Vec::new();
        for (a, b) in route_to {
            for id in [a, b] {
                if !networks.iter().any(|n| n.id == id) {
                    return Err(RouteTableError::UnknownNetwork(id));
                }
            }
            if a == b {
                return Err(RouteTableError::SelfPair(a));
            }
            pairs.push((a.min(b), a.max(b)));
        }
        pairs.sort_unstable();
        pairs.dedup();
        let masks = networks
            .iter()
            .map(|n| (u32::from(n.subnet.network()), u32::from(n.subnet.netmask())))
            .collect();
        Ok(RouteTable {
            networks,
            masks,
            pairs,
            uplink,
        })
    }

    /// The networks, longest prefix first.
    pub fn networks(&self) -> &[RouteNetwork] {
        &self.networks
    }

    /// The allowed pairs, each as (smaller id, larger id).
    pub fn pairs(&self) -> &[(NetworkId, NetworkId)] {
        &self.pairs
    }

    pub fn has_uplink(&self) -> bool {
        self.uplink
    }

    pub fn network(&self, id: NetworkId) -> Option<&RouteNetwork> {
        self.networks.iter().find(|n| n.id == id)
    }

    /// Whether networks `a` and `b` may route to each other (always for `a == b`).
    pub fn allowed(&self, a: NetworkId, b: NetworkId) -> bool {
        a == b || self.pairs.binary_search(&(a.min(b), a.max(b))).is_ok()
    }

    /// The local network whose subnet holds `ip` (longest prefix).
    pub fn network_of(&self, ip: Ipv4Addr) -> Option<&RouteNetwork> {
        let ip = u32::from(ip);
        let i = self
            .masks
            .iter()
            .position(|&(net, mask)| ip & mask == net)?;
        self.networks.get(i)
    }

    /// Where a packet from network `from` to `dst` goes. See the module doc.
    pub fn route(&self, from: NetworkId, dst: Ipv4Addr) -> Route {
        let Some(src) = self.network(from) else {
            return Route::NoRoute;
        };
        if dst == src.gateway {
            return Route::ToGateway;
        }
        if !routable(dst) {
            return Route::NoRoute;
        }
        if let Some(n) = self.network_of(dst) {
            return if !self.allowed(from, n.id) {
                Route::Denied(n.id)
            } else if is_subnet_edge(&n.subnet, dst) {
                Route::NoRoute
            } else if dst == n.gateway {
                Route::ToGateway
            } else {
                Route::Local(n.id)
            };
        }
        if src.internal || !self.uplink {
            Route::NoRoute
        } else {
            Route::External
        }
    }

    /// Whether `src` may be the source of a packet from network `from`: a host address
    /// of its subnet other than the gateway. An optional anti-spoofing check (Linux's
    /// `rp_filter` in spirit) for the datapath to apply before routing or NAT.
    pub fn source_ok(&self, from: NetworkId, src: Ipv4Addr) -> bool {
        self.network(from).is_some_and(|n| {
            n.subnet.contains(&src) && src != n.gateway && !is_subnet_edge(&n.subnet, src)
        })
    }
}

/// The network or broadcast address of a subnet that has them (/30 and shorter; a
/// /31 or /32 has only host addresses, RFC 3021).
fn is_subnet_edge(subnet: &Ipv4Net, ip: Ipv4Addr) -> bool {
    subnet.prefix_len() <= 30 && (ip == subnet.network() || ip == subnet.broadcast())
}

/// A destination a router may forward to: one host, not loopback, not link-local
/// (RFC 3927 section 7), not in `0.0.0.0/8` ("this network").
fn routable(ip: Ipv4Addr) -> bool {
    super::wire::is_unicast(ip) && !ip.is_link_local() && ip.octets()[0] != 0
}
