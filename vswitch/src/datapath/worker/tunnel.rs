//! The worker's tunnel side: frames into VXLAN (through `egress`), and datagrams out of
//! it: decapsulated, switched, and coalesced into super-frames for local ports.

use fdb::{NetworkId, PortId};

use super::super::capture::{CaptureHub, Datagram, Direction};
use super::super::counters::{DropReason, PortCounters};
use super::super::egress::{self, Outcome, Target};
use super::super::offload::{Fate, VnetHdr};
use super::super::pipeline::{Batch, FrameMeta, Ingress, Pipeline, Verdict};
use super::super::topology::Topology;
use super::super::tunnel::{RxMeta, Transmit, TunnelCounters};
use super::{Worker, enqueue};
use crate::packet::PacketBuf;
use std::net::SocketAddr;

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_to_tunnel(
        &mut self,
        topo: &Topology,
        network: NetworkId,
        in_port: Option<PortId>,
        i: u32,
        vni: vtep::Vni,
        peers: &[std::net::IpAddr],
        exclusive: bool,
        counters: &PortCounters,
    ) {
        let (Some(ov), Some(info), true) = (
            topo.overlay.as_ref(),
            topo.networks.get(&network),
            self.tunnel.is_some(),
        ) else {
            return counters.count_drop(DropReason::NoUnderlay);
        };
        let target = Target {
            vni,
            peers,
            exclusive,
            mtu: info.mtu,
            gateway: info.gateway,
        };
        match egress::to_peers(
            &mut self.pool,
            i,
            &target,
            ov,
            topo.router_mac,
            &mut self.txs,
        ) {
            Outcome::Queued => {}
            Outcome::Fragmented => {
                if let Some(t) = &self.tunnel {
                    t.counters.fragmented.add(1);
                }
            }
            Outcome::Reply(s) => {
                counters.count_drop(DropReason::TooBigIcmpSent);
                if let Some(t) = &self.tunnel {
                    t.counters.icmp_too_big_sent.add(1);
                }
                if let Some(p) = in_port {
                    enqueue(&mut self.ports, &mut self.dirty, p, s);
                }
            }
            Outcome::Drop(reason) => counters.count_drop(reason),
        }
    }

    /// Reads one batch of VXLAN datagrams, decapsulates, decides, and flushes.
    pub(super) fn service_tunnel(&mut self) {
        let Some(t) = self.tunnel.as_mut() else {
            return;
        };
        let counters = t.counters.clone();
        let received = t.tunnel.recv_batch(self.pool.rx(), &mut self.rx_meta);
        counters.rx_truncated.add(t.tunnel.take_rx_truncated());
        let n = match received {
            Ok(n) => {
                self.cfg.counters.received.add(n as u64);
                n
            }
            Err(e) => {
                tracing::debug!("{e}");
                return;
            }
        };
        if n == 0 {
            return;
        }
        let topo = self.cfg.topology.load_full();
        if self.cfg.capture.is_active() {
            capture_rx(
                &self.cfg.capture,
                &topo,
                &self.pool.all()[..n],
                &self.rx_meta[..n],
            );
        }
        let pipeline = self.cfg.pipeline.clone();
        let batch = pipeline.begin(self.now(), &topo);
        for i in 0..n {
            let meta = self.rx_meta[i];
            let len = self.pool.get(i as u32).len();
            let seg = meta.segment_size.map_or(len, usize::from).max(1);
            let single = seg >= len;
            let peer = self.peer_counters(&counters, meta.src.ip().to_canonical());
            peer.rx_datagrams.add(len.div_ceil(seg) as u64);
            peer.rx_bytes.add(len as u64);
            let mut off = 0;
            while off < len {
                // A GRO read holds many datagrams, each needing a buffer of its own once
                // decapsulated: send what is queued when the scratch runs low.
                if !single && self.pool.scratch_left() == 0 {
                    self.flush();
                }
                let end = (off + seg).min(len);
                counters.rx_datagrams.add(1);
                counters.rx_bytes.add((end - off) as u64);
                self.decap_one(
                    &pipeline,
                    &batch,
                    &counters,
                    i as u32,
                    off..end,
                    meta.src.ip(),
                    single,
                );
                off = end;
            }
        }
        drop(batch);
        while let Some(slot) = self.gro.flush() {
            self.send_coalesced(slot);
        }
        self.flush();
    }

    /// Queues a finished super-frame of the coalescer on its port: its buffer is swapped
    /// with a scratch buffer of the pool (same size), so nothing is copied.
    pub(super) fn send_coalesced(&mut self, slot: usize) {
        let Some(port) = self.gro_port.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if self.pool.scratch_left() == 0 {
            self.flush();
        }
        let Some(s) = self.pool.scratch() else {
            return;
        };
        std::mem::swap(&mut self.gro.slots_mut()[slot], self.pool.get_mut(s));
        enqueue(&mut self.ports, &mut self.dirty, port, s);
    }

    /// One VXLAN datagram at `range` of buffer `i`: check, decapsulate, switch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decap_one(
        &mut self,
        pipeline: &Pipeline,
        b: &Batch<'_>,
        counters: &TunnelCounters,
        i: u32,
        range: std::ops::Range<usize>,
        src: std::net::IpAddr,
        single: bool,
    ) {
        let topo = b.topo;
        let datagram = &self.pool.get(i).frame()[range.clone()];
        let knows = |v: vtep::Vni| topo.vnis.contains_key(&v);
        let d = match vtep::decapsulate(datagram, src.to_canonical(), &knows, &topo.peers) {
            Ok(d) => d,
            Err(e) => return counters.decap_drop(e),
        };
        let Some(&network) = topo.vnis.get(&d.vni) else {
            return counters.decap_drop(vtep::DecapError::UnknownVni);
        };
        let inner = &datagram[d.inner.clone()];
        let ingress = Ingress::Vtep {
            ip: src.to_canonical(),
            network,
        };
        let verdict = pipeline.process(b, ingress, inner, FrameMeta { gso: false });
        if let Verdict::Forward(port) = verdict {
            // Segments of one flow to one port become one super-frame. The datagrams of
            // a GRO read passed the kernel's UDP checksum check, which covers the inner
            // frame: the coalescer need not sum them again.
            let push = if single {
                self.gro.push(inner)
            } else {
                self.gro.push_trusted(inner)
            };
            if let Some(slot) = push.ready {
                self.send_coalesced(slot);
            }
            match push.frame {
                Fate::Held(slot) => {
                    if let Some(p) = self.gro_port.get_mut(slot) {
                        *p = Some(port);
                    }
                    return;
                }
                Fate::Pass(_) => {}
            }
        }
        let out = match verdict {
            Verdict::Forward(_) | Verdict::Flood { .. } | Verdict::ToRouter { .. } => {
                // The inner frame must stand alone in a buffer: in place when the datagram
                // had the buffer to itself, else a copy.
                if single {
                    let buf = self.pool.get_mut(i);
                    buf.pull_front(range.start + d.inner.start);
                    buf.truncate(d.inner.len());
                    buf.vnet = inner_vnet(buf.frame());
                    i
                } else {
                    let Some(s) = self.pool.scratch() else {
                        return counters.rx_no_buffer.add(1);
                    };
                    let (src_buf, dst) = self.pool.pair(i, s);
                    let at = range.start + d.inner.start;
                    dst.set_frame(&src_buf.frame()[at..at + d.inner.len()]);
                    dst.vnet = inner_vnet(dst.frame());
                    s
                }
            }
            Verdict::Drop(reason) => return counters.inner_drop(reason),
            // The pipeline never sends what a peer sent on to a peer (split horizon).
            Verdict::Encap { .. } => return counters.inner_drop(DropReason::VtepToVtep),
        };
        match verdict {
            Verdict::Forward(p) => {
                enqueue(&mut self.ports, &mut self.dirty, p, out);
            }
            Verdict::Flood { network, .. } => self.flood_local(topo, network, None, out),
            Verdict::ToRouter { network } => {
                let spare = self.spare_counters.clone();
                self.route(b, out, network, None, &spare);
            }
            _ => {}
        }
    }
}

/// Offers received VXLAN datagrams (each buffer may hold several, GRO) to the captures.
fn capture_rx(hub: &CaptureHub, topo: &Topology, bufs: &[PacketBuf], meta: &[RxMeta]) {
    let Some(ov) = &topo.overlay else {
        return;
    };
    let local = SocketAddr::new(ov.local, ov.vxlan_port);
    let datagrams = bufs.iter().zip(meta).flat_map(|(b, m)| {
        let seg = m.segment_size.map_or(b.len(), usize::from).max(1);
        b.frame().chunks(seg).map(move |payload| Datagram {
            local,
            remote: m.src,
            payload,
        })
    });
    hub.tunnel_datagrams(Direction::Rx, datagrams);
}

/// Offers the VXLAN datagrams about to be sent (a GSO send carries several) to the
/// captures; the source port is the one the underlay picks from the flow hash.
pub(super) fn capture_tx(hub: &CaptureHub, topo: &Topology, pool: &[PacketBuf], txs: &[Transmit]) {
    let Some(ov) = &topo.overlay else {
        return;
    };
    let datagrams = txs.iter().flat_map(|tx| {
        let payload = tx.payload(pool);
        let seg = tx.segment_size.map_or(payload.len(), usize::from).max(1);
        let local = SocketAddr::new(ov.local, vtep::source_port(tx.flow_hash, ov.src_ports));
        let remote = SocketAddr::new(tx.dst, ov.vxlan_port);
        payload.chunks(seg).map(move |payload| Datagram {
            local,
            remote,
            payload,
        })
    });
    hub.tunnel_datagrams(Direction::Tx, datagrams);
}

/// The virtio_net_hdr for a decapsulated frame: none, unless its sender left the inner
/// checksum for a device to finish and no device did (see `offload::partial_checksum`).
fn inner_vnet(frame: &[u8]) -> [u8; crate::packet::VNET_HDR_LEN] {
    super::super::offload::partial_checksum(frame)
        .unwrap_or(VnetHdr::NONE)
        .to_bytes()
}
