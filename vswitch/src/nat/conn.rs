//! One tracked connection: its two tuples, kind, allocated port, and the two fields
//! packets refresh (last-seen time and state), which are atomics so that a packet of
//! an existing flow never takes a lock.
//!
//! A connection is stored in the table under two keys, one per direction:
//! `(orig_side, orig)` for packets like the first one, and `(reply_side, xlat
//! reversed)` for the answers. A packet matching the first is rewritten to `xlat`;
//! one matching the second to `orig` reversed. That one rule covers masquerade,
//! published ports and hairpin alike; only the sides and the egress differ.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use super::config::Timeouts;
use super::state::{ConnState, Dir, Packed};
use super::tuple::{Key, Proto, Side, Tuple};

/// What a connection translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NatKind {
    /// Masquerade: a local flow to the outside, source rewritten to the external
    /// address and an allocated port.
    Snat,
    /// A published port: a flow from the outside to the external (or host) address,
    /// destination rewritten to the container.
    Dnat,
    /// A container to a published port via the switch's address: destination
    /// rewritten to the target, source to the external address and an allocated port.
    Hairpin,
}

impl NatKind {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            NatKind::Snat => "snat",
            NatKind::Dnat => "dnat",
            NatKind::Hairpin => "hairpin",
        }
    }

    pub(crate) const fn sides(self) -> (Side, Side) {
        match self {
            NatKind::Snat => (Side::Inside, Side::Outside),
            NatKind::Dnat => (Side::Outside, Side::Inside),
            NatKind::Hairpin => (Side::Inside, Side::Inside),
        }
    }
}

impl std::fmt::Display for NatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a translated packet goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Egress {
    /// Out of the uplink, towards [`super::Translated::dst`].
    Uplink,
    /// To a local network: route [`super::Translated::dst`] to its endpoint.
    Internal,
}

/// Refreshing the last-seen time is skipped when it would move it by less than this:
/// at high packet rates, several workers then rarely write the same cache line.
const TOUCH_GRANULE_NS: u64 = 1_000_000;

pub(crate) fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub proto: Proto,
    pub kind: NatKind,
    /// The first packet's tuple as it arrived.
    pub orig: Tuple,
    /// The first packet's tuple as it left.
    pub xlat: Tuple,
    /// The external port (or ICMP identifier) taken from the pool, if any.
    pub port: Option<u16>,
    pub created_ns: u64,
    last_seen_ns: AtomicU64,
    state: AtomicU8,
    /// Set (under the creation lock) when the entry leaves the table, so that two
    /// removals of the same connection cannot free its port twice.
    pub removed: AtomicBool,
}

/// A table value: the connection and which direction this key is.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub conn: Arc<Conn>,
    pub dir: Dir,
}

impl Conn {
    pub fn new(
        proto: Proto,
        kind: NatKind,
        orig: Tuple,
        xlat: Tuple,
        port: Option<u16>,
        state: ConnState,
        now: Duration,
    ) -> Conn {
        Conn {
            proto,
            kind,
            orig,
            xlat,
            port,
            created_ns: nanos(now),
            last_seen_ns: AtomicU64::new(nanos(now)),
            state: AtomicU8::new(Packed::new(state).0),
            removed: AtomicBool::new(false),
        }
    }

    /// The keys this connection is stored under: `[orig direction, reply direction]`.
    pub fn keys(&self) -> [Key; 2] {
        let (orig_side, reply_side) = self.kind.sides();
        [
            Key {
                proto: self.proto,
                side: orig_side,
                tuple: self.orig,
            },
            Key {
                proto: self.proto,
                side: reply_side,
                tuple: self.xlat.reversed(),
            },
        ]
    }

    /// The tuple a packet going in `dir` is rewritten to.
    pub fn translate(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::Orig => self.xlat,
            Dir::Reply => self.orig.reversed(),
        }
    }

    /// Where a packet going in `dir` leaves.
    pub fn egress(&self, dir: Dir) -> Egress {
        match (self.kind, dir) {
            (NatKind::Snat, Dir::Orig) | (NatKind::Dnat, Dir::Reply) => Egress::Uplink,
            _ => Egress::Internal,
        }
    }

    /// Whether `ip` is an address of a local endpoint of this connection.
    pub fn involves_local(&self, ip: Ipv4Addr) -> bool {
        match self.kind {
            NatKind::Snat => self.orig.src == ip,
            NatKind::Dnat => self.xlat.dst == ip,
            NatKind::Hairpin => self.orig.src == ip || self.xlat.dst == ip,
        }
    }

    /// Records a packet: last-seen time and state. Lock-free: a load and, only when
    /// something changes, a store (time) or compare-and-swap (state).
    #[inline]
    pub fn touch(&self, now: Duration, dir: Dir, flags: u8) {
        let now = nanos(now);
        if now
            >= self
                .last_seen_ns
                .load(Relaxed)
                .saturating_add(TOUCH_GRANULE_NS)
        {
            self.last_seen_ns.store(now, Relaxed);
        }
        let _ = self.state.fetch_update(Relaxed, Relaxed, |s| {
            let next = Packed(s).next(dir, flags).0;
            (next != s).then_some(next)
        });
    }

    pub fn state(&self) -> ConnState {
        Packed(self.state.load(Relaxed)).state()
    }

    pub fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns.load(Relaxed)
    }

    /// How long until the entry may expire (zero if it already may).
    pub fn remaining(&self, now: Duration, t: &Timeouts) -> Duration {
        let idle = Duration::from_nanos(nanos(now).saturating_sub(self.last_seen_ns()));
        self.state().timeout(t).saturating_sub(idle)
    }

    /// Whether the entry has been idle longer than its state's timeout.
    pub fn expired(&self, now: Duration, t: &Timeouts) -> bool {
        let idle = nanos(now).saturating_sub(self.last_seen_ns());
        idle > nanos(self.state().timeout(t))
    }
}
