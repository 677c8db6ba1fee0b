//! `vswitch run`: wires the configuration, the state, the datapath worker, the manager and
//! the API socket together; reloads the config file on SIGHUP (`reload.rs`: what can
//! change at run time changes, the rest is logged as needing a restart) and stops cleanly
//! on SIGINT / SIGTERM: the socket goes, the ports close and the interfaces the switch
//! made are deleted (`control/lifecycle.rs`); the state stays on disk and the next start
//! makes them again. The log goes to stderr in a shape journald keeps (`logging.rs`);
//! systemd hears READY=1 / STOPPING=1 (`notify.rs`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use fdb::Fdb;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::UnderlaySection;
use crate::config::{Config, ConfigError, DEFAULT_SOCKET, DEFAULT_STATE_DIR};
use crate::control::manager::{Manager, ManagerParts};
use crate::control::metrics;
use crate::control::overlay::UnderlayInfo;
use crate::control::server::{self, Access, ServerError};
use crate::control::state::{StateError, StateStore};
use crate::datapath::capture::CaptureHub;
use crate::datapath::counters::PerWorker;
use crate::datapath::flood_limit::FloodLimiter;
use crate::datapath::router::RouterCounters;
use crate::datapath::topology::Topology;
use crate::datapath::worker::Event;
use crate::port::sys::creds;
use crate::port::underlay::UnderlayError;

pub mod logging;
mod notify;
mod open;
pub mod reload;
mod workers;

/// How often endpoints whose interface is missing are looked for again, and ports that
/// dropped frames as `bad_vnet_hdr` get their container's offloads checked.
const REATTACH_EVERY: Duration = Duration::from_secs(2);
/// How often learned MACs are aged out (a sweep of the whole table, kept off the workers).
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// What `vswitch run` was given on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    /// Datapath workers; overrides `[datapath] workers`.
    pub workers: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("cannot start the datapath: {0}")]
    Worker(std::io::Error),
    #[error(transparent)]
    Underlay(#[from] UnderlayError),
    #[error("{0}")]
    Uplink(String),
    #[error("{0}")]
    Control(String),
    #[error("[datapath] workers must be 1 to {max}, not {0}", max = workers::MAX_WORKERS)]
    Workers(usize),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(
        "vswitch run needs root (CAP_NET_ADMIN and CAP_NET_RAW) to create interfaces and open ports"
    )]
    NotRoot,
}

/// Runs the daemon until SIGINT or SIGTERM. `log` changes the log filter on SIGHUP (none:
/// the level stays what it was at start).
pub fn run(opts: RunOptions, log: Option<logging::LogControl>) -> Result<(), DaemonError> {
    let overrides = |mut c: Config| {
        c.state_dir = Some(
            opts.state_dir
                .clone()
                .or(c.state_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        );
        c.socket = Some(
            opts.socket
                .clone()
                .or(c.socket)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        );
        c
    };
    let cfg = overrides(match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    });
    if let (Some(l), Some(level)) = (&log, &cfg.log.level)
        && let Err(e) = l.apply(Some(level))
    {
        tracing::warn!("{e}");
    }
    // The effective uid from /proc keeps this file free of `unsafe`.
    if !is_root() {
        return Err(DaemonError::NotRoot);
    }
    let state_dir = cfg.state_dir.clone().unwrap_or_default();
    let socket = cfg.socket.clone().unwrap_or_default();

    let store = StateStore::new(&state_dir);
    let state = store.load()?;
    let listener = server::bind(&socket)?;
    let access = Access {
        gid: match &cfg.control.group {
            Some(g) => {
                let gid = creds::group_gid(g)
                    .map_err(|e| DaemonError::Control(format!("[control] group {g}: {e}")))?;
                server::share_with_group(&socket, gid)?;
                Some(gid)
            }
            None => None,
        },
        own_uid: own_uid(),
    };

    // Everything that needs privileges beyond networking is done now: open the ports,
    // then drop the rest, before any other thread exists (threads inherit the sets).
    let n_workers = opts
        .workers
        .or(cfg.datapath.workers)
        .unwrap_or_else(workers::default_workers);
    if !(1..=workers::MAX_WORKERS).contains(&n_workers) {
        return Err(DaemonError::Workers(n_workers));
    }
    let underlay = cfg
        .underlay
        .as_ref()
        .map(|u| open::underlay(u, n_workers))
        .transpose()?;
    let uplink_port = cfg
        .uplink
        .as_ref()
        .map(|u| open::uplink(u, &cfg.nat.port_range, n_workers))
        .transpose()?;
    if cfg.control.drop_capabilities {
        open::drop_capabilities();
    }

    let epoch = Instant::now();
    let fdb = Arc::new(Fdb::new(cfg.fdb.to_fdb_config()));
    let fdb_for_reload = fdb.clone();
    let nat = open::nat(&cfg)?;
    {
        let (fdb, nat) = (fdb.clone(), nat.clone());
        std::thread::Builder::new()
            .name("vswitch-expire".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EXPIRE_EVERY);
                    fdb.expire(epoch.elapsed());
                    if let Some(nat) = &nat {
                        nat.expire(epoch.elapsed());
                    }
                }
            })
            .map_err(DaemonError::Worker)?;
    }
    let router_counters = PerWorker::<RouterCounters>::new(n_workers);
    let topology = Arc::new(ArcSwap::from_pointee(Topology::default()));
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let capture = Arc::new(CaptureHub::default());
    let workers = workers::spawn(
        n_workers,
        cfg.datapath.pin_workers,
        workers::Shared {
            fdb: fdb.clone(),
            topology: topology.clone(),
            events: events_tx,
            batch: cfg.datapath.batch,
            busy_poll: std::time::Duration::from_micros(cfg.datapath.busy_poll_us),
            floods: Arc::new(FloodLimiter::new(cfg.datapath.flood_limit_pps)),
            epoch,
            nat: nat.clone(),
            router_counters: router_counters.clone(),
            capture: capture.clone(),
        },
    )?;
    let tunnel_counters = underlay.map(|u| open::give_underlay(u, &workers));
    let (uplink, uplink_counters) = match uplink_port {
        Some((info, queues)) => (Some(info), Some(open::give_uplink(queues, &workers))),
        None => (None, None),
    };
    let mut manager = Manager::new(ManagerParts {
        store,
        state,
        pool: cfg.ipam,
        fdb,
        topology,
        workers,
        epoch,
        underlay: cfg.underlay.clone().map(|config| UnderlayInfo {
            mtu: underlay_mtu(&config),
            config,
        }),
        tunnel_counters,
        uplink,
        nat: nat.clone(),
        router_counters: router_counters.clone(),
        uplink_counters,
        capture,
    });
    manager.publish_topology();
    manager.restore();
    manager.reattach();
    let manager = Arc::new(Mutex::new(manager));
    tracing::info!(
        "vswitch running: socket {}, state {}",
        socket.display(),
        state_dir.display()
    );

    if let Some(m) = &cfg.metrics {
        metrics::serve(m.listen, manager.clone())
            .map_err(|e| DaemonError::Control(e.to_string()))?;
    }
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(DaemonError::Signals)?;
    {
        let m = manager.clone();
        std::thread::Builder::new()
            .name("vswitch-api-accept".into())
            .spawn(move || server::serve(listener, m, access))
            .map_err(DaemonError::Worker)?;
    }
    {
        let m = manager.clone();
        std::thread::Builder::new()
            .name("vswitch-events".into())
            .spawn(move || {
                for ev in events_rx {
                    let Event::PortGone(id) = ev;
                    lock(&m).port_gone(id);
                }
            })
            .map_err(DaemonError::Worker)?;
    }
    {
        let m = manager.clone();
        std::thread::Builder::new()
            .name("vswitch-reattach".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(REATTACH_EVERY);
                    let mut m = lock(&m);
                    m.reattach();
                    m.recheck_offloads();
                }
            })
            .map_err(DaemonError::Worker)?;
    }

    notify::notify(&format!("READY=1\nSTATUS=serving on {}", socket.display()));
    let mut in_force = cfg;
    for sig in signals.forever() {
        if sig != SIGHUP {
            tracing::info!("signal {sig}: stopping");
            break;
        }
        let Some(path) = &opts.config else {
            tracing::warn!("SIGHUP: started without --config, nothing to reload");
            continue;
        };
        tracing::info!("SIGHUP: reading {} again", path.display());
        let live = reload::Live {
            fdb: &fdb_for_reload,
            nat: nat.as_deref(),
            log: log.as_ref(),
            manager: &manager,
        };
        in_force = reload::reload(path, &in_force, overrides, &live);
        notify::notify(&format!(
            "STATUS=serving on {}; config reloaded",
            socket.display()
        ));
    }
    notify::notify("STOPPING=1\nSTATUS=removing the switch's interfaces");
    // No new clients, then no ports, then no interfaces of ours.
    let _ = std::fs::remove_file(&socket);
    let mut m = lock(&manager);
    m.stop();
    tracing::info!("stopped; state kept in {}", state_dir.display());
    Ok(())
}

/// The underlay MTU: configured, else the interface's, else Ethernet's 1500.
fn underlay_mtu(u: &UnderlaySection) -> u32 {
    u.mtu
        .or_else(|| {
            let ifname = u.interface.as_ref()?;
            std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(1500)
}

fn lock(m: &Mutex<Manager>) -> std::sync::MutexGuard<'_, Manager> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The effective uid, from /proc (keeps this file free of `unsafe`).
fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).and_then(|u| u.parse().ok()))
        })
        .unwrap_or(0)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
