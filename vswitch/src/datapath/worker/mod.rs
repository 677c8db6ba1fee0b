//! The batch loop: a worker thread waits on its ports and the underlay (epoll), reads a
//! batch from each ready one into pooled buffers, runs every frame through the pipeline,
//! queues the frame's buffer index on each egress port (and transmits for each peer),
//! and then flushes every egress with one batch send. Flooding to local ports queues the
//! same buffer on several ports: nothing is copied.
//!
//! Control commands (add / remove a port, stop) arrive on a channel, with an eventfd to
//! wake the loop; they are drained between batches, so the control plane never touches
//! the packet path and is never starved by it (each port yields after one batch).

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fdb::{Location, NetworkId, PortId};
use vtep::PeerLookup;

use super::capture::Direction;
use super::counters::{DropReason, Mine, PerWorker, PortCounters};
use super::flood_limit::FloodSource;
use super::id_hash::IdMap;
use super::offload::{Coalescer, super_frame_mislabelled};
use super::pipeline::{Batch, FrameMeta, Ingress, Verdict};
use super::pool::{Pool, SCRATCH_EXTRA};
use super::router::{Out, Router};
use super::topology::Topology;
use super::tunnel::{RxMeta, Transmit, Tunnel, TunnelCounters};
use crate::packet::{MAX_FRAME, PacketBuf};
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::sys::eventfd::EventFd;
use crate::port::{Port, PortError};

/// Frames read from one port per turn.
pub const DEFAULT_BATCH: usize = 64;
/// Scratch buffers per worker: frames the switch builds during one batch.
pub const SCRATCH: usize = 256;
/// Fewer free scratch buffers than this before a frame from a local port, and what is
/// queued is sent first: one frame may need this many (an IPv4 packet of 64 KiB
/// fragmented to a 1450-byte overlay).
pub const SCRATCH_PER_FRAME: usize = 48;

mod busy_poll;
mod control;
mod peers;
mod routing;
mod set;
mod trace;
mod tunnel;

use busy_poll::BusyPoll;
pub use busy_poll::DEFAULT_BUSY_POLL;
pub use control::{Command, Event, WorkerConfig, WorkerCounters, WorkerHandle};
use peers::PeerHandles;
pub use set::{Queues, Workers};
pub use trace::TraceFrom;
/// Super-frames the coalescer builds per batch of VXLAN reads.
pub const GRO_SLOTS: usize = 64;
/// Flows the coalescer keeps open at once.
pub const GRO_FLOWS: usize = 16;
/// Longest wait for a port to become readable before looking at commands again.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How often the router's timers run (ARP retries, ageing).
const ROUTER_TICK: Duration = super::router::TICK_EVERY;
const WAKE_TOKEN: u64 = u64::MAX;
const TUNNEL_TOKEN: u64 = u64::MAX - 1;
/// The uplink is a port of the worker under this id, in no network.
pub const UPLINK_PORT: PortId = PortId(u32::MAX - 2);

/// Starts a worker thread.
pub fn spawn(mut cfg: WorkerConfig) -> std::io::Result<WorkerHandle> {
    let share = std::mem::replace(&mut cfg.neigh, super::neigh_share::NeighShare::alone());
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake = Arc::new(EventFd::new()?);
    let epoll = Epoll::new()?;
    epoll.add(wake.as_fd(), WAKE_TOKEN)?;
    let batch = cfg.batch.max(1);
    let mut worker = Worker {
        epoll,
        wake: wake.clone(),
        commands: rx,
        ports: IdMap::default(),
        pool: Pool::new(batch, SCRATCH),
        dirty: Vec::new(),
        tunnel: None,
        txs: Vec::with_capacity(SCRATCH * 2),
        rx_meta: vec![RxMeta::default(); batch],
        gro: Coalescer::with_capacity(GRO_FLOWS, GRO_SLOTS, MAX_FRAME + SCRATCH_EXTRA),
        gro_port: vec![None; GRO_SLOTS],
        router: Router::new(cfg.nat.clone(), cfg.router_counters.clone(), share)
            .with_lane(cfg.nat_lane),
        router_out: Vec::with_capacity(16),
        spare_counters: PerWorker::new(1).mine(0),
        peers: PeerHandles::default(),
        cfg,
    };
    let thread = std::thread::Builder::new()
        .name(format!("vswitch-worker-{}", worker.cfg.index))
        .spawn(move || {
            if let Some(cpu) = worker.cfg.pin_cpu {
                match crate::port::sys::affinity::pin_current_thread(cpu) {
                    Ok(()) => tracing::debug!("worker {} pinned to CPU {cpu}", worker.cfg.index),
                    Err(e) => {
                        tracing::warn!("worker {}: cannot pin to CPU {cpu}: {e}", worker.cfg.index)
                    }
                }
            }
            worker.run()
        })?;
    Ok(WorkerHandle {
        commands: tx,
        wake,
        thread: Some(thread),
    })
}

struct Slot {
    port: Box<dyn Port>,
    counters: Mine<PortCounters>,
    /// Pool indices queued for this port in the current batch.
    pending: Vec<u32>,
}

struct TunnelSlot {
    tunnel: Box<dyn Tunnel>,
    counters: Mine<TunnelCounters>,
}

struct Worker {
    epoll: Epoll,
    wake: Arc<EventFd>,
    commands: Receiver<Command>,
    ports: IdMap<PortId, Slot>,
    pool: Pool,
    /// Ports with pending frames, in the order they were first queued.
    dirty: Vec<PortId>,
    tunnel: Option<TunnelSlot>,
    /// Datagrams queued for the underlay in the current batch.
    txs: Vec<Transmit>,
    rx_meta: Vec<RxMeta>,
    /// Merges consecutive decapsulated TCP segments into super-frames for local ports.
    gro: Coalescer,
    /// The port each coalescer slot's super-frame goes to.
    gro_port: Vec<Option<PortId>>,
    router: Router,
    router_out: Vec<Out>,
    /// Drops of frames the switch made itself (not from a port).
    spare_counters: Mine<PortCounters>,
    /// This worker's handles on the per-peer counters.
    peers: PeerHandles,
    cfg: WorkerConfig,
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        let mut ready: Vec<u64> = Vec::with_capacity(64);
        let mut last_check = Instant::now();
        let mut last_tick = Instant::now();
        let mut poll = BusyPoll::new(self.cfg.busy_poll);
        loop {
            let timeout = poll.timeout(IDLE_WAIT);
            let ready_fds = match self.epoll.wait(&mut events, Some(timeout)) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("worker: epoll_wait failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    0
                }
            };
            if ready_fds == 0 && poll.spinning() {
                // Nothing yet, and still inside the window: give a thread that shares
                // this CPU (often the traffic's own sender) its turn, then look again.
                std::thread::yield_now();
                continue;
            }
            let busy_since = Instant::now();
            let received_before = self.cfg.counters.received.get();
            ready.clear();
            ready.extend(events.iter().map(|e| e.token));
            for &token in &ready {
                match token {
                    WAKE_TOKEN => {
                        let _ = self.wake.drain();
                        if !self.drain_commands() {
                            return;
                        }
                    }
                    TUNNEL_TOKEN => self.service_tunnel(),
                    t if t == u64::from(UPLINK_PORT.0) => self.service_uplink(),
                    t => self.service_port(PortId(t as u32)),
                }
            }
            if self.router.has_news() {
                self.hear_neighbours();
            }
            if last_check.elapsed() >= IDLE_WAIT {
                self.check_ports();
                last_check = Instant::now();
            }
            if last_tick.elapsed() >= ROUTER_TICK {
                self.tick_router();
                last_tick = Instant::now();
            }
            let carried = self.cfg.counters.received.get() != received_before;
            poll.after_turn(carried);
            self.cfg
                .counters
                .busy_ns
                .add(busy_since.elapsed().as_nanos() as u64);
            self.cfg.counters.wakeups.add(1);
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
                    let pending = Vec::with_capacity(self.pool.rx().len() * 2);
                    self.ports.insert(
                        id,
                        Slot {
                            port,
                            counters,
                            pending,
                        },
                    );
                }
                Command::ReadPort { id } => {
                    if let Some(slot) = self.ports.get(&id)
                        && let Err(e) = self.epoll.add(slot.port.as_fd(), u64::from(id.0))
                    {
                        tracing::error!("cannot watch port {}: {e}", slot.port.name());
                    }
                }
                Command::RemovePort { id, reply } => {
                    let port = self.detach(id);
                    let _ = reply.send(port);
                }
                Command::SetUplink { port, counters } => {
                    if let Err(e) = self.epoll.add(port.as_fd(), u64::from(UPLINK_PORT.0)) {
                        tracing::error!("cannot watch the uplink {}: {e}", port.name());
                    }
                    let pending = Vec::with_capacity(self.pool.rx().len() * 2);
                    self.ports.insert(
                        UPLINK_PORT,
                        Slot {
                            port,
                            counters,
                            pending,
                        },
                    );
                }
                Command::SetTunnel { tunnel, counters } => {
                    if let Some(old) = self.tunnel.take() {
                        let _ = self.epoll.delete(old.tunnel.as_fd());
                    }
                    if let Err(e) = self.epoll.add(tunnel.as_fd(), TUNNEL_TOKEN) {
                        tracing::error!("cannot watch the underlay socket: {e}");
                    }
                    self.tunnel = Some(TunnelSlot { tunnel, counters });
                }
                Command::Trace { from, frame, reply } => {
                    let _ = reply.send(self.trace(from, &frame));
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
        self.cfg.floods.forget(FloodSource::Port(id));
        let _ = self.epoll.delete(slot.port.as_fd());
        Some(slot.port)
    }

    /// Matches the per-peer counters to `topo`'s peer table (see [`PeerHandles`]).
    #[inline]
    fn sync_peers(&mut self, topo: &Topology) {
        if let Some(t) = &self.tunnel {
            self.peers.sync(topo, &t.counters, &self.cfg.floods);
        }
    }

    /// Finds ports whose interface vanished without the receive path hearing of it, and
    /// collects what the kernel dropped for ports and the underlay by itself meanwhile.
    fn check_ports(&mut self) {
        let gone: Vec<PortId> = self
            .ports
            .iter_mut()
            .filter_map(|(id, slot)| {
                let alive = slot.port.check_alive();
                // What the port learned of by itself meanwhile (e.g. receive overruns).
                slot.counters.add_port_drops(&slot.port.take_drops());
                alive.err().map(|_| *id)
            })
            .collect();
        for id in gone {
            self.port_gone(id);
        }
        if let Some(t) = self.tunnel.as_mut() {
            t.counters.rx_overrun.add(t.tunnel.take_rx_overruns());
        }
        // A peer removed while no datagram came or went.
        let topo = self.cfg.topology.load_full();
        self.sync_peers(&topo);
    }

    /// Reads a batch from port `id` into the receive buffers and counts it; `None` when
    /// nothing came (or the port failed, which is handled here).
    fn receive(&mut self, id: PortId) -> Option<(usize, Mine<PortCounters>)> {
        let slot = self.ports.get_mut(&id)?;
        let received = slot.port.recv_batch(self.pool.rx());
        let counters = slot.counters.clone();
        counters.add_port_drops(&slot.port.take_drops());
        let n = match received {
            Ok(n) => n,
            Err(PortError::Gone(_)) => {
                self.port_gone(id);
                return None;
            }
            Err(e) => {
                counters.count_drop(DropReason::RxError);
                tracing::debug!("{e}");
                return None;
            }
        };
        self.cfg.counters.received.add(n as u64);
        for buf in &self.pool.rx()[..n] {
            counters.rx_packets.add(1);
            counters.rx_bytes.add(buf.len() as u64);
        }
        if self.cfg.capture.is_active() {
            let topo = self.cfg.topology.load();
            let frames = self.pool.all()[..n].iter().map(|b| b.frame());
            self.cfg
                .capture
                .port_frames(&topo, id, Direction::Rx, frames);
        }
        let n = keep_describable(&mut self.pool.rx()[..n], &counters);
        (n > 0).then_some((n, counters))
    }

    /// Reads one batch from a local port, decides, and flushes.
    fn service_port(&mut self, in_port: PortId) {
        let Some((n, counters)) = self.receive(in_port) else {
            return;
        };
        let topo = self.cfg.topology.load_full();
        let pipeline = self.cfg.pipeline.clone();
        let batch = pipeline.begin(self.now(), &topo);
        for i in 0..n as u32 {
            let buf = self.pool.get(i);
            let meta = FrameMeta {
                gso: buf.vnet[1] != 0,
            };
            let verdict = pipeline.process(&batch, Ingress::Port(in_port), buf.frame(), meta);
            if self.pool.scratch_left() < SCRATCH_PER_FRAME {
                self.flush();
            }
            self.apply(&batch, in_port, i, verdict, &counters);
        }
        drop(batch);
        self.flush();
    }

    /// Carries out a verdict on pool buffer `i` that came in on local port `in_port`.
    fn apply(
        &mut self,
        b: &Batch<'_>,
        in_port: PortId,
        i: u32,
        verdict: Verdict,
        counters: &PortCounters,
    ) {
        match verdict {
            Verdict::Forward(out) => {
                if !enqueue(&mut self.ports, &mut self.dirty, out, i) {
                    counters.count_drop(DropReason::NoSuchPort);
                }
            }
            Verdict::Flood { network, vni } => {
                if !self.cfg.floods.allow(FloodSource::Port(in_port), b.now) {
                    return counters.count_drop(DropReason::FloodLimited);
                }
                self.flood_local(b.topo, network, Some(in_port), i);
                if let Some(vni) = vni {
                    let peers = b.topo.peers.flood_list(vni);
                    self.send_to_tunnel(
                        b.topo,
                        network,
                        Some(in_port),
                        i,
                        vni,
                        peers,
                        false,
                        counters,
                    );
                }
            }
            Verdict::Encap { vni, vtep } => {
                let Some(net) = b.topo.ports.get(&in_port).map(|p| p.network) else {
                    return counters.count_drop(DropReason::NoSuchPort);
                };
                self.send_to_tunnel(b.topo, net, Some(in_port), i, vni, &[vtep], true, counters);
            }
            Verdict::ToRouter { network } => self.route(b, i, network, Some(in_port), counters),
            Verdict::Drop(reason) => counters.count_drop(reason),
        }
    }

    fn flood_local(&mut self, topo: &Topology, network: NetworkId, except: Option<PortId>, i: u32) {
        if let Some(info) = topo.networks.get(&network) {
            for &out in info.ports.iter().filter(|p| Some(**p) != except) {
                enqueue(&mut self.ports, &mut self.dirty, out, i);
            }
        }
    }

    fn flush(&mut self) {
        let pool = self.pool.all();
        let mut gone = Vec::new();
        let capture = self
            .cfg
            .capture
            .is_active()
            .then(|| (&self.cfg.capture, self.cfg.topology.load()));
        for id in self.dirty.drain(..) {
            let Some(slot) = self.ports.get_mut(&id) else {
                continue;
            };
            if let Some((hub, topo)) = &capture {
                let frames = slot.pending.iter().map(|&i| pool[i as usize].frame());
                hub.port_frames(topo, id, Direction::Tx, frames);
            }
            let queued = slot.pending.len();
            let result = slot.port.send_batch(pool, &slot.pending);
            let dropped = slot.port.take_drops();
            slot.counters.add_port_drops(&dropped);
            match result {
                Ok(done) => {
                    // `done` includes frames the port dropped itself (counted above).
                    let refused = dropped.tx_refused + dropped.tx_link_down + dropped.tx_queue_full;
                    slot.counters
                        .tx_packets
                        .add((done as u64).saturating_sub(refused));
                    for &i in &slot.pending[..done] {
                        slot.counters.tx_bytes.add(pool[i as usize].len() as u64);
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
        if let Some(t) = self.tunnel.as_mut()
            && !self.txs.is_empty()
        {
            if let Some((hub, topo)) = &capture {
                tunnel::capture_tx(hub, topo, pool, &self.txs);
            }
            let queued = self.txs.len();
            let done = match t.tunnel.send_batch(pool, &self.txs) {
                Ok(done) => done,
                Err(e) => {
                    tracing::debug!("{e}");
                    0
                }
            };
            let refused = t.tunnel.take_tx_drops();
            for tx in &self.txs[..done] {
                let len = tx
                    .range
                    .as_ref()
                    .map_or(pool[tx.buf as usize].len(), |r| r.len());
                let n = tx
                    .segment_size
                    .map_or(1, |s| len.div_ceil(usize::from(s).max(1)));
                t.counters.tx_datagrams.add(n as u64);
                t.counters.tx_bytes.add(len as u64);
                // A static FDB entry may name a VTEP that is not a peer: totals only.
                if let Some(peer) = self.peers.get(tx.dst) {
                    peer.tx_datagrams.add(n as u64);
                    peer.tx_bytes.add(len as u64);
                }
            }
            t.counters.tx_dropped.add((queued - done) as u64 + refused);
        }
        drop(capture);
        self.txs.clear();
        self.pool.release_scratch();
        for id in gone {
            self.port_gone(id);
        }
    }

    fn port_gone(&mut self, id: PortId) {
        if let Some(port) = self.detach(id) {
            // Every worker loses its own queue of the port; one line says it.
            if self.cfg.index == 0 {
                tracing::warn!("port {} ({id}): interface gone, port removed", port.name());
            }
            self.cfg
                .pipeline
                .fdb()
                .flush_location(Location::Port(id), false);
            let _ = self.cfg.events.send(Event::PortGone(id));
        }
    }
}

/// Keeps at the front of `bufs` the frames whose virtio_net_hdr agrees with them and
/// returns how many. No egress can segment a super-frame whose header contradicts it (a
/// tunnel super-frame labelled TCP): it is dropped here, on every port that reads frames
/// (local ports and the uplink), and counted against the port that sent it. Frames
/// without GSO cost one byte compare; swapping buffers moves only their pointers.
fn keep_describable(bufs: &mut [PacketBuf], counters: &PortCounters) -> usize {
    let mut kept = 0;
    for i in 0..bufs.len() {
        let b = &bufs[i];
        if super_frame_mislabelled(b) {
            counters.count_drop(DropReason::BadVnetHdr);
            continue;
        }
        bufs.swap(kept, i);
        kept += 1;
    }
    kept
}

/// Queues pool index `i` on port `out`; false when there is no such port.
fn enqueue(ports: &mut IdMap<PortId, Slot>, dirty: &mut Vec<PortId>, out: PortId, i: u32) -> bool {
    let Some(slot) = ports.get_mut(&out) else {
        return false;
    };
    if slot.pending.is_empty() {
        dirty.push(out);
    }
    slot.pending.push(i);
    true
}
