//! The daemon's configuration file (TOML, `vswitch run --config FILE`). Every key is
//! optional; command-line flags override the file. Unknown keys are an error, so a typo
//! never silently does nothing.
//!
//! ```toml
//! state_dir = "/var/lib/vswitch"
//! socket = "/run/vswitch/vswitch.sock"
//!
//! [fdb]
//! aging_secs = 300          # idle time before a learned MAC is forgotten
//! max_entries = 65536       # learned MACs in total
//! max_per_port = 4096       # learned MACs behind one port or VTEP
//!
//! [ipam]
//! default_pool = "10.89.0.0/16"   # where networks without --subnet get theirs
//! default_prefix = 24
//!
//! [datapath]
//! batch = 64                # frames read from a port per turn
//! workers = 2               # packet threads, one queue each on every port [default: one per CPU]
//! pin_workers = true        # worker k on the k-th CPU [default: only if the workers leave CPUs free]
//! busy_poll_us = 0          # keep polling this long after traffic before sleeping (0: off)
//! flood_limit_pps = 0       # storm control: floods per second one port or peer may cause (0: off)
//!
//! [underlay]                # VXLAN between hosts (needed by overlay networks)
//! local = "192.0.2.1"       # this host's VTEP address (IPv4 or IPv6), on an interface here
//! port = 4789               # UDP port VXLAN is received on (and sent to)
//! interface = "eth1"        # optional: send and receive only on this interface
//! mtu = 1500                # optional: the underlay's MTU [default: the interface's, else 1500]
//! src_port_range = "61000-61063"  # UDP source ports, picked by a hash of the inner flow
//! udp_checksum = false      # IPv4 outer UDP checksum on single datagrams (IPv6: always)
//! mss_clamp = true          # clamp the MSS of TCP SYNs that cross the overlay
//! gso = true                # send segments to one peer in one UDP_SEGMENT send
//! gro = true                # receive coalesced datagrams (UDP_GRO)
//!
//! [uplink]                  # the way out: the switch routes and NATs to it itself
//! interface = "eth0"        # an interface in the daemon's namespace, without addresses
//! address = "203.0.113.2/24"  # the switch's own external address (it answers ARP for it)
//! gateway = "203.0.113.1"   # the next hop (resolved by the switch's own ARP)
//! address6 = "2001:db8::2/64"  # optional; accepted, IPv6 egress is not routed yet
//! extra_addresses = ["203.0.113.3"]  # optional: more addresses the switch owns there
//! mtu = 1500                # optional [default: the interface's]
//!
//! [metrics]                 # Prometheus text format at http://LISTEN/metrics (off if absent)
//! listen = "127.0.0.1:9477"
//!
//! [log]
//! level = "info"            # tracing filter: error, warn, info, debug, trace, or
//!                           # directives such as "info,vswitch::control=debug"
//!                           # [default: RUST_LOG, else info]; SIGHUP applies a change
//!
//! [control]
//! group = "vswitch"         # may use the CLI besides root (socket root:vswitch 0660)
//! drop_capabilities = true  # keep only what networking needs once ports are open
//!
//! [nat]                     # masquerade and published ports (see nat/config.rs)
//! port_range = "32768-60999"
//! max_entries = 65536
//! [nat.timeouts]
//! tcp_established = 7440
//! udp = 30
//! ```
//!
//! SIGHUP makes a running daemon read the file again. What it applies at once:
//! `[fdb] aging_secs`, `[log] level`, `[ipam]` (for networks created from then on), and
//! `[nat]` `max_entries`, `tcp_loose` and `[nat.timeouts]`. Everything else (sockets,
//! state dir, underlay, uplink, NAT port range, table sizes, batch, metrics, control) is
//! logged as needing a restart and stays as it was. A file that does not parse or
//! validate is logged and changes nothing. `dist/vswitch.toml` is a commented sample.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vtep::PortRange;

use crate::control::ipam::PoolConfig;

pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitch.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vswitch";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    #[serde(default)]
    pub fdb: FdbSection,
    #[serde(default)]
    pub ipam: PoolConfig,
    #[serde(default)]
    pub datapath: DatapathSection,
    pub underlay: Option<UnderlaySection>,
    pub uplink: Option<UplinkSection>,
    #[serde(default)]
    pub nat: crate::nat::NatConfig,
    #[serde(default)]
    pub control: ControlSection,
    /// Prometheus metrics; off when absent.
    pub metrics: Option<MetricsSection>,
    #[serde(default)]
    pub log: LogSection,
}

/// The `[log]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A `tracing` filter (`RUST_LOG` syntax). When set it wins over `RUST_LOG`.
    pub level: Option<String>,
}

/// The `[metrics]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address and port to serve `GET /metrics` on, e.g. "127.0.0.1:9477".
    pub listen: std::net::SocketAddr,
}

/// The `[control] table`: who may use the API socket besides root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Members of this group may use the CLI (the socket is root:group, mode 0660).
    pub group: Option<String>,
    /// Drop the capabilities the daemon does not need once its ports are open.
    #[serde(default = "yes")]
    pub drop_capabilities: bool,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            group: None,
            drop_capabilities: true,
        }
    }
}

/// The `[uplink]` table: where masqueraded traffic leaves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkSection {
    pub interface: String,
    pub address: ipnet::Ipv4Net,
    pub gateway: std::net::Ipv4Addr,
    pub address6: Option<ipnet::Ipv6Net>,
    #[serde(default)]
    pub extra_addresses: Vec<std::net::Ipv4Addr>,
    pub mtu: Option<u32>,
}

/// The `[underlay]` table: how this host reaches its VXLAN peers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlaySection {
    pub local: IpAddr,
    #[serde(default = "default_vxlan_port")]
    pub port: u16,
    pub interface: Option<String>,
    pub mtu: Option<u32>,
    #[serde(default = "default_src_ports", deserialize_with = "de_port_range")]
    pub src_port_range: PortRange,
    #[serde(default)]
    pub udp_checksum: bool,
    #[serde(default = "yes")]
    pub mss_clamp: bool,
    #[serde(default = "yes")]
    pub gso: bool,
    #[serde(default = "yes")]
    pub gro: bool,
}

fn default_vxlan_port() -> u16 {
    vtep::VXLAN_PORT
}

fn default_src_ports() -> PortRange {
    PortRange::DEFAULT
}

fn yes() -> bool {
    true
}

/// Largest source-port range: the daemon keeps one socket per port of it.
/// A longer busy-poll window is a CPU burnt, not a configuration.
pub const MAX_BUSY_POLL_US: u64 = 10_000;
pub const MAX_SRC_PORTS: u32 = crate::port::underlay::MAX_SOURCE_PORTS;

fn de_port_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PortRange, D::Error> {
    let s = String::deserialize(d)?;
    let bad = || {
        serde::de::Error::custom(format!(
            "src_port_range '{s}': write FIRST-LAST, e.g. \"61000-61063\""
        ))
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    let r = PortRange::new(a, b).map_err(serde::de::Error::custom)?;
    if r.count() > MAX_SRC_PORTS {
        return Err(serde::de::Error::custom(format!(
            "src_port_range '{s}' has {} ports; at most {MAX_SRC_PORTS} (one socket each)",
            r.count()
        )));
    }
    Ok(r)
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FdbSection {
    pub aging_secs: u64,
    pub max_entries: usize,
    pub max_per_port: usize,
}

impl Default for FdbSection {
    fn default() -> Self {
        let d = fdb::FdbConfig::default();
        FdbSection {
            aging_secs: d.aging.as_secs(),
            max_entries: d.max_entries,
            max_per_port: d.max_per_location,
        }
    }
}

impl FdbSection {
    pub fn to_fdb_config(&self) -> fdb::FdbConfig {
        fdb::FdbConfig {
            aging: Duration::from_secs(self.aging_secs),
            max_entries: self.max_entries,
            max_per_location: self.max_per_port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathSection {
    pub batch: usize,
    /// Worker threads (`vswitch run --workers` overrides it); `None` is one per CPU the
    /// daemon may use (`daemon::workers`).
    pub workers: Option<usize>,
    /// Whether each of several workers is pinned to a CPU of its own; `None`: pinned
    /// only when the workers leave some of the daemon's CPUs free (`daemon::workers`).
    pub pin_workers: Option<bool>,
    /// Microseconds a worker keeps polling after a turn that carried frames, instead of
    /// sleeping at once (saves a thread wakeup per hop of a request/response; costs CPU).
    pub busy_poll_us: u64,
    /// Storm control: broadcast, multicast and unknown-unicast frames per second one
    /// local port, or one VXLAN peer, may have flooded; past it they are dropped
    /// (`flood_limited`). 0: no limit.
    pub flood_limit_pps: u64,
}

impl Default for DatapathSection {
    fn default() -> Self {
        DatapathSection {
            batch: crate::datapath::worker::DEFAULT_BATCH,
            workers: None,
            pin_workers: None,
            busy_poll_us: crate::datapath::worker::DEFAULT_BUSY_POLL.as_micros() as u64,
            flood_limit_pps: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("config file {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            msg: e.message().to_string(),
        })?;
        let invalid = |msg: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            msg: msg.to_string(),
        };
        if cfg.datapath.batch == 0 || cfg.datapath.batch > 1024 {
            return Err(invalid("[datapath] batch must be between 1 and 1024"));
        }
        if cfg.datapath.busy_poll_us > MAX_BUSY_POLL_US {
            return Err(invalid(
                "[datapath] busy_poll_us must be between 0 (off) and 10000",
            ));
        }
        if cfg.fdb.aging_secs == 0 {
            return Err(invalid("[fdb] aging_secs must be at least 1"));
        }
        if let Some(u) = &cfg.underlay {
            if u.local.is_unspecified() || u.local.is_multicast() || u.local.is_loopback() {
                return Err(invalid(
                    "[underlay] local must be a unicast address of this host",
                ));
            }
            if u.port == 0 {
                return Err(invalid("[underlay] port must not be 0"));
            }
            if let Some(m) = u.mtu
                && !(vtep::mtu::MIN_OVERLAY_MTU + 70..=65535).contains(&m)
            {
                return Err(invalid("[underlay] mtu must be between 138 and 65535"));
            }
        }
        if let Some(u) = &cfg.uplink {
            let net = u.address.trunc();
            if u.address.addr() == net.network() || u.address.addr() == net.broadcast() {
                return Err(invalid(
                    "[uplink] address must be a host address of its subnet, e.g. \"203.0.113.2/24\"",
                ));
            }
            if !net.contains(&u.gateway) || u.gateway == u.address.addr() {
                return Err(invalid(
                    "[uplink] gateway must be another address of the uplink's subnet",
                ));
            }
            if u.interface.is_empty() || u.interface.len() > 15 {
                return Err(invalid("[uplink] interface must be an interface name"));
            }
        }
        if let Some(level) = &cfg.log.level
            && let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level)
        {
            return Err(invalid(&format!(
                "[log] level \"{level}\": {e}; use error, warn, info, debug or trace"
            )));
        }
        // The external address comes from the uplink at start; any will do to check the rest.
        let nat = crate::nat::NatConfig {
            external: std::net::Ipv4Addr::new(192, 0, 2, 1),
            ..cfg.nat.clone()
        };
        if let Err(e) = nat.validate() {
            return Err(invalid(&format!("[nat] {e}")));
        }
        if cfg.ipam.default_prefix < cfg.ipam.default_pool.prefix_len()
            || cfg.ipam.default_prefix > 30
        {
            return Err(invalid(
                "[ipam] default_prefix must be between the pool's prefix length and 30",
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_typos_are_errors() {
        let p = Path::new("t.toml");
        let c = Config::parse("", p).unwrap();
        assert_eq!(c.fdb.aging_secs, 300);
        assert_eq!(c.datapath.batch, 64);
        assert_eq!(
            c.datapath.flood_limit_pps, 0,
            "storm control is off by default"
        );
        let c = Config::parse("[datapath]\nflood_limit_pps = 500\n", p).unwrap();
        assert_eq!(c.datapath.flood_limit_pps, 500);
        assert!(Config::parse("[datapath]\nflood_limit_pps = -1\n", p).is_err());
        let c = Config::parse("[fdb]\naging_secs = 10\n[ipam]\ndefault_pool = \"10.200.0.0/16\"\ndefault_prefix = 26\n", p).unwrap();
        assert_eq!(c.fdb.to_fdb_config().aging, Duration::from_secs(10));
        assert_eq!(c.ipam.default_prefix, 26);
        assert!(Config::parse("[fdb]\naging_sec = 10\n", p).is_err());
        assert!(Config::parse("[datapath]\nbatch = 0\n", p).is_err());
        assert!(Config::parse("[datapath]\nbusy_poll_us = 10001\n", p).is_err());
        let c = Config::parse("[datapath]\nbusy_poll_us = 0\n", p).unwrap();
        assert_eq!(c.datapath.busy_poll_us, 0);
        let c = Config::parse("[datapath]\npin_workers = true\n", p).unwrap();
        assert_eq!(c.datapath.pin_workers, Some(true));
        assert!(Config::parse("[datapath]\npin_workers = 2\n", p).is_err());
        assert!(
            Config::parse(
                "[ipam]\ndefault_pool = \"10.0.0.0/16\"\ndefault_prefix = 8\n",
                p
            )
            .is_err()
        );
    }

    #[test]
    fn underlay_section_has_the_contract_keys_and_defaults() {
        let p = Path::new("t.toml");
        let c = Config::parse("[underlay]\nlocal = \"192.0.2.1\"\n", p).unwrap();
        let u = c.underlay.unwrap();
        assert_eq!(
            (u.port, u.udp_checksum, u.mss_clamp, u.gso),
            (4789, false, true, true)
        );
        assert_eq!(u.src_port_range, PortRange::DEFAULT);
        let text = "[underlay]\nlocal = \"2001:db8::1\"\nport = 8472\ninterface = \"u1\"\nsrc_port_range = \"50000-50015\"\n";
        let u = Config::parse(text, p).unwrap().underlay.unwrap();
        assert_eq!(
            (u.port, u.interface.as_deref(), u.src_port_range.count()),
            (8472, Some("u1"), 16)
        );
        for bad in [
            "[underlay]\n",
            "[underlay]\nlocal = \"0.0.0.0\"\n",
            "[underlay]\nlocal = \"192.0.2.1\"\nsrc_port_range = \"1-65535\"\n",
            "[underlay]\nlocal = \"192.0.2.1\"\nsrc_port_range = \"9-3\"\n",
            "[underlay]\nlocal = \"192.0.2.1\"\nlocl = 1\n",
        ] {
            assert!(Config::parse(bad, p).is_err(), "{bad}");
        }
    }

    #[test]
    fn uplink_and_nat_sections() {
        let p = Path::new("t.toml");
        let text = "[uplink]\ninterface = \"ext0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n[nat]\nport_range = \"40000-40009\"\n";
        let c = Config::parse(text, p).unwrap();
        assert_eq!(c.uplink.unwrap().gateway.to_string(), "203.0.113.1");
        assert_eq!(c.nat.port_range, 40000..=40009);
        for bad in [
            "[uplink]\ninterface = \"e\"\naddress = \"203.0.113.0/24\"\ngateway = \"203.0.113.1\"\n",
            "[uplink]\ninterface = \"e\"\naddress = \"203.0.113.2/24\"\ngateway = \"198.51.100.1\"\n",
            "[uplink]\ninterface = \"e\"\naddress = \"203.0.113.2/24\"\n",
            "[nat]\nport_range = \"9-3\"\n",
        ] {
            assert!(Config::parse(bad, p).is_err(), "{bad}");
        }
    }

    /// `dist/vswitch.toml` parses with this parser, and every key it does not mark as an
    /// example holds the default, as its header says.
    #[test]
    fn the_sample_config_parses_and_shows_the_defaults() {
        let text = include_str!("../../dist/vswitch.toml");
        let c = Config::parse(text, Path::new("dist/vswitch.toml")).unwrap();
        assert_eq!(c.state_dir.as_deref(), Some(Path::new(DEFAULT_STATE_DIR)));
        assert_eq!(c.socket.as_deref(), Some(Path::new(DEFAULT_SOCKET)));
        assert_eq!(c.fdb, FdbSection::default());
        assert_eq!(c.ipam, PoolConfig::default());
        assert_eq!(c.datapath, DatapathSection::default());
        assert_eq!(c.nat, crate::nat::NatConfig::default());
        assert_eq!(c.control, ControlSection::default());
        assert_eq!(c.log.level.as_deref(), Some("info"));
        assert!(c.underlay.is_none() && c.uplink.is_none() && c.metrics.is_none());
    }

    /// The example in this module's doc parses too, so the doc cannot drift from the
    /// parser.
    #[test]
    fn the_module_doc_example_parses() {
        let src = include_str!("config.rs");
        let start = src.find("//! ```toml\n").unwrap() + "//! ```toml\n".len();
        let len = src[start..].find("//! ```\n").unwrap();
        let text: String = src[start..start + len]
            .lines()
            .map(|l| l.strip_prefix("//!").unwrap_or(l).trim_start_matches(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(&text, Path::new("config.rs")).unwrap();
        assert!(c.underlay.is_some() && c.uplink.is_some() && c.metrics.is_some());
        assert_eq!(c.log.level.as_deref(), Some("info"));
    }

    /// The unit in `dist/` runs the sample config from where its header installs it, and
    /// gives the daemon the directories the sample config names.
    #[test]
    fn the_systemd_unit_matches_the_sample_config() {
        let unit = include_str!("../../dist/vswitch.service");
        let line = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {key}= in the unit"))
        };
        assert!(line("ExecStart").ends_with(" run --config /etc/vswitch/vswitch.toml"));
        assert!(unit.contains("install -D -m 0644 dist/vswitch.toml /etc/vswitch/vswitch.toml"));
        assert_eq!(line("ExecReload"), "/bin/kill -HUP $MAINPID");
        assert_eq!(line("KillSignal"), "SIGTERM");
        assert_eq!(
            line("Type"),
            "notify",
            "the daemon sends READY=1 (daemon/notify.rs)"
        );
        let sample =
            Config::parse(include_str!("../../dist/vswitch.toml"), Path::new("s")).unwrap();
        let run_dir = Path::new("/run").join(line("RuntimeDirectory"));
        assert_eq!(sample.socket.unwrap().parent(), Some(run_dir.as_path()));
        let state_dir = Path::new("/var/lib").join(line("StateDirectory"));
        assert_eq!(sample.state_dir, Some(state_dir));
    }
}
