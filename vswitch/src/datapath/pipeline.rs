//! The switching decision for one frame, without I/O: `(now, in_port, frame) -> Verdict`.
//!
//! Order of checks: the frame must be a well-formed, untagged Ethernet frame with a
//! unicast source that fits its network's MTU; only then is the source learned (a
//! dropped frame teaches nothing). The destination then decides: group addresses and
//! unknown unicast flood within the in-port's network, a known MAC goes to its port.
//! A frame never leaves its network: the FDB key includes the network, and the flood list
//! is the network's own.

use std::sync::Arc;
use std::time::Duration;

use fdb::{Fdb, FdbPin, Location, MacAddr, NetworkId, PortId};

use super::counters::DropReason;
use super::topology::Topology;

pub const ETH_HLEN: usize = 14;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it out of this one port.
    Forward(PortId),
    /// Send it out of every port of the network except the in-port.
    Flood(NetworkId),
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

    pub fn process(
        &self,
        b: &Batch<'_>,
        in_port: PortId,
        frame: &[u8],
        meta: FrameMeta,
    ) -> Verdict {
        let (now, topo) = (b.now, b.topo);
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
        let Some((net, info)) = topo.network_of(in_port) else {
            return Verdict::Drop(DropReason::NoSuchPort);
        };
        if !meta.gso && frame.len() > info.mtu as usize + ETH_HLEN {
            return Verdict::Drop(DropReason::OverMtu);
        }
        // Refused learns (table or port full) are counted by the FDB; the frame still goes.
        b.fdb.learn(now, net, src, Location::Port(in_port));

        if dst.is_multicast() {
            return Verdict::Flood(net);
        }
        match b.fdb.lookup(net, dst) {
            Some(Location::Port(p)) if p == in_port => Verdict::Drop(DropReason::SameSegment),
            Some(Location::Port(p)) => Verdict::Forward(p),
            // Remote locations belong to overlay networks, which this pipeline does not
            // carry yet: flood locally as for an unknown MAC.
            Some(Location::Vtep(_)) | None => Verdict::Flood(net),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::topology::{NetworkInfo, PortInfo};
    use fdb::FdbConfig;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const BCAST: [u8; 6] = [0xff; 6];

    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// Network 1: ports 1, 2, 3. Network 2: ports 4, 5.
    fn topo() -> Topology {
        let mut t = Topology::default();
        for (net, ports) in [(1u16, vec![1u32, 2, 3]), (2, vec![4, 5])] {
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
            t.networks.insert(
                NetworkId(net),
                NetworkInfo {
                    name: format!("n{net}"),
                    mtu: 1500,
                    ports,
                },
            );
        }
        t
    }

    const PLAIN: FrameMeta = FrameMeta { gso: false };
    const T: Duration = Duration::from_secs(1);

    #[test]
    fn learns_then_forwards_and_floods_unknown_and_broadcast() {
        let p = Pipeline::new(Arc::new(Fdb::new(FdbConfig::default())));
        let t = topo();
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(1), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Flood(NetworkId(1))
        );
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(2), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Forward(PortId(1))
        );
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(1), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Forward(PortId(2))
        );
        assert_eq!(
            p.process(
                &p.begin(T, &t),
                PortId(1),
                &frame(BCAST, A, 0x0806, 60),
                PLAIN
            ),
            Verdict::Flood(NetworkId(1))
        );
        // B talks to A from the port A is on: not sent back out.
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(1), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::SameSegment)
        );
    }

    #[test]
    fn networks_do_not_see_each_others_macs() {
        let p = Pipeline::new(Arc::new(Fdb::new(FdbConfig::default())));
        let t = topo();
        p.process(
            &p.begin(T, &t),
            PortId(1),
            &frame(BCAST, A, 0x0806, 60),
            PLAIN,
        );
        // A is known in network 1 only: from network 2 it is unknown, so it floods
        // network 2's ports, never reaching port 1.
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(4), &frame(A, B, 0x0800, 60), PLAIN),
            Verdict::Flood(NetworkId(2))
        );
    }

    #[test]
    fn malformed_frames_are_dropped_with_a_reason_and_teach_nothing() {
        let fdb = Arc::new(Fdb::new(FdbConfig::default()));
        let p = Pipeline::new(fdb.clone());
        let t = topo();
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(1), &[0u8; 13], PLAIN),
            Verdict::Drop(DropReason::Runt)
        );
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(1), &frame(B, A, 0x8100, 60), PLAIN),
            Verdict::Drop(DropReason::VlanTagged)
        );
        assert_eq!(
            p.process(
                &p.begin(T, &t),
                PortId(1),
                &frame(B, BCAST, 0x0800, 60),
                PLAIN
            ),
            Verdict::Drop(DropReason::InvalidSource)
        );
        assert_eq!(
            p.process(
                &p.begin(T, &t),
                PortId(1),
                &frame(B, A, 0x0800, 1515),
                PLAIN
            ),
            Verdict::Drop(DropReason::OverMtu)
        );
        assert_eq!(
            p.process(&p.begin(T, &t), PortId(9), &frame(B, A, 0x0800, 60), PLAIN),
            Verdict::Drop(DropReason::NoSuchPort)
        );
        assert_eq!(fdb.len(), 0);
        // A super-frame may be longer than the MTU.
        assert_eq!(
            p.process(
                &p.begin(T, &t),
                PortId(1),
                &frame(B, A, 0x0800, 65000),
                FrameMeta { gso: true }
            ),
            Verdict::Flood(NetworkId(1))
        );
    }
}
