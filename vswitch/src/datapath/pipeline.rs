//! The switching decision for one frame, without I/O: `(now, ingress, frame) -> Verdict`.
//!
//! Order of checks: the frame must be a well-formed, untagged Ethernet frame with a
//! unicast source; only then is the source learned (a dropped frame teaches nothing) —
//! behind the in-port, or behind the VTEP it was decapsulated from. The destination then
//! decides: group addresses and unknown unicast flood within the network (from a local
//! port of an overlay network also to every peer carrying its VNI, by head-end
//! replication; from a peer only to local ports: split horizon), a known MAC goes to its
//! port or is encapsulated to its VTEP. A frame never leaves its network: the FDB key
//! includes the network, and the flood list is the network's own.
//!
//! `process` runs with the no-op [`Live`] observer; `decide` is the same code watched by
//! any observer, which is how `vswitch trace` sees it decide without learning.
//!
//! Size: on a bridge network a non-GSO frame larger than the network's MTU is dropped
//! (as the Linux bridge does). On an overlay network it is let through here: what does not
//! fit the tunnel gets an ICMP error or is fragmented on its way into VXLAN (`overlay`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fdb::{Fdb, FdbPin, Location, MacAddr, NetworkId, PortId};
use vtep::Vni;

use super::counters::DropReason;
use super::observe::{Live, Observer, Step};
use super::topology::Topology;

pub const ETH_HLEN: usize = 14;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// A local port.
    Port(PortId),
    /// Decapsulated from a VXLAN datagram of this peer, for this network.
    Vtep { ip: IpAddr, network: NetworkId },
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it out of this one port.
    Forward(PortId),
    /// Send it out of every local port of the network except the in-port, and, when
    /// `vni` is set, encapsulated to every peer carrying that VNI.
    Flood {
        network: NetworkId,
        vni: Option<Vni>,
    },
    /// Encapsulate it to this peer.
    Encap {
        vni: Vni,
        vtep: IpAddr,
    },
    /// For the router: addressed to the router MAC, or an ARP request for the network's
    /// gateway from a local sender.
    ToRouter {
        network: NetworkId,
    },
    Drop(DropReason),
}

/// The pieces of a frame the pipeline looks at, parsed once.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// The frame is a GSO super-frame (its virtio_net_hdr has a GSO type): its length may
    /// exceed the MTU, each segment will not.
    pub gso: bool,
}

/// The switching logic, shared by every worker.
#[derive(Debug, Clone)]
pub struct Pipeline {
    fdb: Arc<Fdb>,
}

/// What stays the same for a whole batch: the time, the topology snapshot and an epoch
/// pin on the FDB (taken once per batch, not per frame).
#[derive(Debug)]
pub struct Batch<'a> {
    pub now: Duration,
    pub topo: &'a Topology,
    fdb: FdbPin<'a>,
}

impl Pipeline {
    pub fn new(fdb: Arc<Fdb>) -> Self {
        Pipeline { fdb }
    }

    pub fn fdb(&self) -> &Arc<Fdb> {
        &self.fdb
    }

    /// Starts a batch: everything `process` needs that does not change per frame.
    pub fn begin<'a>(&'a self, now: Duration, topo: &'a Topology) -> Batch<'a> {
        Batch {
            now,
            topo,
            fdb: self.fdb.pin(),
        }
    }

    #[inline]
    pub fn process(
        &self,
        b: &Batch<'_>,
        ingress: Ingress,
        frame: &[u8],
        meta: FrameMeta,
    ) -> Verdict {
        self.decide(b, ingress, frame, meta, &mut Live)
    }

    /// `process`, watched by `obs` (see `observe`): with a dry-run observer nothing is
    /// learned.
    pub fn decide<O: Observer>(
        &self,
        b: &Batch<'_>,
        ingress: Ingress,
        frame: &[u8],
        meta: FrameMeta,
        obs: &mut O,
    ) -> Verdict {
        let Some(eth) = frame.get(..ETH_HLEN) else {
            return Verdict::Drop(DropReason::Runt);
        };
        let ethertype = u16::from_be_bytes([eth[12], eth[13]]);
        if matches!(
            ethertype,
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
        ) {
            return Verdict::Drop(DropReason::VlanTagged);
        }
        let dst = MacAddr([eth[0], eth[1], eth[2], eth[3], eth[4], eth[5]]);
        let src = MacAddr([eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]]);
        if src.is_multicast() || src.is_zero() {
            return Verdict::Drop(DropReason::InvalidSource);
        }
        let (net, info, from) = match ingress {
            Ingress::Port(p) => match b.topo.network_of(p) {
                Some((net, info)) => (net, info, Location::Port(p)),
                None => return Verdict::Drop(DropReason::NoSuchPort),
            },
            Ingress::Vtep { ip, network } => match b.topo.networks.get(&network) {
                Some(info) => (network, info, Location::Vtep(ip)),
                None => return Verdict::Drop(DropReason::NoSuchPort),
            },
        };
        if let Ingress::Port(port) = ingress {
            obs.step(|| Step::Ingress { port, network: net });
        }
        let from_peer = matches!(ingress, Ingress::Vtep { .. });
        // Larger than the network's MTU, and to be switched: dropped here, as the ports
        // of the network would refuse it. Two cases are left to later stages: a frame
        // from a local port of an overlay network, which the tunnel fits (fragments, or
        // answers with "fragmentation needed"); and one for the router, which fits it to
        // where it routes it. From a peer (configured with a larger MTU than ours), a
        // frame to switch is dropped too.
        if (info.vni.is_none() || from_peer)
            && !meta.gso
            && frame.len() > info.mtu as usize + ETH_HLEN
            && dst != b.topo.router_mac
        {
            return Verdict::Drop(DropReason::OverMtu);
        }
        obs.step(|| Step::Learn {
            mac: src,
            at: from,
            before: b.fdb.lookup(net, src),
        });
        if !O::DRY_RUN {
            // Refused learns (table or location full) are counted by the FDB; the frame
            // goes on.
            b.fdb.learn(b.now, net, src, from);
        }

        if dst == b.topo.router_mac || (!from_peer && is_arp_request_for(frame, info.gateway)) {
            obs.step(|| Step::ToRouter { network: net });
            return Verdict::ToRouter { network: net };
        }

        let flood = Verdict::Flood {
            network: net,
            vni: if from_peer { None } else { info.vni },
        };
        if dst.is_multicast() {
            obs.step(|| Step::Multicast { mac: dst });
            return flood;
        }
        let found = b.fdb.lookup(net, dst);
        obs.step(|| match found {
            Some(at) => Step::FdbHit { mac: dst, at },
            None => Step::FdbMiss { mac: dst },
        });
        match found {
            Some(loc) if loc == from => Verdict::Drop(DropReason::SameSegment),
            Some(Location::Port(p)) => Verdict::Forward(p),
            // Split horizon: what a peer sent is never relayed to another peer.
            Some(Location::Vtep(_)) if from_peer => Verdict::Drop(DropReason::VtepToVtep),
            Some(Location::Vtep(vtep)) => match info.vni {
                Some(vni) => Verdict::Encap { vni, vtep },
                // A VTEP entry in a network without a VNI: nowhere to send it.
                None => Verdict::Drop(DropReason::NoSuchPort),
            },
            None => flood,
        }
    }
}

impl Pipeline {
    /// Where a frame the router sends into `network` goes (its source is the router MAC:
    /// nothing is learned): a known MAC's port or VTEP, else a flood of the network.
    #[inline]
    pub fn routed(&self, b: &Batch<'_>, network: NetworkId, frame: &[u8]) -> Verdict {
        self.routed_with(b, network, frame, &mut Live)
    }

    /// `routed`, watched by `obs`.
    pub fn routed_with<O: Observer>(
        &self,
        b: &Batch<'_>,
        network: NetworkId,
        frame: &[u8],
        obs: &mut O,
    ) -> Verdict {
        let Some(info) = b.topo.networks.get(&network) else {
            return Verdict::Drop(DropReason::NoSuchPort);
        };
        // A whole Ethernet header, as `process` requires: a shorter frame would go to
        // a peer as a VXLAN datagram without an inner frame.
        let Some(dst) = frame.get(..ETH_HLEN).and_then(MacAddr::from_slice) else {
            return Verdict::Drop(DropReason::Runt);
        };
        let flood = Verdict::Flood {
            network,
            vni: info.vni,
        };
        if dst.is_multicast() {
            obs.step(|| Step::Multicast { mac: dst });
            return flood;
        }
        let found = b.fdb.lookup(network, dst);
        obs.step(|| match found {
            Some(at) => Step::FdbHit { mac: dst, at },
            None => Step::FdbMiss { mac: dst },
        });
        match found {
            Some(Location::Port(p)) => Verdict::Forward(p),
            Some(Location::Vtep(vtep)) => match info.vni {
                Some(vni) => Verdict::Encap { vni, vtep },
                None => Verdict::Drop(DropReason::NoSuchPort),
            },
            None => flood,
        }
    }
}

/// An ARP request (Ethernet, IPv4) whose target address is `ip`.
fn is_arp_request_for(frame: &[u8], ip: std::net::Ipv4Addr) -> bool {
    frame.len() >= ETH_HLEN + 28
        && frame[12..14] == [0x08, 0x06]
        && frame[ETH_HLEN + 6..ETH_HLEN + 8] == [0, 1]
        && frame[ETH_HLEN + 24..ETH_HLEN + 28] == ip.octets()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::topology::{NetworkInfo, PortInfo};
    use fdb::FdbConfig;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const C: [u8; 6] = [2, 0, 0, 0, 0, 0xc];
    const BCAST: [u8; 6] = [0xff; 6];

    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// Network 1: ports 1, 2, 3. Network 2: ports 4, 5. Network 3 (overlay, VNI 42): 6, 7.
    fn topo() -> Topology {
        let mut t = Topology {
            router_mac: MacAddr([2, 0, 0, 0, 0, 0xfe]),
            ..Topology::default()
        };
        for (net, ports, vni) in [
            (1u16, vec![1u32, 2, 3], None),
            (2, vec![4, 5], None),
            (3, vec![6, 7], Vni::new(42)),
        ] {
            let ports: Vec<PortId> = ports.into_iter().map(PortId).collect();
            for p in &ports {
                t.ports.insert(
                    *p,
                    PortInfo {
                        network: NetworkId(net),
                        endpoint: p.to_string(),
                    },
                );
            }
            if let Some(v) = vni {
                t.vnis.insert(v, NetworkId(net));
            }
            let info = NetworkInfo {
                name: format!("n{net}"),
                mtu: 1500,
                ports,
                vni,
                gateway: "10.0.0.1".parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
                internal: false,
            };
            t.networks.insert(NetworkId(net), info);
        }
        t
    }

    const PLAIN: FrameMeta = FrameMeta { gso: false };
    const T: Duration = Duration::from_secs(1);
    const P: fn(u32) -> Ingress = |p| Ingress::Port(PortId(p));

    fn flood(net: u16, vni: Option<u32>) -> Verdict {
        Verdict::Flood {
            network: NetworkId(net),
            vni: vni.and_then(Vni::new),
        }
    }

    #[test]
    fn learns_then_forwards_and_floods_unknown_and_broadcast() {
        let p = Pipeline::new(Arc::new(Fdb::new(FdbConfig::default())));
        let t = topo();
        let b = p.begin(T, &t);
        assert_eq!(
            p.process(&b, P(1), &frame(B, A, 0x0800, 60), PLAIN),
            flood(1, None)
        );
        assert_eq!(
            p.process(&b, P(2), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Forward(PortId(1))
        );
        assert_eq!(
            p.process(&b, P(1), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Forward(PortId(2))
        );
        assert_eq!(
            p.process(&b, P(1), &frame(BCAST, A, 0x0806, 60), PLAIN),
            flood(1, None)
        );
        // B talks to A from the port A is on: not sent back out.
        assert_eq!(
            p.process(&b, P(1), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::SameSegment)
        );
    }

    #[test]
    fn networks_do_not_see_each_others_macs() {
        let p = Pipeline::new(Arc::new(Fdb::new(FdbConfig::default())));
        let t = topo();
        let b = p.begin(T, &t);
        p.process(&b, P(1), &frame(BCAST, A, 0x0806, 60), PLAIN);
        // A is known in network 1 only: from network 2 it is unknown, so it floods
        // network 2's ports, never reaching port 1.
        assert_eq!(
            p.process(&b, P(4), &frame(A, B, 0x0800, 60), PLAIN),
            flood(2, None)
        );
    }

    #[test]
    fn routed_drops_a_frame_shorter_than_an_ethernet_header() {
        let p = Pipeline::new(Arc::new(Fdb::new(FdbConfig::default())));
        let t = topo();
        let b = p.begin(T, &t);
        let f = frame(BCAST, A, 0x0800, 60);
        // Found by the pipeline fuzz target: 6 bytes passed for a frame and were flooded
        // to the overlay's peers.
        assert_eq!(
            p.routed(&b, NetworkId(3), &f[..13]),
            Verdict::Drop(DropReason::Runt)
        );
        assert_eq!(p.routed(&b, NetworkId(3), &f[..14]), flood(3, Some(42)));
    }

    #[test]
    fn malformed_frames_are_dropped_with_a_reason_and_teach_nothing() {
        let fdb = Arc::new(Fdb::new(FdbConfig::default()));
        let p = Pipeline::new(fdb.clone());
        let t = topo();
        let b = p.begin(T, &t);
        assert_eq!(
            p.process(&b, P(1), &[0u8; 13], PLAIN),
            Verdict::Drop(DropReason::Runt)
        );
        assert_eq!(
            p.process(&b, P(1), &frame(B, A, 0x8100, 60), PLAIN),
            Verdict::Drop(DropReason::VlanTagged)
        );
        assert_eq!(
            p.process(&b, P(1), &frame(B, BCAST, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::InvalidSource)
        );
        assert_eq!(
            p.process(&b, P(1), &frame(B, [0; 6], 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::InvalidSource)
        );
        assert_eq!(
            p.process(&b, P(1), &frame(B, A, 0x0800, 1515), PLAIN),
            Verdict::Drop(DropReason::OverMtu)
        );
        assert_eq!(
            p.process(&b, P(9), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::NoSuchPort)
        );
        assert_eq!(fdb.len(), 0);
        // A super-frame may be longer than the MTU.
        assert_eq!(
            p.process(
                &b,
                P(1),
                &frame(B, A, 0x0800, 65000),
                FrameMeta { gso: true }
            ),
            flood(1, None)
        );
    }

    #[test]
    fn overlay_floods_to_peers_from_local_ports_only_and_encapsulates_to_learned_vteps() {
        let fdb = Arc::new(Fdb::new(FdbConfig::default()));
        let p = Pipeline::new(fdb.clone());
        let t = topo();
        let b = p.begin(T, &t);
        let (v1, v2): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let from = |ip| Ingress::Vtep {
            ip,
            network: NetworkId(3),
        };
        // Local broadcast goes to local ports and peers; a peer's broadcast only locally.
        assert_eq!(
            p.process(&b, P(6), &frame(BCAST, A, 0x0806, 60), PLAIN),
            flood(3, Some(42))
        );
        assert_eq!(
            p.process(&b, from(v1), &frame(BCAST, B, 0x0806, 60), PLAIN),
            flood(3, None)
        );
        // B was learned behind v1: unicast to it is encapsulated to v1.
        assert_eq!(
            fdb.lookup(NetworkId(3), MacAddr(B)),
            Some(Location::Vtep(v1))
        );
        assert_eq!(
            p.process(&b, P(6), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Encap {
                vni: Vni::new(42).unwrap(),
                vtep: v1
            }
        );
        // From a peer to a local MAC: forwarded; to a MAC behind another peer: never relayed.
        assert_eq!(
            p.process(&b, from(v1), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Forward(PortId(6))
        );
        p.process(&b, from(v2), &frame(BCAST, C, 0x0806, 60), PLAIN);
        assert_eq!(
            p.process(&b, from(v1), &frame(C, B, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::VtepToVtep)
        );
        // A MAC that moves from v1 to v2 is followed.
        p.process(&b, from(v2), &frame(BCAST, B, 0x0806, 60), PLAIN);
        assert_eq!(
            fdb.lookup(NetworkId(3), MacAddr(B)),
            Some(Location::Vtep(v2))
        );
        // Overlay frames larger than the MTU are left to the tunnel egress; from a peer
        // (configured with a larger MTU) no port would take them.
        assert_eq!(
            p.process(&b, P(6), &frame(B, A, 0x0800, 1600), PLAIN),
            Verdict::Encap {
                vni: Vni::new(42).unwrap(),
                vtep: v2
            }
        );
        assert_eq!(
            p.process(&b, from(v2), &frame(A, B, 0x0800, 1515), PLAIN),
            Verdict::Drop(DropReason::OverMtu)
        );
        assert_eq!(
            p.process(&b, from(v2), &frame(A, B, 0x0800, 1514), PLAIN),
            Verdict::Forward(PortId(6))
        );
        // For the router, which fits it to where it routes it.
        assert_eq!(
            p.process(&b, from(v2), &frame(t.router_mac.0, B, 0x0800, 1600), PLAIN),
            Verdict::ToRouter {
                network: NetworkId(3)
            }
        );
    }

    #[test]
    fn a_traced_frame_gets_the_live_verdict_and_teaches_nothing() {
        use crate::datapath::observe::Recorder;
        let fdb = Arc::new(Fdb::new(FdbConfig::default()));
        let p = Pipeline::new(fdb.clone());
        let t = topo();
        let b = p.begin(T, &t);
        p.process(&b, P(2), &frame(BCAST, B, 0x0806, 60), PLAIN);
        let mut rec = Recorder::default();
        let v = p.decide(&b, P(1), &frame(B, A, 0x0800, 60), PLAIN, &mut rec);
        assert_eq!(v, Verdict::Forward(PortId(2)));
        assert_eq!(
            fdb.lookup(NetworkId(1), MacAddr(A)),
            None,
            "the trace learned"
        );
        assert_eq!(
            rec.steps,
            vec![
                Step::Ingress {
                    port: PortId(1),
                    network: NetworkId(1)
                },
                Step::Learn {
                    mac: MacAddr(A),
                    at: Location::Port(PortId(1)),
                    before: None
                },
                Step::FdbHit {
                    mac: MacAddr(B),
                    at: Location::Port(PortId(2))
                },
            ]
        );
        // The same frame for real: same verdict, and A is learned.
        assert_eq!(p.process(&b, P(1), &frame(B, A, 0x0800, 60), PLAIN), v);
        assert!(fdb.lookup(NetworkId(1), MacAddr(A)).is_some());
    }

    #[test]
    fn static_entries_win_over_learning() {
        let fdb = Arc::new(Fdb::new(FdbConfig::default()));
        let p = Pipeline::new(fdb.clone());
        let t = topo();
        let v1: IpAddr = "192.0.2.1".parse().unwrap();
        fdb.add_static(NetworkId(3), MacAddr(B), Location::Vtep(v1));
        let b = p.begin(T, &t);
        p.process(&b, P(7), &frame(BCAST, B, 0x0806, 60), PLAIN);
        assert_eq!(
            fdb.lookup(NetworkId(3), MacAddr(B)),
            Some(Location::Vtep(v1))
        );
    }
}
