//! The peer table: which remote VTEPs (underlay addresses) carry which VNIs, and the
//! flood lists derived from it.
//!
//! - A peer carries either an explicit set of VNIs or **all** VNIs. "All" is for small
//!   static clusters where every host has every network: `vswitch peer add IP` with no
//!   VNI list. A datagram from such a peer is accepted for any VNI the host knows, and
//!   BUM traffic of every network is replicated to it.
//! - Adding a peer that exists merges the VNI sets (adding "all" makes it carry all);
//!   [`PeerTable::set`] replaces them; removing a peer's last VNI removes the peer.
//! - Addresses are stored canonical: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as
//!   a dual-stack socket reports IPv4 sources) is the IPv4 peer it maps.
//! - Unspecified, multicast and broadcast addresses are refused: a peer is one unicast
//!   VTEP that both sends to us and receives head-end replicated floods.
//! - Flood lists (head-end replication targets) are rebuilt on every change, sorted by
//!   address, so [`PeerTable::flood_list`] is one map lookup and no allocation.
//!
//! The table is a plain value: the daemon edits a copy on the control thread and
//! publishes it (arc-swap); workers read it through [`PeerLookup`]. Where the peers come
//! from is not this module's business: today static configuration, later perhaps etcd
//! or BGP EVPN type-3 routes, which map onto [`PeerTable::add`] / [`PeerTable::remove_vni`]
//! one route at a time, or a different [`PeerLookup`] implementation altogether.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use crate::header::Vni;

/// What the packet path asks of a peer table.
pub trait PeerLookup {
    /// Whether `addr` is a peer that carries `vni` (decapsulation's source check).
    fn is_peer(&self, addr: IpAddr, vni: Vni) -> bool;
    /// The VTEPs a broadcast, unknown-unicast or multicast frame of `vni` is copied to.
    fn flood_list(&self, vni: Vni) -> &[IpAddr];
}

/// The VNIs a peer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerVnis {
    /// Every VNI.
    All,
    /// These VNIs only; never empty inside a [`PeerTable`].
    Only(BTreeSet<Vni>),
}

impl PeerVnis {
    /// Whether `vni` is carried.
    pub fn contains(&self, vni: Vni) -> bool {
        match self {
            PeerVnis::All => true,
            PeerVnis::Only(set) => set.contains(&vni),
        }
    }

    /// `Only` the given VNIs.
    pub fn only(vnis: impl IntoIterator<Item = Vni>) -> PeerVnis {
        PeerVnis::Only(vnis.into_iter().collect())
    }
}

/// Why a change to the peer table was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("{0} cannot be a peer: a VXLAN peer is one unicast underlay address")]
    NotUnicast(IpAddr),
    #[error("peer {0} given an empty VNI list: name at least one VNI, or none for all")]
    EmptyVnis(IpAddr),
    #[error("peer {0} is not in the peer table")]
    NotFound(IpAddr),
    #[error("peer {0} carries all VNIs: set an explicit VNI list before removing one")]
    CarriesAllVnis(IpAddr),
}

/// Peers and their VNIs, with precomputed flood lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerTable {
    peers: BTreeMap<IpAddr, PeerVnis>,
    /// Flood list of every VNI some peer names explicitly (includes the "all" peers).
    flood: HashMap<Vni, Box<[IpAddr]>>,
    /// Flood list of any other VNI: the peers that carry all VNIs.
    flood_all: Box<[IpAddr]>,
}

fn check_addr(addr: IpAddr) -> Result<IpAddr, PeerError> {
    let addr = addr.to_canonical();
    let unicast = match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    if unicast {
        Ok(addr)
    } else {
        Err(PeerError::NotUnicast(addr))
    }
}

impl PeerTable {
    /// An empty table.
    pub fn new() -> PeerTable {
        PeerTable::default()
    }

    /// Adds `addr` carrying `vnis`, or merges `vnis` into an existing peer's set.
    pub fn add(&mut self, addr: IpAddr, vnis: PeerVnis) -> Result<(), PeerError> {
        let addr = check_addr(addr)?;
        if matches!(&vnis, PeerVnis::Only(set) if set.is_empty()) {
            return Err(PeerError::EmptyVnis(addr));
        }
        match (self.peers.get_mut(&addr), vnis) {
            (Some(PeerVnis::Only(have)), PeerVnis::Only(more)) => have.extend(more),
            (Some(PeerVnis::All), _) => {}
            (Some(have), PeerVnis::All) => *have = PeerVnis::All,
            (None, vnis) => {
                self.peers.insert(addr, vnis);
            }
        }
        self.rebuild();
        Ok(())
    }

    /// Sets the VNIs of `addr`, adding the peer if needed and replacing any old set.
    pub fn set(&mut self, addr: IpAddr, vnis: PeerVnis) -> Result<(), PeerError> {
        let addr = check_addr(addr)?;
        if matches!(&vnis, PeerVnis::Only(set) if set.is_empty()) {
            return Err(PeerError::EmptyVnis(addr));
        }
        self.peers.insert(addr, vnis);
        self.rebuild();
        Ok(())
    }

    /// Removes a peer; `false` if it was not there.
    pub fn remove(&mut self, addr: IpAddr) -> bool {
        let removed = self.peers.remove(&addr.to_canonical()).is_some();
        if removed {
            self.rebuild();
        }
        removed
    }

    /// Removes one VNI from a peer with an explicit list; removing its last VNI removes
    /// the peer. `Ok(false)` if the peer did not carry `vni`.
    pub fn remove_vni(&mut self, addr: IpAddr, vni: Vni) -> Result<bool, PeerError> {
        let addr = addr.to_canonical();
        let set = match self.peers.get_mut(&addr) {
            None => return Err(PeerError::NotFound(addr)),
            Some(PeerVnis::All) => return Err(PeerError::CarriesAllVnis(addr)),
            Some(PeerVnis::Only(set)) => set,
        };
        if !set.remove(&vni) {
            return Ok(false);
        }
        if set.is_empty() {
            self.peers.remove(&addr);
        }
        self.rebuild();
        Ok(true)
    }

    /// The VNIs `addr` carries, if it is a peer.
    pub fn vnis_of(&self, addr: IpAddr) -> Option<&PeerVnis> {
        self.peers.get(&addr.to_canonical())
    }

    /// All peers, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &PeerVnis)> {
        self.peers.iter().map(|(a, v)| (*a, v))
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the table has no peers.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn rebuild(&mut self) {
        let all: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, v)| matches!(v, PeerVnis::All))
            .map(|(a, _)| *a)
            .collect();
        let mut per_vni: BTreeMap<Vni, Vec<IpAddr>> = BTreeMap::new();
        // Peers are visited in address order, so each list comes out sorted.
        for (addr, vnis) in &self.peers {
            match vnis {
                PeerVnis::All => {
                    for list in per_vni.values_mut() {
                        list.push(*addr);
                    }
                }
                PeerVnis::Only(set) => {
                    for vni in set {
                        per_vni
                            .entry(*vni)
                            .or_insert_with(|| all.iter().copied().filter(|a| a < addr).collect())
                            .push(*addr);
                    }
                }
            }
        }
        self.flood = per_vni
            .into_iter()
            .map(|(vni, list)| (vni, list.into_boxed_slice()))
            .collect();
        self.flood_all = all.into_boxed_slice();
    }
}

impl PeerLookup for PeerTable {
    fn is_peer(&self, addr: IpAddr, vni: Vni) -> bool {
        self.peers
            .get(&addr.to_canonical())
            .is_some_and(|v| v.contains(vni))
    }

    fn flood_list(&self, vni: Vni) -> &[IpAddr] {
        self.flood.get(&vni).unwrap_or(&self.flood_all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn vni(n: u32) -> Vni {
        Vni::new(n).unwrap()
    }

    #[test]
    fn explicit_and_all_peers() {
        let mut t = PeerTable::new();
        t.add(ip("10.0.0.3"), PeerVnis::only([vni(100), vni(200)]))
            .unwrap();
        t.add(ip("10.0.0.1"), PeerVnis::All).unwrap();
        t.add(ip("fd00::5"), PeerVnis::only([vni(200)])).unwrap();
        assert!(t.is_peer(ip("10.0.0.3"), vni(100)));
        assert!(!t.is_peer(ip("10.0.0.3"), vni(300)));
        assert!(t.is_peer(ip("10.0.0.1"), vni(300)));
        assert!(!t.is_peer(ip("10.0.0.9"), vni(100)));
        assert_eq!(t.flood_list(vni(100)), &[ip("10.0.0.1"), ip("10.0.0.3")]);
        assert_eq!(
            t.flood_list(vni(200)),
            &[ip("10.0.0.1"), ip("10.0.0.3"), ip("fd00::5")]
        );
        assert_eq!(t.flood_list(vni(999)), &[ip("10.0.0.1")]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn add_merges_and_set_replaces() {
        let mut t = PeerTable::new();
        t.add(ip("10.0.0.1"), PeerVnis::only([vni(1)])).unwrap();
        t.add(ip("10.0.0.1"), PeerVnis::only([vni(2)])).unwrap();
        assert_eq!(
            t.vnis_of(ip("10.0.0.1")),
            Some(&PeerVnis::only([vni(1), vni(2)]))
        );
        t.add(ip("10.0.0.1"), PeerVnis::All).unwrap();
        t.add(ip("10.0.0.1"), PeerVnis::only([vni(3)])).unwrap();
        assert_eq!(t.vnis_of(ip("10.0.0.1")), Some(&PeerVnis::All));
        t.set(ip("10.0.0.1"), PeerVnis::only([vni(3)])).unwrap();
        assert!(!t.is_peer(ip("10.0.0.1"), vni(1)));
        assert_eq!(t.flood_list(vni(1)), &[] as &[IpAddr]);
    }

    #[test]
    fn removal() {
        let mut t = PeerTable::new();
        t.add(ip("10.0.0.1"), PeerVnis::only([vni(1), vni(2)]))
            .unwrap();
        t.add(ip("10.0.0.2"), PeerVnis::All).unwrap();
        assert_eq!(t.remove_vni(ip("10.0.0.1"), vni(1)), Ok(true));
        assert_eq!(t.remove_vni(ip("10.0.0.1"), vni(1)), Ok(false));
        assert_eq!(t.flood_list(vni(1)), &[ip("10.0.0.2")]);
        assert_eq!(t.remove_vni(ip("10.0.0.1"), vni(2)), Ok(true));
        assert!(t.vnis_of(ip("10.0.0.1")).is_none());
        assert_eq!(
            t.remove_vni(ip("10.0.0.2"), vni(1)),
            Err(PeerError::CarriesAllVnis(ip("10.0.0.2")))
        );
        assert_eq!(
            t.remove_vni(ip("10.0.0.9"), vni(1)),
            Err(PeerError::NotFound(ip("10.0.0.9")))
        );
        assert!(t.remove(ip("10.0.0.2")));
        assert!(!t.remove(ip("10.0.0.2")));
        assert!(t.is_empty());
        assert!(t.flood_list(vni(1)).is_empty());
    }

    #[test]
    fn addresses_are_checked_and_canonical() {
        let mut t = PeerTable::new();
        for bad in ["0.0.0.0", "::", "239.1.1.1", "255.255.255.255", "ff02::1"] {
            let err = t.add(ip(bad), PeerVnis::All).unwrap_err();
            assert!(err.to_string().contains("unicast"), "{err}");
        }
        assert_eq!(
            t.add(ip("10.0.0.1"), PeerVnis::Only(BTreeSet::new())),
            Err(PeerError::EmptyVnis(ip("10.0.0.1")))
        );
        t.add(ip("::ffff:10.0.0.1"), PeerVnis::only([vni(7)]))
            .unwrap();
        assert!(t.is_peer(ip("10.0.0.1"), vni(7)));
        assert!(t.is_peer(ip("::ffff:10.0.0.1"), vni(7)));
        assert_eq!(t.flood_list(vni(7)), &[ip("10.0.0.1")]);
    }

    proptest! {
        /// The precomputed lists equal a naive recomputation after random edits.
        #[test]
        fn flood_lists_match_a_naive_model(
            ops in proptest::collection::vec((0u8..4, 1u8..6, 0u32..5), 0..40)
        ) {
            let mut t = PeerTable::new();
            for (op, host, v) in ops {
                let a = IpAddr::from([10, 0, 0, host]);
                let vnis = if v == 0 { PeerVnis::All } else { PeerVnis::only([vni(v)]) };
                match op {
                    0 => { t.add(a, vnis).unwrap(); }
                    1 => { t.set(a, vnis).unwrap(); }
                    2 => { t.remove(a); }
                    _ => { let _ = t.remove_vni(a, vni(v)); }
                }
            }
            for v in 0..6 {
                let naive: Vec<IpAddr> = t.iter()
                    .filter(|(_, vn)| vn.contains(vni(v)))
                    .map(|(a, _)| a)
                    .collect();
                prop_assert_eq!(t.flood_list(vni(v)), &naive[..]);
                for host in 1..6 {
                    let a = IpAddr::from([10, 0, 0, host]);
                    prop_assert_eq!(t.is_peer(a, vni(v)), naive.contains(&a));
                }
            }
        }
    }
}
