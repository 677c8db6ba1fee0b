//! `vswitch trace` on the daemon's side: build the synthetic frame the request describes
//! (filling what it leaves out from what the switch knows), hand it to the worker that
//! would read it (the one the port's steering program picks, computed by
//! `port::steer::mirror`: its NAT lane decides a masqueraded flow's port), which runs it
//! through the real packet path without side effects (`datapath::observe`), and render
//! the decisions as one line (and one JSON object) each.
//!
//! The frame enters at a local port (`in_port`); on an overlay network, as the inner
//! frame of a VXLAN datagram from a peer (`from_peer`); or on the uplink (`from_uplink`,
//! no network: its destination decides).
//!
//! Defaults: the source MAC and IP are the in-port endpoint's (else, and for a frame
//! from a peer, a locally administered MAC and the subnet's last address); the
//! destination IP is the endpoint with the destination MAC's (else the gateway); the
//! destination MAC is what the sender would use: the router's MAC for an address outside
//! the subnet, the endpoint's MAC for one inside it (a host the switch does not know gets
//! a broadcast, as its ARP would be). From the uplink: an outside host (198.51.100.7) to
//! the uplink's first address and MAC. ICMP echo, 64-byte IP packets with DF set (as
//! Linux sends them), TCP as a SYN.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use etherparse::{IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder};
use fdb::MacAddr;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ControlError;
use super::manager::Manager;
use crate::datapath::pipeline::Ingress;
use crate::datapath::worker::{Command, TraceFrom};
use crate::port::steer::mirror;

mod render;

/// How long the worker may take to answer (it answers between two batches).
const WORKER_ANSWER: Duration = Duration::from_secs(5);
/// A MAC for a sender the switch knows nothing about.
const STRANGER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// The source of a frame from the uplink unless `--src-ip` says (TEST-NET-2, RFC 5737).
const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
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
    /// The network the frame is in (none for a frame from the uplink).
    #[serde(default)]
    pub network: Option<String>,
    /// The endpoint (or its switch-side interface) the frame arrives on.
    #[serde(default)]
    pub in_port: Option<String>,
    /// Or the peer whose VXLAN datagram carries it (an overlay network only).
    #[serde(default)]
    pub from_peer: Option<IpAddr>,
    /// Or the uplink (then no network: the destination decides).
    #[serde(default)]
    pub from_uplink: bool,
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
        let entry = if req.from_uplink {
            self.uplink_entry(req)?
        } else {
            self.network_entry(req)?
        };
        let Entry {
            from,
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
        } = entry;
        let frame = build_frame(req, src_mac, dst_mac, src_ip, dst_ip)?;
        let worker = self.reading_worker(from, &frame);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.workers.send_to(
            worker,
            Command::Trace {
                from,
                frame: frame.clone(),
                reply: tx,
            },
        );
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
        let steps: Vec<Value> = steps.iter().map(|s| render::step(s, &topo)).collect();
        Ok(json!({
            "frame": summary,
            "worker": worker,
            "workers": self.workers.len(),
            "steps": steps,
        }))
    }

    /// The worker whose queue `frame` reaches: by the flow hash on a local port or the
    /// underlay (the inner frame's), by the NAT's reply program on the uplink (the
    /// first worker where that program falls back on the device's receive hash).
    fn reading_worker(&self, from: TraceFrom, frame: &[u8]) -> usize {
        let value = match from {
            TraceFrom::Switch(_) => Some(mirror::flow_hash_of_frame(frame)),
            TraceFrom::Uplink => (self.nat.as_ref())
                .and_then(|nat| mirror::nat_reply_lane_of_frame(frame, nat.port_range())),
        };
        value.map_or(0, |v| v as usize % self.workers.len().max(1))
    }

    /// A frame from the uplink: to an address of the switch's there, from an outside
    /// host, unless the request says otherwise.
    fn uplink_entry(&self, req: &TraceRequest) -> Result<Entry, ControlError> {
        if req.network.is_some() || req.in_port.is_some() || req.from_peer.is_some() {
            return Err(ControlError::Invalid(
                "a frame from the uplink takes no network, in-port or peer: its destination \
                 decides where it goes"
                    .into(),
            ));
        }
        let (Some(up), Some(_)) = (&self.uplink, &self.nat) else {
            return Err(ControlError::Invalid(
                "this daemon has no uplink: nothing enters from outside".into(),
            ));
        };
        Ok(Entry {
            from: TraceFrom::Uplink,
            src_mac: req.src_mac.unwrap_or(STRANGER),
            dst_mac: req.dst_mac.unwrap_or(up.mac),
            src_ip: req.src_ip.unwrap_or(OUTSIDE_HOST),
            dst_ip: req.dst_ip.unwrap_or(up.config.address.addr()),
        })
    }

    /// A frame at a local port or from a peer of a network, with the defaults the
    /// module doc describes.
    fn network_entry(&self, req: &TraceRequest) -> Result<Entry, ControlError> {
        let name = req
            .network
            .as_deref()
            .ok_or_else(|| ControlError::Invalid("name the network the frame is in".into()))?;
        let net = self.network(name)?;
        let (from, ep) = match (&req.in_port, req.from_peer) {
            (Some(port_name), None) => {
                let ep = net
                    .endpoints
                    .values()
                    .find(|e| &e.name == port_name || &e.port == port_name)
                    .ok_or_else(|| ControlError::NoSuchEndpoint {
                        network: net.name.clone(),
                        endpoint: port_name.clone(),
                    })?;
                let port = self.port_of(&net.name, &ep.name).ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "endpoint '{}' has no port on the switch right now",
                        ep.name
                    ))
                })?;
                (TraceFrom::Switch(Ingress::Port(port)), Some(ep))
            }
            (None, Some(ip)) => {
                let network = self.net_ids.get(&net.name).copied();
                let (Some(network), Some(_)) = (network, net.vni) else {
                    return Err(ControlError::Invalid(format!(
                        "network '{}' is not an overlay network: a frame from a peer needs one",
                        net.name
                    )));
                };
                let ip = ip.to_canonical();
                (TraceFrom::Switch(Ingress::Vtep { ip, network }), None)
            }
            _ => {
                return Err(ControlError::Invalid(
                    "say where the frame enters: an in-port, a peer or the uplink, one of them"
                        .into(),
                ));
            }
        };
        let subnet = net.ipam.subnet;
        let by_mac = |mac: MacAddr| net.endpoints.values().find(|e| e.mac == Some(mac));
        let by_ip = |ip: Ipv4Addr| net.endpoints.values().find(|e| e.ipv4 == Some(ip));
        let src_mac = req.src_mac.or(ep.and_then(|e| e.mac)).unwrap_or(STRANGER);
        let src_ip = req
            .src_ip
            .or(ep.and_then(|e| e.ipv4))
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
        Ok(Entry {
            from,
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
        })
    }
}

/// Where a traced frame enters, and the addresses it is built with.
struct Entry {
    from: TraceFrom,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
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
