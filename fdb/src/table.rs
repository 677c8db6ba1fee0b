//! The table: a `papaya` map from (network, MAC) to [`Entry`], the occupancy counts the
//! limits are checked against, and every operation on them. See the crate doc for the
//! policy; comments here say how each operation keeps it under concurrency.

use std::fmt;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use papaya::{Compute, LocalGuard, Operation};

use crate::config::{FdbConfig, nanos};
use crate::counters::{CachePadded, Events, FdbCounters, Occupancy};
use crate::entry::{Entry, EntryInfo, Key, Learn, RefuseReason};
use crate::hash::KeyHasher;
use crate::types::{Location, MacAddr, NetworkId};

type Map = papaya::HashMap<Key, Entry, KeyHasher>;

/// The map is sized up front for `max_entries` learned entries (up to this many), so that
/// it stays at most about half full: papaya probes one tag byte at a time and, at the
/// ~85% load it otherwise grows to, a miss walks dozens of them (measured: a miss in a
/// 1k table cost 8 hits). Beyond this it grows incrementally as needed. The price is a
/// fixed ~1.2 MB for the default 65536 and an [`Fdb::expire`] sweep over the capacity.
const PREALLOCATE_MAX: usize = 1 << 20;

/// The forwarding database. Shared by reference (or `Arc`) between worker threads and the
/// control thread; every method takes `&self`.
pub struct Fdb {
    map: Map,
    /// One occupancy count per location that has had learned entries. Entries keep their
    /// own `Arc` to it; this index is only how a new entry finds it.
    locations: papaya::HashMap<Location, Arc<Occupancy>>,
    /// Learned entries in the table (plus reservations in flight); read by every new-MAC
    /// learn, so alone on its cache line.
    learned_entries: CachePadded<Occupancy>,
    static_entries: Occupancy,
    events: CachePadded<Events>,
    aging_ns: AtomicU64,
    max_entries: usize,
    max_per_location: usize,
}

impl Fdb {
    pub fn new(config: FdbConfig) -> Fdb {
        Fdb {
            map: papaya::HashMap::builder()
                .hasher(KeyHasher::new())
                .capacity(config.max_entries.min(PREALLOCATE_MAX))
                .build(),
            locations: papaya::HashMap::new(),
            learned_entries: CachePadded::default(),
            static_entries: Occupancy::default(),
            events: CachePadded::default(),
            aging_ns: AtomicU64::new(nanos(config.aging)),
            max_entries: config.max_entries,
            max_per_location: config.max_per_location,
        }
    }

    /// The configuration in force (with the current aging time).
    pub fn config(&self) -> FdbConfig {
        FdbConfig {
            aging: Duration::from_nanos(self.aging_ns.load(Relaxed)),
            max_entries: self.max_entries,
            max_per_location: self.max_per_location,
        }
    }

    /// Changes the aging time; the next [`Fdb::expire`] uses it. Entries are not touched.
    pub fn set_aging(&self, aging: Duration) {
        self.aging_ns.store(nanos(aging), Relaxed);
    }

    /// Pins the table for a batch of frames: [`FdbPin::learn`] and [`FdbPin::lookup`]
    /// then skip the per-call pin (an epoch enter and leave, ~20 ns
    /// measured, as much as the lookup itself in a small table). Hold it for one batch,
    /// not forever: memory freed by removals is reclaimed only once no pin predates it.
    pub fn pin(&self) -> FdbPin<'_> {
        FdbPin {
            fdb: self,
            guard: self.map.guard(),
        }
    }

    /// Learn that `mac` in `network` was seen at `loc`. Hot path: when the entry exists at
    /// the same location this is one atomic store.
    ///
    /// The caller filters what is not a station: group (multicast/broadcast) and zero
    /// source MACs should never get here.
    pub fn learn(&self, now: Duration, network: NetworkId, mac: MacAddr, loc: Location) -> Learn {
        self.pin().learn(now, network, mac, loc)
    }

    /// Where `mac` in `network` lives, if known. Hot path: read-only, no lock, no write.
    ///
    /// An entry idle past the aging time is still answered until [`Fdb::expire`] removes it.
    pub fn lookup(&self, network: NetworkId, mac: MacAddr) -> Option<Location> {
        self.pin().lookup(network, mac)
    }

    /// Adds or replaces a static entry: it never ages, learning never moves it, and it does
    /// not count against the learned limits. Replaces a learned entry for the same key.
    pub fn add_static(&self, network: NetworkId, mac: MacAddr, loc: Location) {
        let guard = self.map.guard();
        let old = self
            .map
            .insert(Key::new(network, mac), Entry::fixed(loc), &guard);
        self.static_entries.add();
        if let Some(old) = old {
            self.account_removed(old);
        }
    }

    /// Removes the entry for the key, static or learned; true if there was one.
    pub fn remove(&self, network: NetworkId, mac: MacAddr) -> bool {
        let guard = self.map.guard();
        match self.map.remove(&Key::new(network, mac), &guard) {
            Some(old) => {
                self.account_removed(old);
                true
            }
            None => false,
        }
    }

    /// Removes learned entries idle for longer than the aging time at `now` (last seen at
    /// `t`: kept at `t + aging`, removed after); returns how many. Static entries stay.
    ///
    /// A full sweep of the table: run it from a housekeeping thread every second or few,
    /// not per batch. An entry is re-checked as it is removed, so a refresh that lands
    /// before the removal saves it; one that lands in the instant between the check and
    /// the removal is lost, and the MAC is learned again from its next frame.
    pub fn expire(&self, now: Duration) -> usize {
        let now = nanos(now);
        let aging = self.aging_ns.load(Relaxed);
        let n = self.remove_where(|_, e| e.is_idle(now, aging));
        Events::bump(&self.events.expired, n as u64);
        n
    }

    /// Removes every learned entry at `loc` (the port is gone, the peer was removed), and
    /// the static ones too when `include_static`; returns how many.
    pub fn flush_location(&self, loc: Location, include_static: bool) -> usize {
        let n = self.remove_where(|_, e| e.location == loc && (include_static || !e.is_static()));
        // Forget the location's count once nothing holds a unit of it, so that ports that
        // come and go leave nothing behind. A learn racing with this (a frame from a port
        // being removed) may start a fresh count beside the old one; both stay correct
        // for the entries that hold them.
        let guard = self.locations.guard();
        let _ = self.locations.remove_if(&loc, |_, c| c.get() == 0, &guard);
        n
    }

    /// Removes every entry of `network`, static ones included; returns how many.
    pub fn flush_network(&self, network: NetworkId) -> usize {
        self.remove_where(|k, _| k.network() == network)
    }

    /// Every entry, sorted by (network, MAC), with ages at `now`. Control plane only
    /// (`fdb show`): allocates, and sweeps the table.
    pub fn entries(&self, now: Duration) -> Vec<EntryInfo> {
        let now = nanos(now);
        let guard = self.map.guard();
        let mut rows: Vec<(Key, EntryInfo)> = self
            .map
            .iter(&guard)
            .map(|(k, e)| {
                let info = EntryInfo {
                    network: k.network(),
                    mac: k.mac(),
                    location: e.location,
                    is_static: e.is_static(),
                    age: e.age(now),
                };
                (*k, info)
            })
            .collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        rows.into_iter().map(|(_, info)| info).collect()
    }

    /// Entries in the table, static and learned.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counters(&self) -> FdbCounters {
        FdbCounters {
            entries: self.len(),
            static_entries: self.static_entries.get(),
            learned: self.events.learned.load(Relaxed),
            moved: self.events.moved.load(Relaxed),
            expired: self.events.expired.load(Relaxed),
            refused: self.events.refused.load(Relaxed),
            max_entries: self.max_entries,
        }
    }

    /// Removes each entry for which `pred` holds, re-checking it on the entry being
    /// removed (it may have been refreshed, moved or replaced since it was read).
    fn remove_where(&self, pred: impl Fn(&Key, &Entry) -> bool) -> usize {
        let guard = self.map.guard();
        let mut n = 0;
        for (k, e) in self.map.iter(&guard) {
            if !pred(k, e) {
                continue;
            }
            if let Ok(Some((_, old))) = self.map.remove_if(k, |k, cur| pred(k, cur), &guard) {
                self.account_removed(old);
                n += 1;
            }
        }
        n
    }

    /// Gives back what a removed or replaced entry held. Called exactly once per entry:
    /// papaya hands a removed value to one remover only.
    fn account_removed(&self, old: &Entry) {
        match &old.slot {
            Some(slot) => {
                slot.release();
                self.learned_entries.release();
            }
            None => self.static_entries.release(),
        }
    }

    /// The occupancy count of `loc`, created on first use.
    fn slot(&self, loc: Location) -> Arc<Occupancy> {
        let locations = self.locations.pin();
        match locations.get(&loc) {
            Some(slot) => Arc::clone(slot),
            None => Arc::clone(locations.get_or_insert_with(loc, Arc::default)),
        }
    }

    fn refuse(&self, why: RefuseReason) -> Option<Learn> {
        Events::bump(&self.events.refused, 1);
        Some(Learn::Refused(why))
    }

    /// A MAC not in the table. `None`: another thread inserted the key first; try again.
    fn learn_new(
        &self,
        key: Key,
        loc: Location,
        now: u64,
        guard: &LocalGuard<'_>,
    ) -> Option<Learn> {
        // Plain loads first: at the limit (a MAC flood) nothing is written but `refused`.
        if self.learned_entries.is_full(self.max_entries) {
            return self.refuse(RefuseReason::TableFull);
        }
        let slot = self.slot(loc);
        if slot.is_full(self.max_per_location) {
            return self.refuse(RefuseReason::LocationFull);
        }
        if !self.learned_entries.try_reserve(self.max_entries) {
            return self.refuse(RefuseReason::TableFull);
        }
        if !slot.try_reserve(self.max_per_location) {
            self.learned_entries.release();
            return self.refuse(RefuseReason::LocationFull);
        }
        let entry = Entry::learned(loc, now, Arc::clone(&slot));
        match self.map.try_insert(key, entry, guard) {
            Ok(_) => {
                Events::bump(&self.events.learned, 1);
                Some(Learn::Learned)
            }
            Err(_) => {
                slot.release();
                self.learned_entries.release();
                None
            }
        }
    }

    /// A learned MAC seen at a new location: replace `cur` by an entry at `loc`, if `cur`
    /// is still the entry in the map. `None`: it changed meanwhile; try again.
    fn learn_move(
        &self,
        key: Key,
        cur: &Entry,
        loc: Location,
        now: u64,
        guard: &LocalGuard<'_>,
    ) -> Option<Learn> {
        let slot = self.slot(loc);
        if !slot.try_reserve(self.max_per_location) {
            return self.refuse(RefuseReason::LocationFull);
        }
        // `cur` cannot be freed and its address reused while `guard` is held, so pointer
        // identity is a sound "unchanged since read" test.
        let swap = self.map.compute(
            key,
            |found| match found {
                Some((_, e)) if ptr::eq(e, cur) => {
                    Operation::Insert(Entry::learned(loc, now, Arc::clone(&slot)))
                }
                _ => Operation::Abort(()),
            },
            guard,
        );
        match swap {
            Compute::Updated { old: (_, old), .. } => {
                if let Some(from) = &old.slot {
                    from.release();
                }
                Events::bump(&self.events.moved, 1);
                Some(Learn::Moved { from: old.location })
            }
            _ => {
                slot.release();
                None
            }
        }
    }
}

impl Default for Fdb {
    fn default() -> Self {
        Fdb::new(FdbConfig::default())
    }
}

impl fmt::Debug for Fdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fdb")
            .field("config", &self.config())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

/// The table pinned for one batch of frames (see [`Fdb::pin`]). Not `Send`: a worker
/// pins, processes its batch and drops the pin.
pub struct FdbPin<'a> {
    fdb: &'a Fdb,
    guard: LocalGuard<'a>,
}

impl FdbPin<'_> {
    /// As [`Fdb::learn`].
    pub fn learn(&self, now: Duration, network: NetworkId, mac: MacAddr, loc: Location) -> Learn {
        let fdb = self.fdb;
        let key = Key::new(network, mac);
        let now = nanos(now);
        // Loops only when another thread changed this key between our read and our write.
        loop {
            let outcome = match fdb.map.get(&key, &self.guard) {
                None => fdb.learn_new(key, loc, now, &self.guard),
                Some(e) if e.is_static() => Some(Learn::Static),
                Some(e) if e.location == loc => {
                    e.touch(now);
                    Some(Learn::Refreshed)
                }
                Some(e) => fdb.learn_move(key, e, loc, now, &self.guard),
            };
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// As [`Fdb::lookup`].
    pub fn lookup(&self, network: NetworkId, mac: MacAddr) -> Option<Location> {
        let key = Key::new(network, mac);
        self.fdb.map.get(&key, &self.guard).map(|e| e.location)
    }
}

impl fmt::Debug for FdbPin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdbPin").finish_non_exhaustive()
    }
}
