//! A worker as the control plane sees it: the commands it takes, the events it reports,
//! the handle that sends the one and stops the thread, what it is started with, and its
//! own counters.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use fdb::PortId;

use crate::datapath::capture::CaptureHub;
use crate::datapath::counters::{Mine, PortCounters};
use crate::datapath::pipeline::Pipeline;
use crate::datapath::router::RouterCounters;
use crate::datapath::topology::Topology;
use crate::datapath::tunnel::{Tunnel, TunnelCounters};
use crate::port::Port;
use crate::port::sys::eventfd::EventFd;

/// What the control plane asks of a worker.
pub enum Command {
    /// Take the port: frames may be sent to it from now on. It is read only after
    /// [`Command::ReadPort`], which comes once the topology names it.
    AddPort {
        id: PortId,
        port: Box<dyn Port>,
        counters: Mine<PortCounters>,
    },
    /// Start reading a port added before: the topology that names it is published, so
    /// every frame read from it finds its network.
    ReadPort { id: PortId },
    /// Stop serving the port and hand it back (so the caller can close or destroy it).
    RemovePort {
        id: PortId,
        reply: Sender<Option<Box<dyn Port>>>,
    },
    /// Route to the outside through this port (the `[uplink]` interface).
    SetUplink {
        port: Box<dyn Port>,
        counters: Mine<PortCounters>,
    },
    /// Carry overlay networks over this underlay.
    SetTunnel {
        tunnel: Box<dyn Tunnel>,
        counters: Mine<TunnelCounters>,
    },
    /// Trace a frame as if it arrived from `from` (a port, a peer's VXLAN datagram, the
    /// uplink), changing nothing (`vswitch trace`).
    Trace {
        from: super::TraceFrom,
        frame: Vec<u8>,
        reply: Sender<Vec<crate::datapath::observe::Step>>,
    },
    /// Stop the loop and hand every port back.
    Shutdown {
        reply: Sender<Vec<(PortId, Box<dyn Port>)>>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::AddPort { id, .. } => write!(f, "AddPort({id})"),
            Command::ReadPort { id } => write!(f, "ReadPort({id})"),
            Command::RemovePort { id, .. } => write!(f, "RemovePort({id})"),
            Command::SetTunnel { .. } => write!(f, "SetTunnel"),
            Command::SetUplink { .. } => write!(f, "SetUplink"),
            Command::Trace { from, .. } => write!(f, "Trace({from:?})"),
            Command::Shutdown { .. } => write!(f, "Shutdown"),
        }
    }
}

/// What a worker tells the control plane without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The port's interface disappeared; the worker has dropped the port.
    PortGone(PortId),
}

/// The control plane's end of a running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    pub(super) commands: Sender<Command>,
    pub(super) wake: Arc<EventFd>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Queues a command and wakes the loop.
    pub fn send(&self, cmd: Command) {
        // The worker only goes away after Shutdown; a send after that is a no-op.
        let _ = self.commands.send(cmd);
        if let Err(e) = self.wake.signal() {
            tracing::error!("cannot wake the worker: {e}");
        }
    }

    /// Stops the worker, waits for it, and returns its ports.
    pub fn shutdown(&mut self) -> Vec<(PortId, Box<dyn Port>)> {
        if self.thread.is_none() {
            return Vec::new();
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Command::Shutdown { reply: tx });
        let ports = rx.recv().unwrap_or_default();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        ports
    }
}

/// Everything a worker needs from the daemon.
#[derive(Debug)]
pub struct WorkerConfig {
    pub pipeline: Pipeline,
    pub topology: Arc<ArcSwap<Topology>>,
    pub events: Sender<Event>,
    pub batch: usize,
    /// The daemon's time origin: `now` given to the pipeline is the time since then.
    pub epoch: Instant,
    /// The NAT the router masquerades with (when there is an uplink).
    pub nat: Option<Arc<crate::nat::Nat>>,
    /// This worker's own counters (busy time).
    pub counters: Arc<WorkerCounters>,
    /// The worker's number, from 0: its thread is `vswitch-worker-<index>`.
    pub index: usize,
    /// The external NAT ports this worker prefers (its index modulo the workers).
    pub nat_lane: crate::nat::Lane,
    /// The CPU to pin the worker's thread to, if any.
    pub pin_cpu: Option<usize>,
    /// This worker's end of the ARP news shared between workers.
    pub neigh: crate::datapath::neigh_share::NeighShare,
    /// How long to keep polling without sleeping after a turn that carried frames
    /// (zero: always sleep in `epoll_wait`). See [`BusyPoll`].
    pub busy_poll: Duration,
    /// Storm control (`[datapath] flood_limit_pps`), shared by every worker.
    pub floods: Arc<crate::datapath::flood_limit::FloodLimiter>,
    /// This worker's block of the router's counters.
    pub router_counters: Mine<RouterCounters>,
    /// Running captures (`vswitch capture`); looked at once per batch.
    pub capture: Arc<CaptureHub>,
}

/// A worker's own counters, for metrics: how much of its time it spends working.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Time spent between waking up and waiting again.
    pub busy_ns: crate::datapath::counters::Counter,
    pub wakeups: crate::datapath::counters::Counter,
    /// Frames and datagrams read (local ports, uplink, underlay): how the kernel spreads
    /// the load over the workers.
    pub received: crate::datapath::counters::Counter,
}
