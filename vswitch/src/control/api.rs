//! The control protocol between the CLI and the daemon: one JSON object per line over a
//! Unix stream socket, a request from the client and one response from the daemon.
//! Requests are parsed strictly (unknown fields and operations are errors); a malformed
//! request gets an error response and the connection stays usable.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use fdb::MacAddr;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::state::Driver;

/// Longest request line the daemon reads; longer is an error, not an allocation.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    NetworkCreate(NetworkCreate),
    NetworkLs,
    NetworkInspect {
        names: Vec<String>,
    },
    NetworkConnect(NetworkConnect),
    NetworkDisconnect {
        network: String,
        endpoint: String,
    },
    NetworkRm {
        names: Vec<String>,
    },
    NetworkPrune,
    FdbShow {
        network: Option<String>,
    },
    FdbAdd {
        network: String,
        mac: MacAddr,
        target: FdbTarget,
    },
    FdbDel {
        network: String,
        mac: MacAddr,
    },
    PeerAdd {
        ip: IpAddr,
        vnis: Vec<u32>,
    },
    PeerRm {
        ip: IpAddr,
    },
    PeerLs,
    Stats,
    PortPublish {
        network: String,
        endpoint: String,
        spec: String,
    },
    PortUnpublish {
        network: String,
        endpoint: String,
        spec: String,
    },
    PortLs,
    NatLs,
    /// Streams copies of frames (see `control::capture`); served by the connection.
    Capture(super::capture::CaptureRequest),
    /// Runs a synthetic frame through the packet path without side effects.
    Trace(super::trace::TraceRequest),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FdbTarget {
    /// An endpoint name or a switch-side interface name.
    Port(String),
    Vtep(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: String,
    #[serde(default)]
    pub driver: Driver,
    #[serde(default)]
    pub vni: Option<u32>,
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Networks this one may route to (and from) through the switch.
    #[serde(default)]
    pub route_to: Vec<String>,
}

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Attach {
    /// Create a veth pair; move one end into this namespace (named as `ip netns` names it).
    Netns(String),
    /// Create (or re-attach) a TAP device owned by the switch.
    Tap(String),
    /// Attach an existing interface through AF_PACKET.
    Iface(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConnect {
    pub network: String,
    pub attach: Attach,
    /// Endpoint name; defaults to the namespace or interface name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Interface name inside the namespace (default eth0).
    #[serde(default)]
    pub ifname: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The daemon's answer: `{"ok": <value>}` or `{"error": "<one line>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Ok(serde_json::Value),
    Error(String),
}

/// One row of `network ls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub driver: Driver,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub vni: Option<u32>,
    pub mtu: u32,
    pub internal: bool,
    pub endpoints: usize,
    pub created: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_strictly() {
        let ok: Request =
            serde_json::from_str(r#"{"op":"network_inspect","names":["a"]}"#).unwrap();
        assert_eq!(
            ok,
            Request::NetworkInspect {
                names: vec!["a".into()]
            }
        );
        let ok: Request =
            serde_json::from_str(r#"{"op":"network_create","name":"a","subnet":"10.0.0.0/24"}"#)
                .unwrap();
        assert!(matches!(ok, Request::NetworkCreate(c) if c.subnet.is_some()));
        for bad in [
            r#"{"op":"network_inspect","names":["a"],"x":1}"#,
            r#"{"op":"network_create","name":"a","subnett":"10.0.0.0/24"}"#,
            r#"{"op":"nope"}"#,
            r#"{"names":["a"]}"#,
            r#"{"op":"network_create","name":"a","subnet":"10.0.0/24"}"#,
            r#"{"op":"fdb_add","network":"a","mac":"zz","target":{"port":"p"}}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
