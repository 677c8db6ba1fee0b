//! Finding the network header inside an inner Ethernet frame (crate-private).
//!
//! Inner frames are Ethernet II, untagged or with up to two 802.1Q / 802.1ad tags.
//! Tags are carried through unchanged: a fragment keeps them, an ICMP error sent back
//! repeats them. Reads go through `get`, so nothing here panics on short input.

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const MAX_TAGS: usize = 2;

/// Reads a big-endian u16 at `at`, `None` past the end.
#[inline]
pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The offset of the network header and its EtherType, after skipping VLAN tags.
/// `None` when the frame is too short for its Ethernet header and tags.
pub(crate) fn network_offset(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = 12;
    let mut ethertype = be16(frame, at)?;
    let mut tags = 0;
    while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ) && tags < MAX_TAGS {
        at += 4;
        ethertype = be16(frame, at)?;
        tags += 1;
    }
    Some((at + 2, ethertype))
}

/// Whether a MAC address is a group (multicast or broadcast) address.
#[inline]
pub(crate) fn is_group_mac(mac: &[u8]) -> bool {
    mac.first().is_some_and(|b| b & 1 == 1)
}

/// An IPv4 header with its total length checked against the frame.
pub(crate) fn ipv4_at(frame: &[u8], l3: usize) -> Option<(Ipv4HeaderSlice<'_>, usize)> {
    let ip = Ipv4HeaderSlice::from_slice(frame.get(l3..)?).ok()?;
    let total = usize::from(ip.total_len());
    (total >= ip.slice().len() && l3 + total <= frame.len()).then_some((ip, total))
}

/// An IPv6 header with its payload length checked against the frame; returns the
/// packet length.
pub(crate) fn ipv6_at(frame: &[u8], l3: usize) -> Option<(Ipv6HeaderSlice<'_>, usize)> {
    let ip = Ipv6HeaderSlice::from_slice(frame.get(l3..)?).ok()?;
    let total = 40 + usize::from(ip.payload_length());
    (l3 + total <= frame.len()).then_some((ip, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_network_header() {
        let mut f = vec![0u8; 22];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        assert_eq!(network_offset(&f), Some((14, ETHERTYPE_IPV4)));
        f[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f[16..18].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        assert_eq!(network_offset(&f), Some((18, ETHERTYPE_IPV6)));
        f[12..14].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        f[16..18].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f[20..22].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        assert_eq!(network_offset(&f), Some((22, ETHERTYPE_IPV4)));
        assert_eq!(network_offset(&f[..20]), None);
        assert_eq!(network_offset(&[]), None);
    }
}
