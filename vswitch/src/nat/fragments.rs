//! IPv4 fragments without reassembly: the first fragment of a datagram carries the
//! transport header and is translated like any packet; the translation of its
//! addresses is remembered under the datagram's identity (side, protocol, source,
//! destination, IPv4 identification), and the later fragments, which carry no ports,
//! get the same addresses.
//!
//! Why not reassemble: it would mean buffering up to 64 KiB per datagram in the
//! packet path. Why bother at all: a container pinging with `-s 3000`, a UDP
//! application sending datagrams above its MTU, or a remote DNS server's large
//! answers all produce fragments, and Linux's NAT passes them.
//!
//! Limits, stated: a later fragment that arrives before its first fragment (reordered
//! on the way) has no record and is dropped (`fragment`), as is every later fragment
//! once [`MAX_RECORDS`] datagrams are being remembered. Records live
//! [`super::Timeouts::fragment`] (Linux's `ipfrag_time`, 30 s) and go in
//! [`super::Nat::expire`]. The identification is not rewritten: two local hosts whose
//! fragmented datagrams to the same destination happen to share an ID within that
//! time can confuse the destination's reassembly, as behind Linux's NAT.
//!
//! Lookups are lock-free (a second `papaya` map); a record is one insert per
//! fragmented datagram.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::conn::{Egress, NatKind, nanos};
use super::drop::NatDrop;
use super::packet;
use super::table::Translated;
use super::tuple::Side;

/// The most datagrams whose fragments are remembered at once.
pub const MAX_RECORDS: usize = 4096;

/// A datagram as it arrives: the key of its later fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub side: Side,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub id: u16,
}

/// What its later fragments become.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FragRecord {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub kind: NatKind,
    pub egress: Egress,
    pub created_ns: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Fragments {
    map: papaya::HashMap<FragKey, FragRecord>,
}

impl Fragments {
    /// Remembers the translation of a first fragment (replacing an older datagram
    /// with the same identity). Skipped when [`MAX_RECORDS`] are held.
    pub fn record(&self, key: FragKey, rec: FragRecord) {
        let map = self.map.pin();
        if map.len() < MAX_RECORDS || map.contains_key(&key) {
            map.insert(key, rec);
        }
    }

    /// Translates a later fragment arriving from `side`.
    pub fn translate(&self, pkt: &mut [u8], side: Side) -> Result<Translated, NatDrop> {
        let ip = packet::ip_header(pkt).ok_or(NatDrop::Malformed)?;
        let key = FragKey {
            side,
            protocol: ip.protocol,
            src: ip.src,
            dst: ip.dst,
            id: ip.id,
        };
        let map = self.map.pin();
        let rec = map.get(&key).ok_or(NatDrop::Fragment)?;
        packet::rewrite_ip(pkt, rec.src, rec.dst);
        Ok(Translated {
            kind: rec.kind,
            egress: rec.egress,
            dst: rec.dst,
            created: false,
        })
    }

    /// Forgets datagrams first seen more than `timeout` before `now`.
    pub fn expire(&self, now: Duration, timeout: Duration) -> usize {
        let (now, timeout) = (nanos(now), nanos(timeout));
        let map = self.map.pin();
        let before = map.len();
        map.retain(|_, r| now.saturating_sub(r.created_ns) <= timeout);
        before.saturating_sub(map.len())
    }

    /// How many datagrams are remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}
