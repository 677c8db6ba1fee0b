//! The manager: the one owner of the daemon's state. It applies each request in turn
//! (validate everything, then create interfaces and ports, then persist, undoing the
//! earlier steps if a later one fails, so a failed request changes nothing), keeps the
//! map from endpoints to switch ports, and publishes the topology the workers read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use fdb::{Fdb, NetworkId, PortId};
use serde_json::{Value, json};

use super::api::{NetworkCreate, Request};
use super::error::ControlError;
use super::ipam::{self, IpamRequest, PoolConfig};
use super::overlay::{self, UnderlayInfo};
use super::router::{UplinkInfo, published_ports};
use super::state::{Driver, Network, State, StateStore};
use super::{ids, views};
use crate::datapath::capture::CaptureHub;
use crate::datapath::counters::{PerWorker, PortCounters};
use crate::datapath::router::RouterCounters;
use crate::datapath::topology::{NetworkInfo, OverlayParams, PortInfo, Topology, UplinkParams};
use crate::datapath::tunnel::TunnelCounters;
use crate::datapath::worker::{Queues, Workers};
use crate::nat::Nat;

/// Largest MTU a network may have (a veth's own maximum).
pub const MAX_MTU: u32 = 65_535;
/// Smallest IPv4 MTU (RFC 791).
pub const MIN_MTU: u32 = 68;
pub const DEFAULT_MTU: u32 = 1500;

/// A switch port the manager has handed to a worker.
#[derive(Debug)]
pub struct Attached {
    pub network: String,
    pub endpoint: String,
    /// One block per worker: every worker has a queue of the port.
    pub counters: Arc<PerWorker<PortCounters>>,
    /// When to look at the container's offloads again (`Manager::recheck_offloads`).
    pub offloads: super::offload_watch::OffloadWatch,
}

#[derive(Debug)]
pub struct Manager {
    pub(super) store: StateStore,
    pub(super) state: State,
    pub(super) pool: PoolConfig,
    pub(super) fdb: Arc<Fdb>,
    pub(super) topology: Arc<ArcSwap<Topology>>,
    pub(super) workers: Workers,
    pub(super) epoch: Instant,
    pub(super) net_ids: HashMap<String, NetworkId>,
    next_net_id: u16,
    pub(super) ports: HashMap<PortId, Attached>,
    next_port: u32,
    /// Ports whose interface disappeared under the switch.
    pub(super) ports_lost: u64,
    /// `None` when the daemon has no `[underlay]`: then it has no overlay networks.
    pub(super) underlay: Option<UnderlayInfo>,
    pub(super) tunnel_counters: Option<Arc<PerWorker<TunnelCounters>>>,
    /// `None` when the daemon has no `[uplink]`: nothing is routed out then.
    pub(super) uplink: Option<UplinkInfo>,
    pub(super) nat: Option<Arc<Nat>>,
    /// The number of the last topology snapshot published. The workers start on an
    /// empty snapshot numbered 0, so the first published one is 1: a worker that met
    /// the empty one must see the first real one as a change.
    generation: std::sync::atomic::AtomicU64,
    pub(super) router_counters: Arc<PerWorker<RouterCounters>>,
    uplink_counters: Option<Arc<PerWorker<PortCounters>>>,
    /// Set by [`Manager::stop`]: requests are refused and nothing is attached again.
    pub(super) stopped: bool,
    /// Running captures, shared with the workers.
    pub(super) capture: Arc<CaptureHub>,
}

/// What the manager is built from.
#[derive(Debug)]
pub struct ManagerParts {
    pub store: StateStore,
    pub state: State,
    pub pool: PoolConfig,
    pub fdb: Arc<Fdb>,
    pub topology: Arc<ArcSwap<Topology>>,
    pub workers: Workers,
    pub epoch: Instant,
    pub underlay: Option<UnderlayInfo>,
    pub tunnel_counters: Option<Arc<PerWorker<TunnelCounters>>>,
    pub uplink: Option<UplinkInfo>,
    pub nat: Option<Arc<Nat>>,
    pub router_counters: Arc<PerWorker<RouterCounters>>,
    pub uplink_counters: Option<Arc<PerWorker<PortCounters>>>,
    pub capture: Arc<CaptureHub>,
}

impl Manager {
    pub fn new(p: ManagerParts) -> Manager {
        let mut m = Manager {
            store: p.store,
            state: p.state,
            pool: p.pool,
            fdb: p.fdb,
            topology: p.topology,
            workers: p.workers,
            epoch: p.epoch,
            net_ids: HashMap::new(),
            next_net_id: 1,
            ports: HashMap::new(),
            next_port: 1,
            ports_lost: 0,
            underlay: p.underlay,
            tunnel_counters: p.tunnel_counters,
            uplink: p.uplink,
            nat: p.nat,
            generation: Default::default(),
            router_counters: p.router_counters,
            uplink_counters: p.uplink_counters,
            stopped: false,
            capture: p.capture,
        };
        if let Some(nat) = &m.nat {
            nat.set_published(published_ports(&m.state));
        }
        if m.state.router_mac.is_none() {
            let mut next = m.state.clone();
            next.router_mac = Some(ids::router_mac());
            // If this cannot be saved the MAC is still used; it is saved with the next change.
            if let Err(e) = m.commit(next.clone()) {
                tracing::warn!("{e}");
                m.state = next;
            }
        }
        let names: Vec<String> = m.state.networks.keys().cloned().collect();
        for name in names {
            m.assign_net_id(&name);
        }
        m
    }

    /// Applies one request; the value is what the client prints (or formats).
    pub fn handle(&mut self, req: Request) -> Result<Value, ControlError> {
        if self.stopped {
            return Err(ControlError::Stopping);
        }
        match req {
            Request::NetworkCreate(c) => self.network_create(c),
            Request::NetworkLs => Ok(json!(views::summaries(&self.state))),
            Request::NetworkInspect { names } => self.network_inspect(&names),
            Request::NetworkConnect(c) => self.connect(c),
            Request::NetworkDisconnect { network, endpoint } => {
                self.disconnect(&network, &endpoint)
            }
            Request::NetworkRm { names } => self.network_rm(&names),
            Request::NetworkPrune => self.network_prune(),
            Request::FdbShow { network } => self.fdb_show(network.as_deref()),
            Request::Stats => Ok(self.stats()),
            Request::FdbAdd {
                network,
                mac,
                target,
            } => self.fdb_add(&network, mac, target),
            Request::FdbDel { network, mac } => self.fdb_del(&network, mac),
            Request::PeerAdd { ip, vnis } => self.peer_add(ip, vnis),
            Request::PeerRm { ip } => self.peer_rm(ip),
            Request::PeerLs => Ok(self.peer_ls()),
            Request::PortPublish {
                network,
                endpoint,
                spec,
            } => self.port_publish(&network, &endpoint, &spec),
            Request::PortUnpublish {
                network,
                endpoint,
                spec,
            } => self.port_unpublish(&network, &endpoint, &spec),
            Request::PortLs => Ok(self.port_ls()),
            Request::NatLs => self.nat_ls(),
            Request::Trace(t) => self.trace(&t),
            Request::Capture(_) => Err(ControlError::Invalid(
                "a capture streams its answer: send it on a connection of its own".into(),
            )),
        }
    }

    pub(super) fn network(&self, name: &str) -> Result<&Network, ControlError> {
        self.state
            .networks
            .get(name)
            .ok_or_else(|| ControlError::NoSuchNetwork(name.to_string()))
    }

    fn assign_net_id(&mut self, name: &str) -> NetworkId {
        if let Some(id) = self.net_ids.get(name) {
            return *id;
        }
        let id = NetworkId(self.next_net_id);
        self.next_net_id = self.next_net_id.wrapping_add(1).max(1);
        self.net_ids.insert(name.to_string(), id);
        id
    }

    /// Persists `next` as the new state; on failure the old state stays in force.
    pub(super) fn commit(&mut self, next: State) -> Result<(), ControlError> {
        self.store.save(&next)?;
        self.state = next;
        Ok(())
    }

    fn network_create(&mut self, c: NetworkCreate) -> Result<Value, ControlError> {
        validate_name("network", &c.name)?;
        if self.state.networks.contains_key(&c.name) {
            return Err(ControlError::NetworkExists(c.name));
        }
        let (vni, mtu) = match c.driver {
            Driver::Overlay => {
                overlay::overlay_network(&self.state, self.underlay.as_ref(), c.vni, c.mtu)?
            }
            Driver::Bridge => {
                if c.vni.is_some() {
                    return Err(ControlError::Invalid(
                        "--vni applies to --driver overlay only".into(),
                    ));
                }
                (0, c.mtu.unwrap_or(DEFAULT_MTU))
            }
        };
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(ControlError::Invalid(format!(
                "--mtu {mtu} is out of range: use {MIN_MTU}..={MAX_MTU}"
            )));
        }
        for k in c.labels.keys().chain(c.aux_addresses.keys()) {
            if k.is_empty() {
                return Err(ControlError::Invalid(
                    "labels and auxiliary addresses need a non-empty name".into(),
                ));
            }
        }
        let req = IpamRequest {
            subnet: c.subnet,
            gateway: c.gateway,
            ip_range: c.ip_range,
            aux_addresses: c.aux_addresses,
        };
        self.check_route_to(&c.name, &c.route_to)?;
        let ipam = ipam::plan(&self.state, &req, &self.pool)?;
        let net = Network {
            name: c.name.clone(),
            id: ids::network_id(),
            driver: c.driver,
            created: ids::now_rfc3339(),
            internal: c.internal,
            labels: c.labels,
            mtu,
            vni: (vni != 0).then_some(vni),
            ipam,
            endpoints: Default::default(),
            static_macs: Default::default(),
            route_to: c.route_to.iter().cloned().collect(),
        };
        let id = net.id.clone();
        let mut next = self.state.clone();
        next.networks.insert(c.name.clone(), net);
        self.commit(next)?;
        self.assign_net_id(&c.name);
        self.publish();
        Ok(json!(id))
    }

    fn network_inspect(&self, names: &[String]) -> Result<Value, ControlError> {
        if names.is_empty() {
            return Err(ControlError::Invalid(
                "name at least one network to inspect".into(),
            ));
        }
        let nets = names
            .iter()
            .map(|n| {
                self.network(n)
                    .map(|net| views::inspect(net, &self.endpoint_ports(net)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Array(nets))
    }

    fn network_rm(&mut self, names: &[String]) -> Result<Value, ControlError> {
        if names.is_empty() {
            return Err(ControlError::Invalid(
                "name at least one network to remove".into(),
            ));
        }
        // All or nothing: check every name before removing any.
        for name in names {
            let net = self.network(name)?;
            if !net.endpoints.is_empty() {
                return Err(ControlError::HasEndpoints {
                    network: name.clone(),
                    endpoints: net.endpoints.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let mut next = self.state.clone();
        for name in names {
            next.networks.remove(name);
        }
        for n in next.networks.values_mut() {
            n.route_to.retain(|r| !names.contains(r));
        }
        self.commit(next)?;
        for name in names {
            self.forget_network(name);
        }
        self.publish();
        Ok(json!(names))
    }

    fn network_prune(&mut self) -> Result<Value, ControlError> {
        let empty: Vec<String> = self
            .state
            .networks
            .values()
            .filter(|n| n.endpoints.is_empty())
            .map(|n| n.name.clone())
            .collect();
        if empty.is_empty() {
            return Ok(json!([]));
        }
        self.network_rm(&empty)
    }

    fn forget_network(&mut self, name: &str) {
        if let Some(id) = self.net_ids.remove(name) {
            self.fdb.flush_network(id);
        }
    }

    fn fdb_show(&self, network: Option<&str>) -> Result<Value, ControlError> {
        let filter = match network {
            Some(n) => {
                self.network(n)?;
                Some(self.net_ids[n])
            }
            None => None,
        };
        let names: HashMap<NetworkId, &str> = self
            .net_ids
            .iter()
            .map(|(n, id)| (*id, n.as_str()))
            .collect();
        let entries = self
            .fdb
            .entries(self.epoch.elapsed())
            .into_iter()
            .filter(|e| filter.is_none_or(|f| f == e.network))
            .map(|e| views::fdb_entry(&e, names.get(&e.network).copied(), &self.ports))
            .collect::<Vec<_>>();
        Ok(Value::Array(entries))
    }

    fn stats(&self) -> Value {
        let mut v = views::stats(&self.ports, &self.fdb.counters(), self.ports_lost);
        if let Some(f) = v.get_mut("fdb").and_then(Value::as_object_mut) {
            // The aging time in force (SIGHUP may have changed it).
            f.insert(
                "aging_secs".into(),
                json!(self.fdb.config().aging.as_secs()),
            );
        }
        if let (Some(t), Value::Object(m)) = (&self.tunnel_counters, &mut v) {
            m.insert("underlay".into(), t.snapshot());
        }
        if let Value::Object(m) = &mut v {
            if let Some(nat) = &self.nat {
                m.insert(
                    "nat".into(),
                    serde_json::to_value(nat.counters()).unwrap_or_default(),
                );
            }
            // The router works without NAT too: gateways, ARP, `--route-to`.
            m.insert("router".into(), self.router_counters.snapshot());
            if let Some(c) = &self.uplink_counters {
                m.insert(
                    "uplink".into(),
                    serde_json::to_value(c.snapshot()).unwrap_or_default(),
                );
            }
            let workers = self.workers.counters().iter().enumerate();
            let workers = workers.map(|(k, w)| {
                serde_json::json!({
                    "worker": k,
                    "busy_secs": w.busy_ns.get() as f64 / 1e9,
                    "wakeups": w.wakeups.get(),
                    "received": w.received.get(),
                })
            });
            m.insert("workers".into(), Value::Array(workers.collect()));
        }
        v
    }

    /// The port of each attached endpoint of `net`, by endpoint name.
    fn endpoint_ports(&self, net: &Network) -> HashMap<String, PortId> {
        self.ports
            .iter()
            .filter(|(_, a)| a.network == net.name)
            .map(|(id, a)| (a.endpoint.clone(), *id))
            .collect()
    }

    pub(super) fn port_of(&self, network: &str, endpoint: &str) -> Option<PortId> {
        self.ports
            .iter()
            .find(|(_, a)| a.network == network && a.endpoint == endpoint)
            .map(|(id, _)| *id)
    }

    /// Hands an opened port's queues to the workers and makes it part of its network.
    pub(super) fn attach(&mut self, network: &str, endpoint: &str, queues: Queues) -> PortId {
        let id = PortId(self.next_port);
        self.next_port += 1;
        let counters = PerWorker::new(self.workers.len());
        self.ports.insert(
            id,
            Attached {
                network: network.to_string(),
                endpoint: endpoint.to_string(),
                counters: counters.clone(),
                offloads: Default::default(),
            },
        );
        // The workers must know the port before the topology routes frames to it, and
        // read from it only after: a frame read before would find no network (a
        // container's first IPv6 report, sent as its link comes up, was dropped so).
        self.workers.add_port(id, queues, &counters);
        self.publish();
        self.workers.read_port(id);
        self.install_statics(network);
        id
    }

    /// Takes a port out of its network and back from the workers.
    pub(super) fn detach(&mut self, id: PortId) -> Result<Queues, ControlError> {
        if self.ports.remove(&id).is_none() {
            return Ok(Vec::new());
        }
        // Stop routing frames to it before the workers let go of it.
        self.publish();
        let port = self
            .workers
            .remove_port(id)
            .map_err(ControlError::Datapath)?;
        // Port ids are never reused: static entries for it go too (they come back with the
        // endpoint's next port).
        self.fdb.flush_location(fdb::Location::Port(id), true);
        Ok(port)
    }

    /// A worker dropped a port whose interface vanished.
    pub fn port_gone(&mut self, id: PortId) {
        if let Some(a) = self.ports.remove(&id) {
            self.ports_lost += 1;
            self.fdb.flush_location(fdb::Location::Port(id), true);
            tracing::warn!(
                "endpoint '{}' of network '{}' lost its interface; it stays in the network, detached, until its interface is back or it is disconnected",
                a.endpoint,
                a.network
            );
            self.publish();
        }
    }

    /// Publishes the topology (once at start; every change publishes its own).
    pub fn publish_topology(&self) {
        self.publish();
        for name in self.state.networks.keys() {
            self.install_statics(name);
        }
    }

    /// Builds the topology from the state and the attached ports, and publishes it.
    pub(super) fn publish(&self) {
        let mut topo = Topology::default();
        for net in self.state.networks.values() {
            let Some(&nid) = self.net_ids.get(&net.name) else {
                continue;
            };
            let mut ports: Vec<PortId> = self
                .ports
                .iter()
                .filter(|(_, a)| a.network == net.name)
                .map(|(id, _)| *id)
                .collect();
            ports.sort();
            for (id, a) in self.ports.iter().filter(|(_, a)| a.network == net.name) {
                topo.ports.insert(
                    *id,
                    PortInfo {
                        network: nid,
                        endpoint: a.endpoint.clone(),
                    },
                );
            }
            let vni = net.vni.and_then(vtep::Vni::new);
            if let Some(v) = vni {
                topo.vnis.insert(v, nid);
            }
            topo.networks.insert(
                nid,
                NetworkInfo {
                    name: net.name.clone(),
                    mtu: net.mtu,
                    ports,
                    vni,
                    gateway: net.ipam.gateway,
                    subnet: net.ipam.subnet,
                    internal: net.internal,
                },
            );
            let hosts = net
                .endpoints
                .values()
                .filter_map(|e| Some((e.ipv4?, e.mac?)))
                .collect();
            topo.hosts.insert(nid, hosts);
        }
        topo.routes = Arc::new(self.route_table());
        topo.uplink = self.uplink.as_ref().map(|u| UplinkParams {
            addresses: u.addresses().collect(),
            subnet: u.config.address.trunc(),
            gateway: u.config.gateway,
            mac: u.mac,
            mtu: u.mtu,
        });
        topo.generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        topo.peers = overlay::peer_table(&self.state);
        topo.router_mac = self.state.router_mac.unwrap_or_default();
        topo.overlay = self.underlay.as_ref().map(|u| OverlayParams {
            local: u.config.local,
            vxlan_port: u.config.port,
            src_ports: u.config.src_port_range,
            mss_clamp: u.config.mss_clamp,
        });
        self.topology.store(Arc::new(topo));
    }
}

impl Manager {
    /// The routing table: every network, the `--route-to` pairs, whether there is an uplink.
    fn route_table(&self) -> crate::l3::RouteTable {
        let nets = self.state.networks.values().filter_map(|n| {
            Some(crate::l3::RouteNetwork {
                id: *self.net_ids.get(&n.name)?,
                subnet: n.ipam.subnet,
                gateway: n.ipam.gateway,
                internal: n.internal,
            })
        });
        let pairs = self.state.networks.values().flat_map(|n| {
            n.route_to
                .iter()
                .filter_map(|o| Some((*self.net_ids.get(&n.name)?, *self.net_ids.get(o)?)))
        });
        crate::l3::RouteTable::new(nets, pairs, self.uplink.is_some()).unwrap_or_else(|e| {
            tracing::error!("routing table refused ({e}); routing is off until the next change");
            crate::l3::RouteTable::default()
        })
    }
}

/// Names follow Docker's rule: a letter or digit, then letters, digits, `_`, `.`, `-`.
pub(super) fn validate_name(what: &str, name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid {what} name '{name}': use up to 64 letters, digits, '_', '.', '-', starting with a letter or digit"
        )))
    }
}
