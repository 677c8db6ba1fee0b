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
/// +5.6 %, +6.2 %). The price is latency: ping RTT 200 / 196, 464 / 390, 314 / 204 us.
/// `--workers 1` is the setting for a two-CPU host that cares more for round trips.
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

/// Starts `n` workers. With more than one, worker `k` is pinned to the `k`-th CPU the
/// daemon may use (round robin); a single worker is left to the scheduler, which on a
/// small machine places it better next to the traffic's own processes.
pub fn spawn(n: usize, s: Shared) -> Result<Workers, DaemonError> {
    let cpus = if n > 1 {
        affinity::allowed_cpus().unwrap_or_default()
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
}
