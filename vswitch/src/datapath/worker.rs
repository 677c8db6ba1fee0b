//! The batch loop: a worker thread waits on its ports (epoll), reads a batch from each
//! ready port into pooled buffers, runs every frame through the pipeline, queues the
//! frame's buffer index on each egress port, and then flushes every egress port with one
//! batch send. Flooding queues the same buffer on several ports: nothing is copied.
//!
//! Control commands (add / remove a port, stop) arrive on a channel, with an eventfd to
//! wake the loop; they are drained between batches, so the control plane never touches
//! the packet path and is never starved by it (each port yields after one batch).

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender};
use fdb::{Location, PortId};

use super::counters::{DropReason, PortCounters};
use super::pipeline::{FrameMeta, Pipeline, Verdict};
use super::topology::Topology;
use crate::packet::PacketBuf;
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::sys::eventfd::EventFd;
use crate::port::{Port, PortError};

/// Frames read from one port per turn (and the size of the buffer pool).
pub const DEFAULT_BATCH: usize = 64;
/// Longest wait for a port to become readable before looking at commands again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
const WAKE_TOKEN: u64 = u64::MAX;

/// What the control plane asks of a worker.
pub enum Command {
    AddPort {
        id: PortId,
        port: Box<dyn Port>,
        counters: Arc<PortCounters>,
    },
    /// Stop serving the port and hand it back (so the caller can close or destroy it).
    RemovePort {
        id: PortId,
        reply: Sender<Option<Box<dyn Port>>>,
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
            Command::RemovePort { id, .. } => write!(f, "RemovePort({id})"),
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
    commands: Sender<Command>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
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
}

/// Starts a worker thread.
pub fn spawn(cfg: WorkerConfig) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake = Arc::new(EventFd::new()?);
    let epoll = Epoll::new()?;
    epoll.add(wake.as_fd(), WAKE_TOKEN)?;
    let mut worker = Worker {
        epoll,
        wake: wake.clone(),
        commands: rx,
        ports: HashMap::new(),
        pool: (0..cfg.batch.max(1)).map(|_| PacketBuf::new()).collect(),
        dirty: Vec::new(),
        cfg,
    };
    let thread = std::thread::Builder::new()
        .name("vswitch-worker".into())
        .spawn(move || worker.run())?;
    Ok(WorkerHandle {
        commands: tx,
        wake,
        thread: Some(thread),
    })
}

struct Slot {
    port: Box<dyn Port>,
    counters: Arc<PortCounters>,
    /// Pool indices queued for this port in the current batch.
    pending: Vec<u32>,
}

struct Worker {
    epoll: Epoll,
    wake: Arc<EventFd>,
    commands: Receiver<Command>,
    ports: HashMap<PortId, Slot>,
    pool: Vec<PacketBuf>,
    /// Ports with pending frames, in the order they were first queued.
    dirty: Vec<PortId>,
    cfg: WorkerConfig,
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        let mut ready: Vec<u64> = Vec::with_capacity(64);
        let mut last_check = Instant::now();
        loop {
            if let Err(e) = self.epoll.wait(&mut events, Some(IDLE_WAIT)) {
                tracing::error!("worker: epoll_wait failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            ready.clear();
            ready.extend(events.iter().map(|e| e.token));
            for &token in &ready {
                if token == WAKE_TOKEN {
                    let _ = self.wake.drain();
                    if !self.drain_commands() {
                        return;
                    }
                } else {
                    self.service(PortId(token as u32));
                }
            }
            if last_check.elapsed() >= IDLE_WAIT {
                self.check_ports();
                last_check = Instant::now();
            }
        }
    }

    /// Finds ports whose interface vanished without the receive path hearing of it.
    fn check_ports(&mut self) {
        let gone: Vec<PortId> = self
            .ports
            .iter_mut()
            .filter_map(|(id, slot)| slot.port.check_alive().err().map(|_| *id))
            .collect();
        for id in gone {
            self.port_failed(id, PortError::Gone(String::new()));
        }
    }

    fn now(&self) -> Duration {
        self.cfg.epoch.elapsed()
    }

    /// Applies queued commands; false when the worker must stop.
    fn drain_commands(&mut self) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::AddPort { id, port, counters } => {
                    if let Err(e) = self.epoll.add(port.as_fd(), u64::from(id.0)) {
                        tracing::error!("cannot watch port {}: {e}", port.name());
                    }
                    self.ports.insert(
                        id,
                        Slot {
                            port,
                            counters,
                            pending: Vec::with_capacity(self.pool.len()),
                        },
                    );
                }
                Command::RemovePort { id, reply } => {
                    let port = self.detach(id);
                    let _ = reply.send(port);
                }
                Command::Shutdown { reply } => {
                    let ids: Vec<PortId> = self.ports.keys().copied().collect();
                    let ports = ids
                        .into_iter()
                        .filter_map(|id| self.detach(id).map(|p| (id, p)))
                        .collect();
                    let _ = reply.send(ports);
                    return false;
                }
            }
        }
        true
    }

    fn detach(&mut self, id: PortId) -> Option<Box<dyn Port>> {
        let slot = self.ports.remove(&id)?;
        let _ = self.epoll.delete(slot.port.as_fd());
        Some(slot.port)
    }

    /// Reads one batch from `in_port`, decides, and flushes.
    fn service(&mut self, in_port: PortId) {
        let Some(slot) = self.ports.get_mut(&in_port) else {
            return;
        };
        let received = slot.port.recv_batch(&mut self.pool);
        let counters = slot.counters.clone();
        counters.add_port_drops(&slot.port.take_drops());
        let n = match received {
            Ok(n) => n,
            Err(e) => {
                self.port_failed(in_port, e);
                return;
            }
        };
        if n == 0 {
            return;
        }
        let topo = self.cfg.topology.load();
        let batch = self.cfg.pipeline.begin(self.now(), &topo);
        for i in 0..n {
            let buf = &self.pool[i];
            counters.rx_packets.add(1);
            counters.rx_bytes.add(buf.len() as u64);
            let meta = FrameMeta {
                gso: buf.vnet[1] != 0,
            };
            match self
                .cfg
                .pipeline
                .process(&batch, in_port, buf.frame(), meta)
            {
                Verdict::Forward(out) => {
                    if !enqueue(&mut self.ports, &mut self.dirty, out, i) {
                        counters.count_drop(DropReason::NoSuchPort);
                    }
                }
                Verdict::Flood(net) => {
                    if let Some(info) = topo.networks.get(&net) {
                        for &out in info.ports.iter().filter(|p| **p != in_port) {
                            enqueue(&mut self.ports, &mut self.dirty, out, i);
                        }
                    }
                }
                Verdict::Drop(reason) => counters.count_drop(reason),
            }
        }
        drop(batch);
        self.flush();
    }

    fn flush(&mut self) {
        let mut gone = Vec::new();
        for id in self.dirty.drain(..) {
            let Some(slot) = self.ports.get_mut(&id) else {
                continue;
            };
            let queued = slot.pending.len();
            let result = slot.port.send_batch(&self.pool, &slot.pending);
            let dropped = slot.port.take_drops();
            slot.counters.add_port_drops(&dropped);
            match result {
                Ok(done) => {
                    // `done` includes frames the port dropped itself (counted above); the
                    // byte count of those is small noise next to the rest.
                    let refused = dropped.tx_refused + dropped.tx_link_down + dropped.tx_queue_full;
                    slot.counters
                        .tx_packets
                        .add((done as u64).saturating_sub(refused));
                    for &i in &slot.pending[..done] {
                        slot.counters
                            .tx_bytes
                            .add(self.pool[i as usize].len() as u64);
                    }
                    slot.counters
                        .count_drops(DropReason::TxBusy, (queued - done) as u64);
                }
                Err(PortError::Gone(_)) => gone.push(id),
                Err(e) => {
                    tracing::debug!("{e}");
                    slot.counters
                        .count_drops(DropReason::TxError, queued as u64);
                }
            }
            slot.pending.clear();
        }
        for id in gone {
            self.port_failed(id, PortError::Gone(String::new()));
        }
    }

    fn port_failed(&mut self, id: PortId, err: PortError) {
        match err {
            PortError::Gone(_) => {
                if let Some(port) = self.detach(id) {
                    tracing::warn!("port {} ({id}): interface gone, port removed", port.name());
                    self.cfg
                        .pipeline
                        .fdb()
                        .flush_location(Location::Port(id), false);
                    let _ = self.cfg.events.send(Event::PortGone(id));
                }
            }
            e => {
                // A receive error other than "gone" loses whatever was waiting; it is
                // counted as one dropped frame and the port stays.
                if let Some(slot) = self.ports.get(&id) {
                    slot.counters.count_drop(DropReason::RxError);
                }
                tracing::debug!("{e}");
            }
        }
    }
}

/// Queues pool index `i` on port `out`; false when there is no such port.
fn enqueue(
    ports: &mut HashMap<PortId, Slot>,
    dirty: &mut Vec<PortId>,
    out: PortId,
    i: usize,
) -> bool {
    let Some(slot) = ports.get_mut(&out) else {
        return false;
    };
    if slot.pending.is_empty() {
        dirty.push(out);
    }
    slot.pending.push(i as u32);
    true
}
