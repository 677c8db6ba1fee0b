//! The command line, as clap derives it. Values are parsed here (CIDRs, MACs, K=V), so a
//! typo is refused before anything is sent to the daemon.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fdb::MacAddr;
use ipnet::Ipv4Net;

use crate::config::DEFAULT_SOCKET;

#[derive(Debug, Parser)]
#[command(
    name = "vswitch",
    version,
    about = "A userspace virtual switch and VXLAN overlay router",
    after_help = "Example: start the daemon with `vswitch run`, then manage it like `docker network`:\n  vswitch network create blue --subnet 10.1.0.0/24\n  vswitch network connect blue --netns ctr1\n\nExit status: 0 done, 1 refused or failed (one line on stderr saying why), 2 the command line does not parse."
)]
pub struct Cli {
    /// The daemon's API socket.
    #[arg(long, global = true, env = "VSWITCH_SOCKET", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (Ctrl-C or SIGTERM stops it, SIGHUP reloads --config).
    #[command(
        after_help = "Examples:\n  vswitch run --state-dir /var/lib/vswitch --socket /run/vswitch/vswitch.sock\n  vswitch run --config /etc/vswitch/vswitch.toml\n\nSIGHUP reads the config file again and applies [fdb] aging_secs, [log] level, [ipam] and the [nat] limit and timeouts; other changes are logged as needing a restart. SIGTERM closes the ports and deletes the veth pairs and TAPs the switch made; the state keeps them and the next start makes them again."
    )]
    Run(RunArgs),
    /// Manage networks.
    #[command(
        subcommand,
        after_help = "Examples:\n  vswitch network create blue --subnet 10.1.0.0/24\n  vswitch network connect blue --netns ctr1\n  vswitch network ls"
    )]
    Network(NetworkCommand),
    /// Show and edit the forwarding database.
    #[command(
        subcommand,
        after_help = "Examples:\n  vswitch fdb show blue\n  vswitch fdb add blue 02:42:0a:01:00:09 --port ctr1"
    )]
    Fdb(FdbCommand),
    /// Manage VXLAN peers (other hosts' VTEP addresses).
    #[command(
        subcommand,
        after_help = "Examples:\n  vswitch peer add 192.0.2.2 --vni 42\n  vswitch peer ls"
    )]
    Peer(PeerCommand),
    /// Publish container ports on the uplink's address, like Docker's -p.
    #[command(
        subcommand,
        after_help = "Examples:\n  vswitch port publish blue web 8080:80\n  vswitch port ls"
    )]
    Port(PortCommand),
    /// Show the NAT's tracked connections.
    #[command(subcommand, after_help = "Example:\n  vswitch nat ls --format json")]
    Nat(NatCommand),
    /// Show per-port counters, drops by reason, and FDB counters.
    #[command(after_help = "Example:\n  vswitch stats --format json")]
    Stats(FormatArg),
    /// Capture frames at a port, a network, the underlay or the uplink (pcap or text).
    Capture(crate::cli::capture::CaptureArgs),
    /// Show what the switch would do with a frame, step by step, without sending it.
    Trace(crate::cli::trace::TraceArgs),
    /// Labs of hosts and containers in network namespaces on this machine.
    #[command(
        subcommand,
        after_help = "Examples:\n  sudo vswitch lab up labs/three-hosts.toml\n  sudo vswitch lab down labs/three-hosts.toml"
    )]
    Lab(LabCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  vswitch completions bash > /etc/bash_completion.d/vswitch\n  vswitch completions zsh > \"${fpath[1]}/_vswitch\"\n  vswitch completions fish > ~/.config/fish/completions/vswitch.fish"
    )]
    Completions(super::reference::CompletionsArgs),
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build a two-host overlay lab, ping and measure TCP throughput across it, print a table, tear it down.
    #[command(after_help = "Example:\n  sudo vswitch lab demo")]
    Demo,
    /// Build the lab a topology file describes and leave it running.
    #[command(
        after_help = "Examples:\n  sudo vswitch lab up labs/three-hosts.toml\n  sudo vswitch lab up labs/three-hosts.toml --format json"
    )]
    Up {
        file: PathBuf,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove every namespace, link and daemon of the lab a topology file describes.
    #[command(after_help = "Example:\n  sudo vswitch lab down labs/three-hosts.toml")]
    Down { file: PathBuf },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where networks and endpoints are kept [default: /var/lib/vswitch].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Packet threads; every port gets one queue per worker [default: one per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    #[command(
        after_help = "Example:\n  vswitch network create blue --subnet 10.1.0.0/24 --ip-range 10.1.0.128/25 --aux-address router=10.1.0.2"
    )]
    Create(CreateArgs),
    /// List networks.
    #[command(
        alias = "list",
        after_help = "Example:\n  vswitch network ls --format json"
    )]
    Ls(LsArgs),
    /// Show networks in detail (JSON in Docker's shape, or a table of their endpoints).
    #[command(
        after_help = "Examples:\n  vswitch network inspect blue\n  vswitch network inspect blue red --format table"
    )]
    Inspect {
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Attach a container namespace, a TAP device or an existing interface.
    #[command(
        after_help = "Examples:\n  vswitch network connect blue --netns ctr1 --ip 10.1.0.10\n  vswitch network connect blue --tap vm0\n  vswitch network connect blue --iface veth-x"
    )]
    Connect(ConnectArgs),
    /// Detach an endpoint (and delete the veth or TAP the switch made for it).
    #[command(after_help = "Example:\n  vswitch network disconnect blue ctr1")]
    Disconnect { network: String, endpoint: String },
    /// Remove networks (they must have no endpoints).
    #[command(
        alias = "remove",
        after_help = "Example:\n  vswitch network rm blue red"
    )]
    Rm {
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Remove every network that has no endpoints.
    #[command(after_help = "Example:\n  vswitch network prune --force")]
    Prune {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DriverArg {
    #[default]
    Bridge,
    Overlay,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// bridge (this host) or overlay (VXLAN across hosts).
    #[arg(long, value_enum, default_value_t)]
    pub driver: DriverArg,
    /// VXLAN network identifier (overlay networks).
    #[arg(long, value_name = "N")]
    pub vni: Option<u32>,
    /// Subnet in CIDR form [default: the next free /24 of the pool].
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub subnet: Option<Ipv4Net>,
    /// Gateway address [default: the subnet's first host].
    #[arg(long, value_name = "IP")]
    pub gateway: Option<Ipv4Addr>,
    /// Hand out automatic addresses from this range only.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub ip_range: Option<Ipv4Net>,
    /// An address never handed out (repeatable).
    #[arg(long = "aux-address", value_name = "NAME=IP", value_parser = parse_aux)]
    pub aux_addresses: Vec<(String, Ipv4Addr)>,
    /// IP MTU of the network's endpoints [default: 1500].
    #[arg(long, value_name = "N")]
    pub mtu: Option<u32>,
    /// No external access.
    #[arg(long)]
    pub internal: bool,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "K=V", value_parser = parse_kv)]
    pub labels: Vec<(String, String)>,
    /// Route to and from this other network through the switch (repeatable; networks
    /// are isolated from each other otherwise).
    #[arg(long = "route-to", value_name = "NETWORK")]
    pub route_to: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub format: FormatArg,
    /// Only print network ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AttachArg {
    /// Create a veth pair into this network namespace (as `ip netns` names it).
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Create a TAP device owned by the switch.
    #[arg(long, value_name = "IFNAME")]
    pub tap: Option<String>,
    /// Attach an existing interface.
    #[arg(long, value_name = "IFNAME")]
    pub iface: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    pub network: String,
    #[command(flatten)]
    pub attach: AttachArg,
    /// Endpoint name [default: the namespace or interface name].
    #[arg(long)]
    pub name: Option<String>,
    /// IPv4 address [default: the next free one].
    #[arg(long, value_name = "IP")]
    pub ip: Option<Ipv4Addr>,
    /// MAC address [default: 02:42 followed by the IPv4 address].
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub mac: Option<MacAddr>,
    /// Interface name inside the namespace [default: eth0].
    #[arg(long, value_name = "IF")]
    pub ifname: Option<String>,
    /// A network-scoped alias (repeatable).
    #[arg(long = "alias", value_name = "A")]
    pub aliases: Vec<String>,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Debug, Subcommand)]
pub enum FdbCommand {
    /// List learned and static MACs.
    #[command(after_help = "Example:\n  vswitch fdb show blue --format json")]
    Show {
        network: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Add a static entry: never aged, never moved by learning.
    #[command(
        after_help = "Examples:\n  vswitch fdb add blue 02:42:0a:01:00:09 --port ctr1\n  vswitch fdb add blue 02:42:0a:01:00:09 --vtep 192.0.2.2"
    )]
    Add {
        network: String,
        #[arg(value_parser = parse_mac)]
        mac: MacAddr,
        #[command(flatten)]
        target: FdbTargetArg,
    },
    /// Remove an entry (static or learned).
    #[command(after_help = "Example:\n  vswitch fdb del blue 02:42:0a:01:00:09")]
    Del {
        network: String,
        #[arg(value_parser = parse_mac)]
        mac: MacAddr,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct FdbTargetArg {
    /// An endpoint of the network (or its switch-side interface name).
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// A remote VTEP (overlay networks).
    #[arg(long, value_name = "IP")]
    pub vtep: Option<IpAddr>,
}

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// Publish a port: traffic to [HOSTIP:]HOSTPORT on the uplink reaches PORT of the endpoint.
    #[command(
        after_help = "Examples:\n  vswitch port publish blue web 8080:80\n  vswitch port publish blue dns 203.0.113.3:53:53/udp"
    )]
    Publish {
        network: String,
        endpoint: String,
        /// [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]
        spec: String,
    },
    /// Stop publishing a port.
    #[command(
        alias = "rm",
        after_help = "Example:\n  vswitch port unpublish blue web 8080:80"
    )]
    Unpublish {
        network: String,
        endpoint: String,
        spec: String,
    },
    /// List published ports.
    #[command(
        alias = "list",
        after_help = "Example:\n  vswitch port ls --format json"
    )]
    Ls(FormatArg),
}

#[derive(Debug, Subcommand)]
pub enum NatCommand {
    /// List tracked connections: original and translated tuples, state, age.
    #[command(
        alias = "list",
        after_help = "Example:\n  vswitch nat ls --format json"
    )]
    Ls(FormatArg),
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Add a peer, for every VNI or only the ones named (adding again widens the list).
    #[command(
        after_help = "Examples:\n  vswitch peer add 192.0.2.2\n  vswitch peer add 192.0.2.3 --vni 42 --vni 43"
    )]
    Add {
        ip: IpAddr,
        /// A VNI the peer carries (repeatable; none means all).
        #[arg(long = "vni", value_name = "N")]
        vnis: Vec<u32>,
    },
    /// Remove a peer (and forget the MACs learned behind it).
    #[command(alias = "del", after_help = "Example:\n  vswitch peer rm 192.0.2.2")]
    Rm { ip: IpAddr },
    /// List peers.
    #[command(
        alias = "list",
        after_help = "Example:\n  vswitch peer ls --format json"
    )]
    Ls(FormatArg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    s.parse::<Ipv4Net>()
        .map_err(|_| format!("expected an IPv4 CIDR such as 10.1.0.0/24, got '{s}'"))
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse::<MacAddr>().map_err(|e| e.to_string())
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

fn parse_aux(s: &str) -> Result<(String, Ipv4Addr), String> {
    let (k, v) = parse_kv(s).map_err(|_| format!("expected NAME=IP, got '{s}'"))?;
    let ip = v
        .parse()
        .map_err(|_| format!("expected NAME=IP with an IPv4 address, got '{s}'"))?;
    Ok((k, ip))
}
