//! The inner-flow hash and the outer UDP source port derived from it.
//!
//! RFC 7348 section 5 asks for a source port computed from a hash of the inner frame,
//! so that underlay routers (ECMP) and receiving NICs (RSS), which hash the outer
//! 5-tuple, spread different inner flows while keeping each flow on one path, in order.
//!
//! [`flow_hash`] reads, without allocating or validating more than it needs:
//! - IPv4: addresses, protocol, and TCP/UDP/SCTP/UDP-Lite ports unless the packet is a
//!   fragment (every fragment of a datagram, first or not, hashes alike: without
//!   ports);
//! - IPv6: addresses, the upper-layer protocol after hop-by-hop, routing and
//!   destination-options headers, and its ports; a fragment header stops at addresses;
//! - anything else (ARP, unknown EtherTypes, truncated IP): MAC addresses and EtherType.
//!
//! It looks through up to two VLAN tags. The hash is deterministic (no per-process
//! seed), so a flow keeps its source port across daemon restarts; it is not made
//! symmetric, because the two directions are encapsulated by different VTEPs anyway.
//! The mixing is a multiply-xorshift over 64-bit words with a murmur3 finaliser: a
//! few nanoseconds, no SipHash (the input is not attacker-keyed state, just spread).

use crate::l2::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(K).rotate_left(31)
}

#[inline]
fn finalize(mut h: u64) -> u32 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 32) as u32 ^ h as u32
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Protocols whose first four bytes are source and destination ports.
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136) // TCP, UDP, SCTP, UDP-Lite
}

/// The hash of the inner frame's flow. See the module doc for what it reads.
pub fn flow_hash(frame: &[u8]) -> u32 {
    let Some((l3, ethertype)) = l2::network_offset(frame) else {
        return finalize(mac_words(frame, 0));
    };
    let ip = frame.get(l3..).unwrap_or_default();
    let h = match ethertype {
        ETHERTYPE_IPV4 => ipv4(ip),
        ETHERTYPE_IPV6 => ipv6(ip),
        _ => None,
    };
    finalize(h.unwrap_or_else(|| mac_words(frame, u64::from(ethertype))))
}

fn mac_words(frame: &[u8], ethertype: u64) -> u64 {
    let mut h = mix(K, ethertype);
    h = mix(h, u64_at(frame, 0).unwrap_or(0) >> 16); // destination MAC
    h = mix(h, u64_at(frame, 4).unwrap_or(0) & 0xffff_ffff_ffff); // source MAC
    h
}

fn ipv4(ip: &[u8]) -> Option<u64> {
    let first = *ip.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let proto = *ip.get(9)?;
    let addrs = u64_at(ip, 12)?;
    let frag = l2::be16(ip, 6)?;
    let fragment = frag & 0x3fff != 0; // MF or a non-zero offset
    let mut h = mix(mix(K, 4), addrs);
    let ports = if !fragment && has_ports(proto) && ihl >= 20 {
        u32_at(ip, ihl).unwrap_or(0)
    } else {
        0
    };
    h = mix(h, (u64::from(proto) << 32) | u64::from(ports));
    Some(h)
}

fn ipv6(ip: &[u8]) -> Option<u64> {
    if ip.first()? >> 4 != 6 {
        return None;
    }
    let mut h = mix(K, 6);
    for at in [8, 16, 24, 32] {
        h = mix(h, u64_at(ip, at)?);
    }
    let mut next = *ip.get(6)?;
    let mut at = 40;
    let mut ports = 0;
    // Walk a bounded number of extension headers with the generic length format.
    for _ in 0..4 {
        match next {
            0 | 43 | 60 => {
                next = *ip.get(at)?;
                at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
            }
            44 => break, // fragment header: hash without ports
            p => {
                if has_ports(p) {
                    ports = u32_at(ip, at).unwrap_or(0);
                }
                break;
            }
        }
    }
    Some(mix(h, (u64::from(next) << 32) | u64::from(ports)))
}

/// An inclusive range of UDP source ports, `first..=last`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

/// A port range that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    #[error("source port range {first}-{last} is empty: the first port must not exceed the last")]
    Empty { first: u16, last: u16 },
    #[error("source port range may not include port 0")]
    PortZero,
}

impl PortRange {
    /// 64 ports from 61000. Why: the daemon may bind one UDP socket per source port
    /// (a UDP socket cannot choose its source port per datagram), so the range is kept
    /// small; 64 distinct ports spread flows well over the few ECMP paths and RSS queues
    /// of a small underlay. 61000-61063 lies inside the range RFC 7348 recommends
    /// (49152-65535) and above Linux's default ephemeral range (32768-60999), so binding
    /// these ports never collides with the kernel's automatic port choices.
    pub const DEFAULT: PortRange = PortRange {
        first: 61000,
        last: 61063,
    };

    /// The ports `first..=last`.
    pub const fn new(first: u16, last: u16) -> Result<PortRange, PortRangeError> {
        if first == 0 {
            Err(PortRangeError::PortZero)
        } else if first > last {
            Err(PortRangeError::Empty { first, last })
        } else {
            Ok(PortRange { first, last })
        }
    }

    /// The first port.
    pub const fn first(&self) -> u16 {
        self.first
    }

    /// The last port (inclusive).
    pub const fn last(&self) -> u16 {
        self.last
    }

    /// How many ports the range holds (at least 1).
    pub const fn count(&self) -> u32 {
        self.last as u32 - self.first as u32 + 1
    }

    /// Whether `port` is in the range.
    pub const fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// Iterates the ports, first to last.
    pub fn iter(&self) -> impl Iterator<Item = u16> + use<> {
        self.first..=self.last
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Maps a flow hash into `range`: `first + hash * count / 2^32` (multiply-shift range
/// reduction: uniform for a uniform hash, no division).
pub fn source_port(hash: u32, range: PortRange) -> u16 {
    let offset = (u64::from(hash) * u64::from(range.count())) >> 32;
    // offset < count <= 65535 - first + 1, so the sum fits.
    range.first + offset as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp4(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, [10, 0, 0, 2], 64)
            .udp(sport, dport)
            .write(&mut f, &[1, 2, 3])
            .unwrap();
        f
    }

    fn tcp6(sport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(sport, 80, 1, 1000)
            .write(&mut f, &[])
            .unwrap();
        f
    }

    #[test]
    fn ports_change_the_hash() {
        assert_ne!(
            flow_hash(&udp4([10, 0, 0, 1], 1, 2)),
            flow_hash(&udp4([10, 0, 0, 1], 1, 3))
        );
        assert_ne!(
            flow_hash(&udp4([10, 0, 0, 1], 1, 2)),
            flow_hash(&udp4([10, 0, 0, 3], 1, 2))
        );
        assert_ne!(flow_hash(&tcp6(1000)), flow_hash(&tcp6(1001)));
    }

    #[test]
    fn payload_and_ttl_do_not_change_the_hash() {
        let a = udp4([10, 0, 0, 1], 1, 2);
        let mut b = a.clone();
        b[14 + 8] = 3; // TTL
        *b.last_mut().unwrap() = 9;
        assert_eq!(flow_hash(&a), flow_hash(&b));
    }

    #[test]
    fn fragments_hash_without_ports() {
        let a = udp4([10, 0, 0, 1], 1, 2);
        let mut first = a.clone();
        first[14 + 6] = 0x20; // MF
        let mut later = udp4([10, 0, 0, 1], 7, 7);
        later[14 + 6] = 0x00;
        later[14 + 7] = 0x10; // offset, no MF: the last fragment
        assert_eq!(flow_hash(&first), flow_hash(&later));
        assert_ne!(flow_hash(&first), flow_hash(&a));
    }

    #[test]
    fn vlan_tags_are_looked_through() {
        let plain = udp4([10, 0, 0, 1], 1, 2);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        assert_eq!(flow_hash(&plain), flow_hash(&tagged));
    }

    #[test]
    fn non_ip_uses_macs() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[11] = 1;
        let h1 = flow_hash(&arp);
        arp[11] = 2;
        assert_ne!(h1, flow_hash(&arp));
        // Short garbage does not panic and is deterministic.
        assert_eq!(flow_hash(&[1, 2, 3]), flow_hash(&[1, 2, 3]));
    }

    #[test]
    fn port_range() {
        assert_eq!(
            PortRange::new(5, 4),
            Err(PortRangeError::Empty { first: 5, last: 4 })
        );
        assert_eq!(PortRange::new(0, 4), Err(PortRangeError::PortZero));
        let r = PortRange::new(65535, 65535).unwrap();
        assert_eq!(r.count(), 1);
        assert_eq!(source_port(u32::MAX, r), 65535);
        let d = PortRange::default();
        assert_eq!((d.first(), d.last(), d.count()), (61000, 61063, 64));
        assert_eq!(d.iter().count(), 64);
        let full = PortRange::new(1, 65535).unwrap();
        assert_eq!(source_port(0, full), 1);
        assert_eq!(source_port(u32::MAX, full), 65535);
    }

    #[test]
    fn source_ports_spread_over_the_range() {
        let range = PortRange::new(61000, 61015).unwrap();
        let mut seen = [0u32; 16];
        for sport in 0..4096u16 {
            let p = source_port(flow_hash(&udp4([10, 0, 0, 1], sport, 80)), range);
            assert!(range.contains(p));
            seen[usize::from(p - 61000)] += 1;
        }
        // 256 expected per port; a decent hash stays well within a factor of two.
        assert!(seen.iter().all(|&n| (128..=384).contains(&n)), "{seen:?}");
    }
}
