//! The worker's routing side: frames for the router (from local ports, peers and the
//! uplink) and the router's timers, and carrying out what the router decides.

use fdb::{NetworkId, PortId};
use vtep::PeerLookup;

use super::super::counters::{DropReason, PortCounters};
use super::super::pipeline::{Batch, Verdict};
use super::super::pool::Pool;
use super::super::router::{Ctx as RouterCtx, Out, Router};
use super::{SCRATCH_PER_FRAME, UPLINK_PORT, Worker, enqueue};

impl Worker {
    /// Hands buffer `i` to the router and carries out what it decides.
    pub(super) fn route(
        &mut self,
        b: &Batch<'_>,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
        counters: &PortCounters,
    ) {
        let mut out = std::mem::take(&mut self.router_out);
        let cx = RouterCtx::of(b);
        self.router
            .from_network(cx, &mut self.pool, i, network, in_port, &mut out);
        self.dispatch(b, &mut out, in_port, counters);
        self.router_out = out;
    }

    /// Sends what the router produced: answers to ports, frames into networks (switched
    /// like any other, without learning), frames to the uplink.
    pub(super) fn dispatch(
        &mut self,
        b: &Batch<'_>,
        out: &mut Vec<Out>,
        in_port: Option<PortId>,
        counters: &PortCounters,
    ) {
        for o in out.drain(..) {
            match o {
                Out::Port(p, s) => {
                    enqueue(&mut self.ports, &mut self.dirty, p, s);
                }
                Out::Uplink(s) => {
                    if !enqueue(&mut self.ports, &mut self.dirty, UPLINK_PORT, s) {
                        counters.count_drop(DropReason::NoSuchPort);
                    }
                }
                Out::Network(n, s) => {
                    let pipeline = self.cfg.pipeline.clone();
                    match pipeline.routed(b, n, self.pool.get(s).frame()) {
                        Verdict::Forward(p) => {
                            enqueue(&mut self.ports, &mut self.dirty, p, s);
                        }
                        Verdict::Flood { network, vni } => {
                            self.flood_local(b.topo, network, None, s);
                            if let Some(vni) = vni {
                                let peers = b.topo.peers.flood_list(vni);
                                self.send_to_tunnel(
                                    b.topo, network, in_port, s, vni, peers, false, counters,
                                );
                            }
                        }
                        Verdict::Encap { vni, vtep } => {
                            self.send_to_tunnel(
                                b.topo,
                                n,
                                in_port,
                                s,
                                vni,
                                &[vtep],
                                true,
                                counters,
                            );
                        }
                        Verdict::ToRouter { .. } => {}
                        Verdict::Drop(r) => counters.count_drop(r),
                    }
                }
            }
        }
    }

    /// Reads one batch from the uplink and hands every frame to the router.
    pub(super) fn service_uplink(&mut self) {
        let Some((n, counters)) = self.receive(UPLINK_PORT) else {
            return;
        };
        let topo = self.cfg.topology.load_full();
        let pipeline = self.cfg.pipeline.clone();
        let batch = pipeline.begin(self.now(), &topo);
        let mut out = std::mem::take(&mut self.router_out);
        for i in 0..n as u32 {
            if self.pool.scratch_left() < SCRATCH_PER_FRAME {
                self.flush();
            }
            let cx = RouterCtx::of(&batch);
            self.router.from_uplink(cx, &mut self.pool, i, &mut out);
            self.dispatch(&batch, &mut out, None, &counters);
        }
        self.router_out = out;
        drop(batch);
        self.flush();
    }

    /// Applies ARP bindings other workers heard, sending on what waited for them here.
    pub(super) fn hear_neighbours(&mut self) {
        self.router_turn(Router::hear_others);
    }

    /// The router's timers: ARP retries, cache ageing, the uplink's announcement.
    pub(super) fn tick_router(&mut self) {
        self.router_turn(Router::tick);
    }

    /// Runs one router step that comes from no port (`step` fills `out`) and sends
    /// what it produced.
    fn router_turn(&mut self, step: fn(&mut Router, RouterCtx<'_>, &mut Pool, &mut Vec<Out>)) {
        let topo = self.cfg.topology.load_full();
        let pipeline = self.cfg.pipeline.clone();
        let batch = pipeline.begin(self.now(), &topo);
        let mut out = std::mem::take(&mut self.router_out);
        let cx = RouterCtx::of(&batch);
        step(&mut self.router, cx, &mut self.pool, &mut out);
        if !out.is_empty() {
            let counters = self.spare_counters.clone();
            self.dispatch(&batch, &mut out, None, &counters);
        }
        self.router_out = out;
        drop(batch);
        self.flush();
    }
}
