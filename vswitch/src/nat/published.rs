//! Published ports (`vswitch port publish NETWORK ENDPOINT [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]`,
//! like Docker's `-p`): the spec parser, the conflict rule and the snapshot set the
//! engine reads.
//!
//! Meaning of the host address, as in Docker: without one, the port answers on every
//! address the switch answers for on the uplink (the datapath decides which addresses
//! reach [`super::Nat::inbound`]; the external address always does); with one, it
//! answers on exactly that address and nothing else answers for it. Hairpin traffic
//! (a container to a published port) is recognised on the external address for a
//! wildcard publish and on the host address for a bound one.
//!
//! Two publishes conflict when they have the same protocol and host port and their
//! host addresses overlap (equal, or either is the wildcard); the second is refused
//! with [`PublishError::Conflict`]. The control plane keeps the set, checks each
//! change with [`PublishedPorts::insert`] and hands the engine a new snapshot.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::tuple::Proto;

/// The protocols a port can be published for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProto {
    /// TCP (the default when a spec names none).
    Tcp,
    /// UDP.
    Udp,
}

impl PortProto {
    /// The NAT protocol.
    pub const fn proto(self) -> Proto {
        match self {
            PortProto::Tcp => Proto::Tcp,
            PortProto::Udp => Proto::Udp,
        }
    }
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proto().name())
    }
}

/// `[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]` as the user typed it, before the endpoint's
/// address is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The address it answers on; `None`: every address of the uplink.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host side.
    pub host_port: u16,
    /// The container's port.
    pub port: u16,
    /// The protocol.
    pub proto: PortProto,
}

impl PortSpec {
    /// The published port for a container at `ip`.
    pub fn to(self, ip: Ipv4Addr) -> PublishedPort {
        PublishedPort {
            proto: self.proto,
            host_ip: self.host_ip,
            host_port: self.host_port,
            target: SocketAddrV4::new(ip, self.port),
        }
    }
}

impl FromStr for PortSpec {
    type Err = PublishError;

    fn from_str(s: &str) -> Result<PortSpec, PublishError> {
        let bad = || PublishError::BadSpec(s.to_owned());
        let (ports, proto) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, PortProto::Tcp),
            Some((p, "udp")) => (p, PortProto::Udp),
            Some(_) => return Err(bad()),
            None => (s, PortProto::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, port) = match parts[..] {
            [hp, p] => (None, hp, p),
            [ip, hp, p] => (Some(ip.parse::<Ipv4Addr>().map_err(|_| bad())?), hp, p),
            _ => return Err(bad()),
        };
        let port_of = |t: &str| t.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
        Ok(PortSpec {
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            host_port: port_of(host_port)?,
            port: port_of(port)?,
            proto,
        })
    }
}

/// One published port: traffic to `host_ip:host_port` (`proto`) goes to `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The protocol.
    pub proto: PortProto,
    /// The address it answers on; `None`: every address of the uplink.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host side.
    pub host_port: u16,
    /// The container's address and port.
    pub target: SocketAddrV4,
}

impl PublishedPort {
    /// Whether `self` and `other` would answer for the same packets.
    pub fn overlaps(&self, other: &PublishedPort) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && match (self.host_ip, other.host_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(ip) => write!(f, "{ip}:{}", self.host_port)?,
            None => write!(f, "*:{}", self.host_port)?,
        }
        write!(f, "/{} -> {}", self.proto, self.target)
    }
}

/// A publish the control plane must refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The spec does not parse.
    #[error(
        "bad port spec `{0}`: expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp] with ports 1-65535, e.g. 8080:80/tcp"
    )]
    BadSpec(String),
    /// Another publish already answers for these packets.
    #[error(
        "port {new} is already published as {existing}; unpublish it first or choose another host port"
    )]
    Conflict {
        /// The publish being added.
        new: PublishedPort,
        /// The publish it overlaps.
        existing: PublishedPort,
    },
}

/// The first of `existing` that `new` overlaps, as the error to print.
pub fn check_conflict<'a>(
    existing: impl IntoIterator<Item = &'a PublishedPort>,
    new: &PublishedPort,
) -> Result<(), PublishError> {
    match existing.into_iter().find(|e| e.overlaps(new)) {
        Some(e) => Err(PublishError::Conflict {
            new: *new,
            existing: *e,
        }),
        None => Ok(()),
    }
}

/// The set of published ports, indexed by protocol and host port. Immutable once
/// handed to the engine ([`super::Nat::set_published`] swaps in a new one).
#[derive(Clone, Debug, Default)]
pub struct PublishedPorts {
    by_port: HashMap<(PortProto, u16), Vec<PublishedPort>>,
    host_ips: Vec<Ipv4Addr>,
}

impl PublishedPorts {
    /// An empty set.
    pub fn new() -> PublishedPorts {
        PublishedPorts::default()
    }

    /// A set of the given publishes; the first conflict is an error.
    pub fn from_ports(
        ports: impl IntoIterator<Item = PublishedPort>,
    ) -> Result<PublishedPorts, PublishError> {
        let mut set = PublishedPorts::new();
        for p in ports {
            set.insert(p)?;
        }
        Ok(set)
    }

    /// Adds a publish unless it overlaps one already in the set.
    pub fn insert(&mut self, p: PublishedPort) -> Result<(), PublishError> {
        let same_port = self.by_port.entry((p.proto, p.host_port)).or_default();
        check_conflict(same_port.iter(), &p)?;
        same_port.push(p);
        if let Some(ip) = p.host_ip
            && !self.host_ips.contains(&ip)
        {
            self.host_ips.push(ip);
        }
        Ok(())
    }

    /// Removes the publish equal to `p`; whether it was there.
    pub fn remove(&mut self, p: &PublishedPort) -> bool {
        let Some(list) = self.by_port.get_mut(&(p.proto, p.host_port)) else {
            return false;
        };
        let before = list.len();
        list.retain(|q| q != p);
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_port.remove(&(p.proto, p.host_port));
        }
        self.host_ips = self.iter().filter_map(|q| q.host_ip).collect();
        self.host_ips.sort_unstable();
        self.host_ips.dedup();
        removed
    }

    /// All publishes, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PublishedPort> {
        self.by_port.values().flatten()
    }

    /// How many publishes the set holds.
    pub fn len(&self) -> usize {
        self.by_port.values().map(Vec::len).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.by_port.is_empty()
    }

    /// The publish answering a packet from the uplink to `dst:port`.
    pub(crate) fn lookup_inbound(
        &self,
        proto: Proto,
        dst: Ipv4Addr,
        port: u16,
    ) -> Option<&PublishedPort> {
        let pp = port_proto(proto)?;
        self.by_port
            .get(&(pp, port))?
            .iter()
            .find(|p| p.host_ip.is_none_or(|ip| ip == dst))
    }

    /// The publish a container reaches at `dst:port` (hairpin): a wildcard publish on
    /// the external address, a bound one on its own address.
    pub(crate) fn lookup_hairpin(
        &self,
        proto: Proto,
        dst: Ipv4Addr,
        port: u16,
        external: Ipv4Addr,
    ) -> Option<&PublishedPort> {
        let pp = port_proto(proto)?;
        self.by_port
            .get(&(pp, port))?
            .iter()
            .find(|p| p.host_ip.unwrap_or(external) == dst)
    }

    /// Whether a container sending to `dst` is addressing the switch itself.
    pub(crate) fn is_host_address(&self, dst: Ipv4Addr, external: Ipv4Addr) -> bool {
        dst == external || self.host_ips.contains(&dst)
    }

    /// Whether `port` on the external address is published, so masquerading must not
    /// hand it out.
    pub(crate) fn reserves(&self, proto: Proto, port: u16, external: Ipv4Addr) -> bool {
        port_proto(proto).is_some_and(|pp| {
            self.by_port
                .get(&(pp, port))
                .is_some_and(|l| l.iter().any(|p| p.host_ip.is_none_or(|ip| ip == external)))
        })
    }
}

fn port_proto(proto: Proto) -> Option<PortProto> {
    match proto {
        Proto::Tcp => Some(PortProto::Tcp),
        Proto::Udp => Some(PortProto::Udp),
        Proto::Icmp => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn specs_parse_like_docker() {
        assert_eq!(
            spec("8080:80"),
            PortSpec {
                host_ip: None,
                host_port: 8080,
                port: 80,
                proto: PortProto::Tcp
            }
        );
        let s = spec("192.0.2.7:5353:53/udp");
        assert_eq!(s.host_ip, Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!((s.host_port, s.port, s.proto), (5353, 53, PortProto::Udp));
        assert_eq!(spec("0.0.0.0:1:2").host_ip, None);
        for bad in [
            "80", "0:80", "80:0", "x:1:2", "1:2/sctp", "1:2:3:4", "70000:1", "",
        ] {
            let e = bad.parse::<PortSpec>().unwrap_err();
            assert!(e.to_string().contains("HOSTPORT:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn conflicts_follow_host_address_overlap() {
        let ip = |n| Some(Ipv4Addr::new(192, 0, 2, n));
        let c = Ipv4Addr::new(10, 0, 0, 2);
        let mut set = PublishedPorts::new();
        set.insert(spec("192.0.2.1:8080:80").to(c)).unwrap();
        set.insert(spec("192.0.2.2:8080:80").to(c)).unwrap();
        set.insert(spec("8080:80/udp").to(c)).unwrap();
        let err = set.insert(spec("8080:81").to(c)).unwrap_err();
        assert!(
            matches!(err, PublishError::Conflict { existing, .. } if existing.host_ip == ip(1) || existing.host_ip == ip(2))
        );
        assert!(err.to_string().contains("already published"), "{err}");
        assert!(set.insert(spec("192.0.2.1:8080:90").to(c)).is_err());
        assert!(set.insert(spec("192.0.2.1:8080:90/udp").to(c)).is_err());
        assert!(set.insert(spec("192.0.2.3:8080:90").to(c)).is_ok());
        assert_eq!(set.len(), 4);
        assert!(set.remove(&spec("8080:80/udp").to(c)));
        assert!(!set.remove(&spec("8080:80/udp").to(c)));
        assert!(set.insert(spec("192.0.2.9:8080:90/udp").to(c)).is_ok());
    }

    #[test]
    fn lookups_respect_the_host_address() {
        let ext = Ipv4Addr::new(192, 0, 2, 1);
        let other = Ipv4Addr::new(192, 0, 2, 2);
        let c = Ipv4Addr::new(10, 0, 0, 2);
        let set =
            PublishedPorts::from_ports([spec("8080:80").to(c), spec("192.0.2.2:9090:90").to(c)])
                .unwrap();
        assert!(set.lookup_inbound(Proto::Tcp, ext, 8080).is_some());
        assert!(set.lookup_inbound(Proto::Tcp, other, 8080).is_some());
        assert!(set.lookup_inbound(Proto::Udp, ext, 8080).is_none());
        assert!(set.lookup_inbound(Proto::Tcp, ext, 9090).is_none());
        assert!(set.lookup_inbound(Proto::Tcp, other, 9090).is_some());
        assert!(set.lookup_hairpin(Proto::Tcp, ext, 8080, ext).is_some());
        assert!(set.lookup_hairpin(Proto::Tcp, other, 8080, ext).is_none());
        assert!(set.lookup_hairpin(Proto::Tcp, other, 9090, ext).is_some());
        assert!(set.is_host_address(other, ext));
        assert!(set.reserves(Proto::Tcp, 8080, ext));
        assert!(!set.reserves(Proto::Tcp, 9090, ext));
        assert!(!set.reserves(Proto::Icmp, 8080, ext));
    }
}
