//! Starting the datapath's workers: how many, on which CPUs, and what each is given.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use fdb::Fdb;

use super::DaemonError;
use crate::datapath::capture::CaptureHub;
use crate::datapath::counters::PerWorker;
use crate::datapath::flood_limit::FloodLimiter;
use crate::datapath::neigh_share::NeighShare;
use crate::datapath::pipeline::Pipeline;
use crate::datapath::router::RouterCounters;
use crate::datapath::topology::Topology;
use crate::datapath::worker::{self, Event, WorkerConfig, WorkerCounters, Workers};
use crate::nat::Nat;
use crate::port::sys::affinity;

/// Workers when neither `--workers` nor `[datapath] workers` says: one per CPU the
/// daemon may use (its affinity mask, so `taskset` and cgroup cpusets count), at most
/// [`MAX_WORKERS`].
///
/// Also on two CPUs, where the switch shares them with the processes whose traffic it
/// carries: there the default is chosen by four TCP streams, and two workers carried
/// more. Measured on the 2-vCPU development machine by the lab bench's `vswitch-w2`
/// variant against one worker, alternating in one run (`REPS=7 VARIANTS="vswitch
/// vswitch-w2" benches/lab-bench.sh`, medians of 7 x 10 s): 4 streams 11.71 / 11.16
/// Gbit/s between two containers, 5.56 / 5.72 through the overlay, 11.85 / 10.96 through
/// NAT, +4.6 % in sum (three earlier measurements, one build after another: a tie,
/// +5.6 %, +6.2 %). The price then was latency: ping RTT 200 / 196, 464 / 390, 314 /
/// 204 us. Two changes took most of it back: both directions of a flow go to one
/// worker (`port::steer`), and workers that take every CPU are not pinned
/// ([`pin_by_default`]); after them two workers' round trip matched one's on one host
/// and through NAT (214 / 212, 217 / 213 us).
pub fn default_workers() -> usize {
    workers_for_cpus(affinity::allowed_cpus().map_or(1, |cpus| cpus.len()))
}

/// One worker per CPU, within 1..=[`MAX_WORKERS`].
fn workers_for_cpus(cpus: usize) -> usize {
    cpus.clamp(1, MAX_WORKERS)
}

/// More workers than this is a mistake, not a configuration.
pub const MAX_WORKERS: usize = 64;

/// What every worker shares.
pub struct Shared {
    pub fdb: Arc<Fdb>,
    pub topology: Arc<ArcSwap<Topology>>,
    pub events: Sender<Event>,
    pub batch: usize,
    pub busy_poll: std::time::Duration,
    /// Storm control (`[datapath] flood_limit_pps`).
    pub floods: Arc<FloodLimiter>,
    pub epoch: Instant,
    pub nat: Option<Arc<Nat>>,
    pub router_counters: Arc<PerWorker<RouterCounters>>,
    pub capture: Arc<CaptureHub>,
}

/// Whether `workers` workers on a daemon that may use `cpus` CPUs are pinned, when
/// `[datapath] pin_workers` does not say: with more than one worker, and only when they
/// leave CPUs free. A worker pinned to every CPU cannot step aside for the processes
/// whose traffic it carries: on the 2-vCPU development machine, two pinned workers made
/// the round trip 14-17 % longer than one worker, where two unpinned ones matched it
/// (200-239 against 190-242 us on one host, 214-256 against 209-254 through NAT) and
/// carried as much or more (`SCENARIOS="l2 nat" VARIANTS="vswitch vswitch-w1" REPS=3`,
/// one run each way). A single worker is always left to the scheduler.
fn pin_by_default(workers: usize, cpus: usize) -> bool {
    workers > 1 && workers < cpus
}

/// Starts `n` workers. Pinned (`pin`, else [`pin_by_default`]), worker `k` runs on the
/// `k`-th CPU the daemon may use (round robin).
pub fn spawn(n: usize, pin: Option<bool>, s: Shared) -> Result<Workers, DaemonError> {
    let allowed = affinity::allowed_cpus().unwrap_or_default();
    let cpus = if n > 1 && pin.unwrap_or_else(|| pin_by_default(n, allowed.len())) {
        allowed
    } else {
        Vec::new()
    };
    let mut handles = Vec::with_capacity(n);
    let mut counters = Vec::with_capacity(n);
    for (index, neigh) in NeighShare::mesh(n).into_iter().enumerate() {
        let c = Arc::new(WorkerCounters::default());
        handles.push(
            worker::spawn(WorkerConfig {
                pipeline: Pipeline::new(s.fdb.clone()),
                topology: s.topology.clone(),
                events: s.events.clone(),
                batch: s.batch,
                busy_poll: s.busy_poll,
                floods: s.floods.clone(),
                epoch: s.epoch,
                nat: s.nat.clone(),
                router_counters: s.router_counters.mine(index),
                capture: s.capture.clone(),
                counters: c.clone(),
                index,
                nat_lane: crate::nat::Lane::new(index, n),
                pin_cpu: (!cpus.is_empty()).then(|| cpus[index % cpus.len()]),
                neigh,
            })
            .map_err(DaemonError::Worker)?,
        );
        counters.push(c);
    }
    tracing::info!(
        "{n} worker{}{}",
        if n == 1 { "" } else { "s" },
        if cpus.is_empty() { "" } else { ", pinned" }
    );
    Ok(Workers::new(handles, counters))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_per_cpu_within_the_limits() {
        assert_eq!(workers_for_cpus(0), 1);
        assert_eq!(workers_for_cpus(1), 1);
        assert_eq!(workers_for_cpus(2), 2);
        assert_eq!(workers_for_cpus(3), 3);
        assert_eq!(workers_for_cpus(16), 16);
        assert_eq!(workers_for_cpus(MAX_WORKERS + 1), MAX_WORKERS);
    }

    #[test]
    fn workers_are_pinned_by_default_only_when_they_leave_cpus_free() {
        assert!(!pin_by_default(1, 8));
        assert!(!pin_by_default(2, 2));
        assert!(!pin_by_default(8, 8));
        assert!(pin_by_default(4, 8));
    }
}
