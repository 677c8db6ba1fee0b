//! The trace's steps as the user sees them: each a JSON object with `step` (its kind),
//! `text` (the line `vswitch trace` prints) and the step's fields, ports and networks by
//! name.

use std::net::Ipv4Addr;

use fdb::Location;
use serde_json::{Value, json};

use crate::datapath::observe::{Exit, MtuVerdict, Resolution, Step};
use crate::datapath::topology::Topology;

/// One step as JSON: `step` (its kind), `text` (the line the CLI prints), and fields.
pub(super) fn step(step: &Step, topo: &Topology) -> Value {
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
        Step::FromUplink => (
            "ingress",
            "the uplink: to the router and the NAT".into(),
            json!({"uplink": true}),
        ),
        Step::FromPeer {
            ip,
            vni,
            network,
            known,
        } => {
            let verdict = if *known {
                "decapsulated"
            } else {
                "not a peer carrying that VNI: dropped (vxlan_not_a_peer)"
            };
            (
                "ingress",
                format!(
                    "VXLAN from vtep {ip}, VNI {} (network {}): {verdict}",
                    vni.get(),
                    net(*network)
                ),
                json!({"vtep": ip, "vni": vni.get(), "network": net(*network), "known_peer": known}),
            )
        }
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
            "echo request to an address of the switch's: the router answers".into(),
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
