//! One table entry as stored, and the small values the table answers with.
//!
//! An [`Entry`] is immutable once in the map except for its last-seen time, an atomic:
//! a refresh is one store into it, a move replaces the whole entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::config::secs;
use crate::counters::Occupancy;
use crate::types::{Location, MacAddr, NetworkId};

/// (network, MAC) packed into one word: the network in the top 16 bits, the MAC below.
/// One `u64` hashes and compares in a single step.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct Key(u64);

impl Key {
    pub fn new(network: NetworkId, mac: MacAddr) -> Key {
        let [a, b, c, d, e, f] = mac.0;
        Key(u64::from(network.0) << 48 | u64::from_be_bytes([0, 0, a, b, c, d, e, f]))
    }

    pub fn network(self) -> NetworkId {
        NetworkId((self.0 >> 48) as u16)
    }

    pub fn mac(self) -> MacAddr {
        let [_, _, a, b, c, d, e, f] = self.0.to_be_bytes();
        MacAddr([a, b, c, d, e, f])
    }
}

/// A stored entry. Learned entries hold the occupancy count of their location, so the
/// unit they took is given back to the very counter it came from, whatever happened to
/// the table's index of locations meanwhile. Static entries hold none.
#[derive(Debug)]
pub(crate) struct Entry {
    pub location: Location,
    /// Nanoseconds since the caller's origin; meaningless (0) for static entries.
    pub last_seen: AtomicU64,
    /// `None` for a static entry.
    pub slot: Option<Arc<Occupancy>>,
}

impl Entry {
    pub fn learned(location: Location, now: u64, slot: Arc<Occupancy>) -> Entry {
        Entry {
            location,
            last_seen: AtomicU64::new(now),
            slot: Some(slot),
        }
    }

    pub fn fixed(location: Location) -> Entry {
        Entry {
            location,
            last_seen: AtomicU64::new(0),
            slot: None,
        }
    }

    pub fn is_static(&self) -> bool {
        self.slot.is_none()
    }

    /// The refresh: one relaxed store, skipped when the time is already `now` (a worker
    /// reads the clock once per batch, so a burst from one station in one batch writes
    /// the shared line once, not once per frame). Nothing orders against the store; the
    /// worst a race can do is move the time back by the skew between two workers' `now`.
    pub fn touch(&self, now: u64) {
        if self.last_seen.load(Relaxed) != now {
            self.last_seen.store(now, Relaxed);
        }
    }

    /// Idle for longer than `aging` at `now`: the expiry rule. A learned entry last seen
    /// at `t` survives an expiry at `t + aging` and goes at any later one.
    pub fn is_idle(&self, now: u64, aging: u64) -> bool {
        !self.is_static() && now.saturating_sub(self.last_seen.load(Relaxed)) > aging
    }

    /// Time since last seen (zero for static entries and for a `now` behind it).
    pub fn age(&self, now: u64) -> Duration {
        if self.is_static() {
            return Duration::ZERO;
        }
        Duration::from_nanos(now.saturating_sub(self.last_seen.load(Relaxed)))
    }
}

/// What [`Fdb::learn`](crate::Fdb::learn) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Already known at this location; its last-seen time was updated.
    Refreshed,
    /// A new entry.
    Learned,
    /// Was known at `from`, now at the new location.
    Moved { from: Location },
    /// Not learned (frames to this MAC keep being flooded); for a known MAC, it stays
    /// where it was.
    Refused(RefuseReason),
    /// A static entry exists for the key; nothing changed.
    Static,
}

/// Which limit refused a learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// [`FdbConfig::max_entries`](crate::FdbConfig::max_entries) learned entries already.
    TableFull,
    /// [`FdbConfig::max_per_location`](crate::FdbConfig::max_per_location) learned entries
    /// at the location already.
    LocationFull,
}

/// One row of `vswitch fdb show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    pub network: NetworkId,
    pub mac: MacAddr,
    pub location: Location,
    pub is_static: bool,
    /// Time since the MAC was last seen, in seconds when serialized. Zero for static entries.
    #[serde(serialize_with = "secs::serialize")]
    pub age: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_network_and_mac() {
        let mac = MacAddr([0xff, 0x01, 0x80, 0x00, 0x7f, 0xfe]);
        for net in [0, 1, 0x8000, u16::MAX] {
            let k = Key::new(NetworkId(net), mac);
            assert_eq!(k.network(), NetworkId(net));
            assert_eq!(k.mac(), mac);
        }
        // Keys order as (network, mac), which `entries` relies on.
        let a = Key::new(NetworkId(1), MacAddr([0xff; 6]));
        let b = Key::new(NetworkId(2), MacAddr([0; 6]));
        assert!(a < b);
    }
}
