//! `vswitch trace` inside the worker: a synthetic frame runs through the real pipeline,
//! router and tunnel egress with a dry-run observer (see `observe`), between batches, on
//! the worker's own state (its neighbour caches, the shared FDB and NAT). Nothing is
//! sent, learned, counted or created; the scratch buffers it used are taken back. The
//! frame enters at a local port; or as the inner frame of a peer's VXLAN datagram, when
//! it first meets decapsulation's peer check and never leaves towards a peer unless the
//! router sends it on; or on the uplink, where the router and the NAT take it.
//!
//! What this file adds is only the walk from one verdict to the next — the same walk
//! `apply`, `dispatch` and `send_to_tunnel` make with I/O — recording where the frame
//! would leave.

use fdb::{NetworkId, PortId};

use super::super::counters::DropReason;
use super::super::egress::{self, Outcome, Target};
use super::super::observe::{Exit, MtuVerdict, Observer, Recorder, Step};
use super::super::pipeline::{Batch, FrameMeta, Ingress, Pipeline, Verdict};
use super::super::router::{Ctx as RouterCtx, Env as RouterEnv, Out};
use super::Worker;
use vtep::PeerLookup;

/// Where a traced frame enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFrom {
    /// A local port, or a peer's VXLAN datagram: the pipeline's own ingress.
    Switch(Ingress),
    /// The uplink: the router's way in, through the NAT.
    Uplink,
}

/// How deep router output may lead to more routing (a routed frame is switched, never
/// routed again; this only guards the walk).
const MAX_DEPTH: usize = 4;

impl Worker {
    /// The decisions about `frame` arriving from `from`.
    pub(super) fn trace(&mut self, from: TraceFrom, frame: &[u8]) -> Vec<Step> {
        match from {
            TraceFrom::Switch(ingress) => self.trace_switched(ingress, frame),
            TraceFrom::Uplink => self.trace_from_uplink(frame),
        }
    }

    /// A frame from the uplink: the router (and its NAT) first, then wherever the
    /// router sends it.
    fn trace_from_uplink(&mut self, frame: &[u8]) -> Vec<Step> {
        let mut rec = Recorder::default();
        rec.step(|| Step::FromUplink);
        self.on_scratch(frame, &mut rec, |w, pipeline, b, s, rec| {
            let mut out = Vec::new();
            let mut env = RouterEnv {
                cx: RouterCtx::of(b),
                pool: &mut w.pool,
                out: &mut out,
                obs: rec,
            };
            w.router.from_uplink_with(&mut env, s);
            for o in out {
                w.walk_router_out(pipeline, b, None, s, o, rec, 0);
            }
        });
        rec.steps
    }

    /// A frame at a local port or from a peer: the pipeline first.
    fn trace_switched(&mut self, from: Ingress, frame: &[u8]) -> Vec<Step> {
        let mut rec = Recorder::default();
        let topo = self.cfg.topology.load_full();
        let (in_port, network) = match from {
            Ingress::Port(p) => (Some(p), topo.ports.get(&p).map(|i| i.network)),
            Ingress::Vtep { ip, network } => {
                let vni = topo.networks.get(&network).and_then(|n| n.vni);
                let (Some(vni), true) = (vni, self.tunnel.is_some()) else {
                    return vec![Step::Drop(DropReason::NoUnderlay)];
                };
                // The check `vtep::decapsulate` makes before the pipeline sees the frame.
                let known = topo.peers.is_peer(ip, vni);
                rec.step(|| Step::FromPeer {
                    ip,
                    vni,
                    network,
                    known,
                });
                if !known {
                    return rec.steps;
                }
                (None, Some(network))
            }
        };
        self.on_scratch(frame, &mut rec, |w, pipeline, b, s, rec| {
            let meta = FrameMeta { gso: false };
            let verdict = match pipeline.decide(b, from, w.pool.get(s).frame(), meta, rec) {
                // Storm control, as `apply` and `decap_one` check it (the source's
                // allowance, peeked at: nothing is taken).
                Verdict::Flood { .. } if !w.cfg.floods.would_allow(from.into(), b.now) => {
                    Verdict::Drop(DropReason::FloodLimited)
                }
                v => v,
            };
            w.walk(pipeline, b, in_port, network, s, verdict, rec, 0);
        });
        rec.steps
    }

    /// Runs `f` on a scratch copy of `frame` inside a batch of its own, then gives every
    /// scratch buffer back.
    fn on_scratch(
        &mut self,
        frame: &[u8],
        rec: &mut Recorder,
        f: impl FnOnce(&mut Worker, &Pipeline, &Batch<'_>, u32, &mut Recorder),
    ) {
        let Some(s) = self.pool.scratch() else {
            return rec.step(|| Step::Drop(DropReason::NoBuffer));
        };
        self.pool.get_mut(s).set_frame(frame);
        let topo = self.cfg.topology.load_full();
        let pipeline = self.cfg.pipeline.clone();
        let b = pipeline.begin(self.now(), &topo);
        f(self, &pipeline, &b, s, rec);
        drop(b);
        self.pool.release_scratch();
    }

    /// Follows a verdict on buffer `i` to where it leaves. `in_port` is `None` for a
    /// frame from a peer.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        pipeline: &Pipeline,
        b: &Batch<'_>,
        in_port: Option<PortId>,
        network: Option<NetworkId>,
        i: u32,
        verdict: Verdict,
        rec: &mut Recorder,
        depth: usize,
    ) {
        match verdict {
            Verdict::Forward(p) => rec.step(|| Step::Egress(Exit::Port(p))),
            Verdict::Flood { network, vni } => {
                // Split horizon for a switched frame; a routed one (depth > 0) floods
                // to every port, as `dispatch` does.
                let skip = in_port.filter(|_| depth == 0);
                let ports = b
                    .topo
                    .networks
                    .get(&network)
                    .map(|n| n.ports.iter().copied().filter(|p| Some(*p) != skip))
                    .into_iter()
                    .flatten()
                    .collect();
                let peers = vni
                    .map(|v| b.topo.peers.flood_list(v).to_vec())
                    .unwrap_or_default();
                rec.step(|| Step::Flood {
                    network,
                    ports,
                    peers: peers.clone(),
                });
                if let Some(vni) = vni
                    && !peers.is_empty()
                {
                    self.walk_tunnel(b, network, in_port, i, vni, &peers, false, rec);
                }
            }
            // What a peer sent is never sent on to a peer (split horizon); a routed
            // frame (depth > 0) may be.
            Verdict::Encap { .. } if in_port.is_none() && depth == 0 => {
                rec.step(|| Step::Drop(DropReason::VtepToVtep));
            }
            Verdict::Encap { vni, vtep } => {
                let Some(net) = network else {
                    return rec.step(|| Step::Drop(DropReason::NoSuchPort));
                };
                self.walk_tunnel(b, net, in_port, i, vni, &[vtep], true, rec);
            }
            Verdict::ToRouter { network } => {
                let mut out = Vec::new();
                let mut env = RouterEnv {
                    cx: RouterCtx::of(b),
                    pool: &mut self.pool,
                    out: &mut out,
                    obs: rec,
                };
                self.router.from_network_with(&mut env, i, network, in_port);
                for o in out {
                    self.walk_router_out(pipeline, b, in_port, i, o, rec, depth);
                }
            }
            Verdict::Drop(r) => rec.step(|| Step::Drop(r)),
        }
    }

    /// Where a frame the router produced goes. ARP requests it would send to resolve a
    /// next hop are already in the trace (the neighbour step) and are not followed.
    #[allow(clippy::too_many_arguments)]
    fn walk_router_out(
        &mut self,
        pipeline: &Pipeline,
        b: &Batch<'_>,
        in_port: Option<PortId>,
        original: u32,
        o: Out,
        rec: &mut Recorder,
        depth: usize,
    ) {
        let is_new_arp = |w: &Worker, s: u32| {
            s != original && w.pool.get(s).frame().get(12..14) == Some(&[0x08, 0x06])
        };
        match o {
            Out::Port(p, s) => {
                let what = reply_kind(self.pool.get(s).frame());
                rec.step(|| Step::Reply { port: p, what });
            }
            Out::Uplink(s) if is_new_arp(self, s) => {}
            Out::Uplink(_) => rec.step(|| Step::Egress(Exit::Uplink)),
            Out::Network(_, s) if is_new_arp(self, s) => {}
            Out::Network(n, s) => {
                if depth >= MAX_DEPTH {
                    return;
                }
                let v = pipeline.routed_with(b, n, self.pool.get(s).frame(), rec);
                self.walk(pipeline, b, in_port, Some(n), s, v, rec, depth + 1);
            }
        }
    }

    /// Into VXLAN: the tunnel's size verdict, then the peers it would go to.
    #[allow(clippy::too_many_arguments)]
    fn walk_tunnel(
        &mut self,
        b: &Batch<'_>,
        network: NetworkId,
        in_port: Option<PortId>,
        i: u32,
        vni: vtep::Vni,
        peers: &[std::net::IpAddr],
        exclusive: bool,
        rec: &mut Recorder,
    ) {
        let (Some(ov), Some(info), true) = (
            b.topo.overlay.as_ref(),
            b.topo.networks.get(&network),
            self.tunnel.is_some(),
        ) else {
            return rec.step(|| Step::Drop(DropReason::NoUnderlay));
        };
        let len = self.pool.get(i).len();
        let target = Target {
            vni,
            peers,
            exclusive,
            mtu: info.mtu,
            gateway: info.gateway,
        };
        let mut txs = Vec::new();
        let outcome = egress::to_peers(&mut self.pool, i, &target, ov, b.topo.router_mac, &mut txs);
        let verdict = match outcome {
            Outcome::Queued => MtuVerdict::Fits,
            Outcome::Fragmented => MtuVerdict::Fragmented {
                pieces: txs.len() / peers.len().max(1),
            },
            Outcome::Reply(_) if in_port.is_some() => MtuVerdict::IcmpTooBig,
            Outcome::Reply(_) | Outcome::Drop(_) => MtuVerdict::Dropped,
        };
        rec.step(|| Step::Mtu {
            len,
            mtu: info.mtu,
            verdict,
        });
        match outcome {
            Outcome::Queued | Outcome::Fragmented => {
                for &ip in peers {
                    rec.step(|| Step::Egress(Exit::Vtep { ip, vni }));
                }
            }
            Outcome::Reply(s) => match in_port {
                Some(p) => {
                    let what = reply_kind(self.pool.get(s).frame());
                    rec.step(|| Step::Reply { port: p, what });
                }
                // Routed here from the uplink or a peer: no port to answer on.
                None => rec.step(|| Step::Drop(DropReason::TooBig)),
            },
            Outcome::Drop(r) => rec.step(|| Step::Drop(r)),
        }
    }
}

/// What a frame the switch answers with is.
fn reply_kind(frame: &[u8]) -> &'static str {
    match (frame.get(12..14), frame.get(23), frame.get(34)) {
        (Some([0x08, 0x06]), _, _) => "ARP reply",
        (Some([0x08, 0x00]), Some(1), Some(0)) => "ICMP echo reply",
        (Some([0x08, 0x00]), Some(1), Some(3)) => "ICMP fragmentation needed",
        (Some([0x08, 0x00]), Some(1), Some(11)) => "ICMP time exceeded",
        (Some([0x86, 0xdd]), _, _) => "ICMPv6 packet too big",
        _ => "frame",
    }
}
