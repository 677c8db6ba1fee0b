//! The tunnel side of a pipeline run: what `egress::to_peers` queues for the peers, checked
//! datagram by datagram.

use std::net::IpAddr;

use fdb::NetworkId;
use vswitch::datapath::egress::{self, Outcome, Target};
use vswitch::datapath::pipeline::Verdict;
use vswitch::datapath::pool::Pool;
use vtep::{PeerLookup, Vni};

use super::{ROUTER_MAC, Switch, from_mac};

impl Switch<'_> {
    /// The tunnel side of a verdict: encapsulation to one peer or a flood to all.
    pub(super) fn tunnel_side(&mut self, pool: &mut Pool, i: u32, net: NetworkId, v: Verdict) {
        let (vni, peers, exclusive): (Vni, Vec<IpAddr>, bool) = match v {
            Verdict::Encap { vni, vtep } => (vni, vec![vtep], true),
            Verdict::Flood { vni: Some(vni), .. } => {
                (vni, self.topo.peers.flood_list(vni).to_vec(), false)
            }
            _ => return,
        };
        let (Some(ov), Some(info)) = (self.topo.overlay.as_ref(), self.topo.networks.get(&net))
        else {
            return;
        };
        let target = Target {
            vni,
            peers: &peers,
            exclusive,
            mtu: info.mtu,
            gateway: info.gateway,
        };
        self.txs.clear();
        let outcome = egress::to_peers(pool, i, &target, ov, ROUTER_MAC, &mut self.txs);
        let max_inner = info.mtu as usize + 14;
        for tx in &self.txs {
            assert!(
                peers.contains(&tx.dst),
                "sent to {} which is no target",
                tx.dst
            );
            let frame = pool.get(tx.buf).frame();
            let bytes = match &tx.range {
                Some(r) => {
                    assert!(
                        r.start <= r.end && r.end <= frame.len(),
                        "transmit past its buffer"
                    );
                    &frame[r.clone()]
                }
                None => frame,
            };
            let seg = tx.segment_size.map_or(bytes.len(), usize::from);
            assert!(seg > 0, "a zero segment size");
            for d in bytes.chunks(seg) {
                assert!(d.len() >= 8 + 14, "a datagram without an inner frame");
                let want = vni.get().to_be_bytes();
                assert_eq!(
                    &d[..8],
                    &[8, 0, 0, 0, want[1], want[2], want[3], 0],
                    "VXLAN header"
                );
                // Whole frames, segments of a super-frame and fragments all fit the
                // tunnel (the MTU plus an untagged Ethernet header, VLAN tags included):
                // one larger would exceed the underlay's MTU.
                let inner = d.len() - 8;
                assert!(
                    inner <= max_inner,
                    "a {inner}-byte inner frame for MTU {}",
                    info.mtu
                );
            }
        }
        if let Outcome::Reply(s) = outcome {
            from_mac(pool, s, ROUTER_MAC);
        }
    }
}
