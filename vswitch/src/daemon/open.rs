//! Opening what the configuration names at start: the VXLAN underlay, the uplink and the
//! NAT behind it. Each fails with its own clear error, so `vswitch run` stops before it
//! serves anything.

use std::ops::RangeInclusive;
use std::sync::Arc;

use super::DaemonError;
use crate::config::{Config, UnderlaySection, UplinkSection};
use crate::control::links;
use crate::control::router::UplinkInfo;
use crate::datapath::counters::{PerWorker, PortCounters};
use crate::datapath::tunnel::TunnelCounters;
use crate::datapath::worker::{Queues, Workers};
use crate::nat::{Nat, NatConfig};
use crate::port::af_packet::PacketPort;
use crate::port::sys::caps;
use crate::port::underlay::{Underlay, UnderlayConfig};

/// Opens the underlay's sockets: one receive socket per worker.
pub fn underlay(u: &UnderlaySection, workers: usize) -> Result<Vec<Underlay>, DaemonError> {
    let queues = Underlay::open_queues(
        &UnderlayConfig {
            local: u.local,
            port: u.port,
            src_ports: u.src_port_range,
            udp_checksum: u.udp_checksum,
            interface: u.interface.clone(),
            gso: u.gso,
            gro: u.gro,
        },
        workers,
    )?;
    let caps = queues[0].caps();
    tracing::info!(
        "underlay {}:{} (UDP GSO {}, GRO {})",
        u.local,
        u.port,
        if caps.gso { "on" } else { "off" },
        if caps.gro { "on" } else { "off" }
    );
    Ok(queues)
}

/// Gives the underlay's queues to the workers; its counters are for `stats`.
pub fn give_underlay(queues: Vec<Underlay>, workers: &Workers) -> Arc<PerWorker<TunnelCounters>> {
    let counters = PerWorker::new(workers.len());
    let tunnels = queues
        .into_iter()
        .map(|u| Box::new(u) as Box<dyn crate::datapath::tunnel::Tunnel>)
        .collect();
    workers.set_tunnel(tunnels, &counters);
    counters
}

/// The NAT for an uplink: `[nat]` with the uplink's address as the external one.
pub fn nat(cfg: &Config) -> Result<Option<Arc<Nat>>, DaemonError> {
    let Some(u) = &cfg.uplink else {
        return Ok(None);
    };
    let nat_cfg = NatConfig {
        external: u.address.addr(),
        ..cfg.nat.clone()
    };
    let nat = Nat::new(nat_cfg).map_err(|e| DaemonError::Uplink(format!("[nat]: {e}")))?;
    Ok(Some(Arc::new(nat)))
}

/// Opens the uplink interface (AF_PACKET, one queue per worker) and brings it up. With
/// several workers, the replies of masqueraded flows (external ports in `nat_ports`)
/// go to the queue of the worker that created the flow ([`crate::port::steer`]).
pub fn uplink(
    u: &UplinkSection,
    nat_ports: &RangeInclusive<u16>,
    workers: usize,
) -> Result<(UplinkInfo, Queues), DaemonError> {
    let err =
        |msg: String| DaemonError::Uplink(format!("[uplink] interface {}: {msg}", u.interface));
    let mac = links::mac_of(&u.interface)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("has no MAC address (it must be an Ethernet interface)".into()))?;
    let mtu = u
        .mtu
        .or_else(|| {
            std::fs::read_to_string(format!("/sys/class/net/{}/mtu", u.interface))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(1500);
    let steer = crate::port::steer::nat_replies(nat_ports);
    let queues = PacketPort::open_queues_steered(&u.interface, workers, Some(&steer))
        .map_err(|e| err(e.to_string()))?
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn crate::port::Port>)
        .collect();
    links::set_up(&u.interface, None).map_err(|e| err(e.to_string()))?;
    tracing::info!(
        "uplink {} ({mac}, MTU {mtu}): address {}, gateway {}",
        u.interface,
        u.address,
        u.gateway
    );
    let info = UplinkInfo {
        config: u.clone(),
        mac,
        mtu,
    };
    Ok((info, queues))
}

/// Gives the uplink's queues to the workers; its counters are for `stats`.
pub fn give_uplink(queues: Queues, workers: &Workers) -> Arc<PerWorker<PortCounters>> {
    let counters = PerWorker::new(workers.len());
    workers.set_uplink(queues, &counters);
    counters
}

/// Drops the capabilities the daemon no longer needs (see `port::sys::caps`). Call from
/// the main thread before any other thread starts: threads inherit the reduced sets.
pub fn drop_capabilities() {
    match caps::drop_all_but(&caps::KEEP) {
        Ok(left) => tracing::info!("capabilities dropped; effective set now {left:#x}"),
        Err(e) => tracing::warn!("could not drop capabilities ({e}); running with all of root's"),
    }
}
