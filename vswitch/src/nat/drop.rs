//! Why the NAT refused a packet: a small `Copy` reason for the datapath to count per
//! worker (the engine itself counts only refused flow creations, see
//! [`super::NatCounters`]), and a fixed array of per-reason counters to do it with.

use std::fmt;

/// Why [`super::Nat::outbound`] or [`super::Nat::inbound`] did not translate a packet.
/// The packet must be dropped (never forwarded untranslated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatDrop {
    /// Not a well-formed IPv4 packet with a complete transport header.
    Malformed,
    /// A later IPv4 fragment (no ports in it) of a datagram whose first fragment was
    /// not translated just before: reordered ahead of it, too old, or too many
    /// fragmented datagrams in flight. The engine does not reassemble.
    Fragment,
    /// Neither TCP, UDP nor ICMP.
    UnsupportedProtocol,
    /// ICMP other than echo request/reply, destination unreachable, time exceeded or
    /// parameter problem.
    UnsupportedIcmp,
    /// No tracked flow, and this packet may not start one (TCP without SYN, an echo
    /// reply, a packet from the uplink to a port that is not published).
    NoFlow,
    /// An ICMP error about a packet of no tracked flow (or with an unusable quote).
    NotTracked,
    /// A local packet to the switch's own address on a port that is not published.
    NotPublished,
    /// A packet from the uplink to an address that is neither the external address
    /// nor a published host address.
    NotForUs,
    /// A new flow while the table holds `max_entries` connections.
    TableFull,
    /// A new flow while every port of the range (for its protocol) is in use.
    PortsExhausted,
    /// A new flow whose translated tuple is already another flow's (rare: a
    /// published port and a masqueraded flow meeting on the same tuple).
    TupleInUse,
}

impl NatDrop {
    /// Every reason, in counter order.
    pub const ALL: [NatDrop; 11] = [
        NatDrop::Malformed,
        NatDrop::Fragment,
        NatDrop::UnsupportedProtocol,
        NatDrop::UnsupportedIcmp,
        NatDrop::NoFlow,
        NatDrop::NotTracked,
        NatDrop::NotPublished,
        NatDrop::NotForUs,
        NatDrop::TableFull,
        NatDrop::PortsExhausted,
        NatDrop::TupleInUse,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The reason's position in [`NatDrop::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name `vswitch stats` prints.
    pub const fn name(self) -> &'static str {
        match self {
            NatDrop::Malformed => "malformed",
            NatDrop::Fragment => "fragment",
            NatDrop::UnsupportedProtocol => "unsupported_protocol",
            NatDrop::UnsupportedIcmp => "unsupported_icmp",
            NatDrop::NoFlow => "no_flow",
            NatDrop::NotTracked => "not_tracked",
            NatDrop::NotPublished => "not_published",
            NatDrop::NotForUs => "not_for_us",
            NatDrop::TableFull => "table_full",
            NatDrop::PortsExhausted => "ports_exhausted",
            NatDrop::TupleInUse => "tuple_in_use",
        }
    }
}

impl fmt::Display for NatDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for NatDrop {}

/// Packets dropped per reason; one per worker, summed with [`NatDropCounts::merge`]
/// when read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatDropCounts([u64; NatDrop::COUNT]);

impl NatDropCounts {
    /// Counts one packet dropped for `reason`.
    #[inline]
    pub fn add(&mut self, reason: NatDrop) {
        if let Some(c) = self.0.get_mut(reason.index()) {
            *c += 1;
        }
    }

    /// How many packets were dropped for `reason`.
    pub fn get(&self, reason: NatDrop) -> u64 {
        self.0.get(reason.index()).copied().unwrap_or(0)
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, other: &NatDropCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// `(reason, count)` for every reason, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (NatDrop, u64)> + '_ {
        NatDrop::ALL.iter().map(|&r| (r, self.get(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        for (i, r) in NatDrop::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = NatDrop::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NatDrop::COUNT);
    }

    #[test]
    fn counts_merge() {
        let mut a = NatDropCounts::default();
        a.add(NatDrop::TableFull);
        let mut b = NatDropCounts::default();
        b.add(NatDrop::TableFull);
        b.add(NatDrop::Malformed);
        a.merge(&b);
        assert_eq!(a.get(NatDrop::TableFull), 2);
        assert_eq!(a.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
