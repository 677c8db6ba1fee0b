//! A worker's handles on the per-peer counters: one for each configured peer, kept in
//! step with the topology's peer table (matched whenever the worker receives from or
//! sends to the underlay, and every 100 ms). Only configured peers get counters (a
//! datagram from any other address is dropped and counted as `vxlan_not_a_peer`), so
//! what an underlay neighbour sends cannot grow these maps; a removed peer's counters,
//! its storm-control allowance and what was reported about it (frames over the MTU) go
//! with it, and a peer added again counts from zero.
//! (A worker that never saw the snapshot without it, when it is removed and added back
//! within 100 ms, keeps its old counts.)

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::datapath::flood_limit::{FloodLimiter, FloodSource};
use crate::datapath::topology::Topology;
use crate::datapath::tunnel::{PeerCounters, TunnelCounters};
use vtep::Vni;

#[derive(Debug, Default)]
pub(super) struct PeerHandles {
    by_ip: HashMap<IpAddr, Arc<PeerCounters>>,
    /// Peers and VNIs whose frames over the network's MTU were already reported.
    over_mtu_told: HashSet<(IpAddr, Vni)>,
    /// The topology snapshot the map was last matched to.
    generation: Option<u64>,
}

impl PeerHandles {
    /// The counters of peer `ip`; `None` when it is not a configured peer.
    #[inline]
    pub(super) fn get(&self, ip: IpAddr) -> Option<&Arc<PeerCounters>> {
        // The peer table keys addresses canonically (an IPv4-mapped IPv6 address as
        // IPv4).
        self.by_ip.get(&ip.to_canonical())
    }

    /// Whether this is the first frame over the MTU from `ip` in `vni` (then it is
    /// remembered until the peer is removed).
    pub(super) fn first_over_mtu(&mut self, ip: IpAddr, vni: Vni) -> bool {
        self.by_ip.contains_key(&ip) && self.over_mtu_told.insert((ip, vni))
    }

    /// Matches the map to `topo`'s peers when the snapshot changed (a number compared
    /// otherwise): new peers get their counters from `registry` (this worker's), removed
    /// ones are dropped from both, and from `floods`.
    #[inline]
    pub(super) fn sync(
        &mut self,
        topo: &Topology,
        registry: &TunnelCounters,
        floods: &FloodLimiter,
    ) {
        if self.generation != Some(topo.generation) {
            self.rebuild(topo, registry, floods);
        }
    }

    #[cold]
    fn rebuild(&mut self, topo: &Topology, registry: &TunnelCounters, floods: &FloodLimiter) {
        self.generation = Some(topo.generation);
        let is_peer = |ip: IpAddr| topo.peers.vnis_of(ip).is_some();
        self.by_ip.retain(|ip, _| {
            let keep = is_peer(*ip);
            if !keep {
                floods.forget(FloodSource::Peer(*ip));
            }
            keep
        });
        registry.retain_peers(is_peer);
        self.over_mtu_told.retain(|(ip, _)| is_peer(*ip));
        for (ip, _) in topo.peers.iter() {
            self.by_ip.entry(ip).or_insert_with(|| registry.peer(ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vtep::PeerVnis;

    fn topo(generation: u64, peers: &[&str]) -> Topology {
        let mut t = Topology {
            generation,
            ..Topology::default()
        };
        for p in peers {
            t.peers.add(p.parse().unwrap(), PeerVnis::All).unwrap();
        }
        t
    }

    #[test]
    fn follows_the_peer_table_and_forgets_removed_peers() {
        let registry = TunnelCounters::default();
        let floods = FloodLimiter::new(10);
        let mut h = PeerHandles::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        // The empty snapshot a worker starts on (0), then the first published one (1).
        h.sync(&Topology::default(), &registry, &floods);
        assert!(h.get(a).is_none());
        h.sync(&topo(1, &["192.0.2.1", "192.0.2.2"]), &registry, &floods);
        h.get(a).unwrap().rx_datagrams.add(5);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            h.get(mapped).unwrap().rx_datagrams.get(),
            5,
            "canonical form"
        );
        assert!(h.get(b).is_some());
        assert!(h.get("192.0.2.9".parse().unwrap()).is_none(), "not a peer");
        assert!(floods.allow(FloodSource::Peer(b), Duration::ZERO));
        assert_eq!(floods.sources(), 1);

        // The same snapshot again: nothing to do, even if the table were different.
        h.sync(&topo(1, &[]), &registry, &floods);
        assert!(h.get(b).is_some());

        // b removed: its handle, its registry entry and its allowance go; a's count stays.
        h.sync(&topo(2, &["192.0.2.1"]), &registry, &floods);
        assert!(h.get(b).is_none());
        assert_eq!(floods.sources(), 0);
        let listed: Vec<IpAddr> = registry.peer_ips();
        assert_eq!(listed, vec![a]);
        assert_eq!(h.get(a).unwrap().rx_datagrams.get(), 5);

        // b back: counted from zero.
        h.sync(&topo(3, &["192.0.2.1", "192.0.2.2"]), &registry, &floods);
        assert_eq!(h.get(b).unwrap().rx_datagrams.get(), 0);
    }

    #[test]
    fn frames_over_the_mtu_are_reported_once_per_peer_and_vni() {
        let registry = TunnelCounters::default();
        let floods = FloodLimiter::new(0);
        let mut h = PeerHandles::default();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let (v42, v43) = (Vni::new(42).unwrap(), Vni::new(43).unwrap());
        h.sync(&topo(1, &["192.0.2.2"]), &registry, &floods);
        assert!(h.first_over_mtu(b, v42));
        assert!(!h.first_over_mtu(b, v42));
        assert!(h.first_over_mtu(b, v43), "another network");
        assert!(
            !h.first_over_mtu("192.0.2.9".parse().unwrap(), v42),
            "not a peer"
        );
        // Removed and added back: reported again.
        h.sync(&topo(2, &[]), &registry, &floods);
        h.sync(&topo(3, &["192.0.2.2"]), &registry, &floods);
        assert!(h.first_over_mtu(b, v42));
    }
}
