//! SIGHUP: read the config file again and apply what can change while the daemon runs —
//! the FDB aging time, the log filter, the IPAM default pool (for networks created from
//! then on) and the NAT's table limit, `tcp_loose` and timeouts. Every other difference
//! is logged as needing a restart and left as it is, so the configuration in force is
//! always "the old one with the run-time keys of the new one". A file that does not
//! read, parse or validate is logged and changes nothing.
//!
//! [`plan`] compares two configurations without touching anything (unit-tested);
//! [`reload`] applies a plan to the running parts and logs it.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use fdb::Fdb;

use super::logging::LogControl;
use crate::config::Config;
use crate::control::manager::Manager;
use crate::nat::Nat;

/// What a new configuration changes, compared with the one in force.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New FDB aging time.
    pub aging: Option<Duration>,
    /// New `[log] level` (`Some(None)`: the file no longer sets one).
    pub log_level: Option<Option<String>>,
    /// New IPAM defaults.
    pub ipam: bool,
    /// New NAT limit, `tcp_loose` or timeouts.
    pub nat: bool,
    /// Keys that differ but only take effect at the next start, e.g. `[underlay]`.
    pub needs_restart: Vec<&'static str>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Compares `new` with `running` (both with the command line's overrides applied).
pub fn plan(running: &Config, new: &Config) -> Plan {
    let mut p = Plan::default();
    if new.fdb.aging_secs != running.fdb.aging_secs {
        p.aging = Some(Duration::from_secs(new.fdb.aging_secs));
    }
    if new.log.level != running.log.level {
        p.log_level = Some(new.log.level.clone());
    }
    p.ipam = new.ipam != running.ipam;
    let (rn, nn) = (&running.nat, &new.nat);
    p.nat =
        (nn.max_entries, nn.tcp_loose, nn.timeouts) != (rn.max_entries, rn.tcp_loose, rn.timeouts);
    let mut restart = |differs: bool, key: &'static str| {
        if differs {
            p.needs_restart.push(key);
        }
    };
    restart(new.state_dir != running.state_dir, "state_dir");
    restart(new.socket != running.socket, "socket");
    restart(
        new.fdb.max_entries != running.fdb.max_entries,
        "[fdb] max_entries",
    );
    restart(
        new.fdb.max_per_port != running.fdb.max_per_port,
        "[fdb] max_per_port",
    );
    restart(new.datapath != running.datapath, "[datapath]");
    restart(new.underlay != running.underlay, "[underlay]");
    restart(new.uplink != running.uplink, "[uplink]");
    restart(
        (&nn.port_range, nn.external) != (&rn.port_range, rn.external),
        "[nat] port_range/external",
    );
    restart(new.control != running.control, "[control]");
    restart(new.metrics != running.metrics, "[metrics]");
    p
}

/// The running parts a reload can change.
#[derive(Debug)]
pub struct Live<'a> {
    pub fdb: &'a Fdb,
    pub nat: Option<&'a Nat>,
    pub log: Option<&'a LogControl>,
    pub manager: &'a Mutex<Manager>,
}

/// Re-reads `path`, applies what can change now, and returns the configuration in force
/// afterwards. `overrides` puts the command line's values back over the file's.
pub fn reload(
    path: &Path,
    running: &Config,
    overrides: impl Fn(Config) -> Config,
    live: &Live<'_>,
) -> Config {
    let new = match Config::load(path) {
        Ok(c) => overrides(c),
        Err(e) => {
            tracing::error!("reload refused, nothing changed: {e}");
            return running.clone();
        }
    };
    let plan = plan(running, &new);
    if plan.is_empty() {
        tracing::info!("reload: {} has no changes", path.display());
        return running.clone();
    }
    let mut in_force = running.clone();
    if let Some(aging) = plan.aging {
        live.fdb.set_aging(aging);
        tracing::info!(
            "reload: [fdb] aging_secs {} -> {}",
            running.fdb.aging_secs,
            new.fdb.aging_secs
        );
        in_force.fdb.aging_secs = new.fdb.aging_secs;
    }
    if let Some(level) = &plan.log_level {
        match live.log.map(|l| l.apply(level.as_deref())) {
            Some(Ok(now)) => {
                tracing::info!("reload: log filter is now \"{now}\"");
                in_force.log = new.log.clone();
            }
            Some(Err(e)) => tracing::error!("reload: {e}; the log filter is unchanged"),
            None => tracing::warn!("reload: [log] level needs a restart (no reloadable log)"),
        }
    }
    if plan.ipam {
        live.manager
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_ipam_pool(new.ipam);
        tracing::info!(
            "reload: [ipam] default pool {} /{} (for networks created from now on)",
            new.ipam.default_pool,
            new.ipam.default_prefix
        );
        in_force.ipam = new.ipam;
    }
    if plan.nat {
        match live.nat {
            Some(nat) => match nat.set_tunables(&new.nat) {
                Ok(()) => {
                    tracing::info!(
                        "reload: [nat] max_entries {}, tcp_loose {}, timeouts updated",
                        new.nat.max_entries,
                        new.nat.tcp_loose
                    );
                    in_force.nat.max_entries = new.nat.max_entries;
                    in_force.nat.tcp_loose = new.nat.tcp_loose;
                    in_force.nat.timeouts = new.nat.timeouts;
                }
                Err(e) => tracing::error!("reload: [nat] refused, unchanged: {e}"),
            },
            None => {
                // No uplink, no NAT engine: the values are kept for when one starts.
                in_force.nat.max_entries = new.nat.max_entries;
                in_force.nat.tcp_loose = new.nat.tcp_loose;
                in_force.nat.timeouts = new.nat.timeouts;
            }
        }
    }
    for key in &plan.needs_restart {
        tracing::warn!("reload: {key} changed; it takes effect at the next start");
    }
    in_force
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let a = cfg("[fdb]\naging_secs = 30\n[underlay]\nlocal = \"192.0.2.1\"\n");
        assert!(plan(&a, &a.clone()).is_empty());
    }

    #[test]
    fn run_time_keys_apply_and_the_rest_waits_for_a_restart() {
        let a = cfg("[fdb]\naging_secs = 300\n[underlay]\nlocal = \"192.0.2.1\"\n");
        let b = cfg(concat!(
            "[fdb]\naging_secs = 5\nmax_entries = 10\n",
            "[log]\nlevel = \"debug\"\n",
            "[nat.timeouts]\nudp = 7\n",
            "[underlay]\nlocal = \"192.0.2.9\"\n",
        ));
        let p = plan(&a, &b);
        assert_eq!(p.aging, Some(Duration::from_secs(5)));
        assert_eq!(p.log_level, Some(Some("debug".to_string())));
        assert!(p.nat && !p.ipam);
        assert_eq!(p.needs_restart, vec!["[fdb] max_entries", "[underlay]"]);
        // Dropping `[log] level` goes back to RUST_LOG / info.
        assert_eq!(plan(&b, &a).log_level, Some(None));
    }

    #[test]
    fn nat_port_range_needs_a_restart() {
        let a = cfg("");
        let b = cfg("[nat]\nport_range = \"40000-40099\"\n");
        let p = plan(&a, &b);
        assert!(!p.nat);
        assert_eq!(p.needs_restart, vec!["[nat] port_range/external"]);
    }
}
