//! `vswitch trace`: asks the daemon what it would do with a frame (like `ovs-appctl
//! ofproto/trace`) and prints each decision on a line of its own, or the steps as JSON.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use clap::{ArgGroup, Args, ValueEnum};
use fdb::MacAddr;
use serde_json::Value;

use super::args::{Format, FormatArg};
use super::client::call;
use crate::control::api::Request;
use crate::control::trace::{TraceProto, TraceRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    Icmp,
    Tcp,
    Udp,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vswitch trace blue --in ctr1 --dst-ip 10.1.0.11\n  vswitch trace blue --in ctr1 --dst-ip 198.51.100.7 --proto tcp --dport 443\n  vswitch trace blue --in ctr1 --dst-mac 02:42:0a:01:00:0b --size 1600 --format json\n  vswitch trace ov --from-peer 192.0.2.2 --dst-ip 10.1.0.11\n  vswitch trace --from-uplink --proto tcp --dport 8080      (a published port)\n\nNothing is sent, learned or counted, and no connection is tracked. Fields left out\ncome from what the switch knows: the source is the in-port endpoint (from a peer,\na made-up sender unless --src-mac and --src-ip say); an address outside the subnet\nis sent to the gateway's MAC, one inside it to its endpoint's. From the uplink the\nsender is 198.51.100.7 and the destination the uplink's first address."
)]
#[command(group(
    ArgGroup::new("entry")
        .required(true)
        .args(["in_port", "from_peer", "from_uplink"])
))]
pub struct TraceArgs {
    /// The network the frame is in.
    #[arg(required_unless_present = "from_uplink")]
    pub network: Option<String>,
    /// The endpoint (or its switch-side interface) the frame arrives on.
    #[arg(long = "in", value_name = "PORT")]
    pub in_port: Option<String>,
    /// Or the peer (VTEP) whose VXLAN datagram carries the frame, on an overlay network.
    #[arg(long, value_name = "IP")]
    pub from_peer: Option<IpAddr>,
    /// Or the uplink: a frame from outside, to an address of the switch's there
    /// (published ports, replies to masqueraded connections); no NETWORK then.
    #[arg(long, conflicts_with = "network")]
    pub from_uplink: bool,
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub src_mac: Option<MacAddr>,
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub dst_mac: Option<MacAddr>,
    #[arg(long, value_name = "IP")]
    pub src_ip: Option<Ipv4Addr>,
    #[arg(long, value_name = "IP")]
    pub dst_ip: Option<Ipv4Addr>,
    /// The protocol [default: icmp (echo request); tcp is a SYN].
    #[arg(long, value_enum)]
    pub proto: Option<ProtoArg>,
    #[arg(long, value_name = "PORT")]
    pub sport: Option<u16>,
    #[arg(long, value_name = "PORT")]
    pub dport: Option<u16>,
    /// IPv4 packet length in bytes, headers included [default: 64].
    #[arg(long, value_name = "N")]
    pub size: Option<usize>,
    /// Clear the don't-fragment bit (set by default, as Linux sends).
    #[arg(long)]
    pub no_df: bool,
    /// Tag the frame with this 802.1Q VLAN id.
    #[arg(long, value_name = "ID")]
    pub vlan: Option<u16>,
    #[command(flatten)]
    pub format: FormatArg,
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse::<MacAddr>().map_err(|e| e.to_string())
}

pub fn run(socket: &Path, a: TraceArgs) -> Result<(), String> {
    let req = Request::Trace(TraceRequest {
        network: a.network,
        in_port: a.in_port,
        from_peer: a.from_peer,
        from_uplink: a.from_uplink,
        src_mac: a.src_mac,
        dst_mac: a.dst_mac,
        src_ip: a.src_ip,
        dst_ip: a.dst_ip,
        proto: match a.proto {
            None | Some(ProtoArg::Icmp) => TraceProto::Icmp,
            Some(ProtoArg::Tcp) => TraceProto::Tcp,
            Some(ProtoArg::Udp) => TraceProto::Udp,
        },
        sport: a.sport,
        dport: a.dport,
        size: a.size,
        vlan: a.vlan,
        no_df: a.no_df,
    });
    let v = call(socket, &req).map_err(|e| e.to_string())?;
    match a.format.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Format::Table => print_steps(&v),
    }
    Ok(())
}

fn print_steps(v: &Value) {
    println!("frame: {}", v["frame"].as_str().unwrap_or_default());
    // With several workers, say which one the frame's flow reaches (its NAT lane).
    if let (Some(k), Some(n @ 2..)) = (v["worker"].as_u64(), v["workers"].as_u64()) {
        // Numbered from 0, as `stats` and the logs number them.
        println!(
            "worker: {k} of 0-{} (the one this flow's frames reach)",
            n - 1
        );
    }
    for s in v["steps"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {}",
            s["step"].as_str().unwrap_or("?"),
            s["text"].as_str().unwrap_or_default()
        );
    }
}
