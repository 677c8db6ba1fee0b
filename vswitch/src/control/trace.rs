//! `vswitch trace` on the daemon's side: build the synthetic frame the request describes
//! (filling what it leaves out from what the switch knows), hand it to the worker, which
//! runs it through the real packet path without side effects (`datapath::observe`), and
//! render the decisions as one line (and one JSON object) each.
//!
//! Defaults: the source MAC and IP are the in-port endpoint's (else a locally
//! administered MAC and the subnet's last address); the destination IP is the endpoint
//! with the destination MAC's (else the gateway); the destination MAC is what the sender
//! would use: the router's MAC for an address outside the subnet, the endpoint's MAC for
//! one inside it (a host the switch does not know gets a broadcast, as its ARP would be).
//! ICMP echo, 64-byte IP packets with DF set (as Linux sends them), TCP as a SYN.

use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::{IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder};
use fdb::{Location, MacAddr};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ControlError;
use super::manager::Manager;
use crate::datapath::observe::{Exit, MtuVerdict, Resolution, Step};
use crate::datapath::topology::Topology;
use crate::datapath::worker::Command;

/// How long the worker may take to answer (it answers between two batches).
const WORKER_ANSWER: Duration = Duration::from_secs(5);
/// A MAC for a sender the switch knows nothing about.
const STRANGER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const IPV4_HLEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TraceProto {
    #[default]
    Icmp,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    pub network: String,
    /// The endpoint (or its switch-side interface) the frame arrives on.
    pub in_port: String,
    #[serde(default)]
    pub src_mac: Option<MacAddr>,
    #[serde(default)]
    pub dst_mac: Option<MacAddr>,
    #[serde(default)]
    pub src_ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub dst_ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub proto: TraceProto,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
    /// IPv4 packet length (headers included).
    #[serde(default)]
    pub size: Option<usize>,
    /// An 802.1Q tag.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Clear the don't-fragment bit.
    #[serde(default)]
    pub no_df: bool,
}

impl Manager {
    pub(super) fn trace(&mut self, req: &TraceRequest) -> Result<Value, ControlError> {
        let net = self.network(&req.network)?;
        let ep = net
            .endpoints
            .values()
            .find(|e| e.name == req.in_port || e.port == req.in_port)
            .ok_or_else(|| ControlError::NoSuchEndpoint {
                network: req.network.clone(),
                endpoint: req.in_port.clone(),
            })?;
        let in_port = self.port_of(&net.name, &ep.name).ok_or_else(|| {
            ControlError::Invalid(format!(
                "endpoint '{}' has no port on the switch right now",
                ep.name
            ))
        })?;
        let subnet = net.ipam.subnet;
        let by_mac = |mac: MacAddr| net.endpoints.values().find(|e| e.mac == Some(mac));
        let by_ip = |ip: Ipv4Addr| net.endpoints.values().find(|e| e.ipv4 == Some(ip));
        let src_mac = req.src_mac.or(ep.mac).unwrap_or(STRANGER);
        let src_ip = req
            .src_ip
            .or(ep.ipv4)
            .unwrap_or_else(|| subnet.hosts().last().unwrap_or(subnet.addr()));
        let dst_ip = req
            .dst_ip
            .or_else(|| req.dst_mac.and_then(by_mac).and_then(|e| e.ipv4))
            .unwrap_or(net.ipam.gateway);
        let router_mac = self.state.router_mac.unwrap_or_default();
        let dst_mac = req.dst_mac.unwrap_or_else(|| {
            if !subnet.contains(&dst_ip) || dst_ip == net.ipam.gateway {
                router_mac
            } else {
                by_ip(dst_ip)
                    .and_then(|e| e.mac)
                    .unwrap_or(MacAddr::BROADCAST)
            }
        });
        let frame = build_frame(req, src_mac, dst_mac, src_ip, dst_ip)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.worker.send(Command::Trace {
            in_port,
            frame: frame.clone(),
            reply: tx,
        });
        let steps = rx
            .recv_timeout(WORKER_ANSWER)
            .map_err(|e| ControlError::Datapath(e.to_string()))?;
        let topo = self.topology.load();
        let summary = format!(
            "{src_mac} > {dst_mac}, {src_ip} > {dst_ip} {}, {} bytes",
            match req.proto {
                TraceProto::Icmp => "icmp echo request".to_string(),
                TraceProto::Tcp => format!(
                    "tcp {} > {} [S]",
                    req.sport.unwrap_or(DEFAULT_SPORT),
                    req.dport.unwrap_or(DEFAULT_DPORT)
                ),
                TraceProto::Udp => format!(
                    "udp {} > {}",
                    req.sport.unwrap_or(DEFAULT_SPORT),
                    req.dport.unwrap_or(DEFAULT_DPORT)
                ),
            },
            frame.len()
        );
        let steps: Vec<Value> = steps.iter().map(|s| render(s, &topo)).collect();
        Ok(json!({ "frame": summary, "steps": steps }))
    }
}

const DEFAULT_SPORT: u16 = 40000;
const DEFAULT_DPORT: u16 = 80;

fn build_frame(
    req: &TraceRequest,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
) -> Result<Vec<u8>, ControlError> {
    let l4 = match req.proto {
        TraceProto::Icmp => 8,
        TraceProto::Udp => 8,
        TraceProto::Tcp => 20,
    };
    let min = IPV4_HLEN + l4;
    let size = req.size.unwrap_or(64);
    if !(min..=65_535).contains(&size) {
        return Err(ControlError::Invalid(format!(
            "--size {size}: an IPv4 {} packet is {min} to 65535 bytes",
            match req.proto {
                TraceProto::Icmp => "ICMP",
                TraceProto::Udp => "UDP",
                TraceProto::Tcp => "TCP",
            }
        )));
    }
    if req.proto == TraceProto::Icmp && (req.sport.is_some() || req.dport.is_some()) {
        return Err(ControlError::Invalid(
            "--sport and --dport need --proto tcp or udp".into(),
        ));
    }
    let payload = vec![0u8; size - min];
    let proto = match req.proto {
        TraceProto::Icmp => IpNumber::ICMP,
        TraceProto::Udp => IpNumber::UDP,
        TraceProto::Tcp => IpNumber::TCP,
    };
    let mut ip = Ipv4Header::new(0, 64, proto, src_ip.octets(), dst_ip.octets())
        .map_err(|e| ControlError::Invalid(e.to_string()))?;
    ip.dont_fragment = !req.no_df;
    let ip = IpHeaders::Ipv4(ip, Ipv4Extensions::default());
    let eth = PacketBuilder::ethernet2(src_mac.0, dst_mac.0);
    let ip_step = match req.vlan {
        Some(id) => {
            let vid = etherparse::VlanId::try_new(id).map_err(|_| {
                ControlError::Invalid(format!("--vlan {id}: a VLAN id is 0 to 4095"))
            })?;
            eth.single_vlan(vid).ip(ip)
        }
        None => eth.ip(ip),
    };
    let (sport, dport) = (
        req.sport.unwrap_or(DEFAULT_SPORT),
        req.dport.unwrap_or(DEFAULT_DPORT),
    );
    let mut out = Vec::with_capacity(size + 18);
    let written = match req.proto {
        TraceProto::Icmp => ip_step
            .icmpv4_echo_request(0x7472, 1)
            .write(&mut out, &payload),
        TraceProto::Udp => ip_step.udp(sport, dport).write(&mut out, &payload),
        TraceProto::Tcp => ip_step
            .tcp(sport, dport, 1, 64_240)
            .syn()
            .write(&mut out, &payload),
    };
    written.map_err(|e| ControlError::Invalid(format!("cannot build that frame: {e}")))?;
    Ok(out)
}

/// One step as JSON: `step` (its kind), `text` (the line the CLI prints), and fields.
fn render(step: &Step, topo: &Topology) -> Value {
    let port = |p: fdb::PortId| {
        topo.ports
            .get(&p)
            .map_or_else(|| format!("port{}", p.0), |i| i.endpoint.clone())
    };
    let net = |n: fdb::NetworkId| {
        topo.networks
            .get(&n)
            .map_or_else(|| format!("network{}", n.0), |i| i.name.clone())
    };
    let loc = |l: Location| match l {
        Location::Port(p) => format!("port {}", port(p)),
        Location::Vtep(ip) => format!("vtep {ip}"),
    };
    let (kind, text, fields) = match step {
        Step::Ingress { port: p, network } => (
            "ingress",
            format!("port {} of network {}", port(*p), net(*network)),
            json!({"port": port(*p), "network": net(*network)}),
        ),
        Step::Learn { mac, at, before } => {
            let how = match before {
                None => "would learn it (new)".to_string(),
                Some(b) if b == at => "already learned there (would refresh)".to_string(),
                Some(b) => format!("would move it from {}", loc(*b)),
            };
            (
                "learn",
                format!("source {mac} at {}: {how}", loc(*at)),
                json!({"mac": mac.to_string(), "at": loc(*at), "before": before.map(loc)}),
            )
        }
        Step::ToRouter { network } => {
            let gw = topo.networks.get(network).map(|n| n.gateway);
            (
                "router",
                format!(
                    "to the router of network {}: gateway {}, router MAC {}",
                    net(*network),
                    gw.map(|g| g.to_string()).unwrap_or_default(),
                    topo.router_mac
                ),
                json!({"network": net(*network), "gateway": gw, "router_mac": topo.router_mac.to_string()}),
            )
        }
        Step::Multicast { mac } => (
            "fdb",
            format!("{mac} is a group address: flood"),
            json!({"mac": mac.to_string(), "result": "group"}),
        ),
        Step::FdbHit { mac, at } => (
            "fdb",
            format!("{mac} hit: {}", loc(*at)),
            json!({"mac": mac.to_string(), "result": "hit", "at": loc(*at)}),
        ),
        Step::FdbMiss { mac } => (
            "fdb",
            format!("{mac} unknown: flood"),
            json!({"mac": mac.to_string(), "result": "miss"}),
        ),
        Step::Flood {
            network,
            ports,
            peers,
        } => {
            let ports: Vec<String> = ports.iter().map(|p| port(*p)).collect();
            let peers: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            (
                "flood",
                format!(
                    "network {}: ports {}; peers {}",
                    net(*network),
                    list(&ports),
                    list(&peers)
                ),
                json!({"network": net(*network), "ports": ports, "peers": peers}),
            )
        }
        Step::Route { dst, kind, to } => {
            let text = match *kind {
                "gateway" => format!("{dst} is the gateway itself"),
                "network" => format!("{dst} via network {}", to.map(net).unwrap_or_default()),
                "external" => format!("{dst} is outside: masquerade to the uplink"),
                "denied" => format!(
                    "{dst} is in network {}, which this one may not route to",
                    to.map(net).unwrap_or_default()
                ),
                _ => format!("no route to {dst}"),
            };
            (
                "route",
                text,
                json!({"dst": dst, "kind": kind, "to": to.map(net)}),
            )
        }
        Step::ArpAnswer { ip } => (
            "arp",
            format!("ARP request for {ip}: the router answers"),
            json!({"ip": ip}),
        ),
        Step::EchoReply => (
            "icmp",
            "echo request to the gateway: the router answers".into(),
            json!({}),
        ),
        Step::Neighbour {
            ip,
            network,
            resolution,
        } => {
            let on =
                network.map_or_else(|| "uplink".to_string(), |n| format!("network {}", net(n)));
            let (what, mac) = match resolution {
                Resolution::Known(m) => (format!("is {m}"), Some(m.to_string())),
                Resolution::Resolving { request: true } => (
                    "unknown: the packet would wait while ARP asks".to_string(),
                    None,
                ),
                Resolution::Resolving { request: false } => (
                    "being resolved: the packet would wait for the answer".to_string(),
                    None,
                ),
                Resolution::Failed => ("did not answer ARP: drop".to_string(), None),
            };
            (
                "arp",
                format!("next hop {ip} on {on} {what}"),
                json!({"ip": ip, "on": on, "mac": mac}),
            )
        }
        Step::Nat(p) => {
            let ep = |(ip, port): (Ipv4Addr, u16)| format!("{ip}:{port}");
            let how = if p.existing {
                "existing connection"
            } else {
                "new connection"
            };
            (
                "nat",
                format!(
                    "{} {} {} -> {} becomes {} -> {} ({how})",
                    p.kind.name(),
                    p.proto,
                    ep(p.original.src),
                    ep(p.original.dst),
                    ep(p.translated.src),
                    ep(p.translated.dst)
                ),
                json!({
                    "rule": p.kind.name(),
                    "proto": p.proto,
                    "original": {"src": ep(p.original.src), "dst": ep(p.original.dst)},
                    "translated": {"src": ep(p.translated.src), "dst": ep(p.translated.dst)},
                    "existing": p.existing,
                }),
            )
        }
        Step::NatRefused(r) => (
            "nat",
            format!("refused: {}", r.name()),
            json!({"refused": r.name()}),
        ),
        Step::Mtu { len, mtu, verdict } => {
            let what = match verdict {
                MtuVerdict::Fits => "fits".to_string(),
                MtuVerdict::Fragmented { pieces } => {
                    format!("too big, no DF: fragmented into {pieces}")
                }
                MtuVerdict::IcmpTooBig => "too big: ICMP error back to the sender".to_string(),
                MtuVerdict::Split => "super-frame: split into segments that fit".to_string(),
                MtuVerdict::Dropped => "too big: dropped".to_string(),
            };
            let verdict_name = match verdict {
                MtuVerdict::Fits => "fits",
                MtuVerdict::Fragmented { .. } => "fragment",
                MtuVerdict::IcmpTooBig => "icmp_too_big",
                MtuVerdict::Split => "split",
                MtuVerdict::Dropped => "drop",
            };
            // The MTU is an IP MTU: compare the packet, not the Ethernet frame.
            let packet = len.saturating_sub(crate::datapath::pipeline::ETH_HLEN);
            (
                "mtu",
                format!("{packet}-byte packet, MTU {mtu}: {what}"),
                json!({"packet_len": packet, "mtu": mtu, "verdict": verdict_name}),
            )
        }
        Step::Egress(exit) => match exit {
            Exit::Port(p) => (
                "egress",
                format!("port {}", port(*p)),
                json!({"port": port(*p)}),
            ),
            Exit::Vtep { ip, vni } => (
                "egress",
                format!("VXLAN to vtep {ip}, VNI {}", vni.get()),
                json!({"vtep": ip, "vni": vni.get()}),
            ),
            Exit::Uplink => ("egress", "uplink".into(), json!({"uplink": true})),
        },
        Step::Reply { port: p, what } => (
            "reply",
            format!("{what} back out of port {}", port(*p)),
            json!({"port": port(*p), "what": what}),
        ),
        Step::Drop(r) => (
            "drop",
            format!("dropped: {}", r.name()),
            json!({"reason": r.name()}),
        ),
        Step::RouterDrop(r) => (
            "drop",
            format!("router dropped it: {}", r.name()),
            json!({"reason": r.name()}),
        ),
    };
    let mut v = json!({ "step": kind, "text": text });
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), fields) {
        obj.extend(extra);
    }
    v
}
