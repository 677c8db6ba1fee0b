//! The worker's tunnel side: frames into VXLAN (through `egress`), and datagrams out of
//! it: decapsulated, switched, and coalesced into super-frames for local ports.

use fdb::{NetworkId, PortId};

use super::super::capture::{CaptureHub, Datagram, Direction};
use super::super::counters::{DropReason, PortCounters};
use super::super::egress::{self, Outcome, Target};
use super::super::flood_limit::FloodSource;
use super::super::offload::{Fate, decapsulated_vnet};
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
        self.sync_peers(topo);
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
            Outcome::Reply(s) => match in_port {
                Some(p) => {
                    counters.count_drop(DropReason::TooBigIcmpSent);
                    if let Some(t) = &self.tunnel {
                        t.counters.icmp_too_big_sent.add(1);
                    }
                    enqueue(&mut self.ports, &mut self.dirty, p, s);
                }
                // Routed here from the uplink or a peer: no port to answer on.
                None => counters.count_drop(DropReason::TooBig),
            },
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
        self.sync_peers(&topo);
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
            if let Some(peer) = self.peers.get(meta.src.ip().to_canonical()) {
                peer.rx_datagrams.add(len.div_ceil(seg) as u64);
                peer.rx_bytes.add(len as u64);
            }
            let mut known = KnownHead::default();
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
                let at = Received {
                    i: i as u32,
                    range: off..end,
                    src: meta.src.ip(),
                    single,
                };
                self.decap_one(&pipeline, &batch, &counters, at, &mut known);
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

    /// One VXLAN datagram: check, decapsulate, switch. `known` carries the verdict of
    /// the previous datagram of the same read, which this one shares if its VXLAN and
    /// inner Ethernet headers are the same bytes.
    fn decap_one(
        &mut self,
        pipeline: &Pipeline,
        b: &Batch<'_>,
        counters: &TunnelCounters,
        at: Received,
        known: &mut KnownHead,
    ) {
        let Received {
            i,
            range,
            src,
            single,
        } = at;
        let topo = b.topo;
        let datagram = &self.pool.get(i).frame()[range.clone()];
        let (d, verdict) = match known.verdict_for(datagram) {
            Some(hit) => hit,
            None => {
                let knows = |v: vtep::Vni| topo.vnis.contains_key(&v);
                let d = match vtep::decapsulate(datagram, src.to_canonical(), &knows, &topo.peers) {
                    Ok(d) => d,
                    Err(e) => return counters.decap_drop(e),
                };
                let Some(&network) = topo.vnis.get(&d.vni) else {
                    return counters.decap_drop(vtep::DecapError::UnknownVni);
                };
                let ingress = Ingress::Vtep {
                    ip: src.to_canonical(),
                    network,
                };
                let inner = &datagram[d.inner.clone()];
                let verdict = pipeline.process(b, ingress, inner, FrameMeta { gso: false });
                known.remember(datagram, &d, &verdict);
                (d, verdict)
            }
        };
        let inner = &datagram[d.inner.clone()];
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
        if matches!(verdict, Verdict::Flood { .. })
            && !self
                .cfg
                .floods
                .allow(FloodSource::Peer(src.to_canonical()), b.now)
        {
            return counters.inner_drop(DropReason::FloodLimited);
        }
        let out = match verdict {
            Verdict::Forward(_) | Verdict::Flood { .. } | Verdict::ToRouter { .. } => {
                // The inner frame must stand alone in a buffer: in place when the datagram
                // had the buffer to itself, else a copy.
                if single {
                    let buf = self.pool.get_mut(i);
                    buf.pull_front(range.start + d.inner.start);
                    buf.truncate(d.inner.len());
                    buf.vnet = decapsulated_vnet(buf.frame());
                    i
                } else {
                    let Some(s) = self.pool.scratch() else {
                        return counters.rx_no_buffer.add(1);
                    };
                    let (src_buf, dst) = self.pool.pair(i, s);
                    let at = range.start + d.inner.start;
                    dst.set_frame(&src_buf.frame()[at..at + d.inner.len()]);
                    dst.vnet = decapsulated_vnet(dst.frame());
                    s
                }
            }
            Verdict::Drop(reason) => {
                if reason == DropReason::OverMtu {
                    self.peer_over_mtu(topo, src.to_canonical(), d.vni, d.inner.len());
                }
                return counters.inner_drop(reason);
            }
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

impl Worker {
    /// A peer sent a frame larger than the network's MTU: its overlay MTU is larger than
    /// ours. Said once per peer and VNI (per worker): the counter alone would leave the
    /// operator to guess which host is configured differently.
    #[cold]
    fn peer_over_mtu(
        &mut self,
        topo: &Topology,
        peer: std::net::IpAddr,
        vni: vtep::Vni,
        len: usize,
    ) {
        if !self.peers.first_over_mtu(peer, vni) {
            return;
        }
        let Some(info) = topo.vnis.get(&vni).and_then(|n| topo.networks.get(n)) else {
            return;
        };
        tracing::warn!(
            "peer {peer} sent a {}-byte packet in network {} (VNI {vni}), over its MTU {}: \
             dropped (counted as over_mtu); give every host of the network the same MTU",
            len.saturating_sub(crate::datapath::pipeline::ETH_HLEN),
            info.name,
            info.mtu
        );
    }
}

/// Where one VXLAN datagram lies: `range` of pool buffer `i`, from `src`; `single` when
/// it has the buffer to itself.
struct Received {
    i: u32,
    range: std::ops::Range<usize>,
    src: std::net::IpAddr,
    single: bool,
}

/// The VXLAN header and inner Ethernet header of the last datagram of a GRO read that
/// was forwarded to one port, with that verdict. The datagrams of one read come from one
/// peer and are mostly segments of one flow: one with the same 22 header bytes would be
/// decapsulated and switched the same way (same VNI, flags and reserved bits, the same
/// MACs and ethertype within the same batch), so it skips both, if it is no longer (the
/// pipeline's MTU check passed for that length). Only a plain forward is remembered:
/// floods, the router and drops take the full path every time.
#[derive(Default)]
struct KnownHead {
    head: Option<Known>,
}

struct Known {
    bytes: [u8; KNOWN_HEAD_LEN],
    vni: vtep::Vni,
    port: PortId,
    /// The length of the datagram whose verdict this is.
    len: usize,
}

const KNOWN_HEAD_LEN: usize = vtep::VXLAN_HLEN + super::super::pipeline::ETH_HLEN;

impl KnownHead {
    fn verdict_for(&self, datagram: &[u8]) -> Option<(vtep::Decapsulated, Verdict)> {
        let k = self.head.as_ref()?;
        (datagram.len() <= k.len && datagram.get(..KNOWN_HEAD_LEN)? == k.bytes).then(|| {
            let d = vtep::Decapsulated {
                vni: k.vni,
                inner: vtep::VXLAN_HLEN..datagram.len(),
            };
            (d, Verdict::Forward(k.port))
        })
    }

    fn remember(&mut self, datagram: &[u8], d: &vtep::Decapsulated, verdict: &Verdict) {
        self.head = match (verdict, datagram.get(..KNOWN_HEAD_LEN)) {
            (Verdict::Forward(port), Some(head)) if d.inner.start == vtep::VXLAN_HLEN => {
                let mut bytes = [0; KNOWN_HEAD_LEN];
                bytes.copy_from_slice(head);
                Some(Known {
                    bytes,
                    vni: d.vni,
                    port: *port,
                    len: datagram.len(),
                })
            }
            _ => None,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(vni: u8, dst_mac_last: u8, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0] = 0x08;
        d[6] = vni;
        d[8..14].copy_from_slice(&[2, 0, 0, 0, 0, dst_mac_last]);
        d[14..20].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        d[20..22].copy_from_slice(&[0x08, 0x00]);
        d
    }

    fn decapsulated(vni: u8, len: usize) -> vtep::Decapsulated {
        vtep::Decapsulated {
            vni: vtep::Vni::new(u32::from(vni)).unwrap(),
            inner: vtep::VXLAN_HLEN..len,
        }
    }

    #[test]
    fn known_head_reuses_only_a_forward_with_the_same_header_bytes() {
        let mut known = KnownHead::default();
        let first = datagram(42, 9, 1450);
        assert!(
            known.verdict_for(&first).is_none(),
            "nothing remembered yet"
        );
        known.remember(
            &first,
            &decapsulated(42, 1450),
            &Verdict::Forward(PortId(3)),
        );

        // A shorter segment of the same flow: same verdict, inner frame to its own end.
        let (d, v) = known.verdict_for(&datagram(42, 9, 300)).unwrap();
        assert_eq!(v, Verdict::Forward(PortId(3)));
        assert_eq!(d.inner, vtep::VXLAN_HLEN..300);
        assert_eq!(d.vni, vtep::Vni::new(42).unwrap());

        // Another VNI, another destination MAC, too short for both headers, or longer
        // than the one remembered (it may be over the MTU): full path.
        assert!(known.verdict_for(&datagram(43, 9, 1450)).is_none());
        assert!(known.verdict_for(&datagram(42, 9, 1451)).is_none());
        assert!(known.verdict_for(&datagram(42, 8, 1450)).is_none());
        assert!(known.verdict_for(&first[..KNOWN_HEAD_LEN - 1]).is_none());

        // A flood, a drop or the router is never remembered, and forgets the last forward.
        let flood = Verdict::Flood {
            network: NetworkId(1),
            vni: None,
        };
        known.remember(&first, &decapsulated(42, 1450), &flood);
        assert!(known.verdict_for(&first).is_none());
        known.remember(
            &first,
            &decapsulated(42, 1450),
            &Verdict::Forward(PortId(3)),
        );
        known.remember(
            &first,
            &decapsulated(42, 1450),
            &Verdict::Drop(DropReason::InvalidSource),
        );
        assert!(known.verdict_for(&first).is_none());
    }
}
