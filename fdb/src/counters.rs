//! What the table counts, and the occupancy counts its limits are checked against.
//!
//! Everything here is an atomic touched only when the table changes (a new MAC, a move, a
//! refusal, a removal), never by a lookup or a refresh. The occupancy count that every
//! new-MAC learn reads sits on its own cache line, apart from the event counters that
//! those same learns write, so that a refused MAC flood only reads shared lines.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of the table's size and event counts, for `vswitch stats` / `fdb show`.
///
/// The event counts (`learned`, `moved`, `expired`, `refused`) only grow. Each field is read
/// on its own, so a snapshot taken while workers learn may be off by the events in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FdbCounters {
    /// Entries in the table now, static and learned.
    pub entries: usize,
    /// Static entries among them.
    pub static_entries: usize,
    /// New entries learned ([`Learn::Learned`](crate::Learn::Learned)); moves are not counted here.
    pub learned: u64,
    /// Learned entries that moved to another location ([`Learn::Moved`](crate::Learn::Moved)).
    pub moved: u64,
    /// Learned entries removed by [`Fdb::expire`](crate::Fdb::expire) (not by flushes or
    /// [`Fdb::remove`](crate::Fdb::remove)).
    pub expired: u64,
    /// Learns refused at a limit ([`Learn::Refused`](crate::Learn::Refused)), either reason.
    pub refused: u64,
    /// The configured limit on learned entries ([`FdbConfig::max_entries`](crate::FdbConfig::max_entries)),
    /// so that `entries` can be shown against it.
    pub max_entries: usize,
}

/// Keeps its content on a cache line of its own (64 bytes on x86_64 and most aarch64).
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The event counters, all written together on the learn slow path.
#[derive(Debug, Default)]
pub(crate) struct Events {
    pub learned: AtomicU64,
    pub moved: AtomicU64,
    pub expired: AtomicU64,
    pub refused: AtomicU64,
}

impl Events {
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Relaxed);
    }
}

/// An occupancy count with a limit, shared by concurrent learners.
///
/// [`Occupancy::try_reserve`] never lets the number of held units pass the limit, even
/// with many threads racing for the last unit: each `fetch_add` hands out a distinct
/// ticket and only tickets below the limit are kept. The price is that a ticket about to
/// be handed back can make a racing learner see the count one too high and be refused;
/// that only happens within a few entries of the limit.
#[derive(Debug, Default)]
pub(crate) struct Occupancy(AtomicUsize);

impl Occupancy {
    pub fn get(&self) -> usize {
        self.0.load(Relaxed)
    }

    /// True when at or over `limit` (a plain load, no write).
    pub fn is_full(&self, limit: usize) -> bool {
        self.get() >= limit
    }

    /// Takes one unit if fewer than `limit` are held. Checks with a plain load first so
    /// that a table at its limit under a MAC flood keeps the cache line shared.
    pub fn try_reserve(&self, limit: usize) -> bool {
        if self.is_full(limit) {
            return false;
        }
        if self.0.fetch_add(1, Relaxed) >= limit {
            self.0.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// Gives back one unit taken by [`Occupancy::try_reserve`] or [`Occupancy::add`].
    pub fn release(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    /// Takes one unit with no limit (static entries).
    pub fn add(&self) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_stops_at_the_limit_and_frees_on_release() {
        let o = Occupancy::default();
        assert!(o.try_reserve(2));
        assert!(o.try_reserve(2));
        assert!(!o.try_reserve(2));
        assert_eq!(o.get(), 2);
        o.release();
        assert!(o.try_reserve(2));
        assert!(!o.try_reserve(0));
    }

    #[test]
    fn occupancy_is_never_exceeded_by_racing_threads() {
        let o = Occupancy::default();
        let taken = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if o.try_reserve(100) {
                            taken.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(taken.load(Relaxed), 100);
        assert_eq!(o.get(), 100);
    }

    #[test]
    fn padded_is_a_cache_line() {
        assert_eq!(std::mem::align_of::<CachePadded<Occupancy>>(), 64);
    }
}
