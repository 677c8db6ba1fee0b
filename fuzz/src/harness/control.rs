//! The control plane's parsers and the checks that need no I/O: a request line as the
//! API server decodes it, then what the manager would validate it with (IPAM planning
//! and allocation, the overlay's VNI and MTU rules, port specs, peers, MACs); the state
//! file; the daemon's TOML config, then what the daemon builds from it (the NAT, the
//! FDB, a default subnet from the IPAM pool); a lab topology file.
//!
//! Checks, beyond "no panic": whatever decodes encodes back to the same value; a planned
//! address plan is consistent (a network address, /30 or larger, a gateway and auxiliary
//! addresses that are host addresses of the subnet, an ip-range inside it, no overlap
//! with existing networks); an allocated address is a free host address of the subnet
//! and the gateway is never handed out; an accepted overlay network has a VNI of 24 bits
//! not in use and an MTU that fits the underlay; a config the daemon accepts gives a
//! NAT it can build and a pool that yields a subnet; a lab's hosts get distinct
//! underlay addresses.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use fdb::MacAddr;
use ipnet::Ipv4Net;
use vswitch::config::{Config, UnderlaySection};
use vswitch::control::api::{NetworkCreate, Request, Response};
use vswitch::control::ipam::{self, IpamRequest, PoolConfig};
use vswitch::control::overlay::{self, UnderlayInfo};
use vswitch::control::state::{Driver, IpamConfig, Network, State};
use vswitch::control::{endpoints, router, views};
use vswitch::lab::topology::LabFile;
use vswitch::nat::{Nat, NatConfig, PortSpec, PublishedPorts};
use vtep::{PeerLookup, PeerVnis, PortRange, Vni};

use super::input::Input;

/// The state the requests are checked against: two networks, one endpoint, one peer.
pub const BASE_STATE: &str = r#"{
  "version": 1,
  "networks": {
    "blue": {
      "name": "blue", "id": "b1", "driver": "bridge", "created": "2026-01-01T00:00:00Z",
      "internal": false, "labels": {}, "mtu": 1500,
      "ipam": {"subnet": "10.89.0.0/24", "gateway": "10.89.0.1", "ip_range": null,
               "aux_addresses": {"printer": "10.89.0.9"}},
      "endpoints": {
        "c1": {"name": "c1", "kind": "veth", "port": "vs1", "mac": "02:42:0a:59:00:02",
               "ipv4": "10.89.0.2", "netns": "c1", "ifname": "eth0"}
      }
    },
    "ovl": {
      "name": "ovl", "id": "o1", "driver": "overlay", "created": "2026-01-01T00:00:00Z",
      "internal": false, "labels": {}, "mtu": 1450, "vni": 42,
      "ipam": {"subnet": "10.1.0.0/16", "gateway": "10.1.0.1", "ip_range": "10.1.2.0/24",
               "aux_addresses": {}},
      "endpoints": {}
    }
  },
  "peers": {"192.0.2.2": [42]},
  "published": [{"network": "blue", "endpoint": "c1",
                 "spec": {"host_ip": null, "host_port": 8080, "port": 80, "proto": "tcp"}}]
}"#;

pub fn base_state() -> State {
    serde_json::from_str(BASE_STATE).expect("the base state parses")
}

fn underlay() -> UnderlayInfo {
    UnderlayInfo {
        config: UnderlaySection {
            local: IpAddr::from([192, 0, 2, 1]),
            port: vtep::VXLAN_PORT,
            interface: None,
            mtu: None,
            src_port_range: PortRange::DEFAULT,
            udp_checksum: false,
            mss_clamp: true,
            gso: true,
            gro: true,
        },
        mtu: 1500,
    }
}

/// Input: any bytes, read as a request line, a state file, a response, and (when UTF-8)
/// a config file, a lab file, a port spec and a port range.
pub fn run(data: &[u8]) {
    // The server hands the whole line, newline included, to serde_json.
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        let again = serde_json::to_vec(&req).expect("a request encodes");
        assert_eq!(
            serde_json::from_slice::<Request>(&again).ok().as_ref(),
            Some(&req),
            "a request does not survive encode and decode"
        );
        request(&base_state(), req);
    }
    if let Ok(state) = serde_json::from_slice::<State>(data) {
        state_file(state);
    }
    if let Ok(resp) = serde_json::from_slice::<Response>(data) {
        let again = serde_json::to_vec(&resp).expect("a response encodes");
        let back: Response = serde_json::from_slice(&again).expect("a response decodes");
        // serde_json's Value keeps floats as they print, so compare the encodings.
        assert_eq!(serde_json::to_vec(&back).ok(), Some(again));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    config(text);
    lab(text);
    if let Ok(spec) = text.parse::<PortSpec>() {
        port_spec(spec);
    }
    if let Some(r) = vswitch::nat::parse_port_range(text) {
        assert!(*r.start() >= 1 && r.start() <= r.end());
    }
    let mut input = Input::new(data);
    let (a, b) = (input.u16(), input.u16());
    if let Ok(r) = PortRange::new(a, b) {
        assert_eq!(r.count(), u32::from(b) - u32::from(a) + 1);
        let p = vtep::source_port(u32::from_be_bytes(input.array()), r);
        assert!(r.contains(p), "source port outside its range");
    }
}

fn request(state: &State, req: Request) {
    match req {
        Request::NetworkCreate(c) => network_create(state, c),
        Request::PortPublish { spec, .. } | Request::PortUnpublish { spec, .. } => {
            if let Ok(s) = spec.parse::<PortSpec>() {
                port_spec(s);
            }
        }
        Request::PeerAdd { ip, vnis } => {
            let valid: Vec<Vni> = vnis.iter().filter_map(|&v| Vni::new(v)).collect();
            let set = if vnis.is_empty() {
                PeerVnis::All
            } else {
                PeerVnis::only(valid.iter().copied())
            };
            let mut t = overlay::peer_table(state);
            if t.set(ip, set).is_ok() {
                for v in valid {
                    assert!(t.is_peer(ip, v), "a peer does not carry its VNI");
                }
            }
        }
        Request::FdbAdd { mac, .. } | Request::FdbDel { mac, .. } => {
            assert_eq!(mac.to_string().parse::<MacAddr>().ok(), Some(mac));
        }
        Request::NetworkConnect(c) => {
            if let Some(net) = state.networks.get(&c.network) {
                allocate(net, c.ip);
            }
        }
        _ => {}
    }
}

/// What the manager checks before creating a network, minus the names and the disk.
fn network_create(state: &State, c: NetworkCreate) {
    if c.driver == Driver::Overlay {
        let u = underlay();
        if let Ok((vni, mtu)) = overlay::overlay_network(state, Some(&u), c.vni, c.mtu) {
            assert!((1..1 << 24).contains(&vni), "VNI {vni} accepted");
            assert!(
                state.networks.values().all(|n| n.vni != Some(vni)),
                "VNI in use"
            );
            assert!((68..=1450).contains(&mtu), "overlay MTU {mtu} accepted");
        }
    }
    let req = IpamRequest {
        subnet: c.subnet,
        gateway: c.gateway,
        ip_range: c.ip_range,
        aux_addresses: c.aux_addresses,
    };
    let Ok(plan) = ipam::plan(state, &req, &PoolConfig::default()) else {
        return;
    };
    plan_checked(state, &plan);
    let net = network("new", plan);
    if let Some(gw) = c.gateway {
        assert!(
            ipam::allocate(&net, Some(gw)).is_err(),
            "the gateway handed out"
        );
    }
    allocate(&net, None);
}

fn plan_checked(state: &State, plan: &IpamConfig) {
    let s = plan.subnet;
    assert_eq!(
        s.network(),
        s.addr(),
        "planned subnet is not a network address"
    );
    assert!(s.prefix_len() <= 30, "planned subnet too small");
    host_of(plan.gateway, s);
    if let Some(r) = plan.ip_range {
        assert!(s.contains(&r), "ip-range outside the subnet");
    }
    for a in plan.aux_addresses.values() {
        host_of(*a, s);
    }
    for n in state.networks.values() {
        let o = n.ipam.subnet;
        assert!(
            !o.contains(&s) && !s.contains(&o),
            "planned {s} overlaps {o}"
        );
    }
}

fn host_of(a: Ipv4Addr, s: Ipv4Net) {
    assert!(
        s.contains(&a) && a != s.network() && a != s.broadcast(),
        "{a} in {s}"
    );
}

/// Picks an address as `network connect` would, and checks it.
fn allocate(net: &Network, requested: Option<Ipv4Addr>) {
    let Ok(a) = ipam::allocate(net, requested) else {
        return;
    };
    host_of(a, net.ipam.subnet);
    assert_ne!(a, net.ipam.gateway, "the gateway handed out");
    assert!(
        !net.ipam.aux_addresses.values().any(|x| *x == a),
        "an auxiliary address handed out"
    );
    assert!(
        !net.endpoints.values().any(|e| e.ipv4 == Some(a)),
        "an address handed out twice"
    );
    if let (None, Some(r)) = (requested, net.ipam.ip_range) {
        assert!(r.contains(&a), "automatic address outside the ip-range");
    }
    assert!(!endpoints::mac_from_ip(a).is_multicast());
}

fn network(name: &str, ipam: IpamConfig) -> Network {
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

/// What the daemon does with the state file it loads.
fn state_file(state: State) {
    let again = serde_json::to_vec(&state).expect("a state encodes");
    let back: State = serde_json::from_slice(&again).expect("an encoded state decodes");
    assert_eq!(back, state, "the state does not survive save and load");
    let _ = views::summaries(&state);
    for net in state.networks.values() {
        let _ = views::inspect(net, &HashMap::new());
        allocate(net, None);
    }
    let _ = router::published_ports(&state);
    let _ = overlay::peer_table(&state);
    if let Ok(plan) = ipam::plan(&state, &IpamRequest::default(), &PoolConfig::default()) {
        plan_checked(&state, &plan);
    }
}

fn port_spec(s: PortSpec) {
    assert!(s.host_port != 0 && s.port != 0, "port 0 accepted");
    let json = serde_json::to_string(&s).expect("a spec encodes");
    assert_eq!(serde_json::from_str::<PortSpec>(&json).ok(), Some(s));
    let p = s.to(Ipv4Addr::new(10, 89, 0, 2));
    let set = PublishedPorts::from_ports([p]).expect("one publish cannot conflict");
    assert_eq!(set.len(), 1);
    assert!(
        vswitch::nat::check_conflict(set.iter(), &p).is_err(),
        "a publish that does not overlap itself"
    );
}

/// What the daemon builds from a config it accepts.
fn config(text: &str) {
    let Ok(cfg) = Config::parse(text, Path::new("fuzz.toml")) else {
        return;
    };
    let _ = fdb::Fdb::new(cfg.fdb.to_fdb_config());
    if let Some(u) = &cfg.uplink {
        let nat_cfg = NatConfig {
            external: u.address.addr(),
            ..cfg.nat.clone()
        };
        if nat_cfg.validate().is_ok() {
            let _ = Nat::new(nat_cfg).expect("a validated NAT config refused");
        }
    }
    let plan = ipam::plan(&State::default(), &IpamRequest::default(), &cfg.ipam)
        .expect("an accepted pool yields no subnet");
    assert!(cfg.ipam.default_pool.contains(&plan.subnet));
    assert_eq!(plan.subnet.prefix_len(), cfg.ipam.default_prefix);
}

fn lab(text: &str) {
    let Ok(lab) = LabFile::parse(text) else {
        return;
    };
    let mut seen = Vec::new();
    for i in 0..lab.hosts.len() {
        let a = lab.host_address(i);
        assert!(
            lab.underlay.subnet.contains(&a) && !seen.contains(&a),
            "host address {a}"
        );
        seen.push(a);
        let _ = lab.ns(&lab.hosts[i].name);
    }
}
