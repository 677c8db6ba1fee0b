//! The `[nat]` configuration table: the external address, the port range, the table
//! limit and the per-state idle timeouts, with defaults and validation.
//!
//! In TOML, timeouts are whole seconds and the port range is a `"LOW-HIGH"` string:
//!
//! ```toml
//! [nat]
//! external = "192.0.2.10"
//! port_range = "32768-60999"
//! max_entries = 65536
//! tcp_loose = true
//! [nat.timeouts]
//! tcp_established = 7440
//! udp = 30
//! ```
//!
//! Every field but `external` has a default; an absent `external` is left unspecified
//! (`0.0.0.0`) for the daemon to fill in from the uplink's address before
//! [`NatConfig::validate`] (and [`super::Nat::new`]) accept it.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// NAT settings. See the module doc for the TOML form and [`Timeouts`] for the timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatConfig {
    /// The uplink's address: the source of masqueraded traffic and the address
    /// published ports answer on.
    pub external: Ipv4Addr,
    /// The ports (and ICMP echo identifiers) masqueraded flows may use on the external
    /// address, per protocol. Default `32768-60999`, Linux's `ip_local_port_range`:
    /// containers' own ephemeral ports fall in it, so most flows keep their source
    /// port, and it stays clear of the low ports usually published. If the external
    /// address is shared with the host's own stack, pick a range outside the host's
    /// ephemeral range (e.g. `61000-65535`) so the two never answer for the same port.
    /// Port 0 is never allowed.
    #[serde(with = "port_range_str")]
    pub port_range: RangeInclusive<u16>,
    /// The most connections tracked at once (each has one entry, whatever its kind).
    /// Default 65536. A new flow beyond it is refused (`table_full`).
    pub max_entries: usize,
    /// Whether a TCP segment without SYN (a plain ACK) from a local network may start
    /// tracking a connection, as `ESTABLISHED` (Linux's `nf_conntrack_tcp_loose`,
    /// default on). It lets connections survive a daemon restart: the original source
    /// port is kept when free, so the peer sees the same tuple. Inbound (published
    /// ports) TCP is always tracked from the SYN only.
    pub tcp_loose: bool,
    /// Idle timeouts per connection state.
    pub timeouts: Timeouts,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            external: Ipv4Addr::UNSPECIFIED,
            port_range: 32768..=60999,
            max_entries: 65536,
            tcp_loose: true,
            timeouts: Timeouts::default(),
        }
    }
}

/// How long a connection may stay idle in each state before [`super::Nat::expire`]
/// removes it (and frees its port). An entry is removed once `now - last_seen` is
/// strictly greater than its state's timeout. Whole seconds in TOML.
///
/// The defaults are Linux conntrack's, except TCP established: Linux keeps 5 days;
/// we use 7440 s (2 h 4 min), the minimum RFC 5382 (REQ-5) allows, which is long
/// enough for the 2-hour TCP keepalive default and frees the table of dead peers a
/// hundred times faster. UDP keeps Linux's 30 s until a reply is seen, then 180 s
/// (RFC 4787 REQ-5 asks at least 120 s for an established mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// After the first SYN, until the SYN-ACK. Default 120 s.
    #[serde(with = "secs")]
    pub tcp_syn_sent: Duration,
    /// After the SYN-ACK, until the handshake's ACK. Default 60 s.
    #[serde(with = "secs")]
    pub tcp_syn_recv: Duration,
    /// An open connection. Default 7440 s.
    #[serde(with = "secs")]
    pub tcp_established: Duration,
    /// One side has sent a FIN. Default 120 s.
    #[serde(with = "secs")]
    pub tcp_fin_wait: Duration,
    /// Both sides have sent a FIN. Default 120 s.
    #[serde(with = "secs")]
    pub tcp_time_wait: Duration,
    /// After a RST. Default 10 s.
    #[serde(with = "secs")]
    pub tcp_close: Duration,
    /// UDP seen in one direction only. Default 30 s.
    #[serde(with = "secs")]
    pub udp: Duration,
    /// UDP seen in both directions. Default 180 s.
    #[serde(with = "secs")]
    pub udp_stream: Duration,
    /// ICMP echo. Default 30 s.
    #[serde(with = "secs")]
    pub icmp: Duration,
    /// How long the later fragments of a datagram are translated after its first
    /// (Linux's `ipfrag_time`). Default 30 s.
    #[serde(with = "secs")]
    pub fragment: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        Timeouts {
            tcp_syn_sent: s(120),
            tcp_syn_recv: s(60),
            tcp_established: s(7440),
            tcp_fin_wait: s(120),
            tcp_time_wait: s(120),
            tcp_close: s(10),
            udp: s(30),
            udp_stream: s(180),
            icmp: s(30),
            fragment: s(30),
        }
    }
}

/// A [`NatConfig`] the engine cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NatConfigError {
    /// No external address.
    #[error("nat: no external address; set `external` or give the uplink an IPv4 address")]
    NoExternalAddress,
    /// The range is empty or includes port 0.
    #[error("nat: port range {start}-{end} is empty or includes port 0; use e.g. 32768-60999")]
    BadPortRange {
        /// The first port given.
        start: u16,
        /// The last port given.
        end: u16,
    },
    /// `max_entries` is 0.
    #[error("nat: max_entries must be at least 1")]
    NoEntries,
    /// A timeout is zero.
    #[error("nat: timeout `{0}` must be at least 1 second")]
    ZeroTimeout(&'static str),
}

impl NatConfig {
    /// Checks that the engine can run with this configuration.
    pub fn validate(&self) -> Result<(), NatConfigError> {
        if self.external.is_unspecified() {
            return Err(NatConfigError::NoExternalAddress);
        }
        let (start, end) = (*self.port_range.start(), *self.port_range.end());
        if start == 0 || start > end {
            return Err(NatConfigError::BadPortRange { start, end });
        }
        if self.max_entries == 0 {
            return Err(NatConfigError::NoEntries);
        }
        let t = &self.timeouts;
        let all = [
            ("tcp_syn_sent", t.tcp_syn_sent),
            ("tcp_syn_recv", t.tcp_syn_recv),
            ("tcp_established", t.tcp_established),
            ("tcp_fin_wait", t.tcp_fin_wait),
            ("tcp_time_wait", t.tcp_time_wait),
            ("tcp_close", t.tcp_close),
            ("udp", t.udp),
            ("udp_stream", t.udp_stream),
            ("icmp", t.icmp),
            ("fragment", t.fragment),
        ];
        match all.iter().find(|(_, d)| d.is_zero()) {
            Some((name, _)) => Err(NatConfigError::ZeroTimeout(name)),
            None => Ok(()),
        }
    }
}

/// Durations as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A port range as `"LOW-HIGH"` (or `"PORT"` for one port).
mod port_range_str {
    use std::ops::RangeInclusive;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(r: &RangeInclusive<u16>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}-{}", r.start(), r.end()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RangeInclusive<u16>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_port_range(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "port range `{text}` is not LOW-HIGH with ports 1-65535"
            ))
        })
    }
}

/// Parses `"LOW-HIGH"` or `"PORT"`; `None` unless both are ports and LOW <= HIGH.
pub fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u16 = lo.trim().parse().ok()?;
    let hi: u16 = hi.trim().parse().ok()?;
    (lo >= 1 && lo <= hi).then_some(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults() {
        let cfg: NatConfig = toml::from_str(
            "external = \"192.0.2.1\"\nport_range = \"1000-1009\"\n[timeouts]\nudp = 5\n",
        )
        .unwrap();
        assert_eq!(cfg.external, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(cfg.port_range, 1000..=1009);
        assert_eq!(cfg.max_entries, 65536);
        assert_eq!(cfg.timeouts.udp, Duration::from_secs(5));
        assert_eq!(cfg.timeouts.tcp_established, Duration::from_secs(7440));
        assert!(cfg.validate().is_ok());
        // Round trip.
        let back: NatConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn bad_configs_are_refused_clearly() {
        assert!(toml::from_str::<NatConfig>("port_range = \"9-1\"").is_err());
        assert!(toml::from_str::<NatConfig>("prot_range = \"1-9\"").is_err());
        let mut cfg = NatConfig::default();
        assert_eq!(cfg.validate(), Err(NatConfigError::NoExternalAddress));
        cfg.external = Ipv4Addr::new(192, 0, 2, 1);
        cfg.port_range = 0..=10;
        assert!(cfg.validate().unwrap_err().to_string().contains("0-10"));
        cfg.port_range = 10..=10;
        cfg.timeouts.icmp = Duration::ZERO;
        assert_eq!(cfg.validate(), Err(NatConfigError::ZeroTimeout("icmp")));
        assert_eq!(parse_port_range("80"), Some(80..=80));
        assert_eq!(parse_port_range("0-5"), None);
    }
}
