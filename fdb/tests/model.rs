//! Model test: `Fdb` against a naive, obviously-correct reference (a `BTreeMap` and
//! counts recomputed by scanning it) under random sequences of operations. The key,
//! location and time spaces are tiny so that collisions, moves, refusals at small limits
//! and expiries at exactly the aging boundary all happen often.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fdb::{
    EntryInfo, Fdb, FdbConfig, FdbCounters, Learn, Location, MacAddr, NetworkId, PortId,
    RefuseReason,
};
use proptest::prelude::*;

const NETWORKS: u16 = 2;
const MACS: u8 = 6;
const LOCATIONS: u8 = 4;

fn net(n: u16) -> NetworkId {
    NetworkId(n)
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

/// Three ports and one VTEP.
fn loc(n: u8) -> Location {
    match n {
        0..=2 => Location::Port(PortId(u32::from(n))),
        _ => Location::Vtep(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Learn { net: u16, mac: u8, loc: u8 },
    AddStatic { net: u16, mac: u8, loc: u8 },
    Remove { net: u16, mac: u8 },
    Expire,
    FlushLocation { loc: u8, include_static: bool },
    FlushNetwork { net: u16 },
    SetAging { ms: u64 },
}

/// An operation and how far time moves (in ms) before it runs.
fn op() -> impl Strategy<Value = (u64, Op)> {
    let net = 0..NETWORKS;
    let mac = 0..MACS;
    let loc = 0..LOCATIONS;
    let op = prop_oneof![
        8 => (net.clone(), mac.clone(), loc.clone()).prop_map(|(net, mac, loc)| Op::Learn { net, mac, loc }),
        1 => (net.clone(), mac.clone(), loc.clone()).prop_map(|(net, mac, loc)| Op::AddStatic { net, mac, loc }),
        1 => (net.clone(), mac).prop_map(|(net, mac)| Op::Remove { net, mac }),
        2 => Just(Op::Expire),
        1 => (loc, any::<bool>()).prop_map(|(loc, include_static)| Op::FlushLocation { loc, include_static }),
        1 => net.prop_map(|net| Op::FlushNetwork { net }),
        1 => (1u64..4).prop_map(|s| Op::SetAging { ms: s * 1000 }),
    ];
    // Whole seconds half of the time, so that `now - last_seen == aging` happens.
    let dt = prop_oneof![(0u64..3).prop_map(|s| s * 1000), 0u64..2500];
    (dt, op)
}

#[derive(Debug, Clone, Copy)]
struct ModelEntry {
    loc: Location,
    is_static: bool,
    last_seen: Duration,
}

/// The reference: every rule spelled out in the most direct way.
#[derive(Debug, Default)]
struct Model {
    aging: Duration,
    max_entries: usize,
    max_per_location: usize,
    table: BTreeMap<(NetworkId, MacAddr), ModelEntry>,
    learned: u64,
    moved: u64,
    expired: u64,
    refused: u64,
}

impl Model {
    fn learned_total(&self) -> usize {
        self.table.values().filter(|e| !e.is_static).count()
    }

    fn learned_at(&self, loc: Location) -> usize {
        self.table
            .values()
            .filter(|e| !e.is_static && e.loc == loc)
            .count()
    }

    fn learn(&mut self, now: Duration, key: (NetworkId, MacAddr), loc: Location) -> Learn {
        let at_loc = self.learned_at(loc);
        let total = self.learned_total();
        match self.table.get_mut(&key) {
            Some(e) if e.is_static => Learn::Static,
            Some(e) if e.loc == loc => {
                e.last_seen = now;
                Learn::Refreshed
            }
            Some(_) if at_loc >= self.max_per_location => {
                self.refused += 1;
                Learn::Refused(RefuseReason::LocationFull)
            }
            Some(e) => {
                let from = e.loc;
                *e = ModelEntry {
                    loc,
                    is_static: false,
                    last_seen: now,
                };
                self.moved += 1;
                Learn::Moved { from }
            }
            None if total >= self.max_entries => {
                self.refused += 1;
                Learn::Refused(RefuseReason::TableFull)
            }
            None if at_loc >= self.max_per_location => {
                self.refused += 1;
                Learn::Refused(RefuseReason::LocationFull)
            }
            None => {
                self.table.insert(
                    key,
                    ModelEntry {
                        loc,
                        is_static: false,
                        last_seen: now,
                    },
                );
                self.learned += 1;
                Learn::Learned
            }
        }
    }

    fn retain_count(&mut self, keep: impl Fn(&(NetworkId, MacAddr), &ModelEntry) -> bool) -> usize {
        let before = self.table.len();
        self.table.retain(|k, e| keep(k, e));
        before - self.table.len()
    }

    fn expire(&mut self, now: Duration) -> usize {
        let aging = self.aging;
        let n = self.retain_count(|_, e| e.is_static || now.saturating_sub(e.last_seen) <= aging);
        self.expired += n as u64;
        n
    }

    fn counters(&self) -> FdbCounters {
        FdbCounters {
            entries: self.table.len(),
            static_entries: self.table.values().filter(|e| e.is_static).count(),
            learned: self.learned,
            moved: self.moved,
            expired: self.expired,
            refused: self.refused,
            max_entries: self.max_entries,
        }
    }

    fn entries(&self, now: Duration) -> Vec<EntryInfo> {
        self.table
            .iter()
            .map(|(&(network, mac), e)| EntryInfo {
                network,
                mac,
                location: e.loc,
                is_static: e.is_static,
                age: if e.is_static {
                    Duration::ZERO
                } else {
                    now.saturating_sub(e.last_seen)
                },
            })
            .collect()
    }
}

/// Runs one operation on both and compares what each returned (as text, one type for all).
fn step(fdb: &Fdb, model: &mut Model, now: Duration, op: &Op) -> (String, String) {
    match *op {
        Op::Learn {
            net: n,
            mac: m,
            loc: l,
        } => (
            format!("{:?}", fdb.learn(now, net(n), mac(m), loc(l))),
            format!("{:?}", model.learn(now, (net(n), mac(m)), loc(l))),
        ),
        Op::AddStatic {
            net: n,
            mac: m,
            loc: l,
        } => {
            fdb.add_static(net(n), mac(m), loc(l));
            let e = ModelEntry {
                loc: loc(l),
                is_static: true,
                last_seen: Duration::ZERO,
            };
            model.table.insert((net(n), mac(m)), e);
            (String::new(), String::new())
        }
        Op::Remove { net: n, mac: m } => (
            fdb.remove(net(n), mac(m)).to_string(),
            model.table.remove(&(net(n), mac(m))).is_some().to_string(),
        ),
        Op::Expire => (fdb.expire(now).to_string(), model.expire(now).to_string()),
        Op::FlushLocation {
            loc: l,
            include_static,
        } => (
            fdb.flush_location(loc(l), include_static).to_string(),
            model
                .retain_count(|_, e| !(e.loc == loc(l) && (include_static || !e.is_static)))
                .to_string(),
        ),
        Op::FlushNetwork { net: n } => (
            fdb.flush_network(net(n)).to_string(),
            model.retain_count(|k, _| k.0 != net(n)).to_string(),
        ),
        Op::SetAging { ms } => {
            fdb.set_aging(Duration::from_millis(ms));
            model.aging = Duration::from_millis(ms);
            (String::new(), String::new())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fdb_behaves_like_the_reference(
        max_entries in 0usize..8,
        max_per_location in 0usize..5,
        aging_s in 1u64..4,
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        let config = FdbConfig { aging: Duration::from_secs(aging_s), max_entries, max_per_location };
        let fdb = Fdb::new(config);
        let mut model = Model { aging: config.aging, max_entries, max_per_location, ..Model::default() };
        let mut now = Duration::ZERO;
        for (i, (dt, op)) in ops.iter().enumerate() {
            now += Duration::from_millis(*dt);
            let (got, want) = step(&fdb, &mut model, now, op);
            prop_assert_eq!(got, want, "op {} {:?} at {:?}", i, op, now);
            for n in 0..NETWORKS {
                for m in 0..MACS {
                    let want = model.table.get(&(net(n), mac(m))).map(|e| e.loc);
                    prop_assert_eq!(fdb.lookup(net(n), mac(m)), want, "lookup after op {} {:?}", i, op);
                }
            }
            prop_assert_eq!(fdb.len(), model.table.len());
            prop_assert_eq!(fdb.counters(), model.counters(), "counters after op {} {:?}", i, op);
            prop_assert_eq!(fdb.entries(now), model.entries(now), "entries after op {} {:?}", i, op);
        }
    }
}
