//! The datapath's workers as one: every port has one queue per worker, and the control
//! plane's commands go to all of them. Each worker reads only its own queues (the kernel
//! spreads flows over them: `PACKET_FANOUT`, multi-queue TAP, `SO_REUSEPORT`) and sends
//! on its own queue of whichever port a frame leaves by, and counts into its own block
//! of the port's counters, so workers share no port state, only the lock-free tables
//! (FDB, topology, NAT).

use std::sync::Arc;
use std::time::Duration;

use fdb::PortId;

use super::{Command, WorkerCounters, WorkerHandle};
use crate::datapath::counters::{PerWorker, PortCounters};
use crate::datapath::tunnel::{Tunnel, TunnelCounters};
use crate::port::Port;

/// How long the control plane waits for a worker to let go of a port.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// A port's queues, one per worker, in worker order.
pub type Queues = Vec<Box<dyn Port>>;

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<WorkerHandle>,
    counters: Vec<Arc<WorkerCounters>>,
}

impl Workers {
    pub fn new(handles: Vec<WorkerHandle>, counters: Vec<Arc<WorkerCounters>>) -> Workers {
        Workers { handles, counters }
    }

    /// How many workers there are: how many queues each port must bring.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Each worker's own counters, in worker order.
    pub fn counters(&self) -> &[Arc<WorkerCounters>] {
        &self.counters
    }

    /// Gives queue `k` of a port, and block `k` of its counters, to worker `k`. Extra
    /// queues are closed; a worker left without one cannot send to the port, so callers
    /// open exactly [`len`](Self::len) (and make the counters with as many blocks).
    pub fn add_port(&self, id: PortId, queues: Queues, counters: &Arc<PerWorker<PortCounters>>) {
        for (k, (w, port)) in self.handles.iter().zip(queues).enumerate() {
            w.send(Command::AddPort {
                id,
                port,
                counters: counters.mine(k),
            });
        }
    }

    /// Has every worker start reading port `id` (after [`add_port`](Self::add_port) and
    /// once the topology names it).
    pub fn read_port(&self, id: PortId) {
        for w in &self.handles {
            w.send(Command::ReadPort { id });
        }
    }

    /// Takes port `id` back from every worker; the queues come back in worker order.
    pub fn remove_port(&self, id: PortId) -> Result<Queues, String> {
        let mut replies = Vec::with_capacity(self.handles.len());
        for w in &self.handles {
            let (tx, rx) = crossbeam_channel::bounded(1);
            w.send(Command::RemovePort { id, reply: tx });
            replies.push(rx);
        }
        let mut queues = Vec::new();
        for rx in replies {
            if let Some(q) = rx.recv_timeout(REMOVE_WAIT).map_err(|e| e.to_string())? {
                queues.push(q);
            }
        }
        Ok(queues)
    }

    /// Sends a command to worker `k` only (modulo the workers): one that reads the
    /// shared tables and the worker's own state and answers (a trace).
    pub fn send_to(&self, k: usize, cmd: Command) {
        if let Some(w) = self.handles.get(k % self.handles.len().max(1)) {
            w.send(cmd);
        }
    }

    /// Routes to the outside through these queues of the uplink.
    pub fn set_uplink(&self, queues: Queues, counters: &Arc<PerWorker<PortCounters>>) {
        for (k, (w, port)) in self.handles.iter().zip(queues).enumerate() {
            w.send(Command::SetUplink {
                port,
                counters: counters.mine(k),
            });
        }
    }

    /// Carries overlay networks over these queues of the underlay.
    pub fn set_tunnel(
        &self,
        tunnels: Vec<Box<dyn Tunnel>>,
        counters: &Arc<PerWorker<TunnelCounters>>,
    ) {
        for (k, (w, tunnel)) in self.handles.iter().zip(tunnels).enumerate() {
            w.send(Command::SetTunnel {
                tunnel,
                counters: counters.mine(k),
            });
        }
    }

    /// Stops every worker and returns the ports' queues, grouped by port.
    pub fn shutdown(&mut self) -> Vec<(PortId, Queues)> {
        let mut by_port: Vec<(PortId, Queues)> = Vec::new();
        for w in &mut self.handles {
            for (id, q) in w.shutdown() {
                match by_port.iter_mut().find(|(p, _)| *p == id) {
                    Some((_, qs)) => qs.push(q),
                    None => by_port.push((id, vec![q])),
                }
            }
        }
        by_port
    }
}
