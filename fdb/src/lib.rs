//! Forwarding database: which port or remote VTEP each (network, MAC) lives behind.
//!
//! The switch learns from the source address of every frame and looks up the destination
//! of every frame; this crate is that table and nothing else. It does no I/O, reads no
//! clock and logs nothing: every method that needs the time takes `now`, a [`Duration`]
//! since an arbitrary fixed origin (the daemon's monotonic start), so tests drive time
//! by hand. Lookups and refreshes allocate nothing and take no lock.
//!
//! # Key and value
//!
//! An entry maps (`NetworkId`, `MacAddr`) to a [`Location`]: a local port or a remote VTEP.
//! The same MAC in two networks is two unrelated entries.
//!
//! # Learning and moves
//!
//! [`Fdb::learn`] records that a MAC was seen at a location at `now`:
//!
//! - known there already: its last-seen time is updated ([`Learn::Refreshed`]). This is
//!   the hot path and it is one atomic store (none when the time is already `now`), like
//!   OVS's `mac_learning_update` when nothing changed.
//! - known elsewhere: it **moves at once** to the new location ([`Learn::Moved`], counted
//!   in [`FdbCounters::moved`]). A VM or container that migrates, or a link that fails
//!   over, is followed from its first frame. There is no hold-down against flapping: two
//!   ports claiming one MAC make it flap, and the `moved` counter is how to see that.
//! - unknown: a new entry ([`Learn::Learned`]), if the limits allow.
//!
//! The table learns what it is told: the caller drops frames with a group (multicast or
//! broadcast) or zero source address before learning.
//!
//! # Idle expiry
//!
//! A learned entry last seen at `t` is kept by an [`Fdb::expire`] at `t + aging` and removed
//! by any later one. Aging defaults to 300 s (IEEE 802.1D, OVS, the Linux bridge) and can
//! be changed at run time ([`Fdb::set_aging`]). Nothing expires by itself: the daemon calls
//! `expire(now)` from a housekeeping thread every second or so; it sweeps the whole table.
//! Until then a lookup still answers with an idle entry.
//!
//! # Static entries
//!
//! [`Fdb::add_static`] entries never age, are never moved by learning (a learn for their
//! key returns [`Learn::Static`] and changes nothing) and do not count against the limits
//! below. Adding one replaces a learned entry for the same key. Only [`Fdb::remove`],
//! [`Fdb::flush_network`] and `flush_location(.., include_static: true)` remove them.
//!
//! # Limits: the MAC-flood defence
//!
//! Two limits bound the **learned** entries: [`FdbConfig::max_entries`] in the whole table
//! (default 65536) and [`FdbConfig::max_per_location`] behind any one port or VTEP (default
//! 4096). At a limit:
//!
//! - a **new** MAC is refused: not learned, [`Learn::Refused`] returned and counted in
//!   [`FdbCounters::refused`]. Frames to it keep being flooded, as to any unknown MAC.
//! - MACs already in the table keep being refreshed and looked up; **nothing is evicted**.
//! - a **move** counts against the destination's limit: into a full location it is
//!   refused, and the entry stays where it was (it still ages there unless refreshed).
//!
//! Why refuse rather than evict: an attacker flooding random source MACs cannot push out
//! the entries of stations that are already known, so their traffic is never turned into
//! floods that the attacker could sniff (the attack OVS's fair eviction also defends
//! against). The per-location limit keeps one flooding port from filling the table: the
//! other ports still learn new MACs until the table-wide limit. What is refused is new
//! stations while a flood lasts; they are learned once the flood's MACs age out. OVS
//! instead evicts from the port with the most MACs; we refuse because it needs no LRU
//! lists or per-port heaps (nothing to update on the refresh path) and a refusal is
//! cheaper than an eviction at line rate.
//!
//! Each location keeps its count of learned entries, so the checks are O(1) and, at a
//! limit, only read shared counters.
//!
//! # Concurrency
//!
//! [`Fdb`] is `Send + Sync` and every method takes `&self`: worker threads learn and look
//! up at once while the control thread expires, flushes and lists. The map is `papaya`'s
//! (lock-free reads, incremental resizing); its values are immutable but for the last-seen
//! time, an `AtomicU64`:
//!
//! - a lookup is a hash probe under an epoch pin: no lock, no write to the table (the pin
//!   writes only its own thread's slot). A worker can pin once per batch with [`Fdb::pin`].
//! - a refresh is a relaxed atomic store into the entry.
//! - a new entry, a move, a removal is a compare-and-swap on the key's slot; a learner that
//!   loses a race with another change of the same key reads it again and retries. A new
//!   entry may, rarely, wait on `papaya`'s lock that allocates a bigger table; the map is
//!   sized for `max_entries` up front (up to 1M) so that this is rare and misses stay short.
//! - the limits are reserved with an atomic add before the insert and handed back if it
//!   fails, so they are **never exceeded**, even by racing learners; the cost is that a
//!   learner racing for one of the last free places may be refused when a competitor's
//!   reservation was about to be handed back. (One exception: a learn at a location that
//!   races with [`Fdb::flush_location`] of that same location may start its count afresh,
//!   letting that location hold up to twice its limit until its entries go.)
//! - expiry and flushes re-check each entry as they remove it (conditional removal), so a
//!   refresh or move that lands first wins. A refresh that lands in the instant between
//!   that check and the removal is lost: the MAC is learned again from its next frame.
//! - counters are relaxed atomics, written by new entries, moves, refusals and removals,
//!   never by lookups or refreshes; a snapshot read while workers learn may be off by the
//!   events in flight.
//!
//! Memory freed by removals is reclaimed (by `papaya`'s `seize`) once no pin predates the
//! removal.
//!
//! [`Duration`]: std::time::Duration

mod config;
mod counters;
mod entry;
mod hash;
mod table;
mod types;

#[cfg(test)]
mod tests;

pub use config::FdbConfig;
pub use counters::FdbCounters;
pub use entry::{EntryInfo, Learn, RefuseReason};
pub use table::{Fdb, FdbPin};
pub use types::{Location, MacAddr, NetworkId, ParseMacError, PortId};
